"""One switch: its flow tables, a packet's walk through them, and formatting."""
from collections import namedtuple
from dataclasses import dataclass, field as dc_field

from controller.compile.flows import Flow
from controller.flowsim.conntrack import MAX_RECIRC, Conntrack
from controller.flowsim.fields import (CT_FIELDS, KINDS, SimError, _get, _valid, _value_mask,
                                       format_flow, format_packet,
                                       install_check, to_bits)
from controller.compile.pipeline import ETH_TYPE_VLAN, OFPVID_PRESENT, Table


# --- one switch ---------------------------------------------------------------
class FlowTable:
    """All OpenFlow tables of one switch: table id -> flows, highest priority first."""

    def __init__(self, tables):
        self.tables = {t: sorted(fl, key=lambda f: -f.priority) for t, fl in tables.items()}
        self._compiled = {id(f): [(n, *_value_mask(n, w)) for n, w in f.match]
                          for fl in self.tables.values() for f in fl}

    @classmethod
    def from_flows(cls, flows, check=True):
        """Group flows by table.  Identical duplicates collapse (as a flow-mod
        would); two different flows with one key are a compiler bug because the
        second flow-mod would silently replace the first."""
        by_key = {}
        for f in flows:
            if not isinstance(f, Flow):
                raise SimError(f"not a Flow: {f!r}")
            other = by_key.setdefault(f.key, f)
            if other.content != f.content:
                raise SimError(f"two flows share table/priority/match:\n  "
                               f"{format_flow(other)}\n  {format_flow(f)}")
            if check:
                install_check(f)
        tables = {}
        for f in by_key.values():
            tables.setdefault(f.table, []).append(f)
        return cls(tables)

    def flows(self, table=None):
        if table is not None:
            return list(self.tables.get(int(table), ()))
        return [f for t in sorted(self.tables) for f in self.tables[t]]

    def __len__(self):
        return sum(len(fl) for fl in self.tables.values())

    def _matches(self, flow, packet):
        for fname, value, mask in self._compiled[id(flow)]:
            have = _get(packet, fname)
            if have is None or (to_bits(fname, have) & mask) != value:
                return False
        return True

    def lookup(self, table, packet):
        """The flow `packet` hits in `table`, or None (table miss)."""
        best = None
        for f in self.tables.get(int(table), ()):
            if best is not None and f.priority < best.priority:
                break
            if self._matches(f, packet):
                # A tie is undefined in OpenFlow; it is only harmless when both
                # flows would do the same thing (e.g. two rules that both allow).
                if best is not None and (f.actions, f.goto, f.metadata) != \
                        (best.actions, best.goto, best.metadata):
                    raise SimError(
                        f"two flows of priority {f.priority} in table {table} both "
                        f"match {format_packet(packet)}:\n  {format_flow(best)}\n"
                        f"  {format_flow(f)}")
                best = f
        return best

    def overlaps(self):
        """Pairs of same-table, same-priority flows that some packet could hit
        together (each common field agrees on the bits both masks care about).
        A static version of the run-time tie check."""
        pairs = []
        for fl in self.tables.values():
            for i, a in enumerate(fl):
                ca = {n: (v, m) for n, v, m in self._compiled[id(a)]}
                for b in fl[i + 1:]:
                    if b.priority != a.priority:
                        break
                    if all((v ^ ca[n][0]) & m & ca[n][1] == 0
                           for n, v, m in self._compiled[id(b)] if n in ca):
                        pairs.append((a, b))
        return pairs


Step = namedtuple("Step", "table packet flow")   # packet as it entered `table`


