"""A pure-Python OpenFlow 1.3 flow-table simulator, as Open vSwitch applies it.

Why it exists: the compiler's output is a set of plain `Flow` values, and the
cheapest way to know they do what we mean (isolation between tenants, ARP
answered from flows, no loops over the fabric or the tunnel mesh) is to run
packets through them without a switch.  Faucet's clib/fakeoftable.py showed
the value of this; this is our own, smaller take on it, fitted to flows.py.

Two layers of checking, both aimed at compiler bugs:

* `install_check(flow)` refuses what ovs-vswitchd would refuse at flow-mod
  time (missing prerequisites, value bits outside the mask, unmaskable fields
  masked, set_field vlan_vid without OFPVID_PRESENT, pop_vlan or set_field
  vlan_vid on a flow that cannot be tagged, dec_ttl on non-IP...).  A flow the
  switch rejects would otherwise "work" here and fail in the lab.
* At run time, two flows of one priority matching the same packet raise
  SimError: OpenFlow leaves the choice undefined, so it is always a bug.

Packets are dicts of OXM field names (flows.MATCH_FIELDS, plus ip_ttl and
icmp_id) in the canonical value forms flows.py uses.  As in OVS, the pipeline
fields metadata, reg5-7, tunnel_id, tun_ipv4_*, ct_state, ct_zone, ct_mark
read as 0 when absent, and an absent vlan_vid is OFPVID_NONE (0), so
`vlan_vid=0` matches untagged packets.  Any other absent field never matches
(this is how prerequisites behave at run time).

Conntrack (the ct action, see flows.py) is modelled on OVS 3.1's userspace
conntrack (lib/conntrack.c), which is what the netdev datapath runs; see
`Conntrack` for what is and is not modelled.  Each Simulator owns one
Conntrack that persists across run() calls (`sim.conntrack` lists entries).
"""
import ipaddress
import re
from collections import deque, namedtuple
from dataclasses import dataclass, field as dc_field

from controller.flows import CONTROLLER, MATCH_FIELDS, Flow
from controller.pipeline import (CT_DNAT, CT_EST, CT_INV, CT_NEW, CT_RPL,
                                 CT_SNAT, CT_TRK, ETH_TYPE_ARP, ETH_TYPE_IP,
                                 ETH_TYPE_VLAN, OFPVID_PRESENT, Table)


class SimError(Exception):
    """The flows (or the test's packet) are wrong in a way OVS would not hide."""


# --- fields -----------------------------------------------------------------
KINDS = dict(MATCH_FIELDS, ip_ttl="int", icmp_id="int")
_INT_WIDTH = {"in_port": 32, "metadata": 64, "eth_type": 16, "vlan_vid": 13,
              "ip_proto": 8, "arp_op": 16, "tunnel_id": 64, "tcp_src": 16,
              "tcp_dst": 16, "udp_src": 16, "udp_dst": 16, "icmpv4_type": 8,
              "icmpv4_code": 8, "reg5": 32, "reg6": 32, "reg7": 32, "ip_ttl": 8,
              "icmp_id": 16, "ct_zone": 16, "ct_mark": 32,
              "ct_state": 8}   # OVS refuses ct_state bits above 0x80
WIDTH = {f: (_INT_WIDTH[f] if k == "int" else 48 if k == "mac" else 32)
         for f, k in KINDS.items()}
# Fields OVS refuses to mask (OFPBMC_BAD_MASK): mf_field maskable=MFM_NONE.
UNMASKABLE = {"in_port", "eth_type", "ip_proto", "arp_op", "icmpv4_type", "icmpv4_code",
              "ct_zone"}
# Fields that exist in every packet with value 0 until set (OVS flow metadata).
DEFAULTS = {"metadata": 0, "reg5": 0, "reg6": 0, "reg7": 0, "tunnel_id": 0,
            "tun_ipv4_src": "0.0.0.0", "tun_ipv4_dst": "0.0.0.0", "vlan_vid": 0,
            "ct_state": 0, "ct_zone": 0, "ct_mark": 0}
# Set by ct actions only: a packet entering a switch is untracked.
CT_FIELDS = {"ct_state", "ct_zone", "ct_mark"}
# Per-switch state that does not travel on a wire.
PIPELINE_ONLY = {"in_port", "metadata", "reg5", "reg6", "reg7", "tunnel_id",
                 "tun_ipv4_src", "tun_ipv4_dst"} | CT_FIELDS
