"""Run one made-up packet through the desired flows of every host it crosses.

The hosts are the sender's and the destination port's: each gets the flow
set the compiler wants on its bridge (compile_datapath, the same function the
reconciler's flows come from), compiled when the packet first gets there, and
flowsim wires them as the network does: VXLAN/GRE ports by tunnel IP, the uplinks on one VLAN fabric
(taken as delivering a tagged frame to every other uplink, as the lab's
and a plain L2 fabric do; fabric switches' own flows are not simulated).
A host whose bridge is not connected holds no flows: it is left out, and a
packet sent towards it is "lost" on the way.

The container is modelled as Linux behaves: it ARPs for the destination
(same subnet) or for its gateway (any other address), and sends the IP
packet to the MAC the answer gave.  Conntrack starts empty, so the packet is
the first of a new connection (what `ofproto/trace` assumes by default).
"""
import functools
import ipaddress
import time

from controller.compile.datapath import compile_datapath
from controller.compile.pipeline import (ARP_REPLY, ARP_REQUEST, ETH_TYPE_ARP, ETH_TYPE_IP,
                                         ICMP_ECHO_REQUEST, IP_PROTO, TUNNEL_PORTS)
from controller.flowsim import Conntrack, FlowTable, Network, SimError, Simulator
from controller.model.state import subnet_key
from controller.trace import explain
from controller.trace.request import parse

BROADCAST = "ff:ff:ff:ff:ff:ff"
ICMP_ID = 0x7ace


class LazySwitch(Simulator):
    """A host's switch whose flows are compiled when a packet first gets there:
    compiling is most of a trace's cost, and the packet visits one or two hosts."""

    def __init__(self, build, name):          # noqa: super().__init__ would compile now
        self._build, self._table = build, None
        self.name, self.last, self.ct = name, None, Conntrack()
        self.flow_count = 0

    @property
    def table(self):
        if self._table is None:
            flows = self._build()
            self.flow_count = len(flows)
            self._table = FlowTable.from_flows(flows)
        return self._table


class Wiring:
    """The simulated network of a trace and how to name its parts.

    The hosts are the sender's and the destination port's: a unicast packet
    goes nowhere else (a flood's copies to other hosts, which no port there
    takes, are not followed)."""

    def __init__(self, state, topo, tenant, src, dst_port=None):
        self.state, self.topo, self.tenant = state, topo, tenant
        self.net = Network()
        self.hosts = {}          # name -> Host, for the hosts in the network
        self.port_names = {}     # host -> {ofport: OVS port name}
        self.by_location = {}    # (host, ofport) -> model Port
        self.by_tunnel_ip = {}
        uplinks = []
        names = {src.host} | ({dst_port.host} if dst_port is not None else set())
        for name in sorted(names):
            host = state.hosts.get(name)
            if host is None or not topo.connected(host.dpid):
                continue
            ofports = dict(topo.ports(host.dpid))
            sim = LazySwitch(functools.partial(compile_datapath, state, topo, host.dpid), name)
            tunnels = {ofports[n]: kind for kind, n in TUNNEL_PORTS.items() if n in ofports}
            self.net.add_switch(name, sim, tunnel_ip=host.tunnel_ip if tunnels else None,
                                tunnel_ports=tunnels)
            self.hosts[name] = host
            self.by_tunnel_ip[host.tunnel_ip] = name
            self.port_names[name] = {n: pname for pname, n in ofports.items()}
            if host.uplink_port in ofports:
                uplinks.append((name, ofports[host.uplink_port]))
            for p in state.ports_on(name):
                if p.port in ofports:
                    self.by_location[(name, ofports[p.port])] = p
        if uplinks:
            self.net.add_fabric("uplinks", *uplinks)

    @property
    def flow_count(self):
        """Flows compiled for this trace (the hosts the packet reached)."""
        return sum(s.sim.flow_count for s in self.net.switches.values())

    def really_lost(self, lost):
        """Frames sent to a tunnel endpoint that is no connected host (the
        other hosts were left out of the trace on purpose)."""
        live = {h.tunnel_ip for h in self.state.hosts.values() if self.topo.connected(h.dpid)}
        return [x for x in lost if x.packet.get("tun_ipv4_dst") not in live]

    def compiled(self):
        return sorted(n for n, s in self.net.switches.items() if s.sim.flow_count)

    def ofport(self, port):
        """The port's OpenFlow number on its host, None when it has no OVS port
        there (or its host is not connected)."""
        if port.host not in self.hosts:
            return None
        return self.topo.ports(self.hosts[port.host].dpid).get(port.port)


