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
import functools
from dataclasses import dataclass

from controller.compile.fabric import fabric_flows
from controller.compile.flows import check_unique_keys, miss_flows
from controller.compile.host import (local_port_flows, remote_egress, remote_hosts,
                                    tenant_host_flows, tenant_shared_flows)
from controller.compile.nat import HostNat, external_flows, router_flows, tenant_nat_flows
from controller.compile.pipeline import HOST_PIPELINE, SERVICE_PORT, CookieKind
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
    for chunk in host_chunks(state, topo, host):
        yield chunk.build()


@dataclass(frozen=True)
class Chunk:
    """One piece of a host's flows and what it is computed from.

    slot   what the piece is: ("port", port id), ("tenant", name), ("external",)
    key    every input its flows are computed from (None when not asked for):
           equal keys give equal flows, which is what lets the incremental
           compiler (compile/incremental.py) keep a piece whose key did not
           change.  Model records are immutable and replaced on change, so
           comparing keys is mostly comparing identities.
    build  () -> [Flow]"""
    slot: tuple
    key: object
    build: object


def host_chunks(state, topo, host, memo=None):
    """The pieces of a host's flow set: one per local port, one per tenant
    with a local port, the external port's.  Without `memo` (the full
    compile) keys are not computed and every piece is built from scratch;
    with one (incremental.IncrementalCompiler) keys are computed and the
    pieces every host of a tenant shares are built once."""
    ofports = topo.ports(host.dpid)
    local = [(p, ofports[p.port]) for p in state.ports_on(host.name) if p.port in ofports]
    nat = HostNat(state, topo, host, local)
    keyed = memo is not None
    service = ofports.get(SERVICE_PORT)
    for port, ofport in local:
        tenant = state.tenants[port.tenant]
        key = (tenant.id, port, ofport, state.group_bits(port), service) if keyed else None
        yield Chunk(("port", port.id), key,
                    functools.partial(local_port_flows, state, tenant, port, ofport, service))
    tenants = sorted((state.tenants[n] for n in {p.tenant for p, _ in local}),
                     key=lambda t: t.id)
    for tenant in tenants:
        mine = [(p, n) for p, n in local if p.tenant == tenant.name]
        egress = remote_egress(tenant, host, ofports)
        remotes = remote_hosts(state, topo, host, tenant)
        nat_here = nat.does_nat_for(tenant)
        secured = any(p.port_security for p, _ in mine)
        key = None
        if keyed:
            key = (memo.tenant_inputs(state, tenant), host, egress, tuple(remotes),
                   tuple(mine), secured, nat_here,
                   tuple(nat.fips.get(tenant.name, ())) if nat_here else ())
        yield Chunk(("tenant", tenant.name), key,
                    functools.partial(_tenant_chunk, state, tenant, mine, egress, remotes,
                                      secured, nat, nat_here, memo))
    key = None
    if keyed:
        key = (False,)
        if nat.enabled:
            key = (True, host, nat.ext_ofport, nat.ext_mac, nat.gw_mac,
                   tuple((t, tuple(nat.forwards.get(t.name, ())), tuple(nat.fips.get(t.name, ())))
                         for t in tenants))
    yield Chunk(("external",), key, functools.partial(external_flows, state, nat, tenants))


def _tenant_chunk(state, tenant, mine, egress, remotes, secured, nat, nat_here, memo):
    """One tenant's flows on one host.  The pieces that read only the tenant
    and its ports come from `memo` (built once for all the tenant's hosts)
    when there is one."""
    def shared(piece, build):
        if memo is None:
            return build()
        return memo.shared(state, tenant, piece, build)

    out = tenant_host_flows(state, tenant, mine, egress, remotes, memo)
    out += shared("tenant", lambda: tenant_shared_flows(state, tenant))
    if secured:
        out += shared("secgroups", lambda: tenant_sg_flows(state, tenant))
    out += shared(("router", nat_here), lambda: router_flows(state, tenant, nat_here))
    if nat_here:
        out += tenant_nat_flows(tenant, nat, mine)
    return out
