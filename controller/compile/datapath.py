"""The flow compiler: (model State, TopoView, dpid) -> the flows that datapath must hold.

Pure and deterministic: no I/O, no clock, no randomness, no os-ken.  This
module decides what kind of datapath it is compiling for and puts the parts
together; each part has its module, along the data path:

  pipeline.py   the tables, their next tables and misses, bands, registers
  host.py       a host's switching: its ports in, L2, ARP answers, flooding
  secgroups.py  port security groups, in conntrack
  nat.py        the distributed router and NAT
  fabric.py     fabric switches (VLAN tenants between hosts)

docs/pipeline.md walks the same tables.
"""
from controller.compile.fabric import fabric_flows
from controller.compile.flows import check_unique_keys, miss_flows
from controller.compile.host import local_port_flows, tenant_flows
from controller.compile.nat import HostNat, external_flows, router_flows, tenant_nat_flows
from controller.compile.pipeline import HOST_PIPELINE, CookieKind
from controller.compile.secgroups import tenant_sg_flows


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
    host.remote_hosts), so those are the hosts sharing a VXLAN/GRE tenant that
    has a port on `dpid`'s host.  Recompiling every switch whenever one
    connects made a cold start of N switches cost N^2 compiles."""
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


def base_flows():
    """What every table of a host does with a packet no specific flow claims:
    the misses pipeline.HOST_PIPELINE declares, one per table."""
    return miss_flows(HOST_PIPELINE, CookieKind.BASE)


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