_IP = {ETH_TYPE_IP, 0x86DD}
# field -> [(field it needs, allowed values)], as OVS's mf_are_prereqs_ok.
PREREQS = {f: [("eth_type", {ETH_TYPE_ARP})]
           for f in ("arp_op", "arp_spa", "arp_tpa", "arp_sha", "arp_tha")}
PREREQS.update({f: [("eth_type", {ETH_TYPE_IP})] for f in ("ipv4_src", "ipv4_dst")})
PREREQS["ip_proto"] = [("eth_type", _IP)]
PREREQS["ip_ttl"] = [("eth_type", _IP)]
for _proto, _fields in ((6, ("tcp_src", "tcp_dst")), (17, ("udp_src", "udp_dst")),
                        (1, ("icmpv4_type", "icmpv4_code", "icmp_id"))):
    for _f in _fields:
        PREREQS[_f] = [("eth_type", {ETH_TYPE_IP} if _proto == 1 else _IP),
                       ("ip_proto", {_proto})]
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def to_bits(fname, value):
    """Field value in canonical form -> int, so masks work the same for all kinds."""
    kind = KINDS[fname]
    if kind == "mac":
        return int(value.replace(":", ""), 16)
    if kind == "ip":
        return int(ipaddress.IPv4Address(value))
    return value


def from_bits(fname, bits):
    """Inverse of to_bits."""
    kind = KINDS[fname]
    if kind == "mac":
        return ":".join(f"{b:02x}" for b in bits.to_bytes(6, "big"))
    if kind == "ip":
        return str(ipaddress.IPv4Address(bits))
    return bits


def _valid(fname, value):
    """Is `value` a canonical, in-range value of `fname` (no mask)?"""
    kind = KINDS[fname]
    if kind == "mac":
        return isinstance(value, str) and bool(_MAC_RE.match(value))
    if kind == "ip":
        try:
            return str(ipaddress.IPv4Address(value)) == value
        except ValueError:
            return False
    return (isinstance(value, int) and not isinstance(value, bool)
            and 0 <= value < (1 << WIDTH[fname]))


def _value_mask(fname, want):
    """A match value -> (value bits, mask bits); an unmasked value is exact."""
    if isinstance(want, tuple):
        return to_bits(fname, want[0]), to_bits(fname, want[1])
    return to_bits(fname, want), (1 << WIDTH[fname]) - 1


def _get(packet, fname):
    return packet.get(fname, DEFAULTS.get(fname))


# --- install-time checks ------------------------------------------------------
def _exact(match, fname):
    """The exact value a match pins `fname` to, or None."""
    want = match.get(fname)
    return None if want is None or isinstance(want, tuple) else want


def _prereqs_ok(match, fname):
    return all(_exact(match, need) in allowed for need, allowed in PREREQS.get(fname, ()))


def _tagged(match):
    """Does the match guarantee a VLAN tag (OFPVID_PRESENT matched as 1)?"""
    if "vlan_vid" not in match:
        return False
    value, mask = _value_mask("vlan_vid", match["vlan_vid"])
    return bool(value & mask & OFPVID_PRESENT)


