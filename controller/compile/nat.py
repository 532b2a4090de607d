"""Compiler, part three: the distributed router and NAT (pure, like all of compile/).

Routing happens on the host where a packet starts: a /32 route per port of
the tenant rewrites MACs, decrements the TTL and hands the packet to L2, which
carries it to the right host over the tenant's VLAN or tunnel.

NAT happens on the host of the port, by OVS conntrack:
  egress   L3 default route: ct(nat) in the tenant's zone un-NATs what it knows
           (replies of port forwards and floating IPs, established SNAT) ->
           NAT_OUT: replies of inbound connections and floating-IP traffic go
           out; SNAT traffic (new: committed with stage 1, private -> the
           tenant's transit IP) goes to NAT_SHARED: stage 2 in the host's
           shared zone, transit -> external IP -> EXT_OUT: to the external
           gateway's MAC, out the external port.
  ingress  EXT_IN: ARP for the external IP and floating IPs answered by flows;
           port forwards and floating IPs are DNAT'd (commit) in the tenant's
           zone; anything else to the external IP is un-NAT'd in the shared
           zone -> EXT_TRANSIT: its transit IP names the tenant, whose zone
           un-NATs it again -> FROM_EXT: into the tenant, to the port.
docs/pipeline.md has the same walk with examples.
"""
from controller.compile import ipv6
from controller.compile.actions import arp_reply, ct
from controller.compile.flows import CONTROLLER, flow
from controller.compile.meters import MeterId
from controller.compile.pipeline import (
    ARP_REPLY, ARP_REQUEST, CT_EST, CT_NEW, CT_REL, CT_RPL, CT_SNAT, CT_TRK, ETH_TYPE_ARP,
    ETH_TYPE_IP, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, IP_PROTO, L4_DST_FIELD, SHARED_NAT_ZONE,
    SNAT_PORTS, TRANSIT_PORTS, CookieKind, Prio, Table, metadata_for, router_mac, transit_ip)


# --- the distributed router ---------------------------------------------------
def router_flows(state, tenant, nat_here):
    """Gateway ARP + ping, /32 routes to every port of the tenant, and what
    the router does with the rest (NAT when this host does NAT for the tenant)."""
    rmac = router_mac(tenant.id)
    meta = metadata_for(tenant.id)
    own = dict(kind=CookieKind.ROUTER, owner=tenant.id)
    to_router = {"metadata": meta, "eth_dst": rmac}
    out = []
    for s in state.subnets_of(tenant.name):
        out.append(flow(Table.ARP, Prio.ARP.RESPOND,
                        {"metadata": meta, "eth_type": ETH_TYPE_ARP, "arp_op": ARP_REQUEST,
                         "arp_tpa": s.gateway}, actions=arp_reply(rmac, s.gateway), **own))
        out.append(flow(Table.L3, Prio.L3.GATEWAY,
                        {**to_router, "eth_type": ETH_TYPE_IP, "ip_proto": IP_PROTO["icmp"],
                         "icmpv4_type": ICMP_ECHO_REQUEST, "ipv4_dst": s.gateway},
                        actions=[("move", "eth_src", "eth_dst"), ("set_field", "eth_src", rmac),
                                 ("move", "ipv4_src", "ipv4_dst"),
                                 ("set_field", "ipv4_src", s.gateway),
                                 ("set_field", "icmpv4_type", ICMP_ECHO_REPLY),
                                 ("output", "in_port")], **own))
        out.append(flow(Table.L3, Prio.L3.SUBNET_DROP,
                        {**to_router, "eth_type": ETH_TYPE_IP,
                         "ipv4_dst": (str(s.net.network_address), str(s.net.netmask))}, **own))
    for p in state.ports_of(tenant.name):
        if p.ip is None:                # IPv6 only: routed by ipv6.router_flows
            continue
        out.append(flow(Table.L3, Prio.L3.ROUTE, {**to_router, "eth_type": ETH_TYPE_IP,
                                                  "ipv4_dst": p.ip},
                        actions=[("set_field", "eth_src", rmac), ("set_field", "eth_dst", p.mac),
                                 ("dec_ttl",)],
                        goto=Table.L2, **own))
    if nat_here:
        out.append(flow(Table.L3, Prio.L3.DEFAULT_ROUTE, {**to_router, "eth_type": ETH_TYPE_IP},
                        actions=[ct(False, tenant.id, Table.NAT_OUT, ())], **own))
    out += ipv6.router_flows(state, tenant, rmac, own)
    out.append(flow(Table.L3, Prio.L3.ROUTER_DROP, to_router, **own))
    return out


