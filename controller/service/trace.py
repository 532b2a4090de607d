"""The trace operation of the service: POST /v1/tenants/{t}/trace.

Read-only: it takes a snapshot of the model and of the topology and hands
them to controller/trace, which compiles the desired flows of the hosts
involved and runs the packet through them; nothing is committed, no switch
is touched (the live half asks the switches only to *trace*: ofproto/trace
sends nothing).

The topology view: the app is the service's source of topology facts (it
passes itself as `topology`) and holds the live graph as `.topology`; its
snapshot is exactly what the compiler saw.  Without one (unit tests, a
service with NullTopology) the view is rebuilt from the facts the views
already use -- connected hosts and port numbers -- which is enough for
everything but NAT (no external MACs).
"""
import math
import threading
import time

from controller.compile.pipeline import TUNNEL_PORTS
from controller.service.errors import ApiError
from controller.trace import live
from controller.trace import trace as run_trace
from topology.graph import TopoView


def facts_view(state, facts):
    """A TopoView from host_connected() and port_number(): every port name the
    model knows on each host."""
    spec = {}
    for h in state.hosts.values():
        names = {h.uplink_port, h.external_port, *TUNNEL_PORTS.values(),
                 *(p.port for p in state.ports_on(h.name))} - {None}
        ports = {n: facts.port_number(h.dpid, n) for n in sorted(names)}
        spec[h.dpid] = {"connected": bool(facts.host_connected(h.dpid)),
                        "ports": {n: o for n, o in ports.items() if o is not None}}
    return TopoView.build(spec)


class TraceBudget:
    """Token buckets: traces per tenant and for all tenants together.

    Why: a trace compiles the flows of the hosts it crosses (tens to hundreds
    of ms on the controller's one event loop) and a live one runs
    ofproto/trace on them; without a budget a tenant token could keep the
    controller busy with nothing but traces.  Over budget: 429 with
    Retry-After, and nothing was done."""

    def __init__(self, per_tenant=(2.0, 10), overall=(10.0, 30), clock=time.monotonic):
        self.per_tenant, self.overall, self.clock = per_tenant, overall, clock
        self.buckets = {}          # key -> (tokens left, when counted)
        self.lock = threading.Lock()

    def _level(self, key, rate, burst, now):
        left, then = self.buckets.get(key, (burst, now))
        return min(burst, left + (now - then) * rate)

    def spend(self, tenant):
        with self.lock:
            now = self.clock()
            levels = {key: (self._level(key, rate, burst, now), rate)
                      for key, (rate, burst) in ((("tenant", tenant), self.per_tenant),
                                                 (("all",), self.overall))}
            short = [(1 - left) / rate for left, rate in levels.values() if left < 1]
            if short:
                wait = max(1, math.ceil(max(short)))
                exc = ApiError(429, "rate_limited", f"too many traces (at most "
                                                    f"{self.per_tenant[0]:g}/s per tenant); "
                                                    f"retry in {wait} s")
                exc.headers = {"Retry-After": str(wait)}
                raise exc
            if len(self.buckets) > 10000:          # tenants come and go: keep it bounded
                self.buckets = {}
            for key, (left, _) in levels.items():
                self.buckets[key] = (left - 1, now)


class TraceOperations:
    # How live mode reaches the switches (controller/trace/live.py): None reads
    # VPC_TRACE_APPCTL at each live request; tests plug in their own.
    live_tracer = None
    _trace_budget = None

    @property
    def trace_budget(self):
        """This service's TraceBudget (made on first use)."""
        if self._trace_budget is None:
            self._trace_budget = TraceBudget()
        return self._trace_budget

    @trace_budget.setter
    def trace_budget(self, budget):
        self._trace_budget = budget

    def topology_view(self, state):
        live = getattr(self.topology, "topology", None)
        snapshot = getattr(live, "snapshot", None) or getattr(self.topology, "snapshot", None)
        return snapshot() if callable(snapshot) else facts_view(state, self.topology)

    def trace(self, tenant_name, body):
        """Where a packet from a port of the tenant goes, table by table, and why."""
        self.trace_budget.spend(tenant_name)
        state = self.state.snapshot()
        tracer = self.live_tracer or live.from_env()
        return run_trace(state, self.topology_view(state), tenant_name, body, live=tracer)[1]
