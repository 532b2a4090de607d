"""The reconciler keeps meters as desired state: added before the flows that
use them, modified when their band changes, deleted after the flows that
used them, and left alone when they are right (a restart sends nothing).
Why: a flow naming a missing meter is refused by the switch, and deleting a
meter deletes its flows, so the order matters; and re-adding a meter on every
restart would reset its counters and be a needless change."""
from controller.compile.flows import CONTROLLER, flow
from controller.compile.meters import METERS, Meter, MeterId
from controller.compile.pipeline import Prio, Table
from controller.reconcile.plan import SwitchSync, plan
from tests.support.fake_switch import FakeSwitch, f, run

PUNT = flow(Table.EXT_IN, Prio.EXT_IN.ARP, {"eth_type": 0x0806, "arp_op": 2},
            actions=[("output", CONTROLLER)], meter=MeterId.GATEWAY_ARP)
GW = METERS[MeterId.GATEWAY_ARP]


def test_plan_adds_modifies_and_deletes_meters():
    p = plan([PUNT], [], {})
    assert p.meter_adds == [GW] and not p.meter_modifies and not p.meter_deletes
    p = plan([PUNT], [PUNT.cookie], {GW.meter_id: Meter(GW.meter_id, GW.rate + 1, GW.burst)})
    assert p.meter_modifies == [GW] and not p.meter_adds and not p.empty
    p = plan([f(1, 2)], [PUNT.cookie], {GW.meter_id: GW})
    assert p.meter_deletes == [GW.meter_id]
    assert plan([PUNT], [PUNT.cookie], {GW.meter_id: GW}).empty
    assert plan([PUNT], [PUNT.cookie], None).empty       # meters unknown: no meter work


class OrderedSwitch(FakeSwitch):
    """Records what arrives in which order: meters vs the flow bundle."""

    def __init__(self):
        super().__init__()
        self.order = []

    def set_meters(self, adds, modifies=(), deletes=()):
        self.order.append(("meters", len(adds), len(modifies), len(deletes)))
        return super().set_meters(adds, modifies, deletes)

    def apply(self, deletes, adds):
        self.order.append(("flows", len(deletes), len(adds)))
        return super().apply(deletes, adds)


def test_meters_go_before_their_flows_and_leave_after_them():
    sw = OrderedSwitch()
    desired = {PUNT, f(1, 2)}
    sync = SwitchSync(sw, lambda dpid: desired)
    try:
        sync.request(full=True)
        run(sync)
        assert sw.order == [("meters", 1, 0, 0), ("flows", 0, 2)]
        assert sw.meters == {GW.meter_id: GW}
        desired = {f(1, 2)}
        sync.request()
        run(sync)
        assert sw.order[-2:] == [("flows", 1, 0), ("meters", 0, 0, 1)]
        assert sw.meters == {}
    finally:
        sync.stop()


def test_a_restart_over_right_meters_sends_nothing():
    sw = OrderedSwitch()
    sw.flows = {PUNT.cookie: PUNT}
    sw.meters = {GW.meter_id: GW}
    sync = SwitchSync(sw, lambda dpid: {PUNT})
    try:
        sync.request(full=True)
        run(sync)
        assert sw.order == [] and sync.flow_mods == 0
    finally:
        sync.stop()