# --- NAT on this host -----------------------------------------------------------
class HostNat:
    """Which NAT this host does: computed once per compile, read by the flows."""

    def __init__(self, state, topo, host, live_ports):
        self.host = host
        ofports = topo.ports(host.dpid)
        self.ext_ofport = ofports.get(host.external_port) if host.has_external else None
        self.ext_mac = topo.port_mac(host.dpid, host.external_port) if self.ext_ofport else None
        self.gw_mac = topo.gateway_mac(host.dpid)
        self.enabled = bool(self.ext_ofport and self.ext_mac and host.external_gateway)
        self.live = {p.id: n for p, n in live_ports}
        self.forwards = {}     # tenant -> [(forward, port)]
        self.fips = {}         # tenant -> [(fip, port)]
        if not self.enabled:
            return
        for f in sorted(state.port_forwards.values(), key=lambda f: f.serial):
            port = state.ports.get(f.port_id)
            if port and port.id in self.live:
                self.forwards.setdefault(f.tenant, []).append((f, port))
        for f in sorted(state.floating_ips.values(), key=lambda f: f.serial):
            port = state.port_with_ip(f.tenant, f.ip)
            if port and port.id in self.live:
                self.fips.setdefault(f.tenant, []).append((f, port))

    def does_nat_for(self, tenant):
        return self.enabled and (tenant.snat or tenant.name in self.forwards
                                 or tenant.name in self.fips)


def tenant_nat_flows(tenant, nat, local_ports):
    """NAT_OUT decisions, the transit address's way back in, and FROM_EXT delivery."""
    meta = metadata_for(tenant.id)
    own = dict(kind=CookieKind.NAT, owner=tenant.id)
    zone = tenant.id
    out = []
    for bit in (CT_EST, CT_REL):
        # replies of inbound connections (port forwards, floating IPs): already external
        out.append(flow(Table.NAT_OUT, Prio.NAT_OUT.ESTABLISHED,
                        {"metadata": meta, "ct_state": (bit | CT_RPL | CT_TRK,) * 2},
                        goto=Table.EXT_OUT, **own))
        outbound = {"metadata": meta, "eth_type": ETH_TYPE_IP,
                    "ct_state": (bit | CT_TRK, bit | CT_TRK | CT_RPL)}
        for f, _ in nat.fips.get(tenant.name, []):      # stage 1 made it the floating IP
            out.append(flow(Table.NAT_OUT, Prio.NAT_OUT.ESTABLISHED,
                            {**outbound, "ipv4_src": f.external_ip}, goto=Table.EXT_OUT,
                            kind=CookieKind.FLOATING, owner=f.serial))
        if tenant.snat:
            out.append(flow(Table.NAT_OUT, Prio.NAT_OUT.OUTBOUND, outbound, goto=Table.NAT_SHARED, **own))
    new = {"metadata": meta, "ct_state": (CT_NEW | CT_TRK, CT_NEW | CT_TRK),
           "eth_type": ETH_TYPE_IP}
    for f, port in nat.fips.get(tenant.name, []):
        out.append(flow(Table.NAT_OUT, Prio.NAT_OUT.NAT_FIP, {**new, "ipv4_src": port.ip},
                        actions=[ct(True, zone, Table.EXT_OUT,
                                    ("src", f.external_ip, f.external_ip, 0, 0))],
                        kind=CookieKind.FLOATING, owner=f.serial))
    if tenant.snat:
        transit = transit_ip(tenant.id)
        for proto in ("tcp", "udp"):
            out.append(flow(Table.NAT_OUT, Prio.NAT_OUT.NAT_PORTS, {**new, "ip_proto": IP_PROTO[proto]},
                            actions=[ct(True, zone, Table.NAT_SHARED,
                                        ("src", transit, transit, *TRANSIT_PORTS))], **own))
        out.append(flow(Table.NAT_OUT, Prio.NAT_OUT.NAT_OTHER, new,
                        actions=[ct(True, zone, Table.NAT_SHARED,
                                    ("src", transit, transit, 0, 0))], **own))
        into = [("set_field", "metadata", metadata_for(tenant.id, from_net=True)),
                ct(False, zone, Table.FROM_EXT, ())]
        for bit in (CT_EST, CT_REL):
            out.append(flow(Table.EXT_TRANSIT, Prio.EXT_TRANSIT.ESTABLISHED,
                            {"eth_type": ETH_TYPE_IP, "ipv4_dst": transit,
                             "ct_state": (bit | CT_TRK, bit | CT_TRK)}, actions=into, **own))
    rmac = router_mac(tenant.id)
    for port, _ in local_ports:
        if port.ip is None:             # NAT is IPv4: nothing enters an IPv6-only port
            continue
        out.append(flow(Table.FROM_EXT, Prio.FROM_EXT.TO_PORT,
                        {"metadata": metadata_for(tenant.id, from_net=True),
                         "eth_type": ETH_TYPE_IP, "ipv4_dst": port.ip},
                        actions=[("set_field", "eth_src", rmac),
                                 ("set_field", "eth_dst", port.mac), ("dec_ttl",)],
                        goto=Table.L2, **own))
    return out