def _next_hop(state, req):
    """The address the container ARPs for: the destination in its own subnet,
    else its subnet's gateway."""
    subnet = state.subnets.get(subnet_key(req.tenant.name, req.src.subnet))
    if subnet is None or ipaddress.IPv4Address(req.dst_ip) in subnet.net:
        return req.dst_ip, None
    return subnet.gateway, subnet


def arp_packet(req, target):
    # The container ARPs from its own addresses even when it spoofs its IP packets.
    return {"eth_src": req.src.mac, "eth_dst": BROADCAST, "eth_type": ETH_TYPE_ARP,
            "arp_op": ARP_REQUEST, "arp_spa": req.src.ip, "arp_sha": req.src.mac,
            "arp_tpa": target, "arp_tha": "00:00:00:00:00:00"}


def ip_packet(req, eth_dst):
    pkt = {"eth_src": req.src.mac, "eth_dst": eth_dst, "eth_type": ETH_TYPE_IP,
           "ipv4_src": req.src_ip, "ipv4_dst": req.dst_ip, "ip_proto": IP_PROTO[req.proto],
           "ip_ttl": 64}
    if req.proto == "icmp":
        pkt.update(icmpv4_type=ICMP_ECHO_REQUEST, icmpv4_code=0, icmp_id=ICMP_ID)
    else:
        pkt.update({f"{req.proto}_src": req.sport, f"{req.proto}_dst": req.dport})
    return pkt


def _arp(wiring, req, in_port, target):
    """Resolve `target` as the container would: (mac or None, the hop)."""
    deliveries = wiring.net.inject(req.src.host, in_port, arp_packet(req, target))
    hop = wiring.net.hops[0]
    for d in deliveries:
        if (d.switch, d.port) == (req.src.host, in_port) and \
                d.packet.get("arp_op") == ARP_REPLY and d.packet.get("arp_spa") == target:
            return d.packet["arp_sha"], hop
    return None, hop


NO_LIVE = ("this controller cannot reach the switches' ofproto/trace: set VPC_TRACE_APPCTL "
           "(docs/user-guide.md#troubleshooting)")


def trace(state, topo, tenant_name, body, live=None):
    """The answer of POST /v1/tenants/{t}/trace.  `live`: a live.LiveTracer
    (or any callable of the simulated hops), used when the request asks."""
    started = time.perf_counter()
    req = parse(state, tenant_name, body)
    wiring = Wiring(state, topo, req.tenant, req.src, req.dst_port)
    ctx = explain.Context(state, wiring, req)
    out = {"tenant": req.tenant.name, "packet": ctx.packet_view(), "arp": None, "hops": [],
           "verdict": None}
    in_port = wiring.ofport(req.src)
    sim_hops = []
    try:
        if in_port is None:
            out["verdict"] = explain.not_sent(ctx)
        else:
            target, _ = _next_hop(state, req)
            mac, arp_hop = _arp(wiring, req, in_port, target)
            out["arp"] = ctx.arp_view(target, mac, arp_hop)
            sim_hops = [arp_hop]
            if mac is None:
                out["verdict"] = explain.arp_unanswered(ctx, target, arp_hop)
            else:
                deliveries = wiring.net.inject(req.src.host, in_port, ip_packet(req, mac))
                sim_hops = list(wiring.net.hops)
                out["hops"] = [ctx.hop_view(h) for h in sim_hops]
                out["verdict"] = explain.verdict(ctx, wiring.net.hops, deliveries,
                                                 wiring.really_lost(wiring.net.lost))
    except SimError as exc:      # the desired flows do something OVS would refuse
        out["verdict"] = explain.simulator_error(ctx, exc)
    out["path"] = explain.path(ctx, out)
    out["simulated"] = {"hosts": wiring.compiled(), "flows": wiring.flow_count,
                        "ms": round((time.perf_counter() - started) * 1000, 2)}
    if req.live:
        started = time.perf_counter()
        out["live"] = {"available": False, "reason": NO_LIVE} if live is None else live(sim_hops)
        out["live"]["ms"] = round((time.perf_counter() - started) * 1000, 2)
    return req, out
