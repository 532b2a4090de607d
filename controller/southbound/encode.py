"""A Flow -> the bytes of its OpenFlow 1.3 OFPFC_ADD, with `struct` alone.

Why: building an os-ken OFPFlowMod and serializing it was the largest part of a
cold start (100 datapaths x 50 ports, 321,000 flow-mods: `FlowModCache.encoded`
53 % of the controller's CPU, os-ken's `OFPMatch.__init__` 24 % of it -- every
field normalised through addrconv and back -- and its generic serializers
21 %).  A Flow uses a small, fixed set of match fields (flows.MATCH_FIELDS:
OpenFlow basic, Nicira NXM_1 registers / conntrack / tunnel fields, the two
Ericsson ND fields) and seven actions (flows.ACTION_ARITY), so each is encoded
here straight from the value: the OXM header of every field precomputed, each
message part a precompiled Struct, values packed by kind, and the TLV of a
(field, value) pair and the bytes of an action cached (the same MACs, IPs,
tenants and outputs recur in thousands of flows).

The bytes are exactly os-ken's (flowmod.encode_with_osken is the reference:
tests/unit/southbound/test_encode*.py compares every flow of the golden worlds
and random flows), including its quirks: match fields ordered by OXM type
(class << 7 | field), a masked match value ANDed with its mask, `nat`
nested in `ct` padded as part of the ct; a masked set_field os-ken refuses, so
does this.  A field, an
action or a value this module does not know raises EncodeError: out-of-range
integers included, which os-ken would silently truncate.
"""
import ipaddress
import re
import struct

from controller.compile.flows import CONTROLLER, MATCH_FIELDS, MOVE_FIELDS
from controller.compile.pipeline import NAT_DST, NAT_SRC, REGISTERS

OFP_VERSION = 4
OFPT_FLOW_MOD = 14
OFP_NO_BUFFER = 0xFFFF_FFFF
OFPP_IN_PORT, OFPP_CONTROLLER, OFPCML_NO_BUFFER = 0xFFFF_FFF8, 0xFFFF_FFFD, 0xFFFF
OFPMT_OXM = 1
OFPIT_GOTO_TABLE, OFPIT_WRITE_METADATA, OFPIT_APPLY_ACTIONS, OFPIT_METER = 1, 2, 4, 6
OFPAT_OUTPUT, OFPAT_PUSH_VLAN, OFPAT_POP_VLAN, OFPAT_DEC_NW_TTL, OFPAT_SET_FIELD = \
    0, 17, 18, 24, 25
OFPAT_EXPERIMENTER = 0xFFFF
NX_EXPERIMENTER_ID = 0x0000_2320
NXAST_REG_MOVE, NXAST_CT, NXAST_NAT = 6, 35, 36
NX_CT_F_COMMIT, NX_CT_RECIRC_NONE = 1, 0xFF
NX_NAT_RANGE_IPV4_MIN, NX_NAT_RANGE_IPV4_MAX = 1, 2
NX_NAT_RANGE_PROTO_MIN, NX_NAT_RANGE_PROTO_MAX = 16, 32

# OXM classes of the fields we use (all with 32-bit headers: no experimenter OXM)
NXM_1, ERICSSON, OPENFLOW_BASIC = 0x0001, 0x1000, 0x8000

