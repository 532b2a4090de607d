"""Compiler, IPv6 (dual-stack): port security, neighbour discovery, routing.

Pure, like all of compile/.  Each function adds the IPv6 twin of an IPv4
purpose, called from the module that owns that purpose (host.py, nat.py,
secgroups.py), so a tenant without IPv6 subnets compiles exactly as before.

Neighbour discovery is answered by flows, as ARP is, with no packet-in:
  * An NS for a known address (a port's ip6, a gateway, the router's
    link-local address) becomes the NA in place (ARP table): MACs and IPv6
    addresses swapped, type 136, the NA flags in nd_reserved, the NS's source
    link-layer option retyped as a target link-layer option
    (nd_options_type = 2).  Its value must then become the answering MAC, but
    OVS accepts `nd_tll` only in a flow that *matches* an NA, so the packet
    goes on to ND_ANSWER, whose one flow matches type 136 and moves eth_src
    (already the answer's MAC) into nd_tll.  Checked byte for byte against
    a real ovs-vswitchd (tests/lab/test_ipv6_nd.py).
  * DAD: an NS from :: for a port's address that another port sends is
    answered with an NA to all-nodes (the address is taken: the sender's DAD
    fails); the owner's own DAD is not answered (it must succeed).
  * Anything unanswered (link-local targets, DAD by the owner) floods in the
    tenant only, to every port, as ARP does (host.flood, band ND).

Port security (a secured port with an IPv6 address): it may send IPv6 from
its address and from the link-local address its MAC gives (EUI-64, what a
Linux container's kernel configures); NS only with its own MAC as source
link-layer address, NA only about its own addresses with its own MAC (or
none), DAD NS, MLD reports and RS from ::; never an RA or a redirect (RA guard).
"""
import ipaddress

from controller.compile.flows import CONTROLLER, flow
from controller.compile.meters import MeterId
from controller.compile.pipeline import (
    ETH_TYPE_IPV6, ICMPV6_ECHO_REPLY, ICMPV6_ECHO_REQUEST, IP_PROTO, IPV6_UNSPECIFIED,
    MAC_NONE, MLDV2_REPORT, ND_FLAG_OVERRIDE, ND_FLAG_ROUTER, ND_FLAG_SOLICITED,
    ND_NEIGHBOR_ADVERT, ND_NEIGHBOR_SOLICIT, ND_OPT_TARGET_LL, ND_REDIRECT, ND_ROUTER_ADVERT,
    ND_ROUTER_SOLICIT, OFPVID_NONE, CookieKind, Prio, Table, metadata_for)

ICMP6 = {"eth_type": ETH_TYPE_IPV6, "ip_proto": IP_PROTO["icmpv6"]}
ALL_NODES = ("33:33:00:00:00:01", "ff02::1")


def link_local(mac):
    """The EUI-64 link-local address of a MAC (RFC 4291 appendix A)."""
    b = bytes.fromhex(mac.replace(":", ""))
    iid = bytes([b[0] ^ 0x02]) + b[1:3] + b"\xff\xfe" + b[3:]
    return str(ipaddress.IPv6Address(b"\xfe\x80" + b"\x00" * 6 + iid))


def own_addresses(port):
    return (port.ip6, link_local(port.mac))


# --- port security ----------------------------------------------------------------
def port_security(port, ofport, owner):
    """A secured port's IPv6 (see the module doc); [] without an IPv6 address."""
    if not port.ip6 or not port.port_security:
        return []
    own = {"in_port": ofport, "eth_src": port.mac, "vlan_vid": OFPVID_NONE}
    nd = {**own, **ICMP6}
    bands = Prio.PORT_SECURITY
    go = dict(goto=Table.ARP, **owner)
    out = [flow(Table.PORT_SECURITY, bands.OWN_SOURCE,
                {**own, "eth_type": ETH_TYPE_IPV6, "ipv6_src": src}, **go)
           for src in own_addresses(port)]
    for src in own_addresses(port):
        out.append(flow(Table.PORT_SECURITY, bands.ND_OWN,
                        {**nd, "ipv6_src": src, "icmpv6_type": ND_NEIGHBOR_SOLICIT,
                         "ipv6_nd_sll": port.mac}, **go))
        for tll in (port.mac, MAC_NONE):      # a reply to a unicast NS carries no option
            out.append(flow(Table.PORT_SECURITY, bands.ND_OWN,
                            {**nd, "ipv6_src": src, "icmpv6_type": ND_NEIGHBOR_ADVERT,
                             "ipv6_nd_target": src, "ipv6_nd_tll": tll}, **go))
    for kind in (ND_NEIGHBOR_SOLICIT, MLDV2_REPORT, ND_ROUTER_SOLICIT):  # DAD, MLD, RS: from ::
        out.append(flow(Table.PORT_SECURITY, bands.ND_OWN,
                        {**nd, "ipv6_src": IPV6_UNSPECIFIED, "icmpv6_type": kind}, **go))
    for kind in (ND_NEIGHBOR_SOLICIT, ND_NEIGHBOR_ADVERT, ND_ROUTER_ADVERT, ND_REDIRECT):
        out.append(flow(Table.PORT_SECURITY, bands.ND_GUARD,
                        {"in_port": ofport, **ICMP6, "icmpv6_type": kind}, **owner))
    return out


