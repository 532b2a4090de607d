"""Compiler, part three: port security groups, stateful, in OVS conntrack.

How a rule becomes flows, and why the count stays linear
  * REG_SG_LOCAL holds the local port's groups as bits (set when the packet
    leaves or is about to be delivered to the port); REG_SG_REMOTE the remote
    address's groups (looked up per packet by IP in SG_OUT_REMOTE /
    SG_IN_REMOTE).  A rule of group g with remote sg:h is then ONE flow:
    REG_SG_LOCAL has bit g, REG_SG_REMOTE has bit h,
    protocol, ports.  N ports in a group referenced by M rules cost N + M
    flows per direction, not N x M.
  * Conntrack runs in the port's own zone (pipeline.port_zone), apart from
    the tenant's NAT zone, and is committed for every IP packet of a secured
    port; it only tells directions apart.  Every packet must match a current
    rule: an original-direction packet a rule of its direction, a reply
    (+rpl) the rule of the other direction, reversed.  So replies to allowed
    traffic pass; adding a rule never breaks a connection; removing one cuts
    new and established connections at their next packet (what Neutron does
    by marking conntrack entries, done here by evaluation).
  * IP broadcast/multicast and unknown unicast never reach a secured port
    (AWS VPCs carry neither); ARP is not filtered.
"""
import ipaddress

from controller.compile.actions import ct, load
from controller.compile.flows import flow
from controller.compile.pipeline import (
    CT_INV, CT_REL, CT_RPL, CT_TRK, ETH_TYPE_ARP, ETH_TYPE_IP, ETH_TYPE_IPV6, HOST_PIPELINE,
    IP_PROTO, L4_DST_FIELD, L4_SRC_FIELD, ND_NEIGHBOR_ADVERT, ND_NEIGHBOR_SOLICIT,
    REG_DELIVER_PORT, REG_SG_REMOTE, REG_SG_LOCAL, TENANT_MASK, CookieKind, Prio, Table,
    metadata_for, port_zone)

ORIGINAL = (CT_TRK, CT_TRK | CT_RPL)          # tracked, not a reply
# per IP version: its eth_type and the source / destination address fields
FAMILY = {4: (ETH_TYPE_IP, "ipv4_src", "ipv4_dst"), 6: (ETH_TYPE_IPV6, "ipv6_src", "ipv6_dst")}
# protocol -> the IP versions a rule of it can match (icmp is ICMPv4, icmpv6 is ICMPv6)
PROTOCOL_FAMILIES = {"icmp": (4,), "icmpv6": (6,)}
REPLY = (CT_TRK | CT_RPL, CT_TRK | CT_RPL)


def port_range_masks(lo, hi):
    """Cover [lo, hi] of a 16-bit field with (value, mask) pairs (prefix split)."""
    out = []
    while lo <= hi:
        size = lo & -lo if lo else 1 << 16
        while lo + size - 1 > hi:
            size >>= 1
        out.append((lo, 0xFFFF & ~(size - 1)))
        lo += size
    return out


def secured_port_flows(port, ofport):
    """Per local secured port: into conntrack on egress and on ingress, and
    delivery; ARP (and, for a port with an IPv6 address, NS/NA) unfiltered.
    Anything else -- IPv6 to a port without an IPv6 address -- is dropped."""
    zone = port_zone(port.serial)
    own = dict(kind=CookieKind.PORT, owner=port.serial)
    to_port = {REG_DELIVER_PORT.oxm: ofport}
    out = [flow(Table.ACL_IN, Prio.ACL_IN.NON_IP, {**to_port, "eth_type": ETH_TYPE_ARP},
                goto=Table.DELIVER, **own),
           flow(Table.DELIVER, Prio.DELIVER.PORT, to_port, actions=[("output", ofport)], **own)]
    for version, has in ((4, port.ip), (6, port.ip6)):
        if has is None:
            continue
        ip = {"eth_type": FAMILY[version][0]}
        out += [flow(Table.ACL, Prio.ACL.SECURED_IP, {"in_port": ofport, **ip},
                     actions=[ct(True, zone, Table.SG_OUT_REMOTE)], **own),
                flow(Table.ACL_IN, Prio.ACL_IN.SECURED_IP, {**to_port, **ip},
                     actions=[ct(True, zone, Table.SG_IN_REMOTE)], **own)]
    if port.ip6 is not None:
        for kind in (ND_NEIGHBOR_SOLICIT, ND_NEIGHBOR_ADVERT):
            nd = {"eth_type": ETH_TYPE_IPV6, "ip_proto": IP_PROTO["icmpv6"], "icmpv6_type": kind}
            out += [flow(Table.ACL, Prio.ACL.ND, {"in_port": ofport, **nd}, goto=Table.L3,
                         **own),
                    flow(Table.ACL_IN, Prio.ACL_IN.ND, {**to_port, **nd}, goto=Table.DELIVER,
                         **own)]
    return out


