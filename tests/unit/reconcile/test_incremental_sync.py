"""The reconciler with the incremental compiler: after the first (full) reconcile
a model change sends only its delta, without re-reading the switch; anything
that went wrong falls back to a full re-read, as before."""
from controller.compile.datapath import compile_datapath
from controller.compile.incremental import Delta, IncrementalCompiler
from controller.reconcile.plan import SwitchSync
from tests.support.fake_switch import FakeSwitch, run
from tests.support.worlds import World


def world():
    return World(hosts=2, tenants=[("a", "vxlan", 5), ("b", "vlan", 7)],
                 ports=[("a", 1, "10.0.0.2"), ("a", 2, "10.0.0.3"), ("b", 1, "10.0.0.2")])


def attach(w, pid, tenant, host, ip, serial):
    w.state.apply([("put", "ports", pid, dict(
        id=pid, tenant=tenant, host=host, port=pid, ip=ip, mac=f"02:00:00:00:09:{serial:02x}",
        subnet="10.0.0.0/24", serial=serial))])


def full(w, topo, dpid):
    return {f.cookie for f in compile_datapath(w.state, topo, dpid)}


def test_a_change_sends_its_delta_only_and_reads_the_switch_once():
    w = world()
    compiler = IncrementalCompiler()
    topo = [w.topo]
    sw = FakeSwitch(dpid=1)
    sync = SwitchSync(sw, lambda dpid: compiler.compile(w.state.snapshot(), topo[0], dpid))
    sync.request(full=True)
    run(sync)
    assert set(sw.flows) == full(w, topo[0], 1) and sw.dumps == 1
    first = len(sw.flows)
    attach(w, "p9", "a", "h2", "10.0.0.9", 9)        # a remote port of tenant a
    sync.request()
    run(sync)
    deletes, adds = sw.applied[-1]
    assert set(sw.flows) == full(w, topo[0], 1) and sw.dumps == 1
    assert 0 < adds + deletes < first / 4             # a few flows, not the host's set
    assert sync.installed == set(sw.flows)
    sync.stop()


def test_a_failed_apply_re_reads_the_switch_and_ends_right(monkeypatch):
    import controller.reconcile.plan as rec
    monkeypatch.setattr(rec, "RETRY_DELAY", 0.01)
    w = world()
    compiler = IncrementalCompiler()
    sw = FakeSwitch(dpid=1)
    sync = SwitchSync(sw, lambda dpid: compiler.compile(w.state.snapshot(), w.topo, dpid))
    sync.request(full=True)
    run(sync)
    sw.fail_apply = 1
    attach(w, "p9", "a", "h2", "10.0.0.9", 9)
    sync.request()
    run(sync)
    assert set(sw.flows) == full(w, w.topo, 1) and sw.dumps == 2
    sync.stop()


def test_someone_elses_flows_and_a_forgotten_compile_are_diffed_in_full():
    w = world()
    compiler = IncrementalCompiler()
    sw = FakeSwitch(dpid=1)
    sync = SwitchSync(sw, lambda dpid: compiler.compile(w.state.snapshot(), w.topo, dpid))
    sync.request(full=True)
    run(sync)
    compiler.forget(1)           # e.g. the compile raised: the next one starts from nothing
    attach(w, "p9", "a", "h2", "10.0.0.9", 9)
    sync.request()
    run(sync)
    assert set(sw.flows) == full(w, w.topo, 1)
    sync.stop()


def test_a_delta_is_the_difference_of_two_full_compiles():
    w = world()
    compiler = IncrementalCompiler()
    before = compiler.compile(w.state.snapshot(), w.topo, 1)
    assert isinstance(before, Delta) and before.base == 0
    old = set(before.desired)
    attach(w, "p9", "b", "h1", "10.0.0.9", 9)          # a local port, without its OVS port
    after = compiler.compile(w.state.snapshot(), w.topo, 1)
    assert after.base == before.generation
    new = full(w, w.topo, 1)
    assert {f.cookie for f in after.adds} == new - old
    assert {f.cookie for f in after.removes} == old - new
    assert set(after.desired) == new
    # only tenant b's piece was rebuilt: its ARP answers and routes name the new port
    assert after.pieces_built == 1
