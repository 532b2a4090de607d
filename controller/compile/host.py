"""Compiler, part one: a host's own switching (pure, like all of compile/).

One small function per purpose of a flow (the Neutron br_tun lesson), so a
reader can find "which flow delivers to a local port" by name: local ports
in (CLASSIFY, PORT_SECURITY), unicast by MAC (L2) to a local port or over the
tenant's VLAN / tunnel to another host, ARP answered from flows, flooding.

Vocabulary
  local port   a port of the model bound to this host whose OVS port exists now
  remote port  a port of the same tenant bound to another host
  remote host  a host with at least one port of the tenant; for overlays it must
               also be connected, so a host that left is out of flood lists
"""
from controller.compile import ipv6
from controller.compile.actions import arp_reply, load
from controller.compile.flows import flow
from controller.compile.meters import port_meter
from controller.compile.pipeline import (
    ARP_REQUEST, DHCP_SERVER_PORT, ETH_TYPE_ARP, ETH_TYPE_IP, ETH_TYPE_IPV6, ETH_TYPE_VLAN,
    IP_PROTO, ND_NEIGHBOR_ADVERT, ND_NEIGHBOR_SOLICIT,
    MULTICAST_BIT, OFPVID_NONE, OFPVID_PRESENT, REG_DELIVER_PORT, REG_SG_LOCAL, TENANT_MASK,
    TUNNEL_PORTS, CookieKind, Prio, Table, metadata_for)
from controller.compile.secgroups import secured_port_flows
from controller.compile.services import service_flows


# --- per local port -------------------------------------------------------------
def local_port_flows(state, tenant, port, ofport, service_ofport=None):
    """A local port's own flows; `service_ofport`: the host's service port
    (pipeline.SERVICE_PORT) when it has one, for DHCP and DNS."""
    owner = dict(kind=CookieKind.PORT, owner=port.serial)
    bits = state.group_bits(port)
    out = [
        *classify_local_port(tenant, port, ofport, bits, owner),
        *port_security(port, ofport, owner),
        *ipv6.port_security(port, ofport, owner),
        *service_flows(state, port, ofport, service_ofport, owner),
        deliver_local(tenant, port, ofport, bits, owner),
    ]
    if port.port_security:
        out.append(unknown_unicast_metered(tenant, port, ofport, owner))
        out += secured_port_flows(port, ofport)
    return out


def classify_local_port(tenant, port, ofport, bits, owner):
    """The tenant in metadata; for a secured port its groups in REG_SG_LOCAL
    (SG_OUT reads them).  A secured port's group-addressed frames (broadcast,
    multicast, hence ARP requests) take a twin flow through the port's flood
    meter (meters.port_meter), here at the door, so that what the meter drops
    costs the datapath no conntrack or replication; unicast is not metered."""
    actions = [load(REG_SG_LOCAL, bits)] if port.port_security else []
    common = dict(actions=actions, metadata=metadata_for(tenant.id), goto=Table.PORT_SECURITY,
                  **owner)
    out = [flow(Table.CLASSIFY, Prio.CLASSIFY.IN_PORT, {"in_port": ofport}, **common)]
    if port.port_security:
        out.append(flow(Table.CLASSIFY, Prio.CLASSIFY.PORT_FLOOD,
                        {"in_port": ofport, "eth_dst": MULTICAST_BIT},
                        meter=port_meter(port.serial).meter_id, **common))
    return out


def unknown_unicast_metered(tenant, port, ofport, owner):
    """Unknown unicast from a secured port floods too, so it goes through the
    same flood meter; only L2 knows a destination is unknown (below PORT_MAC,
    above the tenant's unmetered UNKNOWN_UNICAST)."""
    return flow(Table.L2, Prio.L2.PORT_UNKNOWN,
                {"metadata": metadata_for(tenant.id), "in_port": ofport},
                goto=Table.FLOOD, meter=port_meter(port.serial).meter_id, **owner)


def port_security(port, ofport, owner):
    """A port may send IPv4 only from its IP and MAC, and ARP only about itself,
    untagged (OVS matches eth_type *inside* an 802.1Q tag, so without
    ``vlan_vid`` = none a tagged frame would pass with its tag), and no DHCP
    server replies (they come from the port's own addresses).  Unless port
    security is off: routers and appliances send for others."""
    band = Prio.PORT_SECURITY.OWN_SOURCE
    if not port.port_security:
        return [flow(Table.PORT_SECURITY, band, {"in_port": ofport}, goto=Table.ARP, **owner)]
    own = {"in_port": ofport, "eth_src": port.mac, "vlan_vid": OFPVID_NONE}
    if port.ip is None:                 # IPv6 only: ipv6.port_security has it all
        return []
    return [
        flow(Table.PORT_SECURITY, band, {**own, "eth_type": ETH_TYPE_IP, "ipv4_src": port.ip},
             goto=Table.ARP, **owner),
        flow(Table.PORT_SECURITY, band,
             {**own, "eth_type": ETH_TYPE_ARP, "arp_spa": port.ip, "arp_sha": port.mac},
             goto=Table.ARP, **owner),
        flow(Table.PORT_SECURITY, Prio.PORT_SECURITY.DHCP_SERVER,
             {"in_port": ofport, "eth_type": ETH_TYPE_IP, "ip_proto": IP_PROTO["udp"],
              "udp_src": DHCP_SERVER_PORT}, **owner),
    ]