def install_check(flow):
    """Raise SimError if ovs-vswitchd would reject `flow`; see module doc.

    The prerequisite checks follow OVS: each flow is checked on its own
    match, so a goto'd table cannot rely on what an earlier table matched.
    """
    def bad(why):
        raise SimError(f"switch would reject {format_flow(flow)}: {why}")

    match = flow.match_dict()
    for fname, want in match.items():
        parts = want if isinstance(want, tuple) else (want,)
        if not all(_valid(fname, p) for p in parts):
            bad(f"{fname}={want!r} out of range")         # OFPBMC_BAD_VALUE
        if isinstance(want, tuple):
            if fname in UNMASKABLE:
                bad(f"{fname} cannot be masked")          # OFPBMC_BAD_MASK
            value, mask = _value_mask(fname, want)
            if value & ~mask:
                bad(f"{fname} value has bits outside its mask")  # BAD_WILDCARDS
        if not _prereqs_ok(match, fname):
            bad(f"{fname} needs {PREREQS[fname]} in the match")  # BAD_PREREQ
    if "vlan_vid" in match:
        value, mask = _value_mask("vlan_vid", match["vlan_vid"])
        if value & 0xFFF and mask & OFPVID_PRESENT and not value & OFPVID_PRESENT:
            bad("vlan_vid matches a VID without OFPVID_PRESENT: never matches")
    if _exact(match, "eth_type") in (ETH_TYPE_VLAN, 0x88A8):
        bad("eth_type is the inner type in OpenFlow; match vlan_vid for tags")
    tagged = _tagged(match)
    for action in flow.actions:
        name, args = action[0], action[1:]
        if name == "push_vlan":
            if args[0] not in (ETH_TYPE_VLAN, 0x88A8):
                bad(f"push_vlan of ethertype {args[0]:#x}")
            if tagged:
                bad("push_vlan on a tagged packet (QinQ) is not modelled")
            tagged = True
        elif name == "pop_vlan":
            if not tagged:
                bad("pop_vlan on a flow whose match does not guarantee a tag")
            tagged = False
        elif name == "set_field":
            fname, value = args
            if not _valid(fname, value):
                bad(f"set_field {fname}={value!r} out of range")
            if fname == "vlan_vid" and not (tagged and value & OFPVID_PRESENT):
                bad("set_field vlan_vid needs a tag and OFPVID_PRESENT in the value")
            if not _prereqs_ok(match, fname):
                bad(f"set_field {fname} needs {PREREQS[fname]} in the match")
        elif name == "move":
            for fname in args:
                if not _prereqs_ok(match, fname):
                    bad(f"move {fname} needs {PREREQS[fname]} in the match")
        elif name == "dec_ttl" and _exact(match, "eth_type") not in _IP:
            bad("dec_ttl needs an IP eth_type in the match")
        elif name == "ct":
            _ct_install_check(flow, match, action, bad)
    if flow.metadata is not None:
        value, mask = (flow.metadata if isinstance(flow.metadata, tuple)
                       else (flow.metadata, (1 << 64) - 1))
        if not (_valid("metadata", value) and _valid("metadata", mask)):
            bad("write-metadata out of 64 bits")


def _ct_install_check(flow, match, action, bad):
    commit, zone, table, nat = action[1:]
    if _exact(match, "eth_type") != ETH_TYPE_IP:
        # OVS: OFPBAC_MATCH_INCONSISTENT without an IP eth_type; only IPv4
        # conntrack is modelled here.
        bad("ct needs eth_type=0x0800 in the match")
    if nat not in (None, ()) and not commit:
        bad("ct with a nat range needs commit")
    if commit and "ct_state" in match:
        value, mask = _value_mask("ct_state", match["ct_state"])
        if value & mask & CT_INV:
            bad("ct(commit) on a flow that matches +inv")   # MATCH_INCONSISTENT
    if table is not None and (flow.actions.index(action) != len(flow.actions) - 1
                              or flow.goto is not None
                              or flow.metadata is not None):
        bad("not modelled: actions, goto or write-metadata after ct(table=...) "
            "(OVS forks the packet there)")


# --- conntrack -----------------------------------------------------------------
MAX_RECIRC = 6      # dpif-netdev MAX_RECIRC_DEPTH: recirculations + tunnel pops
ICMP_REVERSE = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15}   # request <-> reply
ICMP_NEW = {8, 13, 15}         # icmp4_valid_new: only requests start a connection
_L4_PORTS = {6: ("tcp_src", "tcp_dst"), 17: ("udp_src", "udp_dst")}
_NAT_BIT = {"src": CT_SNAT, "dst": CT_DNAT}
_NAT_REVERSE = {"src": "dst", "dst": "src"}


def _ephemeral(port):
    """OVS's fallback source-port class when no port range is given."""
    return (1, 511) if port < 512 else (600, 1023) if port < 1024 else (1024, 65535)


@dataclass
class _Conn:
    zone: int
    proto: int
    orig: tuple         # key (zone, proto, src, dst, a, b) of the original direction
    reply: tuple        # key of the reply direction (after NAT)
    nat: str = None     # "src" | "dst" | None
    mark: int = 0
    replied: bool = False