@dataclass
class Result:
    """What one packet did in one switch."""
    outputs: list = dc_field(default_factory=list)     # [(port, packet dict)]
    steps: list = dc_field(default_factory=list)       # [Step]
    suppressed: list = dc_field(default_factory=list)  # ports skipped: == in_port
    drop_reason: str = None   # why the pipeline ended, if it output nothing
    notes: list = dc_field(default_factory=list)       # e.g. NAT exhaustion
    recirculations: int = 0   # ct(table=...) passes

    @property
    def trace(self):
        """The flows hit, in order."""
        return [s.flow for s in self.steps if s.flow is not None]

    @property
    def dropped(self):
        return not self.outputs

    @property
    def ports(self):
        return [port for port, _ in self.outputs]

    def outputs_to(self, port):
        return [pkt for p, pkt in self.outputs if p == port]

    def format_trace(self):
        lines = []
        for step in self.steps:
            lines.append(f"table {step.table}: {format_packet(step.packet)}")
            lines.append("  -> " + (format_flow(step.flow) if step.flow else "MISS"))
        lines += [f"  output {p}: {format_packet(pkt)}" for p, pkt in self.outputs]
        lines += [f"  output {p} suppressed (in_port)" for p in self.suppressed]
        lines += [f"  note: {n}" for n in self.notes]
        if self.dropped:
            lines.append(f"  dropped: {self.drop_reason}")
        return "\n".join(lines)


def check_packet(packet):
    """Refuse a test packet that no wire could carry, or that has a typo."""
    for fname, value in packet.items():
        if fname not in KINDS:
            raise SimError(f"packet field {fname!r} is not a known field")
        if fname in CT_FIELDS:
            raise SimError(f"{fname} is set by ct actions; a packet enters untracked")
        if not _valid(fname, value):
            raise SimError(f"packet {fname}={value!r} is not canonical/in range")
    if "vlan_vid" in packet and not packet["vlan_vid"] & OFPVID_PRESENT:
        raise SimError("a tagged packet's vlan_vid carries OFPVID_PRESENT; "
                       "leave vlan_vid out for untagged")
    if packet.get("eth_type") in (ETH_TYPE_VLAN, 0x88A8):
        raise SimError("eth_type is the inner ethertype; give tags as vlan_vid")
    if not packet.get("in_port"):
        raise SimError("packet needs an in_port")


# Fields a NAT rewrites: after a ct without table= OVS's translation still
# sees the old values (only a recirculation re-reads the packet).
_NAT_FIELDS = {"ipv4_src", "ipv4_dst", "tcp_src", "tcp_dst", "udp_src", "udp_dst"}


