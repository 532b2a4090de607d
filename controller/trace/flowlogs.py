"""Flow logs: per tenant, the connections each port sent and received, with
packets, bytes, start/end, and ACCEPT/REJECT with the security-group rule --
what AWS VPC Flow Logs give per network interface.

The mechanism (docs/user-guide.md, "Flow logs", says why):
  * counters come from the data path: each host's agent turns on OVS's
    bridge IPFIX exporter on br-int (only while a tenant with ports there
    has flow logs on) and forwards the flow records it receives
    (vpcagent/flowlogs.py): 5-tuple, MACs, packets, bytes, start, end.
    Userspace conntrack keeps no counters, and per-rule flow stats know no
    5-tuples; IPFIX has both, for every packet, at a cost bounded by the
    sampling rate and the exporter's flow cache.
  * ACCEPT/REJECT and the rule come from the controller's own evaluation of
    the security groups: the connection's first packet is traced through the
    desired flows (controller/trace), whose cookies name the rule.  The flows
    are the ones installed (`vpcctl trace --live` checks that).
A record belongs to the port that sent the packets into the bridge (its MAC
is the source: direction egress) or that they were addressed to (its MAC is
the destination: ingress), like AWS's one record per interface and
direction.  Packets of the other direction of a logged connection are its
reply counters, not a connection of their own.

Bounded: at most MAX_RECORDS connections per tenant are kept (oldest go);
each new connection costs one simulated trace, cached per model version.
Kept in memory only: flow logs start off after a controller restart.
"""
import threading
import time
from collections import OrderedDict

from controller.trace.simulate import trace

MAX_RECORDS = 10000
PROTOS = {1: "icmp", 6: "tcp", 17: "udp"}
ICMP_REVERSE = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15}
ICMP_REQUESTS = {8, 13, 15}
REJECTS = ("security_group", "spoof", "invalid")


def _key(r):
    """(proto, src, dst, a, b): a, b the ports, or the ICMP type and code."""
    if r["proto"] == 1:
        return (1, r["src"], r["dst"], r.get("icmp_type", 0), r.get("icmp_code", 0))
    return (r["proto"], r["src"], r["dst"], r.get("sport", 0), r.get("dport", 0))


def _reverse(key):
    proto, src, dst, a, b = key
    if proto == 1:
        return (1, dst, src, ICMP_REVERSE.get(a, a), b)
    return (proto, dst, src, b, a)


def _initiator_first(r):
    """Sort order of a batch: earlier first; at one start time an ICMP
    request, or the side whose destination port is the lower (a server's)."""
    key = _key(r)
    if key[0] == 1:
        tie = 0 if key[3] in ICMP_REQUESTS else 1
    else:
        tie = 0 if key[4] <= key[3] else 1
    return (r.get("start", 0), tie)


