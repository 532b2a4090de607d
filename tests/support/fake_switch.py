"""A switch for reconciler tests: holds flows by cookie, can refuse applies."""
import eventlet

from controller.compile.flows import flow
from controller.compile.pipeline import CookieKind, Table


def f(port, out):
    return flow(Table.L2, 100, {"in_port": port}, actions=[("output", out)],
                kind=CookieKind.PORT, owner=port)


class MeterTable:
    """The meter side of a fake switch: holds Meters by id, counts meter-mods.
    Mixed into every fake the reconciler talks to (it reads and sets meters)."""
    meters = None
    meter_mods = None

    def dump_meters(self):
        return dict(self.meters or {})

    def set_meters(self, adds, modifies=(), deletes=()):
        if self.meters is None:
            self.meters, self.meter_mods = {}, []
        for m in (*adds, *modifies):
            self.meters[m.meter_id] = m
        for i in deletes:
            self.meters.pop(i, None)
        self.meter_mods.append((len(adds), len(modifies), len(deletes)))
        return len(adds) + len(modifies) + len(deletes)


class FakeSwitch(MeterTable):
    def __init__(self, dpid=1, fail_apply=0):
        self.dpid = dpid
        self.flows = {}
        self.dumps = 0
        self.applied = []
        self.fail_apply = fail_apply

    def dump_cookies(self):
        self.dumps += 1
        return list(self.flows)

    def apply(self, deletes, adds):
        if self.fail_apply:
            self.fail_apply -= 1
            raise RuntimeError("switch refused")
        for c in deletes:
            self.flows.pop(c, None)
        for x in adds:
            self.flows[x.cookie] = x
        self.applied.append((len(deletes), len(adds)))
        return len(deletes) + len(adds)


def run(sync):
    for _ in range(200):
        eventlet.sleep(0.01)
        if sync.wait_idle(timeout=0):
            break
