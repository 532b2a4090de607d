"""The flow compiler: (model State, TopoView, dpid) -> the flows that datapath must hold.

Pure and deterministic: no I/O, no clock, no randomness, no os-ken.  One small
function per purpose of a flow (the Neutron br_tun lesson), so a reader can
find "which flow delivers to a local port" by name.  docs/pipeline.md walks
the same tables.

Vocabulary
  local port   a port of the model bound to this host whose OVS port exists now
  remote port  a port of the same tenant bound to another host
  remote host  a host with at least one port of the tenant; for overlays it must
               also be connected, so a host that left is out of flood lists
"""
from controller.compile.fabric import fabric_flows
from controller.compile.nat import HostNat, external_flows, router_flows, tenant_nat_flows
from controller.compile.secgroups import secured_port_flows, tenant_sg_flows
from controller.compile.flows import check_unique_keys, flow
from controller.compile.pipeline import (
    ARP_REPLY, ARP_REQUEST, ETH_TYPE_ARP, ETH_TYPE_IP, ETH_TYPE_VLAN, MULTICAST_BIT,
    OFPVID_PRESENT, TENANT_MASK, CookieKind, Prio, Table, metadata_for)

TUNNEL_PORT = {"vxlan": "vxlan0", "gre": "gre0"}


def compile_datapath(state, topo, dpid, pause=None):
    """All flows for one datapath, as a frozenset of Flow values.

    `pause`, if given, is called between pieces of the work (each local port,
    each tenant).  It changes nothing in the result; the controller passes a
    cooperative yield so that compiling a host with thousands of flows does
    not hold up every other switch's OpenFlow handshake and replies."""
    host = state.host_by_dpid(dpid)
    if host is None and topo.connected(dpid):        # a fabric switch
        return frozenset(check_unique_keys(fabric_flows(state, topo, dpid)))
    flows = list(base_flows())
    if host is not None:
        for chunk in host_flow_chunks(state, topo, host):
            flows += chunk
            if pause is not None:
                pause()
    return frozenset(check_unique_keys(flows))


def overlay_peers(state, dpid):
    """dpids of the hosts whose flows change when `dpid` connects or leaves.

    Only overlay tenants look at whether a remote bridge is connected (see
    remote_hosts), so those are the hosts sharing a VXLAN/GRE tenant that has
    a port on `dpid`'s host.  Recompiling every switch whenever one connects
    made a cold start of N switches cost N^2 compiles."""
    host = state.host_by_dpid(dpid)
    if host is None:
        return set()
    tenants = {p.tenant for p in state.ports_on(host.name)}
    peers = set()
    for name in tenants:
        tenant = state.tenants.get(name)
        if tenant is None or tenant.network == "vlan":
            continue
        for p in state.ports_of(name):
            h = state.hosts.get(p.host)
            if h is not None and h.dpid != dpid:
                peers.add(h.dpid)
    return peers


# --- table defaults ----------------------------------------------------------
def base_flows():
    """What every table does with a packet no specific flow claims."""
    def miss(table, goto=None):
        return flow(table, Prio.MISS, goto=goto, kind=CookieKind.BASE)
    return [
        miss(Table.CLASSIFY),                     # unknown in_port / VLAN / tun_id: drop
        miss(Table.EXT_IN),                       # nothing we translate: drop
        miss(Table.EXT_TRANSIT),                  # not a reply to any tenant's SNAT: drop
        miss(Table.PORT_SECURITY),                # spoofed source: drop
        miss(Table.ARP, goto=Table.ACL),          # not an ARP we answer: go on
        miss(Table.ACL, goto=Table.L3),           # not from a secured port, or not IP
        miss(Table.SG_OUT_REMOTE, goto=Table.SG_OUT),   # destination in no group
        miss(Table.SG_OUT),                       # no egress rule allows it: drop
        miss(Table.L3, goto=Table.L2),            # not for the router: switch
        miss(Table.NAT_OUT),                      # invalid, or no NAT allowed: drop
        miss(Table.NAT_SHARED),                   # no tenant here has SNAT: drop
        miss(Table.EXT_OUT),                      # gateway MAC not known yet: drop
        miss(Table.FROM_EXT),                     # not to a port of ours: drop
        miss(Table.L2),                           # from the network and not ours: drop
        miss(Table.ACL_IN),                       # not to a secured local port: drop
        flow(Table.SG_IN_REMOTE, Prio.MISS, actions=[("set_field", "reg4", 0)],
             goto=Table.SG_IN, kind=CookieKind.BASE),   # source in no group
        miss(Table.SG_IN),                        # no ingress rule allows it: drop
        miss(Table.DELIVER),                      # no such local port: drop
        miss(Table.FLOOD),                        # a tenant with nothing to flood to
    ]


