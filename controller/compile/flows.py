"""Flows as plain, comparable values.

The compiler produces `Flow` objects, the simulator executes them, the
reconciler diffs them, and only the OpenFlow sender turns them into os-ken
messages.  A Flow is hashable and deterministic: the same intent always gives
the same Flow and therefore the same cookie.

Representation
--------------
match    tuple of (field, value) sorted by field; value is an int, a str (MAC,
         IPv4 or IPv6 in canonical form), or a (value, mask) pair.  Field names are the
         OpenFlow 1.3 OXM names os-ken uses (in_port, eth_dst, vlan_vid,
         metadata, tunnel_id, arp_tpa, ...).
actions  the apply-actions list, each a tuple:
           ("output", port)          port: int, "in_port", or "controller"
                                     (packet-in, OFPP_CONTROLLER)
           ("push_vlan", ethertype)
           ("pop_vlan",)
           ("set_field", field, value)
           ("move", src_field, dst_field)   whole-field NXM move
           ("dec_ttl",)
           ("ct", commit, zone, table, nat)   Nicira conntrack, see below
goto     next table, or None (the packet ends here after its actions); only a
         table the flow's table declares in pipeline.HOST_PIPELINE
metadata (value, mask) written by a write-metadata instruction, or None
         (flow() accepts a bare int and masks it with pipeline.METADATA_MASK)
meter    a meter id the packet goes through first (meter instruction): a
         meters.MeterId or a port's flood or service meter (meters.port_meter,
         meters.service_meter), or
         None.  Every flow that outputs to the controller must name one
         (flow() refuses it otherwise): no packet-in path is unmetered.

A flow with no actions and no goto drops the packet.

The ct action
-------------
("ct", commit, zone, table, nat):
  commit  bool: record a new connection (NXActionCT flags 1)
  zone    int 0..65535, a fixed zone (zone_src='', zone_ofs_nbits=zone)
  table   a pipeline Table to recirculate to (recirc_table), or None (0xff:
          no recirculation); only one the flow's table declares.  A ct with a table must be the flow's last
          action, without goto or write-metadata: OVS forks there (the
          recirculated copy resumes in `table`, the original continues
          untracked), and our pipeline only ever wants the recirculated copy.
  nat     None: no NAT.  (): plain `nat` -- apply the NAT of an existing
          connection (in either direction) and nothing else.
          ("src"|"dst", ip_min, ip_max, port_min, port_max): NAT a new
          connection to that range (NXActionNAT flags pipeline.NAT_SRC /
          NAT_DST); ip_max may equal ip_min; port_min = port_max = 0 means
          no port range.  OVS rejects a range without commit, so does flow().
Match fields ct_state (value, mask) with the pipeline.CT_* bits, ct_zone
(exact) and ct_mark are set by a ct action for the recirculated packet;
they are read-only (no set_field).
"""
import functools
import hashlib
import ipaddress
import re
from dataclasses import dataclass, field
from enum import IntEnum

from controller.compile.actions import load
from controller.compile.meters import declared
from controller.compile.pipeline import (
    COOKIE_HASH_BYTES, FABRIC_PIPELINE, HOST_PIPELINE, METADATA_MASK, REGISTERS, FabricTable,
    Table, cookie_of, cookie_prefix)

