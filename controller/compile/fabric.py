"""Flows of a fabric switch: VLAN tenants between hosts, on shortest paths,
broadcast on one loop-free tree.

Pure: (model State, TopoView with links, dpid) -> flows, like the rest of the
compiler.  A fabric switch is a connected datapath that is not a registered
host's bridge; topology/fabric.py turns the switches, hosts and LLDP links
into paths and a flood tree.  Hosts do not change: they still send a VLAN
tenant's frames tagged on their uplink (one copy for a flood) and pop the
tag on the way in.  Everything here is in one table (FabricTable.FORWARD, 0;
its bands are Prio.FABRIC):

  LLDP 1000          eth_type 0x88cc -> controller (link discovery), through
                     meter MeterId.LLDP (meters.py)
  STANDBY_DROP 200   in_port = a host's standby attachment -> drop
  PATH 100           vlan + eth_dst of a port of the tenant -> the port towards
                     its host on a shortest path; only on switches that lie on
                     the path from some other host of the tenant to it
  TREE_FLOOD 50      in_port + vlan + group-addressed eth_dst -> the other
                     ports of the tenant's part of the flood tree at this
                     switch (tree links + attachments of hosts with the
                     tenant); only for ports of that part, so a frame that
                     arrives anywhere else is dropped, never flooded
  MISS 0             drop (pipeline.FABRIC_PIPELINE declares it)

Unknown unicast is dropped, not flooded: the controller knows every MAC of a
VLAN tenant (ports are created through the API before they send), so every
unicast the hosts put on the fabric has a path flow, and a host drops
unknown unicast that comes from the network anyway.  This also keeps a
change of paths and a change of the tree independent: a unicast frame never
falls back to the tree (see FabricRuntime's two-phase update).
"""
from controller.compile.flows import CONTROLLER, flow, miss_flows
from controller.compile.meters import MeterId
from controller.compile.pipeline import (
    FABRIC_PIPELINE, MULTICAST_BIT, OFPVID_PRESENT, CookieKind, FabricTable, Prio)
from topology.lldp import ETH_TYPE_LLDP

FORWARD = FabricTable.FORWARD


def fabric_flows(state, topo, dpid):
    fab = topo.fabric(h.dpid for h in state.hosts.values())
    out = fabric_base_flows()
    out += standby_drops(fab, dpid)
    tenants = sorted((t for t in state.tenants.values() if t.network == "vlan"),
                     key=lambda t: t.id)
    for tenant in tenants:
        out += tenant_fabric_flows(state, fab, tenant, dpid)
    return out


def fabric_base_flows():
    return [flow(FORWARD, Prio.FABRIC.LLDP, {"eth_type": ETH_TYPE_LLDP},
                 actions=[("output", CONTROLLER)], meter=MeterId.LLDP,
                 kind=CookieKind.FABRIC, owner=0),
            *miss_flows(FABRIC_PIPELINE, CookieKind.FABRIC)]


def standby_drops(fab, dpid):
    """A host linked to several fabric ports is reached through one; what
    it sends into the others (its NIC bridge may flood there) is dropped."""
    return [flow(FORWARD, Prio.FABRIC.STANDBY_DROP, {"in_port": port},
                 kind=CookieKind.FABRIC, owner=0)
            for sw, port in fab.standby if sw == dpid]


def attached_hosts(state, fab, tenant):
    """[(host, (switch, port))] of hosts with a port of the tenant whose
    uplink the fabric has found, by host name."""
    names = sorted({p.host for p in state.ports_of(tenant.name)})
    hosts = [state.hosts[n] for n in names if n in state.hosts]
    return [(h, fab.attachments[h.dpid]) for h in hosts if h.dpid in fab.attachments]


def tenant_fabric_flows(state, fab, tenant, dpid):
    attached = attached_hosts(state, fab, tenant)
    if len(attached) < 2:
        return []     # nothing of this tenant crosses the fabric
    owner = dict(kind=CookieKind.FABRIC, owner=tenant.id)
    vid = OFPVID_PRESENT | tenant.segment
    return (unicast_flows(state, fab, tenant, dpid, attached, vid, owner)
            + flood_flows(fab, dpid, attached, vid, owner))


def unicast_flows(state, fab, tenant, dpid, attached, vid, owner):
    out = []
    where = {h.name: ep for h, ep in attached}
    for host, (dst_sw, dst_port) in attached:
        on_path = set()
        for other, (src_sw, _) in attached:
            if other.name != host.name:
                on_path |= set(fab.path(src_sw, dst_sw) or ())
        if dpid not in on_path:
            continue
        port = dst_port if dpid == dst_sw else fab.port_to(dpid, fab.next_hop(dpid, dst_sw))
        for p in state.ports_of(tenant.name):
            if p.host == host.name and where.get(p.host):
                out.append(flow(FORWARD, Prio.FABRIC.PATH, {"vlan_vid": vid, "eth_dst": p.mac},
                                actions=[("output", port)], **owner))
    return out


def flood_ports(fab, dpid, attached):
    """This switch's ports in the tenant's part of the tree, or []."""
    sub = fab.subtree({sw for _, (sw, _) in attached})
    if dpid not in sub:
        return []
    ports = {fab.port_to(dpid, n) for n in sub[dpid]}
    ports |= {port for _, (sw, port) in attached if sw == dpid}
    return sorted(ports)


def flood_flows(fab, dpid, attached, vid, owner):
    ports = flood_ports(fab, dpid, attached)
    out = []
    for in_port in ports:
        outs = [("output", p) for p in ports if p != in_port]
        if outs:
            out.append(flow(FORWARD, Prio.FABRIC.TREE_FLOOD,
                            {"in_port": in_port, "vlan_vid": vid, "eth_dst": MULTICAST_BIT},
                            actions=outs, **owner))
    return out