# --- neighbour discovery answered by flows ------------------------------------------
def na_actions(mac, ip, flags):
    """Turn an NS for `ip` into the NA of (mac, ip) with `flags`; ND_ANSWER
    finishes it (the target link-layer option) and sends it back."""
    return [("move", "eth_src", "eth_dst"), ("set_field", "eth_src", mac),
            ("move", "ipv6_src", "ipv6_dst"), ("set_field", "ipv6_src", ip),
            ("set_field", "icmpv6_type", ND_NEIGHBOR_ADVERT),
            ("set_field", "nd_reserved", flags),
            ("set_field", "nd_options_type", ND_OPT_TARGET_LL)]


def taken_actions(mac, ip):
    """An NA to all-nodes for `ip`: the answer to someone else's DAD for it."""
    return [("set_field", "eth_src", mac), ("set_field", "eth_dst", ALL_NODES[0]),
            ("set_field", "ipv6_src", ip), ("set_field", "ipv6_dst", ALL_NODES[1]),
            ("set_field", "icmpv6_type", ND_NEIGHBOR_ADVERT),
            ("set_field", "nd_reserved", ND_FLAG_OVERRIDE), ("output", "in_port")]


def answer(meta, mac, ip, flags, own, owner_mac=None):
    """The flows that answer NS and DAD for one address."""
    ns = {"metadata": meta, **ICMP6, "icmpv6_type": ND_NEIGHBOR_SOLICIT, "ipv6_nd_target": ip}
    bands = Prio.ARP
    out = [flow(Table.ARP, bands.RESPOND, ns, actions=na_actions(mac, ip, flags),
                goto=Table.ND_ANSWER, **own),
           flow(Table.ARP, bands.DAD_TAKEN, {**ns, "ipv6_src": IPV6_UNSPECIFIED},
                actions=taken_actions(mac, ip), **own)]
    if owner_mac is not None:           # the owner's own DAD goes on, unanswered
        out.append(flow(Table.ARP, bands.DAD_OWNER,
                        {**ns, "ipv6_src": IPV6_UNSPECIFIED, "eth_src": owner_mac},
                        goto=Table.ACL, **own))
    return out


def nd_responder(state, tenant):
    """NS / DAD answers for every IPv6 address of the tenant's ports, and the
    tenant's ND_ANSWER flow (none at all for a tenant without IPv6 subnets)."""
    if not state.subnets_of(tenant.name, 6):
        return []
    meta = metadata_for(tenant.id)
    out = [nd_answer_flow(tenant)]
    for port in state.ports_of(tenant.name):
        if port.ip6:
            out += answer(meta, port.mac, port.ip6, ND_FLAG_SOLICITED | ND_FLAG_OVERRIDE,
                          dict(kind=CookieKind.ARP, owner=port.serial), owner_mac=port.mac)
    return out


def nd_answer_flow(tenant):
    """ND_ANSWER: the NA's target link-layer address := its source MAC (the
    answer's), back out of the port the NS came from."""
    return flow(Table.ND_ANSWER, Prio.ND_ANSWER.FINISH,
                {"metadata": metadata_for(tenant.id), **ICMP6,
                 "icmpv6_type": ND_NEIGHBOR_ADVERT},
                actions=[("move", "eth_src", "ipv6_nd_tll"), ("output", "in_port")],
                kind=CookieKind.TENANT, owner=tenant.id)


# --- the distributed router -----------------------------------------------------------
def router_flows(state, tenant, rmac, own):
    """The router's IPv6 half: NS for each IPv6 gateway and the router's
    link-local address answered (router flag set), router solicitations to the
    controller (runtime/router_adverts.py answers them), echo to a gateway answered,
    a route per port's ip6, an IPv6 subnet's unassigned addresses dropped."""
    subnets = state.subnets_of(tenant.name, 6)
    if not subnets:
        return []
    meta = metadata_for(tenant.id)
    flags = ND_FLAG_ROUTER | ND_FLAG_SOLICITED | ND_FLAG_OVERRIDE
    to_router = {"metadata": meta, "eth_dst": rmac, "eth_type": ETH_TYPE_IPV6}
    out = answer(meta, rmac, link_local(rmac), flags, own)
    out.append(flow(Table.ARP, Prio.ARP.ROUTER_SOLICIT,
                    {"metadata": meta, **ICMP6, "icmpv6_type": ND_ROUTER_SOLICIT},
                    actions=[("output", CONTROLLER)], meter=MeterId.ROUTER_SOLICIT, **own))
    for s in subnets:
        out += answer(meta, rmac, s.gateway, flags, own)
        out.append(flow(Table.L3, Prio.L3.GATEWAY,
                        {**to_router, "ip_proto": IP_PROTO["icmpv6"],
                         "icmpv6_type": ICMPV6_ECHO_REQUEST, "ipv6_dst": s.gateway},
                        actions=[("move", "eth_src", "eth_dst"), ("set_field", "eth_src", rmac),
                                 ("move", "ipv6_src", "ipv6_dst"),
                                 ("set_field", "ipv6_src", s.gateway),
                                 ("set_field", "icmpv6_type", ICMPV6_ECHO_REPLY),
                                 ("output", "in_port")], **own))
        out.append(flow(Table.L3, Prio.L3.SUBNET_DROP,
                        {**to_router, "ipv6_dst": (str(s.net.network_address),
                                                   str(s.net.netmask))}, **own))
    for p in state.ports_of(tenant.name):
        if p.ip6:
            out.append(flow(Table.L3, Prio.L3.ROUTE, {**to_router, "ipv6_dst": p.ip6},
                            actions=[("set_field", "eth_src", rmac),
                                     ("set_field", "eth_dst", p.mac), ("dec_ttl",)],
                            goto=Table.L2, **own))
    return out
