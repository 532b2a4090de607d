"""Several switches and the wires between them: fabrics, links, tunnels."""
from collections import deque, namedtuple
from dataclasses import dataclass

from controller.compile.flows import CONTROLLER
from controller.flowsim.fields import PIPELINE_ONLY, SimError
from controller.flowsim.switch import Simulator


# --- several switches -------------------------------------------------------------
Delivery = namedtuple("Delivery", "switch port packet")
PacketIn = namedtuple("PacketIn", "switch packet")
Hop = namedtuple("Hop", "switch in_port result")
Lost = namedtuple("Lost", "switch port packet reason")
TUNNEL_ID_BITS = {"vxlan": 24, "gre": 32}   # what the wire can carry of tunnel_id


@dataclass
class _Switch:
    sim: Simulator
    tunnel_ip: str = None
    tunnel_ports: dict = None    # ofport -> "vxlan" | "gre"


class Network:
    """Switches, the wires between them, and the hosts at their other ports.

    * a fabric joins (switch, port) endpoints like a dumb hub: a frame out of
      one endpoint reaches every other endpoint of that fabric (a link is a
      fabric of two);
    * a frame out of a switch's tunnel port reaches the switch whose tunnel_ip
      is its tun_ipv4_dst, on that switch's tunnel port, with tunnel_id (cut
      to what VXLAN/GRE carry) and tun_ipv4_src/dst set;
    * a frame output to "controller" is a packet-in (self.packet_ins);
    * a frame out of any other port is delivered to a host.

    Crossing a wire drops per-switch state (metadata, registers, tunnel
    fields) as the real thing does; deliveries carry only wire fields.
    """

    def __init__(self, max_hops=256):
        self.switches = {}
        self.fabric_of = {}   # (switch, port) -> fabric name
        self.fabrics = {}     # fabric name -> [(switch, port)]
        self.max_hops = max_hops
        self.hops, self.lost, self.packet_ins = [], [], []

    def conntrack(self, switch):
        """Entries of a switch's connection table (Conntrack.entries)."""
        return self.switches[switch].sim.conntrack

    def add_switch(self, name, flows, tunnel_ip=None, tunnel_port=None, tunnel_type="vxlan",
                   tunnel_ports=None):
        """`tunnel_ports` ({ofport: "vxlan"|"gre"}) gives a switch several
        tunnel ports, as a host with one VXLAN and one GRE port has; a frame
        leaving one arrives on the peer's port of the same type."""
        if name in self.switches:
            raise SimError(f"switch {name!r} added twice")
        tunnel_ports = dict(tunnel_ports or {})
        if tunnel_port is not None:
            tunnel_ports[tunnel_port] = tunnel_type
        if (tunnel_ip is None) != (not tunnel_ports) or \
                any(t not in TUNNEL_ID_BITS for t in tunnel_ports.values()):
            raise SimError("a tunnel needs tunnel_ip, tunnel port(s) and a known tunnel_type")
        if tunnel_ip is not None and any(s.tunnel_ip == tunnel_ip for s in self.switches.values()):
            raise SimError(f"tunnel ip {tunnel_ip} used twice")
        sim = flows if isinstance(flows, Simulator) else Simulator(flows, name=name)
        self.switches[name] = _Switch(sim, tunnel_ip, tunnel_ports)
        return sim

    def add_fabric(self, name, *endpoints):
        """Attach (switch, port) endpoints to fabric `name` (created on first use)."""
        for ep in endpoints:
            sw, port = ep
            if sw not in self.switches:
                raise SimError(f"unknown switch {sw!r}")
            if ep in self.fabric_of or port in (self.switches[sw].tunnel_ports or {}):
                raise SimError(f"{ep} is already wired")
            self.fabric_of[ep] = name
            self.fabrics.setdefault(name, []).append(ep)

    def add_link(self, a, b):
        self.add_fabric(f"link:{a[0]}.{a[1]}-{b[0]}.{b[1]}", a, b)

    @staticmethod
    def _wire(packet):
        return {k: v for k, v in packet.items() if k not in PIPELINE_ONLY}

    def _by_ip(self, ip):
        return next((n for n, s in self.switches.items() if s.tunnel_ip == ip), None)

    def inject(self, switch, in_port, packet):
        """Send `packet` into `switch` on `in_port`; follow every copy to its
        end.  Returns the host deliveries; hops and lost frames are kept in
        self.hops / self.lost.  Raises SimError on a forwarding loop."""
        self.hops, self.lost, self.packet_ins = [], [], []
        deliveries = []
        queue = deque([(switch, in_port, dict(packet), frozenset(), 0)])
        while queue:
            sw, port, pkt, ancestors, depth = queue.popleft()
            state = (sw, port, tuple(sorted(pkt.items())))
            if state in ancestors or len(self.hops) >= self.max_hops:
                raise SimError(f"forwarding loop at {sw} port {port}:\n{self.format_trace()}")
            ancestors = ancestors | {state}
            node = self.switches[sw]
            res = node.sim.run(pkt, in_port=port, depth=depth)
            self.hops.append(Hop(sw, port, res))
            for out_port, out in res.outputs:
                ep = (sw, out_port)
                if out_port == CONTROLLER:
                    self.packet_ins.append(PacketIn(sw, dict(out)))
                elif ep in self.fabric_of:
                    for peer in self.fabrics[self.fabric_of[ep]]:
                        if peer != ep:
                            queue.append((*peer, self._wire(out), ancestors, 0))
                elif out_port in (node.tunnel_ports or {}):
                    kind = node.tunnel_ports[out_port]
                    dst = out.get("tun_ipv4_dst")
                    peer = self._by_ip(dst)
                    peer_port = next((n for n, t in (self.switches[peer].tunnel_ports or {}).items()
                                      if t == kind), None) if peer else None
                    if peer is None or peer == sw or peer_port is None:
                        self.lost.append(Lost(sw, out_port, out, f"no {kind} endpoint {dst}"))
                        continue
                    inner = self._wire(out)
                    bits = TUNNEL_ID_BITS[kind]
                    inner.update(tunnel_id=out.get("tunnel_id", 0) & ((1 << bits) - 1),
                                 tun_ipv4_src=node.tunnel_ip, tun_ipv4_dst=dst)
                    queue.append((peer, peer_port, inner, ancestors, 1))
                else:
                    deliveries.append(Delivery(sw, out_port, self._wire(out)))
        return deliveries

    def format_trace(self):
        return "\n".join(f"== {h.switch} in_port {h.in_port}\n{h.result.format_trace()}"
                         for h in self.hops)
