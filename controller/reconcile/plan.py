"""Desired flows vs installed flows -> the smallest change, sent atomically.

Why cookies: every Flow's cookie ends in a hash of its content, so the set of
cookies a switch holds *is* its flow set, as far as we are concerned.  Reading
cookies back needs no parsing of matches or actions, and a stale flow is
deleted by its exact cookie.  A controller restart over unchanged state finds
every cookie in place and sends nothing at all.

Meters (compile/meters.py) are desired state too, keyed by meter id and
compared by value: the plan adds the missing ones, modifies the changed ones
and deletes the unused ones; the sender adds them before the flow bundle
(a flow naming a missing meter is refused) and deletes them after it (OVS
deletes the flows of a deleted meter).  A restart over unchanged meters sends
no meter-mod either.

`plan()` is pure.  `SwitchSync` owns one datapath: it coalesces requests
(many model changes during one reconcile make one more reconcile, not many),
runs them in its own greenthread, and falls back to a full re-read of the
switch when anything went wrong, so the cache can never drift for long.
"""
import itertools
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

import eventlet
from eventlet.event import Event

from controller.compile.incremental import Delta
from controller.compile.meters import meters_for

LOG = logging.getLogger(__name__)
RETRY_DELAY = 1.0


@dataclass
class Plan:
    deletes: list      # cookies to delete
    adds: list         # Flow objects to add
    kept: int
    meter_adds: list = field(default_factory=list)       # Meters to add, by id
    meter_modifies: list = field(default_factory=list)   # Meters whose band changed
    meter_deletes: list = field(default_factory=list)    # meter ids no flow uses
    meters: object = None      # {id: Meter} the desired flows use, when looked at

    @property
    def empty(self):
        return not (self.deletes or self.adds or self.meter_adds or self.meter_modifies
                    or self.meter_deletes)


def plan(desired, installed_cookies, installed_meters=None):
    """Flows to add and cookies to delete so that the switch holds `desired`,
    and the meter-mods for the meters the desired flows use.

    `installed_cookies` may hold a cookie more than once (flows someone else
    added, cookie 0): one delete-by-cookie removes them all.
    `installed_meters` ({id: Meter}, or None when not known: no meter work).
    """
    want = {f.cookie: f for f in desired}
    have = Counter(installed_cookies)
    deletes = sorted(c for c in have if c not in want)
    adds = sorted((f for c, f in want.items() if c not in have), key=lambda f: f.sort_key())
    kept = sum(1 for c in want if c in have)
    p = Plan(deletes, adds, kept)
    if installed_meters is not None:
        _plan_meters(p, meters_for(desired), installed_meters)
    return p


def plan_delta(delta, installed, installed_meters=None):
    """The same Plan from an incremental compile's Delta, without looking at
    the flows that did not change: for a switch known to hold exactly the
    flows of the compile the delta starts from (`installed`: their cookies).
    Meters are looked at only when a metered flow came or went."""
    deletes = sorted(f.cookie for f in delta.removes if f.cookie in installed)
    adds = sorted((f for f in delta.adds if f.cookie not in installed),
                  key=lambda f: f.sort_key())
    p = Plan(deletes, adds, len(delta.desired) - len(adds))
    if installed_meters is not None and \
            any(f.meter is not None for f in itertools.chain(delta.adds, delta.removes)):
        _plan_meters(p, meters_for(delta.desired.values()), installed_meters)
    return p


def _plan_meters(p, meters, installed_meters):
    p.meter_adds = [m for i, m in sorted(meters.items()) if i not in installed_meters]
    p.meter_modifies = [m for i, m in sorted(meters.items())
                        if i in installed_meters and installed_meters[i] != m]
    p.meter_deletes = sorted(i for i in installed_meters if i not in meters)
    p.meters = meters


