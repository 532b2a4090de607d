"""FabricRuntime with fake switches and real SwitchSyncs: LLDP out and in,
port events, and the two-phase update (no moment where one switch holds a
flow only the new set has while another still holds one only the old set had)."""
import eventlet

from controller.compile.datapath import compile_datapath
from controller.runtime.switches import Switches
from controller.runtime.fabric import FabricRuntime
from controller.reconcile.plan import SwitchSync
from topology import lldp
from topology.graph import Topology
from tests.support.fake_switch import MeterTable
from tests.support.worlds import World

FAB = 100
SQUARE = [(1, 2), (2, 3), (3, 4), (4, 1)]     # fabric switches 101..104, port = peer index


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class FakeSwitch(MeterTable):
    log = []     # (dpid, frozenset of cookies) after every apply, in order, all switches

    def __init__(self, dpid):
        self.dpid = dpid
        self.flows = {}
        self.sent = []

    def dump_cookies(self):
        return list(self.flows)

    def apply(self, deletes, adds):
        for c in deletes:
            self.flows.pop(c, None)
        for f in adds:
            self.flows[f.cookie] = f
        FakeSwitch.log.append((self.dpid, frozenset(self.flows)))
        eventlet.sleep(0.001)        # let other switches interleave
        return len(deletes) + len(adds)

    def packet_out(self, port, data):
        self.sent.append((port, bytes(data)))


class Rig:
    def __init__(self):
        FakeSwitch.log = []
        self.w = World(hosts=4, tenants=[("red", "vlan", 10)],
                       ports=[("red", h, f"10.0.0.{h + 1}") for h in (1, 2, 3, 4)])
        self.state = self.w.state
        self.topo = Topology()
        self.topo.sync_hosts(self.state.hosts.values())
        self.switches = Switches()
        self.sessions, self.syncs = self.switches.sessions, self.switches.syncs
        self.clock = Clock()
        self.rt = FabricRuntime(self.topo, self.state, self.switches,
                                interval=1, timeout=3, clock=self.clock)
        for h in (1, 2, 3, 4):
            self.connect(h, dict(self.w.topo.ports(h)))
        for s in (1, 2, 3, 4):
            ports = {f"s{t}": t for a, b in SQUARE for t in (a, b) if s in (a, b) and t != s}
            ports[f"h{s}"] = 100 + s
            self.connect(FAB + s, ports)

    def connect(self, dpid, ports):
        sw = self.sessions[dpid] = FakeSwitch(dpid)
        self.topo.datapath_up(dpid)
        self.topo.set_ports(dpid, ports)
        self.syncs[dpid] = SwitchSync(sw, self.compile)
        self.syncs[dpid].request(full=True)

    def compile(self, dpid):
        return self.rt.filter(dpid, compile_datapath(self.state, self.topo.snapshot(), dpid))

    def lldp_round(self, skip=()):
        """Deliver what the last probes would: every fabric link both ways,
        each host's uplink frame to its leaf."""
        for a, b in SQUARE:
            if (a, b) not in skip:
                self.rt.packet_in(FAB + b, a, lldp.encode(FAB + a, b, "02:00:00:00:00:01"))
                self.rt.packet_in(FAB + a, b, lldp.encode(FAB + b, a, "02:00:00:00:00:01"))
        for h in (1, 2, 3, 4):
            self.rt.packet_in(FAB + h, 100 + h, lldp.encode(h, 1, "02:00:00:00:00:02"))

    def settle(self):
        for _ in range(500):
            eventlet.sleep(0.005)
            if not self.rt._busy and all(s.wait_idle(timeout=0) for s in self.syncs.values()):
                return
        raise AssertionError("did not settle")

    def want(self, dpid):
        return {f.cookie for f in compile_datapath(self.state, self.topo.snapshot(), dpid)}

    def stop(self):
        for s in self.syncs.values():
            s.stop()


def test_probes_go_out_of_every_fabric_port_and_only_the_host_uplink():
    rig = Rig()
    rig.rt.send_probes()
    host = rig.sessions[1].sent
    assert [p for p, _ in host] == [1]                       # patch-phy only
    assert lldp.decode(host[0][1]) == (1, 1)
    assert sorted(p for p, _ in rig.sessions[FAB + 1].sent) == [2, 4, 101]
    rig.stop()


def test_lldp_builds_the_graph_and_fabric_flows_follow():
    rig = Rig()
    assert rig.rt.packet_in(FAB + 1, 2, b"\x00" * 60) is False      # not LLDP
    rig.lldp_round()
    rig.settle()
    assert len(rig.topo.links()) == 8
    for d, sw in rig.sessions.items():
        assert set(sw.flows) == rig.want(d), d
    assert any(len(rig.sessions[FAB + s].flows) > 2 for s in (1, 2, 3, 4))
    rig.stop()


def test_port_down_removes_the_link_at_once_and_timeout_removes_silent_ones():
    rig = Rig()
    rig.lldp_round()
    rig.settle()
    rig.rt.port_status(FAB + 1, 2, down=True)
    assert len(rig.topo.links()) == 7
    rig.lldp_round()                                   # frames in flight: ignored
    assert len(rig.topo.links()) == 7
    rig.settle()
    for d, sw in rig.sessions.items():
        assert set(sw.flows) == rig.want(d), d
    rig.rt.port_status(FAB + 1, 2, down=False)
    rig.clock.t = 2
    rig.lldp_round(skip={(3, 4)})
    assert len(rig.topo.links()) == 8
    rig.clock.t = 4
    rig.lldp_round(skip={(3, 4)})
    rig.clock.t = 5.5
    rig.rt.tick()                                      # 3-4 last seen at 0
    assert len(rig.topo.links()) == 7
    rig.settle()
    for d, sw in rig.sessions.items():
        assert set(sw.flows) == rig.want(d), d
    rig.stop()


def test_updates_never_mix_old_only_and_new_only_flows():
    rig = Rig()
    rig.lldp_round(skip={(1, 2)})
    rig.settle()
    old = {d: set(sw.flows) for d, sw in rig.sessions.items()}
    FakeSwitch.log = []
    rig.lldp_round()                       # link 1-2 appears: the tree changes
    rig.settle()
    new = {d: set(sw.flows) for d, sw in rig.sessions.items()}
    assert old != new
    state = dict(old)
    for dpid, cookies in FakeSwitch.log:
        state[dpid] = cookies
        new_only = any(state[d] - old[d] for d in state)
        old_only = any(state[d] - new[d] for d in state)
        assert not (new_only and old_only), "a new flow was added before every old one left"
    assert state == new
    rig.stop()