# field -> (OXM class, field number, value width in bytes); the kind of its
# values (int, mac, ip, ip6) is flows.MATCH_FIELDS'
OXM_FIELDS = {
    "in_port": (OPENFLOW_BASIC, 0, 4), "metadata": (OPENFLOW_BASIC, 2, 8),
    "eth_dst": (OPENFLOW_BASIC, 3, 6), "eth_src": (OPENFLOW_BASIC, 4, 6),
    "eth_type": (OPENFLOW_BASIC, 5, 2), "vlan_vid": (OPENFLOW_BASIC, 6, 2),
    "ip_proto": (OPENFLOW_BASIC, 10, 1),
    "ipv4_src": (OPENFLOW_BASIC, 11, 4), "ipv4_dst": (OPENFLOW_BASIC, 12, 4),
    "tcp_src": (OPENFLOW_BASIC, 13, 2), "tcp_dst": (OPENFLOW_BASIC, 14, 2),
    "udp_src": (OPENFLOW_BASIC, 15, 2), "udp_dst": (OPENFLOW_BASIC, 16, 2),
    "icmpv4_type": (OPENFLOW_BASIC, 19, 1), "icmpv4_code": (OPENFLOW_BASIC, 20, 1),
    "arp_op": (OPENFLOW_BASIC, 21, 2),
    "arp_spa": (OPENFLOW_BASIC, 22, 4), "arp_tpa": (OPENFLOW_BASIC, 23, 4),
    "arp_sha": (OPENFLOW_BASIC, 24, 6), "arp_tha": (OPENFLOW_BASIC, 25, 6),
    "ipv6_src": (OPENFLOW_BASIC, 26, 16), "ipv6_dst": (OPENFLOW_BASIC, 27, 16),
    "icmpv6_type": (OPENFLOW_BASIC, 29, 1), "icmpv6_code": (OPENFLOW_BASIC, 30, 1),
    "ipv6_nd_target": (OPENFLOW_BASIC, 31, 16),
    "ipv6_nd_sll": (OPENFLOW_BASIC, 32, 6), "ipv6_nd_tll": (OPENFLOW_BASIC, 33, 6),
    "tunnel_id": (OPENFLOW_BASIC, 38, 8),
    "nd_reserved": (ERICSSON, 1, 4), "nd_options_type": (ERICSSON, 2, 1),
    "tun_ipv4_src": (NXM_1, 31, 4), "tun_ipv4_dst": (NXM_1, 32, 4),
    "ct_state": (NXM_1, 105, 4), "ct_zone": (NXM_1, 106, 2), "ct_mark": (NXM_1, 107, 4),
    # NXM_NX_REG0..7: only those the pipeline declares reach MATCH_FIELDS
    **{f"reg{n}": (NXM_1, n, 4) for n in range(8)},
}
assert all(reg.bits == 32 for reg in REGISTERS)


class EncodeError(ValueError):
    """A Flow this encoder has no (or no safe) OpenFlow form for."""


class _Field:
    """One match field: how it sorts, its unmasked and masked headers, its kind."""
    __slots__ = ("name", "order", "width", "kind", "header", "header_w")

    def __init__(self, name, oxm_class, number, width, kind):
        self.name, self.width, self.kind = name, width, kind
        self.order = oxm_class << 7 | number          # os-ken sorts a match by this
        self.header = struct.pack("!I", self.order << 9 | width)
        self.header_w = struct.pack("!I", self.order << 9 | 1 << 8 | width * 2)

    def value_bytes(self, v):
        kind, width = self.kind, self.width
        if kind == "int":
            if not isinstance(v, int):
                raise EncodeError(f"{self.name}: expected an int, got {v!r}")
            try:
                return v.to_bytes(width, "big")
            except OverflowError:
                raise EncodeError(f"{self.name}: {v!r} does not fit {width} bytes") from None
        if not isinstance(v, str):
            raise EncodeError(f"{self.name}: expected a string, got {v!r}")
        if kind == "mac":
            if not _MAC_RE.match(v):
                raise EncodeError(f"{self.name}: not a MAC: {v!r}")
            return bytes.fromhex(v.replace(":", ""))
        if kind == "ip" and width == 4:
            return ipaddress.IPv4Address(v).packed        # ValueError when malformed
        if kind == "ip6" and width == 16 and "%" not in v:
            return ipaddress.IPv6Address(v).packed
        raise EncodeError(f"{self.name}: no encoding for {v!r} ({kind}, {width} bytes)")

    def tlv(self, value):
        """The OXM TLV; a (value, mask) pair is masked, its value ANDed with
        the mask (as os-ken normalises a match)."""
        if type(value) is tuple:
            if len(value) != 2:
                raise EncodeError(f"{self.name}: masked value must be (value, mask)")
            v, m = self.value_bytes(value[0]), self.value_bytes(value[1])
            return self.header_w + bytes(a & b for a, b in zip(v, m)) + m
        return self.header + self.value_bytes(value)


_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
FIELDS = {name: _Field(name, *OXM_FIELDS[name], kind)
          for name, kind in MATCH_FIELDS.items() if name in OXM_FIELDS}