# Field -> kind of value, for checked construction (the Faucet lesson: refuse a
# malformed flow where it is built, not when the switch rejects it).
MATCH_FIELDS = {
    "in_port": "int", "metadata": "int", "eth_src": "mac", "eth_dst": "mac",
    "eth_type": "int", "vlan_vid": "int", "ip_proto": "int",
    "ipv4_src": "ip", "ipv4_dst": "ip", "arp_op": "int", "arp_spa": "ip",
    "arp_tpa": "ip", "arp_sha": "mac", "arp_tha": "mac", "tunnel_id": "int",
    "tcp_src": "int", "tcp_dst": "int", "udp_src": "int", "udp_dst": "int",
    "icmpv4_type": "int", "icmpv4_code": "int",
    "ipv6_src": "ip6", "ipv6_dst": "ip6", "icmpv6_type": "int", "icmpv6_code": "int",
    "ipv6_nd_target": "ip6", "ipv6_nd_sll": "mac", "ipv6_nd_tll": "mac",
    "nd_reserved": "int", "nd_options_type": "int",     # OVS extensions (Ericsson OXMs)
    **{reg.oxm: "int" for reg in REGISTERS},      # only the registers the pipeline names
    "tun_ipv4_src": "ip", "tun_ipv4_dst": "ip",
    "ct_state": "int", "ct_zone": "int", "ct_mark": "int",
}
SET_FIELDS = set(MATCH_FIELDS) - {"in_port", "ct_state", "ct_zone", "ct_mark"}
MOVE_FIELDS = {"eth_src": 48, "eth_dst": 48, "arp_sha": 48, "arp_tha": 48,
               "arp_spa": 32, "arp_tpa": 32, "ipv4_src": 32, "ipv4_dst": 32,
               "ipv6_src": 128, "ipv6_dst": 128, "ipv6_nd_tll": 48}
ACTION_ARITY = {"output": 1, "push_vlan": 1, "pop_vlan": 0, "set_field": 2,
                "move": 2, "dec_ttl": 0, "ct": 4}
CONTROLLER = "controller"     # ("output", CONTROLLER): packet-in
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


TABLE_IDS = frozenset(int(t) for t in Table)


def table_spec(table):
    """The TableSpec of a pipeline table (a Table or a FabricTable member)."""
    return FABRIC_PIPELINE[table] if isinstance(table, FabricTable) else HOST_PIPELINE[table]


class FlowError(ValueError):
    """A flow the compiler tried to build is malformed (a compiler bug)."""


@functools.lru_cache(maxsize=1 << 16)
def _canonical_ipv4(text):
    """Cached: the compiler checks the same few thousand addresses in every
    compile, and parsing them was ~10% of a cold start's CPU."""
    try:
        return str(ipaddress.IPv4Address(text)) == text
    except ValueError:
        return False


@functools.lru_cache(maxsize=1 << 16)
def _canonical_ipv6(text):
    try:
        return str(ipaddress.IPv6Address(text)) == text
    except ValueError:
        return False


def _check_value(fname, kind, value):
    if isinstance(value, tuple):
        if len(value) != 2:
            raise FlowError(f"{fname}: masked value must be (value, mask)")
        for v in value:
            _check_value(fname, kind, v)
        return
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise FlowError(f"{fname}: expected a non-negative int, got {value!r}")
    elif kind == "mac":
        if not isinstance(value, str) or not _MAC_RE.match(value):
            raise FlowError(f"{fname}: expected a lowercase MAC, got {value!r}")
    elif kind == "ip":
        if not isinstance(value, str) or not _canonical_ipv4(value):
            raise FlowError(f"{fname}: expected a canonical IPv4, got {value!r}")
    elif kind == "ip6":
        if not isinstance(value, str) or not _canonical_ipv6(value):
            raise FlowError(f"{fname}: expected a canonical (compressed) IPv6, got {value!r}")


def _check_action(action):
    if not isinstance(action, tuple) or not action or action[0] not in ACTION_ARITY:
        raise FlowError(f"unknown action {action!r}")
    name, args = action[0], action[1:]
    if len(args) != ACTION_ARITY[name]:
        raise FlowError(f"{name}: expected {ACTION_ARITY[name]} arguments, got {args!r}")
    if name == "output" and not (args[0] in ("in_port", CONTROLLER) or
                                 (isinstance(args[0], int) and args[0] > 0)):
        raise FlowError(f"output to {args[0]!r}")
    if name == "ct":
        _check_ct(*args)
    if name == "set_field":
        if args[0] not in SET_FIELDS:
            raise FlowError(f"set_field of unknown field {args[0]!r}")
        _check_value(args[0], MATCH_FIELDS[args[0]], args[1])
    if name == "move":
        src, dst = args
        if src not in MOVE_FIELDS or dst not in MOVE_FIELDS or MOVE_FIELDS[src] != MOVE_FIELDS[dst]:
            raise FlowError(f"move {src}->{dst}: fields unknown or of different widths")