class Simulator:
    """One switch: runs packets through a FlowTable from table 0.

    `conntrack` (a Conntrack, default a new one) persists across run()s;
    pass one Conntrack to several Simulators to share it, as the bridges of
    one ovs-vswitchd do.

    ct actions: ct(table=N) recirculates: the packet, translated if NATed,
    with ct_state/ct_zone/ct_mark set and metadata/registers/in_port kept,
    continues in table N (at most MAX_RECIRC times per run, one less for a
    packet from a tunnel: OVS counts tunnel pops and recirculations together).  OVS also
    continues the flow's remaining action list with an untracked copy; that
    is not modelled: a flow with actions, goto or write-metadata after a
    ct(table=...) raises SimError.  A ct without table leaves the packet
    (translated, if NATed) untracked for the rest of the action list and any
    goto -- and, since OVS would still match the old L3/L4 values, a later
    flow that matches a field the NAT rewrote raises SimError.
    """

    def __init__(self, flows, name=None, check=True, conntrack=None):
        self.table = flows if isinstance(flows, FlowTable) else FlowTable.from_flows(flows, check)
        self.name = name
        self.last = None
        self.ct = conntrack if conntrack is not None else Conntrack()

    @property
    def conntrack(self):
        """The connection table's entries (see Conntrack.entries)."""
        return self.ct.entries()

    def run(self, packet, in_port=None, table=Table.CLASSIFY, depth=0):
        """Run a copy of `packet` (in_port given in it or as argument).
        `depth`: datapath depth already used (1 for a packet that came out
        of a tunnel: OVS counts the tunnel pop against MAX_RECIRC too)."""
        pkt = dict(packet)
        if in_port is not None:
            pkt["in_port"] = in_port
        check_packet(pkt)
        res = self.last = Result()
        self._stale = False
        while table is not None:
            flow = self.table.lookup(table, pkt)
            res.steps.append(Step(int(table), dict(pkt), flow))
            if flow is None:
                res.drop_reason = f"table miss in table {int(table)}"
                break
            if self._stale and _NAT_FIELDS & set(flow.match_dict()):
                raise SimError(f"{format_flow(flow)} matches L3/L4 fields after a NAT "
                               f"without recirculation: OVS matches the old values "
                               f"there; use ct(..., table=N)")
            outcome = self._apply(flow, pkt, res)
            if outcome is False:
                break
            if outcome is not True:                 # ("recirc", table)
                res.recirculations += 1
                if depth + res.recirculations > MAX_RECIRC:
                    raise SimError(f"datapath depth over {MAX_RECIRC} ({depth} + "
                                   f"{res.recirculations} recirculations): OVS drops "
                                   f"the packet:\n{res.format_trace()}")
                table = outcome[1]
                self._stale = False
                continue
            if flow.metadata is not None:
                value, mask = (flow.metadata if isinstance(flow.metadata, tuple)
                               else (flow.metadata, (1 << 64) - 1))
                pkt["metadata"] = (_get(pkt, "metadata") & ~mask) | (value & mask)
            if flow.goto is None and res.drop_reason is None and not res.outputs:
                res.drop_reason = ("dropped by flow" if not flow.actions else
                                   f"pipeline ended in table {flow.table} without output")
            table = flow.goto
        return res

    def outputs_to(self, port):
        """Packets the last run() sent to `port`."""
        return self.last.outputs_to(port) if self.last else []

    def _apply(self, flow, pkt, res):
        """Apply-actions, in order, on `pkt`.  False if the packet is gone,
        ("recirc", table) when a ct action recirculates it, else True."""
        for n, action in enumerate(flow.actions):
            name, args = action[0], action[1:]
            if name == "ct":
                commit, zone, table, nat = args
                if table is not None and (n != len(flow.actions) - 1 or flow.goto is not None
                                          or flow.metadata is not None):
                    raise SimError(f"not modelled: actions, goto or write-metadata after "
                                   f"ct(table=...): {format_flow(flow)}")
                translated = self.ct.execute(pkt, commit, zone, nat, res.notes)
                if table is not None:
                    return ("recirc", int(table))
                for f in CT_FIELDS:             # OVS: flow_clear_conntrack()
                    pkt.pop(f, None)
                self._stale = self._stale or translated
            elif name == "output":
                port = pkt["in_port"] if args[0] == "in_port" else args[0]
                if args[0] != "in_port" and port == pkt["in_port"]:
                    res.suppressed.append(port)   # OpenFlow: never back out in_port
                else:
                    res.outputs.append((port, dict(pkt)))
            elif name == "push_vlan":
                if "vlan_vid" in pkt:
                    raise SimError(f"push_vlan on a tagged packet: {format_flow(flow)}")
                pkt["vlan_vid"] = OFPVID_PRESENT     # new outer tag, VID 0
            elif name == "pop_vlan":
                if "vlan_vid" not in pkt:
                    raise SimError(f"pop_vlan on an untagged packet: {format_flow(flow)}")
                del pkt["vlan_vid"]
            elif name == "set_field":
                if args[0] == "vlan_vid" and "vlan_vid" not in pkt:
                    raise SimError(f"set_field vlan_vid on untagged packet: {format_flow(flow)}")
                pkt[args[0]] = args[1]
            elif name == "move":
                src, dst = args
                if src not in pkt:
                    raise SimError(f"move from {src}, absent in {format_packet(pkt)}")
                pkt[dst] = pkt[src]
            elif name == "dec_ttl":
                ttl = pkt.get("ip_ttl", 64)
                if ttl <= 1:     # OVS: sent to controller as invalid TTL, dropped
                    res.drop_reason = "ttl expired"
                    return False
                pkt["ip_ttl"] = ttl - 1
            else:
                raise SimError(f"unknown action {action!r}")
        return True