class SwitchSync:
    """Keeps one switch's flows equal to compile(dpid), forever, until stopped."""

    def __init__(self, session, compile_fn, on_result=None, on_error=None, limiter=None):
        self.session = session
        # shared by all switches: how many reconcile at once.  Unbounded, a
        # hundred switches connecting together interleave a hundred bundles and
        # flow dumps in one process; each then takes 100x longer, bundles sit
        # idle past OVS's 10 s bundle timeout and dumps past the reply timeout.
        self.limiter = limiter
        self.dpid = session.dpid
        self.compile = compile_fn
        self.on_result = on_result or (lambda sync, plan, seconds: None)
        self.on_error = on_error or (lambda sync, exc: None)
        self.installed = None         # set of cookies we believe the switch holds; None = unknown
        self._generation = 0          # the incremental compile `installed` is (compile/incremental.py)
        self.meters = None            # {id: Meter} we believe it holds; None = unknown
        self._dirty = False
        self._full = True
        self._wake = Event()
        self._stopped = False
        self._idle = Event()
        self.runs = 0
        self.flow_mods = 0
        self._thread = eventlet.spawn(self._loop)

    def request(self, full=False):
        self._dirty = True
        self._full = self._full or full
        if not self._wake.ready():
            self._wake.send()

    def stop(self):
        self._stopped = True
        if not self._wake.ready():
            self._wake.send()

    def wait_idle(self, timeout=None):
        """For tests and tools: block until no reconcile is pending."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._dirty or self._running:
            if deadline is not None and time.monotonic() > deadline:
                return False
            eventlet.sleep(0.01)
        return True

    _running = False

    def _loop(self):
        while not self._stopped:
            self._wake.wait()
            self._wake = Event()
            while self._dirty and not self._stopped:
                self._dirty = False
                self._running = True
                try:
                    if self.limiter is None:
                        self._reconcile_once()
                    else:
                        with self.limiter:
                            if not self._stopped:
                                self._reconcile_once()
                except Exception as exc:  # the switch said no, or went away
                    LOG.warning("dpid %016x: reconcile failed (%s); will re-read the switch",
                                self.dpid, exc)
                    self.on_error(self, exc)
                    self.installed = None
                    self.meters = None
                    self._full = True
                    self._dirty = not self._stopped
                    eventlet.sleep(RETRY_DELAY)
                finally:
                    self._running = False

    def _reconcile_once(self):
        start = time.monotonic()
        full = self._full or self.installed is None
        if full:
            self._full = False
            self._generation = 0
            both = getattr(self.session, "dump_flows_and_meters", None)
            if both is not None:         # one round trip for both questions
                installed, self.meters = both()
            else:
                installed = self.session.dump_cookies()
                self.meters = self.session.dump_meters()
        else:
            installed = self.installed
        desired = self.compile(self.dpid)
        delta = desired if isinstance(desired, Delta) else None
        if delta is not None and delta.base and delta.base == self._generation:
            # the switch holds compile `base` exactly: send the delta only
            p = plan_delta(delta, installed, self.meters)
        else:
            p = plan(delta.desired.values() if delta is not None else desired, installed,
                     self.meters)
        if p.meter_adds or p.meter_modifies:     # before the flows that use them
            early = getattr(self.session, "send_meters", None) if p.deletes or p.adds else None
            if early is not None:     # checked at the bundle's barrier: no round trip
                self.flow_mods += early(p.meter_adds, p.meter_modifies)
            else:
                self.flow_mods += self.session.set_meters(p.meter_adds, p.meter_modifies)
        if p.deletes or p.adds:
            self.flow_mods += self.session.apply(p.deletes, p.adds)
        if p.meter_deletes:                      # after the flows that used them
            self.flow_mods += self.session.set_meters((), (), p.meter_deletes)
        if delta is not None and installed is self.installed:
            installed.difference_update(p.deletes)       # O(delta), not O(flows)
            installed.update(f.cookie for f in p.adds)
            if len(installed) != len(delta.desired):     # cannot happen; never drift
                self.installed = set(delta.desired)
        else:
            self.installed = set(delta.desired) if delta is not None else \
                {f.cookie for f in desired}
        if p.meters is not None:
            self.meters = p.meters
        elif delta is None or self.meters is None:
            self.meters = meters_for(desired)
        self._generation = delta.generation if delta is not None else 0
        self.runs += 1
        self.on_result(self, p, time.monotonic() - start)