def deliver_local(tenant, port, ofport, bits, owner):
    """Unicast to a local port, whether the packet came from here or the network;
    a secured port's packets first pass its ingress security groups."""
    match = {"metadata": (metadata_for(tenant.id), TENANT_MASK), "eth_dst": port.mac}
    if port.port_security:
        return flow(Table.L2, Prio.L2.PORT_MAC, match,
                    actions=[load(REG_DELIVER_PORT, ofport), load(REG_SG_LOCAL, bits)],
                    goto=Table.ACL_IN, **owner)
    return flow(Table.L2, Prio.L2.PORT_MAC, match, actions=[("output", ofport)], **owner)


# --- per tenant present on the host --------------------------------------------
def tenant_host_flows(state, tenant, local, egress, remotes, memo=None):
    """The tenant's flows that differ from host to host: in from the network,
    out to each remote port, flooding.  `egress` and `remotes` as
    remote_egress() and remote_hosts() give them.  With `memo`
    (incremental.IncrementalCompiler) a remote port's flow is built once for
    all the hosts that send to it the same way."""
    owner = dict(kind=CookieKind.TENANT, owner=tenant.id)
    out = []
    if egress is not None:
        out += classify_from_network(tenant, egress, owner)
        make = to_remote_port if memo is None else memo.remote_port_flow
        for remote_port, remote_host in remote_ports(state, tenant, remotes):
            out.append(make(tenant, remote_port, remote_host, egress))
    out += flood(tenant, [n for _, n in local], [n for p, n in local if not p.port_security],
                 egress, remotes, owner, v6=bool(state.subnets_of(tenant.name, 6)))
    return out


def tenant_shared_flows(state, tenant):
    """The tenant's flows that are the same on every host it is on (they read
    only the tenant and its ports): the incremental compiler builds them once
    for all of its hosts (compile/incremental.py)."""
    owner = dict(kind=CookieKind.TENANT, owner=tenant.id)
    return (arp_responder(state, tenant) + ipv6.nd_responder(state, tenant)
            + to_flood_table(tenant, owner))


def remote_egress(tenant, host, ofports):
    """How this host's packets of `tenant` reach other hosts: ("vlan", uplink) or
    ("tunnel", ofport); None when the port for it does not exist (yet)."""
    if tenant.network == "vlan":
        n = ofports.get(host.uplink_port) if host.uplink_port else None
        return None if n is None else ("vlan", n)
    n = ofports.get(TUNNEL_PORTS[tenant.network])
    return None if n is None else ("tunnel", n)


def remote_hosts(state, topo, host, tenant):
    """Other hosts with a port of the tenant.  Overlays need the remote bridge
    connected (a host that left drops out of the mesh); a VLAN fabric carries
    the frame either way, so it only needs the remote host to exist."""
    names = sorted({p.host for p in state.ports_of(tenant.name)} - {host.name})
    hosts = [state.hosts[n] for n in names if n in state.hosts]
    if tenant.network != "vlan":
        hosts = [h for h in hosts if topo.connected(h.dpid)]
    return hosts


def remote_ports(state, tenant, remotes):
    by_name = {h.name: h for h in remotes}
    return [(p, by_name[p.host]) for p in state.ports_of(tenant.name) if p.host in by_name]


def classify_from_network(tenant, egress, owner):
    """Traffic of the tenant arriving from other hosts: tag or tunnel key -> tenant."""
    kind, n = egress
    meta = metadata_for(tenant.id, from_net=True)
    if kind == "vlan":
        return [flow(Table.CLASSIFY, Prio.CLASSIFY.IN_PORT,
                     {"in_port": n, "vlan_vid": OFPVID_PRESENT | tenant.segment},
                     actions=[("pop_vlan",)], metadata=meta, goto=Table.L2, **owner)]
    return [flow(Table.CLASSIFY, Prio.CLASSIFY.IN_PORT,
                 {"in_port": n, "tunnel_id": tenant.segment},
                 metadata=meta, goto=Table.L2, **owner)]


