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
from controller.compile.pipeline import TUNNEL_PORTS
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


class TraceOperations:
    # How live mode reaches the switches (controller/trace/live.py): None reads
    # VPC_TRACE_APPCTL at each live request; tests plug in their own.
    live_tracer = None

    def topology_view(self, state):
        live = getattr(self.topology, "topology", None)
        snapshot = getattr(live, "snapshot", None) or getattr(self.topology, "snapshot", None)
        return snapshot() if callable(snapshot) else facts_view(state, self.topology)

    def trace(self, tenant_name, body):
        """Where a packet from a port of the tenant goes, table by table, and why."""
        state = self.state.snapshot()
        tracer = self.live_tracer or live.from_env()
        return run_trace(state, self.topology_view(state), tenant_name, body, live=tracer)[1]
