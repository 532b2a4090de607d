"""The shortcuts that make a cold start of many switches cheap must not change
what any switch ends up holding: recompiling only overlay peers, the model's
and the topology's caches, pre-serialized flow-mods, bounded reconciles,
reply timeouts that count silence rather than total time."""

import eventlet
from hypothesis import HealthCheck, given, settings, strategies as st

from controller.compile.datapath import compile_datapath, overlay_peers
from controller.compile.flows import flow
from controller.model.state import State
from controller.compile.pipeline import Table
from controller.reconcile.plan import SwitchSync
from topology.graph import Topology, TopoView
from tests.support.fake_switch import MeterTable
from tests.support.worlds import World

NETWORK = st.sampled_from(["vlan", "vxlan", "gre"])


@st.composite
def worlds(draw):
    hosts = draw(st.integers(2, 5))
    tenants, ports = [], []
    for i in range(1, draw(st.integers(1, 4)) + 1):
        tenants.append((f"t{i}", draw(NETWORK), i))
        for k in range(draw(st.integers(0, 4))):
            ports.append((f"t{i}", draw(st.integers(1, hosts)), f"10.0.0.{2 + k}"))
    return World(hosts=hosts, tenants=tenants, ports=ports), hosts


def topo_with(world, hosts, down):
    spec = {}
    for i in range(1, hosts + 1):
        spec[i] = {"connected": i not in down, "ports": dict(world.topo.ports(i))}
    return TopoView.build(spec)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds(), st.data())
def test_a_switch_coming_or_going_changes_only_its_overlay_peers(wh, data):
    world, hosts = wh
    d = data.draw(st.integers(1, hosts))
    up, down = topo_with(world, hosts, set()), topo_with(world, hosts, {d})
    peers = overlay_peers(world.state, d)
    for other in range(1, hosts + 1):
        if other == d:
            continue
        if compile_datapath(world.state, up, other) != compile_datapath(world.state, down, other):
            assert other in peers, f"h{other} changes when h{d} leaves but is not a peer"


def test_peers_are_hosts_sharing_an_overlay_tenant_not_a_vlan_one():
    w = World(hosts=4, tenants=[("a", "vxlan", 1), ("b", "vlan", 2), ("c", "gre", 3)],
              ports=[("a", 1, "10.0.0.2"), ("a", 2, "10.0.0.3"), ("b", 1, "10.0.0.2"),
                     ("b", 3, "10.0.0.3"), ("c", 4, "10.0.0.2")])
    assert overlay_peers(w.state, 1) == {2}
    assert overlay_peers(w.state, 3) == set()
    assert overlay_peers(w.state, 4) == set()
    assert overlay_peers(w.state, 99) == set()     # not a host (a fabric switch)


def test_state_indexes_follow_every_apply_and_copies_stay_apart():
    w = World(hosts=2, tenants=[("a", "vlan", 1)], ports=[("a", 1, "10.0.0.2")])
    s = w.state
    assert [p.id for p in s.ports_of("a")] == ["p1"] and s.host_by_dpid(2).name == "h2"
    c = s.copy()
    rec = dict(s.ports["p1"].__dict__, id="p2", ip="10.0.0.3", host="h2", serial=2)
    s.apply([("put", "ports", "p2", rec)])
    assert [p.id for p in s.ports_of("a")] == ["p1", "p2"]
    assert [p.id for p in s.ports_on("h2")] == ["p2"]
    assert [p.id for p in c.ports_of("a")] == ["p1"]          # the copy did not move
    s.apply([("del", "hosts", "h2")])
    assert s.host_by_dpid(2) is None and c.host_by_dpid(2).name == "h2"
    s.ports_of("a").clear()                                  # callers get their own list
    assert len(s.ports_of("a")) == 2
    assert State().ports_of("a") == [] and State().tenant_by_id(1) is None


def test_topology_snapshot_is_cached_until_something_changes():
    t = Topology()
    t.datapath_up(1)
    t.set_ports(1, {"c1": 10})
    a = t.snapshot()
    assert t.snapshot() is a
    t.port_added(1, "c2", 11)
    b = t.snapshot()
    assert b is not a and dict(b.ports(1)) == {"c1": 10, "c2": 11}
    assert t.set_gateway_mac(1, "02:00:00:00:00:01") and t.snapshot().gateway_mac(1)
    t.datapath_down(1)
    assert not t.snapshot().connected(1)


