"""A synthetic, deterministic model for the scale and flow-count benchmarks.

``Scenario(hosts=H, ports_per_host=P, tenants=T, tenants_per_host=K)``:

* hosts ``s000..``, dpid ``0x5ca1e00000000000 + i + 1``, uplink ``patch-phy``,
  tunnel IP ``198.18.x.y``; each host's bridge has ports ``p00..`` (ofport
  1..P), ``patch-phy`` (ofport 60000), ``vxlan0`` (60001) and ``gre0`` (60002)
  -- the names a real host-joined bridge has;
* tenants ``t000..``: network vlan / vxlan / gre by index mod 3, one subnet
  ``10.0.0.0/16`` each (tenants may reuse CIDRs), default security group;
* slot ``s`` of host ``h`` belongs to tenant ``(h + (s mod K) * (T // K)) mod T``:
  every host has K tenants with P/K ports each, and every tenant is on
  H*K/T hosts (100 x 50, T=100, K=10: 10 tenants per host, each tenant on
  10 hosts with 5 ports each, 50 ports a tenant).

Hosts, tenants and subnets go through the real ``VpcService`` (validation,
IPAM, default security groups) over an in-memory store; ports are written as
the records ``create_port`` would write (IP, MAC and serial chosen here,
deterministically, instead of by 5,000 scans of IPAM: same records, much
faster).  ``ops()`` is the whole state as store ops; ``write_store(dir)``
puts them into a ``controller.store.msgpack_store.MsgpackStore`` snapshot the controller
loads at start.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from controller.model.state import Port, State, record  # noqa: E402
from controller.store.base import Store# noqa: E402
from controller.model.ops import apply_ops# noqa: E402
from controller.store.msgpack_store import MsgpackStore# noqa: E402

DPID_BASE = 0x5CA1E000_00000000
UPLINK, UPLINK_OFPORT = "patch-phy", 60000
TUNNELS = {"vxlan0": 60001, "gre0": 60002}
NETWORKS = ("vlan", "vxlan", "gre")
CIDR = "10.0.0.0/16"


class MemStore(Store):
    """Collects ops in memory (the service's commits, without fsync)."""

    def __init__(self):
        self.collections = {}
        self.ops = []

    def load(self):
        return self.collections

    def commit(self, ops):
        ops = [list(op) for op in ops]
        self.ops += ops
        apply_ops(self.collections, ops)


class Scenario:
    def __init__(self, hosts, ports_per_host, tenants, tenants_per_host):
        if tenants % tenants_per_host or tenants_per_host > ports_per_host:
            raise ValueError("tenants must be a multiple of tenants_per_host, "
                             "and tenants_per_host <= ports_per_host")
        if ports_per_host > 999:
            raise ValueError("at most 999 ports per host")
        self.hosts, self.ppp = hosts, ports_per_host
        self.tenants, self.tph = tenants, tenants_per_host
        self._state = None
        self._ops = None

    # --- names -------------------------------------------------------------------
    def host_name(self, h):
        return f"s{h:03d}"

    def dpid(self, h):
        return DPID_BASE + h + 1

    def tunnel_ip(self, h):
        return f"198.18.{h // 250}.{h % 250 + 1}"

    def tenant_name(self, t):
        return f"t{t:03d}"

    def port_name(self, s):
        return f"p{s:02d}" if self.ppp <= 100 else f"p{s:03d}"

    def tenant_of(self, h, s):
        return (h + (s % self.tph) * (self.tenants // self.tph)) % self.tenants

    def ofports(self, h=None):
        """{name: ofport} of a host's bridge (the same on every host)."""
        out = {self.port_name(s): s + 1 for s in range(self.ppp)}
        out[UPLINK] = UPLINK_OFPORT
        out.update(TUNNELS)
        return out

    # --- the model -------------------------------------------------------------------
    def ops(self):
        if self._ops is None:
            self._build()
        return self._ops

    def state(self):
        if self._state is None:
            self._build()
        return self._state

    def _build(self):
        from controller.service.vpc import VpcService
        store = MemStore()
        state = State()
        svc = VpcService(state, store)
        for h in range(self.hosts):
            svc.create_host({"name": self.host_name(h), "dpid": self.dpid(h),
                             "tunnel_ip": self.tunnel_ip(h), "uplink_port": UPLINK})
        for t in range(self.tenants):
            name = self.tenant_name(t)
            svc.create_tenant({"name": name, "network": NETWORKS[t % 3]})
            svc.create_subnet(name, {"cidr": CIDR})
        next_ip = {}
        ops = []
        serial = 0
        for h in range(self.hosts):
            for s in range(self.ppp):
                t = self.tenant_of(h, s)
                serial += 1
                k = next_ip.get(t, 2)          # .1 is the gateway
                next_ip[t] = k + 1
                ip = f"10.0.{k // 256}.{k % 256}"
                mac = "02:5c:%02x:%02x:%02x:%02x" % ((serial >> 24) & 255, (serial >> 16) & 255,
                                                     (serial >> 8) & 255, serial & 255)
                port = Port(f"{serial:012x}", self.tenant_name(t), self.host_name(h),
                            self.port_name(s), ip, mac, CIDR, serial)
                ops.append(["put", "ports", port.id, record(port)])
        store.commit(ops)
        state.apply(ops)
        self._ops = store.ops
        self._state = state

    def write_store(self, directory):
        """The whole state as one journal record, then compacted into the
        snapshot: what the controller finds at start."""
        store = MsgpackStore(directory)
        try:
            store.load()
            store.commit(self.ops())
            store.compact()
        finally:
            store.close()

    # --- what the compiler makes of it ------------------------------------------------
    def topo(self, connected=None):
        """The compiler's TopoView: every host bridge connected with the
        scenario's port numbers (or only ``connected`` dpids)."""
        from topology.graph import TopoView
        spec = {}
        for h in range(self.hosts):
            d = self.dpid(h)
            spec[d] = {"connected": connected is None or d in connected,
                       "ports": self.ofports(h)}
        return TopoView.build(spec)

    def compiled_counts(self, state=None, topo=None):
        """{dpid: number of flows compile_datapath gives it}."""
        from controller.compile.datapath import compile_datapath
        state = state or self.state()
        topo = topo or self.topo()
        return {self.dpid(h): len(compile_datapath(state, topo, self.dpid(h)))
                for h in range(self.hosts)}


def formula(state, host_name):
    """docs/pipeline.md "Flow count" for one host, no NAT, no extra SG rules
    (a tenant with IPv6 has the default group's ::/0 twin):
    20 + 11P + 4N + 16T + 3S + R + 21P6 + 6N6 + 18T6 + 4S6.
    Returns (flows, {P, T, N, R, S, P6, N6, T6, S6})."""
    local = [p for p in state.ports.values() if p.host == host_name]
    tenants = {p.tenant for p in local}
    ports = [p for p in state.ports.values() if p.tenant in tenants]
    subnets = [sn for sn in state.subnets.values() if sn.tenant in tenants]
    v6 = {sn.tenant for sn in subnets if ":" in sn.cidr}
    terms = {"P": len(local), "T": len(tenants), "N": len(ports), "R": len(ports) - len(local),
             "S": sum(1 for sn in subnets if ":" not in sn.cidr),
             "P6": sum(1 for p in local if getattr(p, "ip6", None)),
             "N6": sum(1 for p in ports if getattr(p, "ip6", None)),
             "T6": len(v6), "S6": sum(1 for sn in subnets if ":" in sn.cidr)}
    flows = (20 + 11 * terms["P"] + 4 * terms["N"] + 16 * terms["T"] + 3 * terms["S"]
             + terms["R"] + 21 * terms["P6"] + 6 * terms["N6"] + 18 * terms["T6"]
             + 4 * terms["S6"])
    return flows, terms