def _check_ct(commit, zone, table, nat):
    if not isinstance(commit, bool):
        raise FlowError(f"ct: commit must be a bool, got {commit!r}")
    if not isinstance(zone, int) or isinstance(zone, bool) or not 0 <= zone <= 0xFFFF:
        raise FlowError(f"ct: zone must be an int 0..65535, got {zone!r}")
    if table is not None and (isinstance(table, bool) or table not in TABLE_IDS):
        raise FlowError(f"ct: table must be a pipeline table or None, got {table!r}")
    if nat is None or nat == ():
        return
    if not isinstance(nat, tuple) or len(nat) != 5 or nat[0] not in ("src", "dst"):
        raise FlowError(f"ct: nat must be None, () or (src|dst, ip_min, ip_max, "
                        f"port_min, port_max), got {nat!r}")
    _, ip_min, ip_max, port_min, port_max = nat
    _check_value("ct nat", "ip", ip_min)
    _check_value("ct nat", "ip", ip_max)
    if ip_min == "0.0.0.0" or ipaddress.IPv4Address(ip_max) < ipaddress.IPv4Address(ip_min):
        raise FlowError(f"ct: nat address range {ip_min}-{ip_max} is empty or zero")
    for p in (port_min, port_max):
        if not isinstance(p, int) or isinstance(p, bool) or not 0 <= p <= 0xFFFF:
            raise FlowError(f"ct: nat port {p!r} outside 0..65535")
    if (port_min == 0) != (port_max == 0) or port_max < port_min:
        raise FlowError(f"ct: nat port range {port_min}-{port_max}: give both "
                        f"(min <= max) or neither (0, 0)")
    if not commit:
        # OVS: "CT action requires commit flag if actions other than NAT
        # without arguments are specified" (OFPBAC_BAD_ARGUMENT).
        raise FlowError("ct: a nat range needs commit (the switch rejects it)")


@dataclass(frozen=True)
class Flow:
    table: int
    priority: int
    match: tuple
    actions: tuple = ()
    goto: object = None
    metadata: object = None
    owner: int = field(default=0, compare=False)
    meter: object = None

    def __post_init__(self):
        # flow_from_mod gives a plain int; keep one representation (equality
        # and the content hash of a Flow must not depend on where it came from)
        if self.meter is not None:
            object.__setattr__(self, "meter", int(self.meter))

    @property
    def key(self):
        """What OpenFlow identifies a flow by: two flows with one key can't coexist."""
        return (self.table, self.priority, self.match)

    @property
    def content(self):
        base = (self.table, self.priority, self.match, self.actions, self.goto, self.metadata)
        # a flow without a meter hashes as it did before meters existed: an
        # upgrade changes only the cookies of the metered flows
        return base if self.meter is None else base + (("meter", self.meter),)

    @functools.cached_property
    def cookie(self):
        # cached: the reconciler and sender ask for it many times per flow
        digest = hashlib.blake2b(repr(self.content).encode(),
                                 digest_size=COOKIE_HASH_BYTES).digest()
        return cookie_of(self.owner, int.from_bytes(digest, "big"))

    def sort_key(self):
        """A deterministic send order: by table, highest priority first, then by
        cookie (the content hash; cheap, unlike formatting match and actions)."""
        return (self.table, -self.priority, self.cookie)

    def match_dict(self):
        return dict(self.match)


