"""A World whose hosts hang off OpenFlow fabric switches (leaf-spine and friends)."""
from controller.compile.datapath import compile_datapath
from controller.flowsim import Network
from topology.graph import TopoView
from tests.support.worlds import UPLINK, World


BROADCAST = "ff:ff:ff:ff:ff:ff"


FABRIC_BASE = 100          # fabric switch dpids: 101, 102, ...


class FabricWorld:
    """World's model and hosts, but their uplinks go to fabric switches:
    fabric = {switch: [neighbour switches]} (indexes 1..), attach = {host:
    switch or [switches]}.  Fabric switch s has dpid FABRIC_BASE + s; its
    port towards switch t is t, towards host i is 100 + i."""

    def __init__(self, switches, attach, tenants, ports, down=(), flows=None):
        self.w = World(hosts=len(attach), tenants=tenants, ports=ports)
        self.state = self.w.state
        spec = {d: {"connected": self.w.topo.connected(d), "ports": dict(self.w.topo.ports(d))}
                for d in self.w.topo.dpids()}
        links = set()
        for s, nbrs in switches.items():
            for t in nbrs:
                if frozenset((s, t)) not in {frozenset(x) for x in down}:
                    a, b = sorted((s, t))
                    links.add((FABRIC_BASE + a, b, FABRIC_BASE + b, a))
        for h, sws in attach.items():
            for s in ([sws] if isinstance(sws, int) else sws):
                links.add((h, UPLINK, FABRIC_BASE + s, 100 + h))
        for s, nbrs in switches.items():
            ports = {f"s{t}": t for t in nbrs}
            ports.update({f"h{h}": 100 + h for h, sws in attach.items()
                          if s in ([sws] if isinstance(sws, int) else sws)})
            spec[FABRIC_BASE + s] = {"ports": ports}
        self.links = sorted(links)
        self.topo = TopoView.build(spec, self.links)
        self.names = {d: (f"h{d}" if d < FABRIC_BASE else f"s{d - FABRIC_BASE}") for d in spec}
        self.flows = flows or {d: compile_datapath(self.state, self.topo, d) for d in spec}
        self.wire(switches, attach)

    def wire(self, switches, attach, flows=None):
        self.net = Network()
        for d, name in sorted(self.names.items()):
            self.net.add_switch(name, (flows or self.flows)[d])
        for s, nbrs in switches.items():
            for t in nbrs:
                if s < t:
                    self.net.add_link((f"s{s}", t), (f"s{t}", s))
        for h, sws in attach.items():
            for s in ([sws] if isinstance(sws, int) else sws):
                # only the first switch is cabled in the simulator: a host NIC is
                # one wire; extra attachments are exercised by the compiler tests
                self.net.add_link((f"h{h}", UPLINK), (f"s{s}", 100 + h))
                break

    def send(self, pid, **headers):
        p = self.state.ports[pid]
        host, n = self.w.ofport[pid]
        got = self.net.inject(host, n, {"eth_src": p.mac, **headers})
        where = {loc: pid for pid, loc in self.w.ofport.items()}
        return [(where.get((d.switch, d.port), (d.switch, d.port)), d.packet) for d in got]

    def broadcast(self, pid):
        """An ARP request for an address nobody has: flooded to the tenant."""
        p = self.state.ports[pid]
        return self.send(pid, eth_dst=BROADCAST, eth_type=0x0806, arp_op=1, arp_spa=p.ip,
                         arp_sha=p.mac, arp_tpa="10.0.0.250", arp_tha="00:00:00:00:00:00")

    def unicast(self, src, dst):
        p, q = self.state.ports[src], self.state.ports[dst]
        return self.send(src, eth_dst=q.mac, eth_type=0x0800, ipv4_src=p.ip,
                         ipv4_dst=q.ip, ip_proto=1, icmpv4_type=8, icmpv4_code=0, icmp_id=1)