def external_flows(state, nat, tenants):
    """The external port: classify, ARP, DNAT, the shared SNAT zone, egress."""
    if not nat.enabled:
        return []
    host = nat.host
    own = dict(kind=CookieKind.EXTERNAL, owner=0)
    ext_ip = host.external_ip
    out = [flow(Table.CLASSIFY, Prio.CLASSIFY.IN_PORT, {"in_port": nat.ext_ofport},
                goto=Table.EXT_IN, **own),
           flow(Table.EXT_IN, Prio.EXT_IN.ARP,
                {"eth_type": ETH_TYPE_ARP, "arp_op": ARP_REQUEST, "arp_tpa": ext_ip},
                actions=arp_reply(nat.ext_mac, ext_ip), **own),
           # the gateway's answer to our ARP: the controller learns its MAC
           # (metered: the outside network must not be able to flood us)
           flow(Table.EXT_IN, Prio.EXT_IN.ARP,
                {"eth_type": ETH_TYPE_ARP, "arp_op": ARP_REPLY, "arp_tpa": ext_ip},
                actions=[("output", CONTROLLER)], meter=MeterId.GATEWAY_ARP, **own)]
    if nat.gw_mac:
        # +snat: only what conntrack really translated leaves.  When a slot's
        # ports are exhausted OVS passes the packet on untranslated; it must
        # not go out with a private source address.
        out.append(flow(Table.EXT_OUT, Prio.EXT_OUT.TRANSLATED,
                        {"eth_type": ETH_TYPE_IP, "ct_state": (CT_SNAT, CT_SNAT)},
                        actions=[("set_field", "eth_src", nat.ext_mac),
                                 ("set_field", "eth_dst", nat.gw_mac), ("dec_ttl",),
                                 ("output", nat.ext_ofport)], **own))
    natted = []
    for tenant in tenants:
        if not nat.does_nat_for(tenant):
            continue
        natted.append(tenant)
        into = [("set_field", "metadata", metadata_for(tenant.id, from_net=True))]
        for f, port in nat.forwards.get(tenant.name, []):
            out.append(flow(Table.EXT_IN, Prio.EXT_IN.DNAT,
                            {"eth_type": ETH_TYPE_IP, "ip_proto": IP_PROTO[f.protocol],
                             "ipv4_dst": ext_ip, L4_DST_FIELD[f.protocol]: f.external_port},
                            actions=into + [ct(True, tenant.id, Table.FROM_EXT,
                                               ("dst", port.ip, port.ip, f.internal_port,
                                                f.internal_port))],
                            kind=CookieKind.FORWARD, owner=f.serial))
        for f, port in nat.fips.get(tenant.name, []):
            fown = dict(kind=CookieKind.FLOATING, owner=f.serial)
            out.append(flow(Table.EXT_IN, Prio.EXT_IN.ARP,
                            {"eth_type": ETH_TYPE_ARP, "arp_op": ARP_REQUEST,
                             "arp_tpa": f.external_ip},
                            actions=arp_reply(nat.ext_mac, f.external_ip), **fown))
            out.append(flow(Table.EXT_IN, Prio.EXT_IN.DNAT,
                            {"eth_type": ETH_TYPE_IP, "ipv4_dst": f.external_ip},
                            actions=into + [ct(True, tenant.id, Table.FROM_EXT,
                                               ("dst", port.ip, port.ip, 0, 0))], **fown))
    if any(t.snat for t in natted):
        out += shared_snat_flows(ext_ip)
    return out


def shared_snat_flows(ext_ip):
    """Stage 2 of SNAT, one zone for all tenants of the host: transit -> external
    IP on the way out; on the way in, whatever the forwards and floating IPs did
    not claim is looked up there (EXT_TRANSIT then finds the tenant)."""
    own = dict(kind=CookieKind.EXTERNAL, owner=0)
    out = []
    for proto in ("tcp", "udp"):
        out.append(flow(Table.NAT_SHARED, Prio.NAT_SHARED.NAT_PORTS,
                        {"eth_type": ETH_TYPE_IP, "ip_proto": IP_PROTO[proto]},
                        actions=[ct(True, SHARED_NAT_ZONE, Table.EXT_OUT,
                                    ("src", ext_ip, ext_ip, *SNAT_PORTS))], **own))
    out.append(flow(Table.NAT_SHARED, Prio.NAT_SHARED.NAT_OTHER, {"eth_type": ETH_TYPE_IP},
                    actions=[ct(True, SHARED_NAT_ZONE, Table.EXT_OUT,
                                ("src", ext_ip, ext_ip, 0, 0))], **own))
    out.append(flow(Table.EXT_IN, Prio.EXT_IN.UN_SNAT, {"eth_type": ETH_TYPE_IP, "ipv4_dst": ext_ip},
                    actions=[ct(False, SHARED_NAT_ZONE, Table.EXT_TRANSIT, ())], **own))
    return out
