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
from controller.compile.actions import ct, load
from controller.compile.flows import flow
from controller.compile.pipeline import (
    CT_INV, CT_REL, CT_RPL, CT_TRK, ETH_TYPE_IP, HOST_PIPELINE, IP_PROTO, L4_DST_FIELD, L4_SRC_FIELD,
    REG_DELIVER_PORT, REG_SG_REMOTE, REG_SG_LOCAL, TENANT_MASK, CookieKind, Prio, Table,
    metadata_for, port_zone)

ORIGINAL = (CT_TRK, CT_TRK | CT_RPL)          # tracked, not a reply
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
    """Per local secured port: into conntrack on egress and on ingress, and delivery."""
    zone = port_zone(port.serial)
    own = dict(kind=CookieKind.PORT, owner=port.serial)
    to_port = {REG_DELIVER_PORT.oxm: ofport}
    return [
        flow(Table.ACL, Prio.ACL.SECURED_IP, {"in_port": ofport, "eth_type": ETH_TYPE_IP},
             actions=[ct(True, zone, Table.SG_OUT_REMOTE)], **own),
        flow(Table.ACL_IN, Prio.ACL_IN.SECURED_IP, {**to_port, "eth_type": ETH_TYPE_IP},
             actions=[ct(True, zone, Table.SG_IN_REMOTE)], **own),
        flow(Table.ACL_IN, Prio.ACL_IN.NON_IP, to_port, goto=Table.DELIVER, **own),
        flow(Table.DELIVER, Prio.DELIVER.PORT, to_port, actions=[("output", ofport)], **own),
    ]


def tenant_sg_flows(state, tenant):
    """Per tenant with a secured port on this host: remote-group lookups and rules."""
    meta = (metadata_for(tenant.id), TENANT_MASK)
    own = dict(kind=CookieKind.TENANT, owner=tenant.id)
    out = []
    for q in state.ports_of(tenant.name):
        bits = state.group_bits(q)
        if not bits:
            continue
        lookup = dict(kind=CookieKind.SG_LOOKUP, owner=q.serial)
        out.append(flow(Table.SG_OUT_REMOTE, Prio.SG_OUT_REMOTE.MEMBER,
                        {"metadata": meta, "eth_type": ETH_TYPE_IP, "ipv4_dst": q.ip},
                        actions=[load(REG_SG_REMOTE, bits)], goto=Table.SG_OUT, **lookup))
        out.append(flow(Table.SG_IN_REMOTE, Prio.SG_IN_REMOTE.MEMBER,
                        {"metadata": meta, "eth_type": ETH_TYPE_IP, "ipv4_src": q.ip},
                        actions=[load(REG_SG_REMOTE, bits)], goto=Table.SG_IN, **lookup))
    for table, bands, onward in ((Table.SG_OUT, Prio.SG_OUT, Table.L3),
                                 (Table.SG_IN, Prio.SG_IN, Table.DELIVER)):
        out.append(flow(table, bands.INVALID, {"metadata": meta, "eth_type": ETH_TYPE_IP,
                                               "ct_state": (CT_INV | CT_TRK, CT_INV | CT_TRK)},
                        **own))
        out.append(flow(table, bands.RELATED, {"metadata": meta, "eth_type": ETH_TYPE_IP,
                                               "ct_state": (CT_REL | CT_TRK, CT_REL | CT_TRK)},
                        goto=onward, **own))
    for g in state.groups_of(tenant.name):
        for rule in g.rules:
            out += rule_flows(state, tenant, g, rule, meta)
    return out


def rule_flows(state, tenant, group, rule, meta):
    """One rule: its own direction (original packets) and the other (replies)."""
    own = dict(kind=CookieKind.SECGROUP, owner=(tenant.id << 5) | group.index)
    remote = remote_match(state, tenant, rule["remote"])
    if remote is None:               # a group that no longer exists: matches nobody
        return []
    ingress = rule["direction"] == "ingress"
    out = []
    # (table, ct_state, L4 field naming the rule's ports, the remote's address field, onward)
    uses = [
        (Table.SG_IN if ingress else Table.SG_OUT, ORIGINAL, L4_DST_FIELD,
         "ipv4_src" if ingress else "ipv4_dst", Table.DELIVER if ingress else Table.L3),
        (Table.SG_OUT if ingress else Table.SG_IN, REPLY, L4_SRC_FIELD,
         "ipv4_dst" if ingress else "ipv4_src", Table.L3 if ingress else Table.DELIVER),
    ]
    for table, ct_state, l4, addr_field, onward in uses:
        base = {"metadata": meta, "eth_type": ETH_TYPE_IP, "ct_state": ct_state,
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


def remote_match(state, tenant, remote):
    """("group", index) for sg:<name>; ("ip", value or None for anywhere)."""
    if remote.startswith("sg:"):
        g = state.security_groups.get(f"{tenant.name}/{remote[3:]}")
        return None if g is None else ("group", g.index)
    addr, _, plen = remote.partition("/")
    plen = int(plen or 32)
    if plen == 0:
        return ("ip", None)
    if plen == 32:
        return ("ip", addr)
    mask = (0xFFFF_FFFF << (32 - plen)) & 0xFFFF_FFFF
    return ("ip", (addr, ".".join(str(mask >> s & 0xFF) for s in (24, 16, 8, 0))))