class Conntrack:
    """A connection table as OVS 3.1's userspace conntrack keeps it.

    Keys are (zone, ip_proto, src, dst, a, b): for TCP/UDP a, b are the
    ports; for ICMP a is the echo id (packet field icmp_id, 0 when absent)
    and b the ICMP type (a request's reply direction has the reply type); for
    other IP protocols a = b = 0.  A committed connection is stored under
    its original and its reply key.

    ct_state, as process_one() computes it (always | trk):
    * found in the original direction: +new until a reply has been seen
      (OVS: UDP/ICMP "first"/"multiple" state, TCP SYN_SENT), then +est;
    * found in the reply direction: +est+rpl (and from then on the
      connection is established both ways);
    * not found: +new (+inv for an ICMP echo reply or other non-request),
      recorded only by commit.  A new TCP packet is assumed to be a SYN
      (tcp_flags are not modelled).
    * a ct in another zone than the packet's last one starts from an
      untracked state (fresh lookup); a packet already NATed in this zone
      is looked up by its translated tuple and is not NATed twice.

    NAT: with a nat range, committing a new connection picks the reply
    tuple: the addresses in order, and for TCP/UDP the first port of the
    range whose reply tuple is free in the zone (OVS starts at a hashed
    offset instead); without a port range the original port is kept if free,
    else the first free one of OVS's fallback class (1-511, 600-1023 or
    1024-65535).  ICMP ids are never translated (OVS 3.1).  When nothing is
    free OVS records nothing and the packet goes on untranslated (+new): so
    does this, with a note in Result.notes.  nat=() or a range on an
    existing connection applies its translation: the original direction is
    rewritten to the reverse of the reply tuple, the reply direction to the
    reverse of the original (+snat/+dnat set accordingly).

    ct(commit,nat) with no range on a *new* connection raises SimError: on
    OVS 3.1 (seen on this machine) it records the reply tuple as (src
    0.0.0.0, dport 0), so replies never match.  On an existing connection it
    is fine (it applies that connection's NAT).

    Not modelled: ICMP errors (related), TCP flags/windows, timeouts,
    ct_mark/ct_label setting (ct_mark reads 0), ALGs, IPv6.
    """

    def __init__(self):
        self._by_key = {}       # key -> (_Conn, is_reply_direction)

    def __len__(self):
        return len(self._conns())

    def _conns(self):
        seen = {}
        for conn, _ in self._by_key.values():
            seen.setdefault(id(conn), conn)
        return list(seen.values())

    def flush(self, zone=None):
        """Forget every connection (of `zone`)."""
        self._by_key = {k: v for k, v in self._by_key.items()
                        if zone is not None and v[0].zone != zone}

    def entries(self):
        """[{zone, proto, orig, reply, nat, mark, replied}], sorted; orig and
        reply are (src, dst, sport, dport) -- for ICMP (src, dst, id, type)."""
        out = [{"zone": c.zone, "proto": c.proto, "orig": c.orig[2:],
                "reply": c.reply[2:], "nat": c.nat, "mark": c.mark,
                "replied": c.replied} for c in self._conns()]
        return sorted(out, key=lambda e: (e["zone"], e["proto"], e["orig"]))

    @staticmethod
    def key_of(pkt, zone):
        if pkt.get("eth_type") != ETH_TYPE_IP:
            raise SimError(f"ct on a non-IPv4 packet is not modelled: {format_packet(pkt)}")
        proto = pkt.get("ip_proto")
        need = ["ipv4_src", "ipv4_dst", "ip_proto"] + list(_L4_PORTS.get(proto, ()))
        if proto == 1:
            need.append("icmpv4_type")
        missing = [f for f in need if f not in pkt]
        if missing:
            raise SimError(f"ct needs {missing} in the packet: {format_packet(pkt)}")
        if proto in _L4_PORTS:
            a, b = (pkt[f] for f in _L4_PORTS[proto])
        elif proto == 1:
            if pkt["icmpv4_type"] not in ICMP_REVERSE:
                raise SimError(f"ICMP type {pkt['icmpv4_type']} (errors are 'related' "
                               f"via their inner header) is not modelled")
            a, b = pkt.get("icmp_id", 0), pkt["icmpv4_type"]
        else:
            a = b = 0
        return (zone, proto, pkt["ipv4_src"], pkt["ipv4_dst"], a, b)

    @staticmethod
    def reverse(key):
        zone, proto, src, dst, a, b = key
        if proto == 1:
            return (zone, proto, dst, src, a, ICMP_REVERSE[b])
        return (zone, proto, dst, src, b, a)

    def lookup(self, key):
        """(conn, is_reply) or (None, None)."""
        return self._by_key.get(key, (None, None))

    def execute(self, pkt, commit, zone, nat, notes):
        """Run `pkt` (modified in place) through ct(commit, zone, nat).
        Returns True when it translated the packet."""
        state = pkt.get("ct_state", 0)
        if state and pkt.get("ct_zone", 0) != zone:
            state = 0           # "Reset ct_state whenever entering a new zone."
        key = self.key_of(pkt, zone)
        conn = reply = None
        if state & (CT_SNAT | CT_DNAT):     # already NATed here: look up as translated
            conn, reply = self.lookup(self.reverse(key))
            reply = None if conn is None else not reply
        if conn is None:
            conn, reply = self.lookup(key)
        translated = False
        if conn is not None:
            conn.replied = conn.replied or reply
            if conn.replied:
                state = (state | CT_EST | (CT_RPL if reply else 0)) & ~CT_NEW
            else:
                state |= CT_NEW
            if nat is not None and conn.nat and not state & (CT_SNAT | CT_DNAT):
                state |= self._translate(pkt, conn, reply)
                translated = True
        elif key[1] == 1 and key[5] not in ICMP_NEW:
            state = CT_INV
        else:
            state = CT_NEW
            if commit and nat == ():
                raise SimError(
                    f"ct(commit,nat) without a range on a new connection {key[2:]} "
                    f"(zone {zone}): OVS 3.1's userspace conntrack then records a "
                    f"broken reply tuple (src 0.0.0.0, dport 0) and replies stay +new; "
                    f"commit new connections without nat, or with a nat range")
            if commit:
                conn = self._commit(key, nat, notes)
                if conn is not None and conn.nat:
                    state |= self._translate(pkt, conn, False)
                    translated = True
        pkt["ct_state"] = state | CT_TRK
        pkt["ct_zone"] = zone
        pkt["ct_mark"] = conn.mark if conn is not None else 0
        return translated

    def _commit(self, key, nat, notes):
        kind = None
        reply = self.reverse(key)
        if nat:                                     # a range (not None, not ())
            kind = nat[0]
            reply = self._pick(key, *nat)
            if reply is None:
                notes.append(f"NAT exhausted for {key[2:]} in zone {key[0]}: "
                             f"nothing recorded, packet untranslated")
                return None
        elif reply in self._by_key:
            raise SimError(f"new connection {key[2:]} in zone {key[0]}: its reply "
                           f"tuple is already used by another connection")
        conn = _Conn(key[0], key[1], key, reply, kind)
        self._by_key[key] = (conn, False)
        self._by_key[reply] = (conn, True)
        return conn

    def _pick(self, key, kind, ip_min, ip_max, port_min, port_max):
        """The first free reply key for NATing `key`, or None."""
        zone, proto, src, dst, a, b = key
        rev = self.reverse(key)
        lo, hi = int(ipaddress.IPv4Address(ip_min)), int(ipaddress.IPv4Address(ip_max))
        ips = (str(ipaddress.IPv4Address(n)) for n in range(lo, hi + 1))
        if proto not in _L4_PORTS:       # ICMP keeps its id, others have no ports
            for ip in ips:
                cand = (zone, proto, dst, ip, rev[4], rev[5]) if kind == "src" else \
                       (zone, proto, ip, src, rev[4], rev[5])
                if cand not in self._by_key:
                    return cand
            return None
        ports = range(port_min, port_max + 1) if port_min else None
        first_ip = None
        for ip in ips:
            first_ip = first_ip or ip
            if kind == "src":            # reply: dst -> ip, dport = new source port
                for p in ports or [a]:
                    cand = (zone, proto, dst, ip, b, p)
                    if cand not in self._by_key:
                        return cand
            else:                        # reply: ip -> src, sport = new dest port
                for p in ports or [b]:
                    cand = (zone, proto, ip, src, p, a)
                    if cand not in self._by_key:
                        return cand
        if kind == "src" and ports:
            return None
        # OVS falls back to another source port (its ephemeral class).
        c_lo, c_hi = _ephemeral(a)
        fixed = (dst, first_ip, b) if kind == "src" else \
                (first_ip, src, ports[0] if ports else b)
        for p in range(c_lo, c_hi + 1):
            cand = (zone, proto, *fixed, p)
            if cand not in self._by_key:
                return cand
        return None

    @staticmethod
    def _translate(pkt, conn, reply):
        """Rewrite `pkt` to the reverse of the other direction's key; the
        ct_state NAT bit it earns."""
        _, proto, src, dst, a, b = conn.orig if reply else conn.reply
        pkt["ipv4_src"], pkt["ipv4_dst"] = dst, src
        if proto in _L4_PORTS:
            fs, fd = _L4_PORTS[proto]
            pkt[fs], pkt[fd] = b, a
        return _NAT_BIT[_NAT_REVERSE[conn.nat] if reply else conn.nat]


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
                if best is not None:
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