_FLOW_MOD = struct.Struct("!BBHIQQBBHHHIIIH2x")     # header + ofp_flow_mod up to the match
_MATCH_HEAD = struct.Struct("!HH")
_INST_HEAD = struct.Struct("!HH4x")                 # apply-actions
_INST_GOTO = struct.Struct("!HHB3x")
_INST_METADATA = struct.Struct("!HH4xQQ")
_INST_METER = struct.Struct("!HHI")
_OUTPUT = struct.Struct("!HHIH6x")
_PUSH = struct.Struct("!HHH2x")
_ACTION_HEAD = struct.Struct("!HH")                 # set_field, before the TLV
_NX_HEAD = struct.Struct("!HHIH")                   # experimenter action + Nicira subtype
_REG_MOVE = struct.Struct("!HHH")                   # n_bits, src_ofs, dst_ofs
_CT = struct.Struct("!H4sHB3xH")                    # flags, zone_src, zone, table, alg
_NAT = struct.Struct("!2xHH")                       # flags, range_present
_POP_VLAN = _ACTION_HEAD.pack(OFPAT_POP_VLAN, 8) + bytes(4)
_DEC_TTL = _ACTION_HEAD.pack(OFPAT_DEC_NW_TTL, 8) + bytes(4)
_ZEROS = bytes(8)
CACHE_SIZE = 1 << 16      # cached TLVs and actions, each; cleared when full


def _field(name):
    try:
        return FIELDS[name]
    except (KeyError, TypeError):
        raise EncodeError(f"no OpenFlow 1.3 encoding for field {name!r}") from None


def _padded(head_len, body):
    """(length rounded up to 8, zero padding) of a part of head_len + len(body)."""
    n = head_len + len(body)
    pad = -n % 8
    return n + pad, _ZEROS[:pad]


def _nx(subtype, body):
    """A Nicira experimenter action around `body`, padded to 8 bytes."""
    length, pad = _padded(_NX_HEAD.size, body)
    return _NX_HEAD.pack(OFPAT_EXPERIMENTER, length, NX_EXPERIMENTER_ID, subtype) + body + pad


def _ipv4(v):
    if not isinstance(v, str):
        raise EncodeError(f"ct nat: expected an IPv4 address, got {v!r}")
    return ipaddress.IPv4Address(v).packed


def _nat(nat):
    """The NXActionNAT nested in a ct: () applies an existing connection's NAT;
    (src|dst, ip_min, ip_max, port_min, port_max) NATs a new one."""
    if nat == ():
        return _nx(NXAST_NAT, _NAT.pack(0, 0))
    if type(nat) is not tuple or len(nat) != 5 or nat[0] not in ("src", "dst"):
        raise EncodeError(f"ct: no encoding for nat {nat!r}")
    kind, ip_min, ip_max, port_min, port_max = nat
    present = NX_NAT_RANGE_IPV4_MIN | NX_NAT_RANGE_IPV4_MAX
    ranges = _ipv4(ip_min) + _ipv4(ip_max)
    if port_min:
        present |= NX_NAT_RANGE_PROTO_MIN | NX_NAT_RANGE_PROTO_MAX
        ranges += struct.pack("!HH", port_min, port_max)
    flags = NAT_SRC if kind == "src" else NAT_DST
    return _nx(NXAST_NAT, _NAT.pack(flags, present) + ranges)


def _ct(commit, zone, table, nat):
    body = _CT.pack(NX_CT_F_COMMIT if commit else 0, bytes(4), zone,
                    NX_CT_RECIRC_NONE if table is None else table, 0)
    if nat is not None:
        body += _nat(nat)
    return _nx(NXAST_CT, body)


