"""Field kinds, widths and the install-time checks of the simulator (what
ovs-vswitchd would refuse at flow-mod time)."""
import ipaddress
import re

from controller.compile.flows import MATCH_FIELDS
from controller.compile.pipeline import (CT_INV, ETH_TYPE_ARP, ETH_TYPE_IP, ETH_TYPE_IPV6,
                                         ETH_TYPE_VLAN, ND_NEIGHBOR_ADVERT,
                                         ND_NEIGHBOR_SOLICIT, OFPVID_PRESENT, REGISTERS)


class SimError(Exception):
    """The flows (or the test's packet) are wrong in a way OVS would not hide."""


# --- fields -----------------------------------------------------------------
KINDS = dict(MATCH_FIELDS, ip_ttl="int", icmp_id="int")
_INT_WIDTH = {"in_port": 32, "metadata": 64, "eth_type": 16, "vlan_vid": 13,
              "ip_proto": 8, "arp_op": 16, "tunnel_id": 64, "tcp_src": 16,
              "tcp_dst": 16, "udp_src": 16, "udp_dst": 16, "icmpv4_type": 8,
              "icmpv4_code": 8, "icmpv6_type": 8, "icmpv6_code": 8, "nd_reserved": 32,
              "nd_options_type": 8, **{r.oxm: r.bits for r in REGISTERS}, "ip_ttl": 8,
              "icmp_id": 16, "ct_zone": 16, "ct_mark": 32,
              "ct_state": 8}   # OVS refuses ct_state bits above 0x80
WIDTH = {f: (_INT_WIDTH[f] if k == "int" else 48 if k == "mac" else 128 if k == "ip6" else 32)
         for f, k in KINDS.items()}
# Fields OVS refuses to mask (OFPBMC_BAD_MASK): mf_field maskable=MFM_NONE.
UNMASKABLE = {"in_port", "eth_type", "ip_proto", "arp_op", "icmpv4_type", "icmpv4_code",
              "icmpv6_type", "icmpv6_code", "nd_reserved", "nd_options_type", "ct_zone"}
# Fields that exist in every packet with value 0 until set (OVS flow metadata).
DEFAULTS = {"metadata": 0, **{r.oxm: 0 for r in REGISTERS}, "tunnel_id": 0,
            "tun_ipv4_src": "0.0.0.0", "tun_ipv4_dst": "0.0.0.0", "vlan_vid": 0,
            "ct_state": 0, "ct_zone": 0, "ct_mark": 0}
# Set by ct actions only: a packet entering a switch is untracked.
CT_FIELDS = {"ct_state", "ct_zone", "ct_mark"}
# Per-switch state that does not travel on a wire.
PIPELINE_ONLY = {"in_port", "metadata", *(r.oxm for r in REGISTERS), "tunnel_id",
                 "tun_ipv4_src", "tun_ipv4_dst"} | CT_FIELDS
_IP = {ETH_TYPE_IP, 0x86DD}
# field -> [(field it needs, allowed values)], as OVS's mf_are_prereqs_ok.
PREREQS = {f: [("eth_type", {ETH_TYPE_ARP})]
           for f in ("arp_op", "arp_spa", "arp_tpa", "arp_sha", "arp_tha")}
PREREQS.update({f: [("eth_type", {ETH_TYPE_IP})] for f in ("ipv4_src", "ipv4_dst")})
PREREQS.update({f: [("eth_type", {ETH_TYPE_IPV6})] for f in ("ipv6_src", "ipv6_dst")})
PREREQS["ip_proto"] = [("eth_type", _IP)]
_ICMP6 = [("eth_type", {ETH_TYPE_IPV6}), ("ip_proto", {58})]
PREREQS.update({f: _ICMP6 for f in ("icmpv6_type", "icmpv6_code")})
_ND = {ND_NEIGHBOR_SOLICIT, ND_NEIGHBOR_ADVERT}
# OVS: nd_target, nd_reserved, nd_options_type need an NS or NA; nd_sll an NS,
# nd_tll an NA -- in the flow's own match (set_field of icmpv6_type before
# them does not count: a real ovs-vswitchd refuses that, MATCH_INCONSISTENT)
PREREQS.update({f: _ICMP6 + [("icmpv6_type", _ND)]
                for f in ("ipv6_nd_target", "nd_reserved", "nd_options_type")})
PREREQS["ipv6_nd_sll"] = _ICMP6 + [("icmpv6_type", {ND_NEIGHBOR_SOLICIT})]
PREREQS["ipv6_nd_tll"] = _ICMP6 + [("icmpv6_type", {ND_NEIGHBOR_ADVERT})]
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
    if kind == "ip6":
        return int(ipaddress.IPv6Address(value))
    return value


def from_bits(fname, bits):
    """Inverse of to_bits."""
    kind = KINDS[fname]
    if kind == "mac":
        return ":".join(f"{b:02x}" for b in bits.to_bytes(6, "big"))
    if kind == "ip":
        return str(ipaddress.IPv4Address(bits))
    if kind == "ip6":
        return str(ipaddress.IPv6Address(bits))
    return bits


def _valid(fname, value):
    """Is `value` a canonical, in-range value of `fname` (no mask)?"""
    kind = KINDS[fname]
    if kind == "mac":
        return isinstance(value, str) and bool(_MAC_RE.match(value))
    if kind in ("ip", "ip6"):
        try:
            return str(ipaddress.ip_address(value)) == value and \
                ipaddress.ip_address(value).version == (4 if kind == "ip" else 6)
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
    if _exact(match, "eth_type") not in _IP:
        # OVS: OFPBAC_MATCH_INCONSISTENT without an IP eth_type
        bad("ct needs eth_type=0x0800 or 0x86dd in the match")
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


# --- formatting ----------------------------------------------------------------
_HEX = {"metadata", "eth_type", "vlan_vid", "tunnel_id", *(r.oxm for r in REGISTERS),
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