def test_reconciles_share_a_bounded_number_of_slots():
    from eventlet.semaphore import Semaphore
    running, peak = [0], [0]

    class SlowSwitch(MeterTable):
        def __init__(self, dpid):
            self.dpid, self.flows = dpid, set()

        def dump_cookies(self):
            return list(self.flows)

        def apply(self, deletes, adds):
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            eventlet.sleep(0.01)
            running[0] -= 1
            self.flows |= {f.cookie for f in adds}
            return len(adds)

    desired = {flow(Table.L2, 100, {"in_port": 1}, actions=[("output", 2)])}
    slots = Semaphore(2)
    syncs = [SwitchSync(SlowSwitch(i), lambda dpid: desired, limiter=slots) for i in range(10)]
    for s in syncs:
        s.request(full=True)
    for s in syncs:
        assert s.wait_idle(timeout=5)
    assert peak[0] == 2
    assert all(s.session.flows == {f.cookie for f in desired} for s in syncs)
    for s in syncs:
        s.stop()


def test_reconcile_settings_come_from_the_environment():
    import pytest
    from controller.config import Config, ConfigError
    d = Config.from_env({})
    assert (d.reconcile_parallel, d.startup_grace) == (64, 10.0)
    c = Config.from_env({"VPC_RECONCILE_PARALLEL": "16", "VPC_STARTUP_GRACE": "0"})
    assert (c.reconcile_parallel, c.startup_grace) == (16, 0.0)
    for bad in ({"VPC_RECONCILE_PARALLEL": "0"}, {"VPC_RECONCILE_PARALLEL": "two"},
                {"VPC_STARTUP_GRACE": "-1"}, {"VPC_STARTUP_GRACE": "nan"},
                {"VPC_STARTUP_GRACE": "soon"}):
        with pytest.raises(ConfigError):
            Config.from_env(bad)


def test_presumed_hosts_count_as_connected_for_the_compiler_until_given_up():
    from controller.model.state import Host
    t = Topology()
    t.sync_hosts([Host(name="h1", dpid=1, tunnel_ip="198.18.0.11"),
                  Host(name="h2", dpid=2, tunnel_ip="198.18.0.12")])
    t.presume_connected([1, 2])
    assert t.snapshot().connected(1) and t.snapshot().connected(2)
    assert not t.connected(1)                    # the live graph (UI, health) does not lie
    t.datapath_up(1)
    assert t.stop_presuming(1) == {1} and t.stop_presuming(1) == set()
    assert t.stop_presuming() == {2}
    assert t.snapshot().connected(1) and not t.snapshot().connected(2)


def test_a_restart_compiles_the_same_flows_before_the_peers_are_back():
    """Host 1 reconnects first: with its peers presumed, it gets exactly the
    flows it had before the restart (nothing withdrawn, nothing re-added)."""
    w = World(hosts=3, tenants=[("a", "vxlan", 1), ("b", "gre", 2)],
              ports=[("a", 1, "10.0.0.2"), ("a", 2, "10.0.0.3"), ("b", 1, "10.0.0.2"),
                     ("b", 3, "10.0.0.3")])
    before = compile_datapath(w.state, w.topo, 1)
    t = Topology()
    t.sync_hosts(w.state.hosts.values())
    t.presume_connected(h.dpid for h in w.state.hosts.values())
    t.datapath_up(1)
    t.set_ports(1, dict(w.topo.ports(1)))
    t.stop_presuming(1)
    assert compile_datapath(w.state, t.snapshot(), 1) == before
    t.stop_presuming()                           # the grace ends, 2 and 3 never came
    assert compile_datapath(w.state, t.snapshot(), 1) != before


def test_pausing_between_pieces_changes_nothing_and_happens_per_tenant():
    w = World(hosts=2, tenants=[("a", "vxlan", 1), ("b", "vlan", 2)],
              ports=[("a", 1, "10.0.0.2"), ("a", 2, "10.0.0.3"), ("b", 1, "10.0.0.2")])
    calls = []
    paused = compile_datapath(w.state, w.topo, 1, pause=lambda: calls.append(1))
    assert paused == compile_datapath(w.state, w.topo, 1)
    assert len(calls) == 2 + 2 + 1           # two local ports, two tenants, external


def test_a_state_snapshot_stays_put_while_the_state_moves_on():
    w = World(hosts=2, tenants=[("a", "vlan", 1)], ports=[("a", 1, "10.0.0.2")])
    snap = w.state.snapshot()
    assert w.state.snapshot() is snap and snap is not w.state
    w.state.apply([("del", "ports", "p1")])
    assert "p1" in snap.ports and snap.ports_of("a") and not w.state.ports_of("a")
    assert w.state.snapshot() is not snap and "p1" not in w.state.snapshot().ports
