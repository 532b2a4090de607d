"""Reconcile = diff of cookies; restarts send nothing; failures re-read the switch."""

from controller.reconcile.plan import SwitchSync, plan
from tests.support.fake_switch import FakeSwitch, f, run


def test_plan_adds_missing_deletes_stale_keeps_rest():
    a, b, c = f(1, 2), f(2, 3), f(3, 4)
    p = plan({a, b}, [a.cookie, c.cookie, 0, 0])
    assert p.adds == [b] and sorted(p.deletes) == sorted([c.cookie, 0]) and p.kept == 1


def test_changed_actions_change_the_cookie_so_the_flow_is_replaced():
    old, new = f(1, 2), f(1, 5)
    assert old.key == new.key and old.cookie != new.cookie
    assert (old.cookie >> 32) == (new.cookie >> 32)    # same owner
    p = plan({new}, [old.cookie])
    assert p.adds == [new] and p.deletes == [old.cookie]


def test_unchanged_state_plans_nothing():
    flows = {f(i, i + 1) for i in range(1, 50)}
    p = plan(flows, [x.cookie for x in flows])
    assert p.empty and p.kept == 49


def test_sync_reads_switch_once_then_works_from_cache():
    desired = {f(1, 2)}
    sw = FakeSwitch()
    sync = SwitchSync(sw, lambda dpid: desired)
    sync.request(full=True)
    run(sync)
    assert set(sw.flows) == {x.cookie for x in desired} and sw.dumps == 1
    desired = {f(1, 2), f(2, 3)}
    sync.request()
    run(sync)
    assert sw.dumps == 1 and sw.applied[-1] == (0, 1)
    sync.stop()


def test_restart_over_same_state_sends_nothing():
    desired = {f(i, i + 1) for i in range(1, 20)}
    sw = FakeSwitch()
    sw.flows = {x.cookie: x for x in desired}
    sync = SwitchSync(sw, lambda dpid: desired)
    sync.request(full=True)
    run(sync)
    assert sw.applied == [] and sync.flow_mods == 0
    sync.stop()


def test_failure_falls_back_to_full_reread(monkeypatch):
    import controller.reconcile.plan as rec
    monkeypatch.setattr(rec, "RETRY_DELAY", 0.01)
    desired = {f(1, 2)}
    sw = FakeSwitch(fail_apply=1)
    sync = SwitchSync(sw, lambda dpid: desired)
    sync.request(full=True)
    run(sync)
    assert set(sw.flows) == {x.cookie for x in desired}
    assert sw.dumps == 2
    sync.stop()