def flow(table, priority, match=None, actions=(), goto=None, metadata=None,
         kind=None, owner=0, meter=None):
    """Build a checked Flow.  `kind`/`owner` give the cookie's owner fields.

    A flow of a pipeline table (a `Table` or `FabricTable` member, as the
    compiler always writes) is checked against that table's declaration in
    pipeline.py: a priority band must be the table's own, a goto one of its
    next tables, a ct(table=N) one it recirculates to.  A bare table number
    is a table outside the declared pipelines (the simulator's tests build
    such flows to exercise its mechanics): only gotos forward are checked.
    tests/unit/compile/test_pipeline_graph.py shows that every compiled flow
    keeps to the declaration."""
    match = dict(match or {})
    for fname, value in match.items():
        if fname not in MATCH_FIELDS:
            raise FlowError(f"unknown match field {fname!r}")
        _check_value(fname, MATCH_FIELDS[fname], value)
    for action in actions:
        _check_action(action)
    if meter is not None and (not isinstance(meter, int) or declared(meter) is None):
        raise FlowError(f"meter {meter!r} is not declared in meters.py")
    if meter is None and ("output", CONTROLLER) in tuple(actions):
        raise FlowError("a flow that outputs to the controller needs a meter "
                        "(meters.py): no packet-in path may be unmetered")
    for n, action in enumerate(actions):
        if action[0] == "ct" and action[3] is not None and \
                (n != len(actions) - 1 or goto is not None or metadata is not None):
            raise FlowError("ct with a table must be the last action, without "
                            "goto or write-metadata (OVS forks the packet there)")
    if table not in TABLE_IDS:
        raise FlowError(f"unknown table {table}")
    if isinstance(table, (Table, FabricTable)):
        _check_against_pipeline(table_spec(table), priority, actions, goto)
    elif goto is not None and (goto not in TABLE_IDS or int(goto) <= int(table)):
        # a bare table number (the simulator's tests, fakes): no declaration
        raise FlowError(f"goto {goto} from table {table}: must be a later table")
    if not 0 <= int(priority) <= 0xFFFF:
        raise FlowError(f"priority {priority} is outside 0..65535")
    if metadata is not None:
        if not isinstance(metadata, tuple):
            metadata = (metadata, METADATA_MASK)
        _check_value("metadata", "int", metadata)
    return Flow(
        table=int(table), priority=int(priority),
        match=tuple(sorted(match.items())), actions=tuple(actions),
        goto=None if goto is None else int(goto),
        metadata=metadata,
        owner=cookie_prefix(kind, owner) if kind is not None else 0,
        meter=meter,
    )


def _check_against_pipeline(spec, priority, actions, goto):
    """The pipeline's declaration, enforced where a flow is built: a band of
    this table, a declared goto, a declared conntrack recirculation."""
    name = spec.table.name
    if isinstance(priority, IntEnum) and type(priority) is not spec.bands:
        raise FlowError(f"priority {type(priority).__name__}.{priority.name} used in "
                        f"table {name}, whose bands are Prio.{spec.bands.__name__}")
    if goto is not None and goto not in spec.next_tables:
        raise FlowError(f"goto {goto} from table {name}: not one of its next tables "
                        f"{sorted(t.name for t in spec.next_tables)}")
    for action in actions:
        if action[0] == "ct" and action[3] is not None and \
                action[3] not in spec.recirculates_to:
            raise FlowError(f"ct(table={action[3]}) in table {name}: it recirculates only "
                            f"to {sorted(t.name for t in spec.recirculates_to)}")


def miss_flows(pipeline, kind):
    """Every table's table-miss flow, as the pipeline declares it: drop, or
    zero the registers it names and go on."""
    return [flow(spec.table, spec.bands.MISS,
                 actions=[load(reg, 0) for reg in spec.miss.clear],
                 goto=spec.miss.goto, kind=kind)
            for spec in pipeline.values()]


def check_unique_keys(flows):
    """Two desired flows with one OpenFlow key would overwrite each other."""
    seen = {}
    for f in flows:
        other = seen.setdefault(f.key, f)
        if other is not f and other != f:
            raise FlowError(f"two flows share table/priority/match {f.key}: {other} vs {f}")
    return flows