def _action(a):
    """One apply-action tuple (flows.py documents them) -> its bytes."""
    name = a[0] if type(a) is tuple and a else None
    n = len(a) - 1 if name else -1
    if name == "output" and n == 1:
        port = a[1]
        if port == CONTROLLER:
            return _OUTPUT.pack(OFPAT_OUTPUT, 16, OFPP_CONTROLLER, OFPCML_NO_BUFFER)
        if port == "in_port":
            return _OUTPUT.pack(OFPAT_OUTPUT, 16, OFPP_IN_PORT, 0)
        if isinstance(port, int):
            return _OUTPUT.pack(OFPAT_OUTPUT, 16, port, 0)
    elif name == "set_field" and n == 2 and type(a[2]) is not tuple:   # no masked set
        tlv = _field(a[1]).tlv(a[2])
        length, pad = _padded(_ACTION_HEAD.size, tlv)
        return _ACTION_HEAD.pack(OFPAT_SET_FIELD, length) + tlv + pad
    elif name == "move" and n == 2 and a[1] in MOVE_FIELDS and a[2] in MOVE_FIELDS:
        src, dst = _field(a[1]), _field(a[2])
        return _nx(NXAST_REG_MOVE, _REG_MOVE.pack(MOVE_FIELDS[a[1]], 0, 0)
                   + src.header + dst.header)
    elif name == "ct" and n == 4:
        return _ct(*a[1:])
    elif name == "push_vlan" and n == 1:
        return _PUSH.pack(OFPAT_PUSH_VLAN, 8, a[1])
    elif name == "pop_vlan" and n == 0:
        return _POP_VLAN
    elif name == "dec_ttl" and n == 0:
        return _DEC_TTL
    raise EncodeError(f"no OpenFlow form for action {a!r}")


_TLVS = {}       # (field, value) of a match -> (sort order, TLV)
_ACTIONS = {}    # action tuple -> bytes


def _match_tlv(pair):
    if type(pair) is not tuple or len(pair) != 2:
        raise EncodeError(f"match item {pair!r} is not (field, value)")
    fld = _field(pair[0])
    got = (fld.order, fld.tlv(pair[1]))
    if len(_TLVS) >= CACHE_SIZE:
        _TLVS.clear()
    _TLVS[pair] = got
    return got


def _action_bytes(a):
    got = _action(a)
    if len(_ACTIONS) >= CACHE_SIZE:
        _ACTIONS.clear()
    _ACTIONS[a] = got
    return got


def encode_match(match):
    """ofp_match (OXM) of a Flow's match tuple, padded to 8 bytes."""
    tlvs = _TLVS
    parts = [tlvs.get(p) or _match_tlv(p) for p in match]
    if len(parts) > 1:
        parts.sort()          # by OXM order, as os-ken does
        for (a, _), (b, _) in zip(parts, parts[1:]):
            if a == b:
                raise EncodeError(f"a field twice in match {match!r}")
    body = b"".join([t for _, t in parts])
    length, pad = _padded(_MATCH_HEAD.size, body)
    return _MATCH_HEAD.pack(OFPMT_OXM, _MATCH_HEAD.size + len(body)) + body + pad


def encode_instructions(f):
    """The instructions in OpenFlow 1.3's order: meter, apply-actions,
    write-metadata, goto (flowmod.to_instructions builds the same for os-ken)."""
    out = b"" if f.meter is None else _INST_METER.pack(OFPIT_METER, 8, f.meter)
    if f.actions:
        cache = _ACTIONS
        acts = b"".join([cache.get(a) or _action_bytes(a) for a in f.actions])
        out += _INST_HEAD.pack(OFPIT_APPLY_ACTIONS, 8 + len(acts)) + acts
    if f.metadata is not None:
        if type(f.metadata) is not tuple or len(f.metadata) != 2:
            raise EncodeError(f"metadata {f.metadata!r} is not (value, mask)")
        out += _INST_METADATA.pack(OFPIT_WRITE_METADATA, 24, *f.metadata)
    if f.goto is not None:
        out += _INST_GOTO.pack(OFPIT_GOTO_TABLE, 8, f.goto)
    return out


def encode_add(f, xid=0):
    """The OFPFC_ADD flow-mod of Flow `f` (cookie f.cookie, no timeouts, no
    buffer, flags 0), as bytes: what os-ken's OFPFlowMod would serialize."""
    try:
        body = encode_match(f.match) + encode_instructions(f)
        return _FLOW_MOD.pack(OFP_VERSION, OFPT_FLOW_MOD, _FLOW_MOD.size + len(body), xid,
                              f.cookie, 0, f.table, 0, 0, 0, f.priority, OFP_NO_BUFFER,
                              0, 0, 0) + body
    except EncodeError:
        raise
    except (struct.error, ValueError, TypeError, OverflowError) as exc:
        raise EncodeError(f"flow {f!r}: {exc}") from exc