def encap(tenant, egress, remote_host):
    """Actions that carry one packet to one remote host."""
    kind, n = egress
    if kind == "vlan":
        return [("push_vlan", ETH_TYPE_VLAN),
                ("set_field", "vlan_vid", OFPVID_PRESENT | tenant.segment), ("output", n)]
    return [("set_field", "tunnel_id", tenant.segment),
            ("set_field", "tun_ipv4_dst", remote_host.tunnel_ip), ("output", n)]


def to_remote_port(tenant, port, remote_host, egress):
    """Unicast from a local port to a port on another host.  Matching metadata
    exactly (FROM_NET clear) is the split horizon: a frame from the network is
    never sent back into it."""
    return flow(Table.L2, Prio.L2.PORT_MAC,
                {"metadata": metadata_for(tenant.id), "eth_dst": port.mac},
                actions=encap(tenant, egress, remote_host),
                kind=CookieKind.REMOTE, owner=port.serial)


def arp_responder(state, tenant):
    """Answer ARP requests from local ports for every IP of the tenant, in place."""
    return [flow(Table.ARP, Prio.ARP.RESPOND,
                 {"metadata": metadata_for(tenant.id), "eth_type": ETH_TYPE_ARP,
                  "arp_op": ARP_REQUEST, "arp_tpa": port.ip},
                 actions=arp_reply(port.mac, port.ip), kind=CookieKind.ARP, owner=port.serial)
            for port in state.ports_of(tenant.name) if port.ip is not None]


def to_flood_table(tenant, owner):
    """Group-addressed frames flood from anywhere; unknown unicast floods only
    from local ports (from the network it is someone else's or nobody's)."""
    return [
        flow(Table.L2, Prio.L2.MULTICAST,
             {"metadata": (metadata_for(tenant.id), TENANT_MASK), "eth_dst": MULTICAST_BIT},
             goto=Table.FLOOD, **owner),
        flow(Table.L2, Prio.L2.UNKNOWN_UNICAST, {"metadata": metadata_for(tenant.id)},
             goto=Table.FLOOD, **owner),
    ]


def flood(tenant, local_ofports, open_ofports, egress, remotes, owner, v6=False):
    """Head-end replication: every local port of the tenant, plus one copy per
    remote host that has the tenant (VLAN: one tagged copy on the uplink).
    IP floods (broadcast, multicast, unknown unicast) skip ports with security
    groups, as an AWS VPC carries no broadcast; ARP floods reach everyone, and
    so (with `v6`, a tenant with IPv6 subnets) do IPv6 NS/NA, while other
    IPv6 floods are IP floods."""
    locals_ = [("output", n) for n in sorted(local_ofports)]
    open_ = [("output", n) for n in sorted(open_ofports)]
    to_net = []
    if egress is not None and remotes:
        if egress[0] == "vlan":
            to_net = encap(tenant, egress, None)
        else:
            to_net = [("set_field", "tunnel_id", tenant.segment)]
            for h in remotes:
                to_net += [("set_field", "tun_ipv4_dst", h.tunnel_ip), ("output", egress[1])]
    out = [
        flow(Table.FLOOD, Prio.FLOOD.ALL, {"metadata": metadata_for(tenant.id)},
             actions=locals_ + to_net, **owner),
        flow(Table.FLOOD, Prio.FLOOD.ALL, {"metadata": metadata_for(tenant.id, from_net=True)},
             actions=locals_, **owner),
    ]
    if open_ != locals_:
        for eth_type in (ETH_TYPE_IP, ETH_TYPE_IPV6) if v6 else (ETH_TYPE_IP,):
            ip = {"eth_type": eth_type}
            out += [
                flow(Table.FLOOD, Prio.FLOOD.IP, {"metadata": metadata_for(tenant.id), **ip},
                     actions=open_ + to_net, **owner),
                flow(Table.FLOOD, Prio.FLOOD.IP,
                     {"metadata": metadata_for(tenant.id, from_net=True), **ip},
                     actions=open_, **owner),
            ]
        for kind in (ND_NEIGHBOR_SOLICIT, ND_NEIGHBOR_ADVERT) if v6 else ():
            nd = {**ipv6.ICMP6, "icmpv6_type": kind}
            out += [
                flow(Table.FLOOD, Prio.FLOOD.ND, {"metadata": metadata_for(tenant.id), **nd},
                     actions=locals_ + to_net, **owner),
                flow(Table.FLOOD, Prio.FLOOD.ND,
                     {"metadata": metadata_for(tenant.id, from_net=True), **nd},
                     actions=locals_, **owner),
            ]
    return out