def tenant_sg_flows(state, tenant):
    """Per tenant with a secured port on this host: remote-group lookups and rules."""
    meta = (metadata_for(tenant.id), TENANT_MASK)
    own = dict(kind=CookieKind.TENANT, owner=tenant.id)
    out = []
    versions = tenant_versions(state, tenant)
    for q in state.ports_of(tenant.name):
        bits = state.group_bits(q)
        if not bits:
            continue
        lookup = dict(kind=CookieKind.SG_LOOKUP, owner=q.serial)
        for version, addr in ((4, q.ip), (6, q.ip6)):
            if addr is None:
                continue
            eth_type, src, dst = FAMILY[version]
            out.append(flow(Table.SG_OUT_REMOTE, Prio.SG_OUT_REMOTE.MEMBER,
                            {"metadata": meta, "eth_type": eth_type, dst: addr},
                            actions=[load(REG_SG_REMOTE, bits)], goto=Table.SG_OUT, **lookup))
            out.append(flow(Table.SG_IN_REMOTE, Prio.SG_IN_REMOTE.MEMBER,
                            {"metadata": meta, "eth_type": eth_type, src: addr},
                            actions=[load(REG_SG_REMOTE, bits)], goto=Table.SG_IN, **lookup))
    for table, bands, onward in ((Table.SG_OUT, Prio.SG_OUT, Table.L3),
                                 (Table.SG_IN, Prio.SG_IN, Table.DELIVER)):
        for version in versions:
            ip = {"metadata": meta, "eth_type": FAMILY[version][0]}
            out.append(flow(table, bands.INVALID,
                            {**ip, "ct_state": (CT_INV | CT_TRK, CT_INV | CT_TRK)}, **own))
            out.append(flow(table, bands.RELATED,
                            {**ip, "ct_state": (CT_REL | CT_TRK, CT_REL | CT_TRK)},
                            goto=onward, **own))
    for g in state.groups_of(tenant.name):
        for rule in g.rules:
            out += rule_flows(state, tenant, g, rule, meta, versions)
    return out


def tenant_versions(state, tenant):
    """The IP versions the tenant has subnets of (4 always: a tenant without
    subnets compiles as before)."""
    return (4, 6) if state.subnets_of(tenant.name, 6) else (4,)


def rule_flows(state, tenant, group, rule, meta, versions=(4,)):
    """One rule: its own direction (original packets) and the other (replies),
    for each IP version it can match that the tenant has: an IPv4 CIDR matches
    IPv4, an IPv6 one IPv6, sg:<group> both; icmp is IPv4's, icmpv6 IPv6's."""
    out = []
    for version in versions:
        if version in PROTOCOL_FAMILIES.get(rule["protocol"], (4, 6)):
            out += _rule_flows(state, tenant, group, rule, meta, version)
    return out


def _rule_flows(state, tenant, group, rule, meta, version):
    own = dict(kind=CookieKind.SECGROUP, owner=(tenant.id << 5) | group.index)
    remote = remote_match(state, tenant, rule["remote"], version)
    if remote is None:     # a group that no longer exists, or a CIDR of the other family
        return []
    ingress = rule["direction"] == "ingress"
    eth_type, src, dst = FAMILY[version]
    out = []
    # (table, ct_state, L4 field naming the rule's ports, the remote's address field, onward)
    uses = [
        (Table.SG_IN if ingress else Table.SG_OUT, ORIGINAL, L4_DST_FIELD,
         src if ingress else dst, Table.DELIVER if ingress else Table.L3),
        (Table.SG_OUT if ingress else Table.SG_IN, REPLY, L4_SRC_FIELD,
         dst if ingress else src, Table.L3 if ingress else Table.DELIVER),
    ]
    for table, ct_state, l4, addr_field, onward in uses:
        base = {"metadata": meta, "eth_type": eth_type, "ct_state": ct_state,
                REG_SG_LOCAL.oxm: REG_SG_LOCAL.has_bit(group.index)}
        if rule["protocol"] != "any":
            base["ip_proto"] = IP_PROTO[rule["protocol"]]
        if remote[0] == "group":
            base[REG_SG_REMOTE.oxm] = REG_SG_REMOTE.has_bit(remote[1])
        elif remote[1] is not None:
            base[addr_field] = remote[1]
        ranges = [None]
        if rule["ports"] is not None:
            ranges = port_range_masks(*rule["ports"])
        for r in ranges:
            match = dict(base)
            if r is not None:
                match[l4[rule["protocol"]]] = r if r[1] != 0xFFFF else r[0]
            out.append(flow(table, HOST_PIPELINE[table].bands.RULE, match, goto=onward, **own))
    return out


def remote_match(state, tenant, remote, version=4):
    """("group", index) for sg:<name>; ("ip", value or None for anywhere) for
    a CIDR of `version`; None for a CIDR of the other version."""
    if remote.startswith("sg:"):
        g = state.security_groups.get(f"{tenant.name}/{remote[3:]}")
        return None if g is None else ("group", g.index)
    net = ipaddress.ip_network(remote, strict=False)
    if net.version != version:
        return None
    if net.prefixlen == 0:
        return ("ip", None)
    if net.prefixlen == net.max_prefixlen:
        return ("ip", str(net.network_address))
    return ("ip", (str(net.network_address), str(net.netmask)))