# --- formatting ----------------------------------------------------------------
_HEX = {"metadata", "eth_type", "vlan_vid", "tunnel_id", "reg5", "reg6", "reg7",
        "ct_state", "ct_mark"}


def _fmt_value(fname, value):
    if isinstance(value, tuple):
        return "/".join(_fmt_value(fname, v) for v in value)
    return hex(value) if fname in _HEX and isinstance(value, int) else str(value)


def format_packet(packet):
    return "{" + ", ".join(f"{k}={_fmt_value(k, v)}" for k, v in sorted(packet.items())) + "}"


def format_flow(flow):
    """One line, close to ovs-ofctl dump-flows, for assertion messages."""
    match = ",".join(f"{k}={_fmt_value(k, v)}" for k, v in flow.match)
    acts = []
    for a in flow.actions:
        if a[0] == "set_field":
            acts.append(f"set_field:{_fmt_value(a[1], a[2])}->{a[1]}")
        elif a[0] == "move":
            acts.append(f"move:{a[1]}->{a[2]}")
        elif a[0] == "push_vlan":
            acts.append(f"push_vlan:{a[1]:#x}")
        elif a[0] == "ct":
            acts.append(format_ct(a))
        else:
            acts.append(":".join(str(x) for x in a))
    if flow.metadata is not None:
        acts.append(f"write_metadata:{_fmt_value('metadata', flow.metadata)}")
    if flow.goto is not None:
        acts.append(f"goto_table:{flow.goto}")
    return (f"table={flow.table},priority={flow.priority}"
            f"{',' + match if match else ''} actions={','.join(acts) or 'drop'}")