class FlowLogBook:
    """The flow logs of every tenant, in memory."""

    def __init__(self, max_records=MAX_RECORDS, clock=time.time):
        self.max_records = max_records
        self.clock = clock
        self.enabled = {}        # tenant -> time flow logs were turned on
        self.ids = {}            # tenant -> its id then (a tenant made again is another)
        self.conns = {}          # tenant -> OrderedDict (port id, initiator key) -> record
        self.lock = threading.Lock()
        self._verdicts, self._verdicts_of = {}, None

    def set_enabled(self, tenant, on, tenant_id=None):
        with self.lock:
            if on:
                self.enabled.setdefault(tenant, self.clock())
                self.ids[tenant] = tenant_id
            else:
                self.enabled.pop(tenant, None)
                self.ids.pop(tenant, None)
                self.conns.pop(tenant, None)

    def prune(self, tenants):
        """Forget tenants that are gone, or gone and made again (another id)."""
        for name in list(self.enabled):
            t = tenants.get(name)
            if t is None or t.id != self.ids.get(name, t.id):
                self.forget(name)

    def forget(self, tenant):
        self.set_enabled(tenant, False)

    def host_wanted(self, state, host):
        """Does any tenant with a port on `host` have flow logs on?"""
        return any(p.tenant in self.enabled for p in state.ports_on(host))

    def records(self, tenant):
        with self.lock:
            return [dict(r) for r in self.conns.get(tenant, {}).values()]

    def ingest(self, state, topo, host, raw, scale=1):
        """A batch of IPFIX flow records from `host`'s agent -> (taken, ignored).
        `scale`: the exporter's sampling rate (1 in N packets): counters are
        multiplied by it."""
        if scale != 1:
            raw = [dict(r, packets=r.get("packets", 0) * scale, bytes=r.get("bytes", 0) * scale)
                   for r in raw]
        by_mac = {p.mac: p for p in state.ports_on(host) if p.tenant in self.enabled}
        taken = 0
        with self.lock:
            for r in sorted(raw, key=_initiator_first):
                port = by_mac.get(r.get("src_mac"))
                rel = "egress"
                if port is None:
                    port, rel = by_mac.get(r.get("dst_mac")), "ingress"
                if port is None or r.get("proto") not in PROTOS:
                    continue
                self._add(state, topo, port, rel, r)
                taken += 1
        return taken, len(raw) - taken

    def _add(self, state, topo, port, rel, r):
        conns = self.conns.setdefault(port.tenant, OrderedDict())
        key = _key(r)
        reply = conns.get((port.id, _reverse(key)))
        if reply is not None and reply["direction"] != rel:
            reply["reply_packets"] += r.get("packets", 0)
            reply["reply_bytes"] += r.get("bytes", 0)
            reply["end"] = max(reply["end"], r.get("end", 0))
            if reply["basis"] == "reply":
                reply["action"] = "ACCEPT"
            return
        rec = conns.get((port.id, key))
        if rec is not None:            # the exporter's next report of one flow
            rec["packets"] += r.get("packets", 0)
            rec["bytes"] += r.get("bytes", 0)
            rec["end"] = max(rec["end"], r.get("end", 0))
            return
        action, rule, reason, basis = self._verdict(state, topo, port, rel, key)
        conns[(port.id, key)] = {
            "tenant": port.tenant, "port_id": port.id, "host": port.host, "direction": rel,
            "proto": PROTOS[key[0]], "src": key[1], "dst": key[2],
            "sport": None if key[0] == 1 else key[3], "dport": None if key[0] == 1 else key[4],
            "icmp_type": key[3] if key[0] == 1 else None,
            "packets": r.get("packets", 0), "bytes": r.get("bytes", 0),
            "reply_packets": 0, "reply_bytes": 0,
            "start": r.get("start", 0), "end": r.get("end", 0),
            "action": action, "rule": rule, "reason": reason, "basis": basis}
        while len(conns) > self.max_records:
            conns.popitem(last=False)

    def _verdict(self, state, topo, port, rel, key):
        """(action, rule, reason, basis) of a new connection, from the desired
        flows; cached per model version."""
        if self._verdicts_of is not state:
            self._verdicts, self._verdicts_of = {}, state
        cached = self._verdicts.get((port.id, rel, key))
        if cached is None:
            cached = self._verdicts[(port.id, rel, key)] = _evaluate(state, topo, port, rel,
                                                                     key)
        return cached


def _evaluate(state, topo, port, rel, key):
    proto, src, dst, a, b = key
    name = PROTOS[proto]
    if rel == "egress":
        src_port, to = port, dst
    else:
        src_port, to = state.port_with_ip(port.tenant, src), port.id
        if src_port is None:       # from outside the tenant (NAT): no trace from there
            return ("REJECT", None, "from outside the tenant: ACCEPT once a reply is seen",
                    "reply")
    if proto == 1 and a not in ICMP_REQUESTS:
        return ("ACCEPT", None, f"icmp type {a} is not a request", "reply")
    body = {"from": src_port.id, "to": to, "proto": name}
    if proto != 1:
        body.update(sport=a, dport=b)
    try:
        _, out = trace(state, topo, port.tenant, body)
    except Exception as exc:                       # noqa: BLE001 -- a log, not a request
        return ("ACCEPT", None, f"not evaluated: {exc}", "unknown")
    v = out["verdict"]
    table = "SG_OUT" if rel == "egress" else "SG_IN"
    mine = [h for h in out["hops"] if h["host"] == port.host]
    rule = None
    for hop in mine:
        for step in hop["steps"]:
            owner = step.get("owner") or {}
            if step["table_name"] == table and owner.get("rule"):
                rule = dict(owner["rule"], group=owner.get("group"))
    if v["code"] in REJECTS and v.get("table_name") in (table, "PORT_SECURITY") and \
            v.get("host") == port.host:
        return "REJECT", None, v["reason"], "security groups"
    return "ACCEPT", rule, None, "security groups"