# --- per host ------------------------------------------------------------------
def host_flow_chunks(state, topo, host):
    """A host's flows, one list per local port, per tenant, then the external ones."""
    ofports = topo.ports(host.dpid)
    local = [(p, ofports[p.port]) for p in state.ports_on(host.name) if p.port in ofports]
    nat = HostNat(state, topo, host, local)
    for port, ofport in local:
        yield local_port_flows(state, state.tenants[port.tenant], port, ofport)
    tenants = [state.tenants[n] for n in sorted({p.tenant for p, _ in local})]
    for tenant in sorted(tenants, key=lambda t: t.id):
        mine = [(p, n) for p, n in local if p.tenant == tenant.name]
        out = tenant_flows(state, topo, host, tenant, mine, ofports)
        if any(p.port_security for p, _ in mine):
            out += tenant_sg_flows(state, tenant)
        out += router_flows(state, tenant, nat.does_nat_for(tenant))
        if nat.does_nat_for(tenant):
            out += tenant_nat_flows(tenant, nat, mine)
        yield out
    yield external_flows(state, nat, sorted(tenants, key=lambda t: t.id))


def local_port_flows(state, tenant, port, ofport):
    owner = dict(kind=CookieKind.PORT, owner=port.serial)
    bits = state.group_bits(port)
    out = [
        classify_local_port(tenant, port, ofport, bits, owner),
        *port_security(port, ofport, owner),
        deliver_local(tenant, port, ofport, bits, owner),
    ]
    if port.port_security:
        out += secured_port_flows(port, ofport)
    return out


def classify_local_port(tenant, port, ofport, bits, owner):
    """The tenant in metadata; for a secured port its groups in reg3 (SG_OUT reads them)."""
    actions = [("set_field", "reg3", bits)] if port.port_security else []
    return flow(Table.CLASSIFY, Prio.ALLOW, {"in_port": ofport}, actions=actions,
                metadata=metadata_for(tenant.id), goto=Table.PORT_SECURITY, **owner)


def port_security(port, ofport, owner):
    """A port may send IPv4 only from its IP and MAC, and ARP only about itself
    (unless port security is off: routers and appliances send for others)."""
    if not port.port_security:
        return [flow(Table.PORT_SECURITY, Prio.ALLOW, {"in_port": ofport}, goto=Table.ARP,
                     **owner)]
    return [
        flow(Table.PORT_SECURITY, Prio.ALLOW,
             {"in_port": ofport, "eth_src": port.mac, "eth_type": ETH_TYPE_IP,
              "ipv4_src": port.ip}, goto=Table.ARP, **owner),
        flow(Table.PORT_SECURITY, Prio.ALLOW,
             {"in_port": ofport, "eth_src": port.mac, "eth_type": ETH_TYPE_ARP,
              "arp_spa": port.ip, "arp_sha": port.mac}, goto=Table.ARP, **owner),
    ]


def deliver_local(tenant, port, ofport, bits, owner):
    """Unicast to a local port, whether the packet came from here or the network;
    a secured port's packets first pass its ingress security groups."""
    match = {"metadata": (metadata_for(tenant.id), TENANT_MASK), "eth_dst": port.mac}
    if port.port_security:
        return flow(Table.L2, Prio.ALLOW, match,
                    actions=[("set_field", "reg7", ofport), ("set_field", "reg3", bits)],
                    goto=Table.ACL_IN, **owner)
    return flow(Table.L2, Prio.ALLOW, match, actions=[("output", ofport)], **owner)


# --- per tenant present on the host --------------------------------------------
def tenant_flows(state, topo, host, tenant, local, ofports):
    owner = dict(kind=CookieKind.TENANT, owner=tenant.id)
    egress = remote_egress(tenant, host, ofports)
    remotes = remote_hosts(state, topo, host, tenant)
    out = []
    if egress is not None:
        out += classify_from_network(tenant, egress, owner)
        for remote_port, remote_host in remote_ports(state, host, tenant, remotes):
            out.append(to_remote_port(tenant, remote_port, remote_host, egress))
    out += arp_responder(state, tenant)
    out += to_flood_table(tenant, owner)
    out += flood(tenant, [n for _, n in local], [n for p, n in local if not p.port_security],
                 egress, remotes, owner)
    return out