def format_ct(action):
    """ct(...) as ovs-ofctl prints it."""
    _, commit, zone, table, nat = action
    parts = ["commit"] if commit else []
    if table is not None:
        parts.append(f"table={int(table)}")
    parts.append(f"zone={zone}")
    if nat == ():
        parts.append("nat")
    elif nat:
        kind, ip_min, ip_max, p_min, p_max = nat
        rng = ip_min if ip_max == ip_min else f"{ip_min}-{ip_max}"
        if p_min:
            rng += f":{p_min}" if p_max == p_min else f":{p_min}-{p_max}"
        parts.append(f"nat({kind}={rng})")
    return f"ct({','.join(parts)})"


# --- several switches -------------------------------------------------------------
Delivery = namedtuple("Delivery", "switch port packet")
PacketIn = namedtuple("PacketIn", "switch packet")
Hop = namedtuple("Hop", "switch in_port result")
Lost = namedtuple("Lost", "switch port packet reason")
TUNNEL_ID_BITS = {"vxlan": 24, "gre": 32}   # what the wire can carry of tunnel_id


@dataclass
class _Switch:
    sim: Simulator
    tunnel_ip: str = None
    tunnel_ports: dict = None    # ofport -> "vxlan" | "gre"


class Network:
    """Switches, the wires between them, and the hosts at their other ports.

    * a fabric joins (switch, port) endpoints like a dumb hub: a frame out of
      one endpoint reaches every other endpoint of that fabric (a link is a
      fabric of two);
    * a frame out of a switch's tunnel port reaches the switch whose tunnel_ip
      is its tun_ipv4_dst, on that switch's tunnel port, with tunnel_id (cut
      to what VXLAN/GRE carry) and tun_ipv4_src/dst set;
    * a frame output to "controller" is a packet-in (self.packet_ins);
    * a frame out of any other port is delivered to a host.

    Crossing a wire drops per-switch state (metadata, registers, tunnel
    fields) as the real thing does; deliveries carry only wire fields.
    """

    def __init__(self, max_hops=256):
        self.switches = {}
        self.fabric_of = {}   # (switch, port) -> fabric name
        self.fabrics = {}     # fabric name -> [(switch, port)]
        self.max_hops = max_hops
        self.hops, self.lost, self.packet_ins = [], [], []

    def conntrack(self, switch):
        """Entries of a switch's connection table (Conntrack.entries)."""
        return self.switches[switch].sim.conntrack

    def add_switch(self, name, flows, tunnel_ip=None, tunnel_port=None, tunnel_type="vxlan",
                   tunnel_ports=None):
        """`tunnel_ports` ({ofport: "vxlan"|"gre"}) gives a switch several
        tunnel ports, as a host with one VXLAN and one GRE port has; a frame
        leaving one arrives on the peer's port of the same type."""
        if name in self.switches:
            raise SimError(f"switch {name!r} added twice")
        tunnel_ports = dict(tunnel_ports or {})
        if tunnel_port is not None:
            tunnel_ports[tunnel_port] = tunnel_type
        if (tunnel_ip is None) != (not tunnel_ports) or \
                any(t not in TUNNEL_ID_BITS for t in tunnel_ports.values()):
            raise SimError("a tunnel needs tunnel_ip, tunnel port(s) and a known tunnel_type")
        if tunnel_ip is not None and any(s.tunnel_ip == tunnel_ip for s in self.switches.values()):
            raise SimError(f"tunnel ip {tunnel_ip} used twice")
        sim = flows if isinstance(flows, Simulator) else Simulator(flows, name=name)
        self.switches[name] = _Switch(sim, tunnel_ip, tunnel_ports)
        return sim

    def add_fabric(self, name, *endpoints):
        """Attach (switch, port) endpoints to fabric `name` (created on first use)."""
        for ep in endpoints:
            sw, port = ep
            if sw not in self.switches:
                raise SimError(f"unknown switch {sw!r}")
            if ep in self.fabric_of or port in (self.switches[sw].tunnel_ports or {}):
                raise SimError(f"{ep} is already wired")
            self.fabric_of[ep] = name
            self.fabrics.setdefault(name, []).append(ep)

    def add_link(self, a, b):
        self.add_fabric(f"link:{a[0]}.{a[1]}-{b[0]}.{b[1]}", a, b)

    @staticmethod
    def _wire(packet):
        return {k: v for k, v in packet.items() if k not in PIPELINE_ONLY}

    def _by_ip(self, ip):
        return next((n for n, s in self.switches.items() if s.tunnel_ip == ip), None)

    def inject(self, switch, in_port, packet):
        """Send `packet` into `switch` on `in_port`; follow every copy to its
        end.  Returns the host deliveries; hops and lost frames are kept in
        self.hops / self.lost.  Raises SimError on a forwarding loop."""
        self.hops, self.lost, self.packet_ins = [], [], []
        deliveries = []
        queue = deque([(switch, in_port, dict(packet), frozenset(), 0)])
        while queue:
            sw, port, pkt, ancestors, depth = queue.popleft()
            state = (sw, port, tuple(sorted(pkt.items())))
            if state in ancestors or len(self.hops) >= self.max_hops:
                raise SimError(f"forwarding loop at {sw} port {port}:\n{self.format_trace()}")
            ancestors = ancestors | {state}
            node = self.switches[sw]
            res = node.sim.run(pkt, in_port=port, depth=depth)
            self.hops.append(Hop(sw, port, res))
            for out_port, out in res.outputs:
                ep = (sw, out_port)
                if out_port == CONTROLLER:
                    self.packet_ins.append(PacketIn(sw, dict(out)))
                elif ep in self.fabric_of:
                    for peer in self.fabrics[self.fabric_of[ep]]:
                        if peer != ep:
                            queue.append((*peer, self._wire(out), ancestors, 0))
                elif out_port in (node.tunnel_ports or {}):
                    kind = node.tunnel_ports[out_port]
                    dst = out.get("tun_ipv4_dst")
                    peer = self._by_ip(dst)
                    peer_port = next((n for n, t in (self.switches[peer].tunnel_ports or {}).items()
                                      if t == kind), None) if peer else None
                    if peer is None or peer == sw or peer_port is None:
                        self.lost.append(Lost(sw, out_port, out, f"no {kind} endpoint {dst}"))
                        continue
                    inner = self._wire(out)
                    bits = TUNNEL_ID_BITS[kind]
                    inner.update(tunnel_id=out.get("tunnel_id", 0) & ((1 << bits) - 1),
                                 tun_ipv4_src=node.tunnel_ip, tun_ipv4_dst=dst)
                    queue.append((peer, peer_port, inner, ancestors, 1))
                else:
                    deliveries.append(Delivery(sw, out_port, self._wire(out)))
        return deliveries

    def format_trace(self):
        return "\n".join(f"== {h.switch} in_port {h.in_port}\n{h.result.format_trace()}"
                         for h in self.hops)
