"""The fabric at run time: LLDP out and in, link liveness, loop-free updates.

apps/vpc.py creates one FabricRuntime and wires switch events to it:
``packet_in`` (LLDP), ``port_status``, ``switch_down``, ``model_changed``, and
spawns ``run`` (the probe timer).  The pure parts live in topology/lldp.py
(frames, LinkTable), topology/fabric.py (paths, tree) and
controller/compile/fabric.py (flows); this module only sends, receives and
decides when to recompile.

Who sends LLDP where
  fabric switch  every port (not LOCAL).  Its flow punts every LLDP frame.
  host bridge    its uplink only (``patch-phy``: through br-phy, which
                 host-join sets to forward-bpdu, to the NIC and the fabric
                 port beyond).  A host punts nothing: its link is learned
                 from the fabric side alone, and host flows stay as they are.
  Nothing goes to containers, tunnels or the external port.

Loop-free updates (two phases) are controller/reconcile/fabric_phases.py:
this module tells it when the fabric changed.
"""
import logging
import time

import eventlet

from controller.reconcile.fabric_phases import TwoPhaseFabric
from topology import lldp

LOG = logging.getLogger(__name__)
OFPP_MAX = 0xFFFFFF00          # port numbers above are reserved (LOCAL, CONTROLLER...)
FALLBACK_MAC = "02:00:00:00:00:01"


def _fmt(link):
    (a, b) = link
    return f"{a.dpid:016x}:{a.port} <-> {b.dpid:016x}:{b.port}"


class FabricRuntime:
    def __init__(self, topology, state, switches, interval=1.0, timeout=3.0,
                 clock=time.monotonic):
        self.topology = topology
        self.state = state
        self.switches = switches       # the registry (controller/runtime/switches.py)
        self.interval = float(interval)
        self.clock = clock
        self.links = lldp.LinkTable(timeout)
        self.phases = TwoPhaseFabric(state, switches, clock=clock)
        self._seen_links = []
        self.stats = {"lldp_sent": 0, "lldp_received": 0}

    # --- who is what ---------------------------------------------------------------
    def is_fabric(self, dpid):
        return self.phases.is_fabric(dpid)

    def fabric_dpids(self):
        return self.phases.fabric_dpids()

    def changed(self):
        """The fabric's flows must change (two phases, in the background)."""
        self.phases.changed()

    def filter(self, dpid, flows):
        """The app's compile hook (see TwoPhaseFabric.filter)."""
        return self.phases.filter(dpid, flows)

    @property
    def _busy(self):
        return self.phases.busy

    def probe_ports(self, dpid):
        """{port name: number} this datapath sends LLDP out of."""
        ports = self.topology.ports(dpid)
        host = self.state.host_by_dpid(dpid)
        if host is not None:
            n = ports.get(host.uplink_port) if host.uplink_port else None
            return {host.uplink_port: n} if n else {}
        return {name: n for name, n in ports.items() if 0 < n < OFPP_MAX}

    def wait_settled(self, dpid, still_here):
        """Before a fabric switch's first reconcile, give LLDP one timeout to
        find its links again: compiled at once, it would look isolated and
        lose every forwarding flow it holds (after a controller restart, or a
        control-channel blip) only to get them back a second later.  Returns
        early when the datapath turns out to be a host's (host-join points
        br-int at the controller just before registering it) or leaves."""
        deadline = time.monotonic() + self.links.timeout
        while time.monotonic() < deadline and still_here() and \
                self.state.host_by_dpid(dpid) is None:
            eventlet.sleep(0.1)

    # --- the timer ----------------------------------------------------------------
    def run(self):
        while True:
            try:
                self.tick()
            except Exception:    # never let the discovery loop die
                LOG.exception("LLDP round failed")
            eventlet.sleep(self.interval)

    def tick(self):
        self.send_probes()
        self._apply(self.links.expire(self.clock()), always=True)

    def send_probes(self):
        view = self.topology.snapshot()
        ttl = int(self.links.timeout) + 1
        for dpid, session in self.switches.items():
            for name, n in sorted(self.probe_ports(dpid).items()):
                mac = view.port_mac(dpid, name) or FALLBACK_MAC
                try:
                    session.packet_out(n, lldp.encode(dpid, n, mac, ttl=ttl))
                    self.stats["lldp_sent"] += 1
                except Exception as exc:   # a switch going away mid-round
                    LOG.debug("dpid %016x: LLDP out of %d failed: %s", dpid, n, exc)

    # --- switch events ---------------------------------------------------------------
    def packet_in(self, dpid, in_port, data):
        """True when the packet-in was LLDP (ours or not): nothing else wants it."""
        if len(data) < 14 or data[12:14] != b"\x88\xcc":
            return False
        src = lldp.decode(data)
        if src is None or not self.switches.connected(src.dpid) or in_port is None:
            return True
        self.stats["lldp_received"] += 1
        # A host's bridge sends LLDP up its uplink but punts none: its link is
        # only ever seen that way.  Between switches, both ways are required.
        one_way = self.state.host_by_dpid(src.dpid) is not None
        self._apply(self.links.observe(src, (dpid, in_port), self.clock(), one_way=one_way))
        return True

    def port_status(self, dpid, port_no, deleted=False, down=False):
        end = (dpid, port_no)
        if deleted:
            changes = self.links.port_gone(end, self.clock())
        elif down:
            changes = self.links.port_down(end, self.clock())
        else:
            self.links.port_up(end)
            changes = []
        self._apply(changes, always=True)

    def switch_down(self, dpid):
        self._apply(self.links.datapath_gone(dpid, self.clock()), always=True)
        if self.fabric_dpids():
            self.changed()    # a fabric switch that left is out of the graph

    def model_changed(self):
        """Tenants, ports or hosts changed: fabric switches recompile too."""
        if self.fabric_dpids():
            self.changed()

    def _apply(self, changes, always=False):
        for link, what in changes:
            LOG.info("link %s %s", _fmt(link), what)
        if changes or always:
            self.topology.set_links(self.links.up(), self.links.down())
            # Compare with what the compiler last saw, not with the graph
            # before: port and datapath events remove link edges by themselves.
            now = self.topology.links()
            if now != self._seen_links:
                self._seen_links = now
                self.changed()
