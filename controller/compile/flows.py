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
from hashlib import blake2b as _blake2b
import ipaddress
import re
from dataclasses import dataclass, field
from enum import IntEnum

from controller.compile.actions import load
from controller.compile.meters import declared
from controller.compile.pipeline import (
    COOKIE_HASH_BYTES, COOKIE_HASH_MASK, FABRIC_PIPELINE, HOST_PIPELINE, METADATA_MASK,
    REGISTERS, FabricTable, Table, cookie_prefix)

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


class _CachedCookie:
    """Flow.cookie, computed once and then read from the instance's __dict__.
    flow() puts it there as it builds the flow; this computes it for Flows
    made otherwise (flowmod.flow_from_mod's).  A non-data descriptor, like
    functools.cached_property but without its lock: the reconciler and the
    sender ask for a flow's cookie many times.

    The cookie's hash part is blake2b of repr(Flow.content): that exact text,
    forever, or an upgraded controller would not recognise a single installed
    flow (tests/unit/compile/test_flow_speed_invariants.py holds every cookie
    of the golden worlds)."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        d = obj.__dict__
        base = (d["table"], d["priority"], d["match"], d["actions"], d["goto"], d["metadata"])
        meter = d["meter"]
        content = base if meter is None else base + (("meter", meter),)
        digest = _blake2b(repr(content).encode(), digest_size=COOKIE_HASH_BYTES).digest()
        cookie = d[self.name] = d["owner"] | (int.from_bytes(digest, "big") & COOKIE_HASH_MASK)
        return cookie


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

    cookie = _CachedCookie()

    def __hash__(self):
        # the dataclass's hash (the compared fields), computed once: every set
        # a flow goes through (frozenset of a compile, the reconciler's diffs)
        # hashes it again
        d = self.__dict__
        h = d.get("_hash")
        if h is None:
            h = d["_hash"] = hash((d["table"], d["priority"], d["match"], d["actions"],
                                   d["goto"], d["metadata"], d["meter"]))
        return h

    def __getstate__(self):
        # a str's hash differs from process to process: never carry it over
        state = dict(self.__dict__)
        state.pop("_hash", None)
        return state

    def sort_key(self):
        """A deterministic send order: by table, highest priority first, then by
        cookie (the content hash; cheap, unlike formatting match and actions)."""
        return (self.table, -self.priority, self.cookie)

    def match_dict(self):
        return dict(self.match)


# --- what flow() found valid, so that it checks each thing once ---------------
# A compile builds the same few thousand match items, actions, meters and
# (table, band, goto) over and over; each is checked in full the first time
# (by the functions above, so a malformed flow raises what it always raised)
# and remembered when it passes.  Keys are type-exact: True == 1 and an IntEnum
# member equals its int, but the checks (and repr) tell them apart, so only
# values whose type is exactly int or str (or a pair of those) are remembered
# by value, and an action by its value together with the types of its
# elements.  Remembered with each: its repr, the piece of the cookie's text,
# and the first object seen with that value, which every later Flow shares (as
# it shares whole match and action tuples): a compile's 100,000 flows hold a
# few thousand distinct tuples, not a few hundred thousand (30 hosts x 50
# ports: 30 MiB of flows, not 67), and the garbage collector has less to walk.
_CACHE_LIMIT = 1 << 17              # entries; a cache that grows past it starts over
_SIMPLE = (int, str)
_match_ok = {}                      # (field, value) item -> (that item, repr(item))
_action_ok = {}                     # (action, element types) -> (is it a ct, action, repr)
_match_of = {}                      # tuple of _match_ok's values -> (match tuple, its repr)
_actions_of = {}                    # tuple of _action_ok's values -> (actions tuple, its repr)
_metadata_ok = set()                # (value, mask) pairs
_meter_ok = set()                   # meter ids declared in meters.py
_pipeline_ok = set()                # (type(table), table, type(priority), goto)
_prefix_of = {}                     # (kind, owner) -> cookie_prefix(kind, owner)
_new_object = object.__new__


def _simple_item(value):
    t = type(value)
    return t is int or t is str or (t is tuple and len(value) == 2 and
                                    type(value[0]) in _SIMPLE and type(value[1]) in _SIMPLE)


def _check_match_item(fname, value):
    """Check one match item; what _match_ok remembers of it, or None."""
    if fname not in MATCH_FIELDS:
        raise FlowError(f"unknown match field {fname!r}")
    _check_value(fname, MATCH_FIELDS[fname], value)
    if not _simple_item(value):
        return None
    if len(_match_ok) >= _CACHE_LIMIT:
        _match_ok.clear()
    item = (fname, value)
    hit = _match_ok[item] = (item, repr(item))
    return hit


def _check_action_once(action):
    """_check_action, remembered: (is it a ct action, the action, its repr), the
    last two None when it is not remembered."""
    key = None
    if type(action) is tuple:
        types = tuple(map(type, action))
        if tuple not in types:                  # nested values: checked every time
            key = (action, types)
            try:
                hit = _action_ok.get(key)
            except TypeError:                   # unhashable: _check_action says why
                key = hit = None
            if hit is not None:
                return hit
    _check_action(action)
    if key is None:
        return action[0] == "ct", None, None
    if len(_action_ok) >= _CACHE_LIMIT:
        _action_ok.clear()
    hit = _action_ok[key] = (action[0] == "ct", action, repr(action))
    return hit


def _tuple_text(texts):
    """The repr of a tuple, from the reprs of its elements."""
    return f"({texts[0]},)" if len(texts) == 1 else "(" + ", ".join(texts) + ")"


def _shared(cache, hits):
    """(the tuple of the remembered objects in `hits`, its repr), one per
    distinct value."""
    got = cache.get(hits)
    if got is None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        got = cache[hits] = (tuple([h[-2] for h in hits]), _tuple_text([h[-1] for h in hits]))
    return got


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
    keeps to the declaration.

    Cheap because a compile builds the same pieces over and over: the checks
    run in the order they always did (a flow with two faults names the same
    one), what passed once is remembered (the caches above), the Flow is made
    without the frozen dataclass's __init__ (same fields, same values), and
    its cookie is computed here, from the remembered reprs of its match items
    and actions: the same text as repr(Flow.content), hence the same cookie.
    Its match and actions are shared tuples of shared items (equal values of
    equal types: the same repr, the same Flow)."""
    if type(match) is not dict:
        match = dict(match or {})
    items = sorted(match.items())
    match_hits = []         # the (sorted) items, all remembered as valid ...
    for item in items:
        value = item[1]
        t = type(value)
        if t is int or t is str or (t is tuple and len(value) == 2 and
                                    type(value[0]) in _SIMPLE and type(value[1]) in _SIMPLE):
            hit = _match_ok.get(item)
            if hit is not None:
                match_hits.append(hit)
                continue
        break
    known = True            # ... and so are the actions: shared tuples, the cookie's text
    if len(match_hits) != len(items):
        # something not seen before: check all of it, in the order it always was
        for fname, value in match.items():
            if _check_match_item(fname, value) is None:
                known = False
        if known:
            match_hits = [_match_ok.get(item) for item in items]
            known = None not in match_hits      # None: a cache started over meanwhile
    actions = tuple(actions)
    has_ct = False
    action_hits = []
    for action in actions:
        try:            # _check_action_once's lookup, inline (the hottest loop here)
            hit = _action_ok.get((action, tuple(map(type, action))))
        except TypeError:
            hit = None
        if hit is None:
            hit = _check_action_once(action)
            if hit[2] is None:
                known = False
        if hit[0]:
            has_ct = True
        action_hits.append(hit)
    if meter is not None and not (isinstance(meter, int) and meter in _meter_ok):
        if not isinstance(meter, int) or declared(meter) is None:
            raise FlowError(f"meter {meter!r} is not declared in meters.py")
        _meter_ok.add(meter)
    if meter is None and ("output", CONTROLLER) in actions:
        raise FlowError("a flow that outputs to the controller needs a meter "
                        "(meters.py): no packet-in path may be unmetered")
    if has_ct:
        for n, action in enumerate(actions):
            if action[0] == "ct" and action[3] is not None and \
                    (n != len(actions) - 1 or goto is not None or metadata is not None):
                raise FlowError("ct with a table must be the last action, without "
                                "goto or write-metadata (OVS forks the packet there)")
    if table not in TABLE_IDS:
        raise FlowError(f"unknown table {table}")
    tt = type(table)
    if tt is Table or tt is FabricTable:
        key = (tt, table, type(priority), goto)
        if has_ct or key not in _pipeline_ok:
            _check_against_pipeline(table_spec(table), priority, actions, goto)
            _pipeline_ok.add(key)
    elif goto is not None and (goto not in TABLE_IDS or int(goto) <= int(table)):
        # a bare table number (the simulator's tests, fakes): no declaration
        raise FlowError(f"goto {goto} from table {table}: must be a later table")
    prio = int(priority)
    if not 0 <= prio <= 0xFFFF:
        raise FlowError(f"priority {priority} is outside 0..65535")
    if metadata is not None:
        if not isinstance(metadata, tuple):
            metadata = (metadata, METADATA_MASK)
        if not (_simple_item(metadata) and metadata in _metadata_ok):
            _check_value("metadata", "int", metadata)
            if _simple_item(metadata):
                if len(_metadata_ok) >= _CACHE_LIMIT:
                    _metadata_ok.clear()
                _metadata_ok.add(metadata)
    if kind is None:
        prefix = 0
    elif type(owner) is int:
        key = (kind, owner)
        prefix = _prefix_of.get(key)
        if prefix is None:
            if len(_prefix_of) >= _CACHE_LIMIT:
                _prefix_of.clear()
            prefix = _prefix_of[key] = cookie_prefix(kind, owner)
    else:
        prefix = cookie_prefix(kind, owner)
    table = int(table)
    goto = None if goto is None else int(goto)
    meter = None if meter is None else int(meter)
    if known:
        match, match_text = _shared(_match_of, tuple(match_hits))
        actions, action_text = _shared(_actions_of, tuple(action_hits))
    else:
        match = tuple(items)
    # what Flow(...) would hold: the same fields in the same order, the meter
    # as a plain int (Flow.__post_init__); written into the instance's own
    # __dict__ (it shares its keys with every Flow's: a third smaller than a
    # dict of our own) ...
    f = _new_object(Flow)
    d = f.__dict__
    d["table"] = table
    d["priority"] = prio
    d["match"] = match
    d["actions"] = actions
    d["goto"] = goto
    d["metadata"] = metadata
    d["owner"] = prefix
    d["meter"] = meter
    # ... and its cookie, as Flow.cookie computes it: repr(Flow.content)
    if known:
        text = (f"({table}, {prio}, {match_text}, {action_text}, {goto!r}, {metadata!r}"
                + (")" if meter is None else f", ('meter', {meter}))"))
        digest = _blake2b(text.encode(), digest_size=COOKIE_HASH_BYTES).digest()
        d["cookie"] = prefix | (int.from_bytes(digest, "big") & COOKIE_HASH_MASK)
    return f


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
        other = seen.setdefault((f.table, f.priority, f.match), f)      # f.key
        if other is not f and other != f:
            raise FlowError(f"two flows share table/priority/match {f.key}: {other} vs {f}")
    return flows