def remote_egress(tenant, host, ofports):
    """How this host's packets of `tenant` reach other hosts: ("vlan", uplink) or
    ("tunnel", ofport); None when the port for it does not exist (yet)."""
    if tenant.network == "vlan":
        n = ofports.get(host.uplink_port) if host.uplink_port else None
        return None if n is None else ("vlan", n)
    n = ofports.get(TUNNEL_PORT[tenant.network])
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


def remote_ports(state, host, tenant, remotes):
    by_name = {h.name: h for h in remotes}
    return [(p, by_name[p.host]) for p in state.ports_of(tenant.name) if p.host in by_name]


def classify_from_network(tenant, egress, owner):
    """Traffic of the tenant arriving from other hosts: tag or tunnel key -> tenant."""
    kind, n = egress
    meta = metadata_for(tenant.id, from_net=True)
    if kind == "vlan":
        return [flow(Table.CLASSIFY, Prio.ALLOW,
                     {"in_port": n, "vlan_vid": OFPVID_PRESENT | tenant.segment},
                     actions=[("pop_vlan",)], metadata=meta, goto=Table.L2, **owner)]
    return [flow(Table.CLASSIFY, Prio.ALLOW, {"in_port": n, "tunnel_id": tenant.segment},
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
    return flow(Table.L2, Prio.ALLOW,
                {"metadata": metadata_for(tenant.id), "eth_dst": port.mac},
                actions=encap(tenant, egress, remote_host),
                kind=CookieKind.REMOTE, owner=port.serial)


def arp_responder(state, tenant):
    """Answer ARP requests from local ports for every IP of the tenant, in place."""
    out = []
    for port in state.ports_of(tenant.name):
        out.append(flow(
            Table.ARP, Prio.RESPOND,
            {"metadata": metadata_for(tenant.id), "eth_type": ETH_TYPE_ARP,
             "arp_op": ARP_REQUEST, "arp_tpa": port.ip},
            actions=[("move", "eth_src", "eth_dst"), ("set_field", "eth_src", port.mac),
                     ("set_field", "arp_op", ARP_REPLY), ("move", "arp_sha", "arp_tha"),
                     ("move", "arp_spa", "arp_tpa"), ("set_field", "arp_sha", port.mac),
                     ("set_field", "arp_spa", port.ip), ("output", "in_port")],
            kind=CookieKind.ARP, owner=port.serial))
    return out


def to_flood_table(tenant, owner):
    """Group-addressed frames flood from anywhere; unknown unicast floods only
    from local ports (from the network it is someone else's or nobody's)."""
    return [
        flow(Table.L2, Prio.MULTICAST,
             {"metadata": (metadata_for(tenant.id), TENANT_MASK), "eth_dst": MULTICAST_BIT},
             goto=Table.FLOOD, **owner),
        flow(Table.L2, Prio.FLOOD, {"metadata": metadata_for(tenant.id)},
             goto=Table.FLOOD, **owner),
    ]


def flood(tenant, local_ofports, open_ofports, egress, remotes, owner):
    """Head-end replication: every local port of the tenant, plus one copy per
    remote host that has the tenant (VLAN: one tagged copy on the uplink).
    IP floods (broadcast, multicast, unknown unicast) skip ports with security
    groups, as an AWS VPC carries no broadcast; ARP floods reach everyone."""
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
        flow(Table.FLOOD, Prio.ALLOW, {"metadata": metadata_for(tenant.id)},
             actions=locals_ + to_net, **owner),
        flow(Table.FLOOD, Prio.ALLOW, {"metadata": metadata_for(tenant.id, from_net=True)},
             actions=locals_, **owner),
    ]
    if open_ != locals_:
        ip = {"eth_type": ETH_TYPE_IP}
        out += [
            flow(Table.FLOOD, Prio.FLOOD_IP, {"metadata": metadata_for(tenant.id), **ip},
                 actions=open_ + to_net, **owner),
            flow(Table.FLOOD, Prio.FLOOD_IP,
                 {"metadata": metadata_for(tenant.id, from_net=True), **ip},
                 actions=open_, **owner),
        ]
    return out
