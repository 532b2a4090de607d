"""The conntrack model of the simulator: OVS 3.1 userspace conntrack, as far
as our pipeline uses it (zones, commit, NAT with ranges, ct_state bits)."""
import ipaddress
from dataclasses import dataclass

from controller.flowsim.fields import SimError, format_packet
from controller.compile.pipeline import (CT_DNAT, CT_EST, CT_INV, CT_NEW, CT_RPL, CT_SNAT, CT_TRK,
                                 ETH_TYPE_IP, ETH_TYPE_IPV6)


# --- conntrack -----------------------------------------------------------------
MAX_RECIRC = 6      # dpif-netdev MAX_RECIRC_DEPTH: recirculations + tunnel pops
ICMP_REVERSE = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15}   # request <-> reply
ICMP_NEW = {8, 13, 15}         # icmp4_valid_new: only requests start a connection
ICMP6_REVERSE = {128: 129, 129: 128}       # echo request <-> reply (icmp6_valid_new: 128)
ICMP6_NEW = {128}
# per eth_type: the address fields, the ICMP protocol, its type field, its pairs
FAMILIES = {ETH_TYPE_IP: ("ipv4_src", "ipv4_dst", 1, "icmpv4_type", ICMP_REVERSE),
            ETH_TYPE_IPV6: ("ipv6_src", "ipv6_dst", 58, "icmpv6_type", ICMP6_REVERSE)}
ICMP_PROTOS = {1: ICMP_REVERSE, 58: ICMP6_REVERSE}
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
        family = FAMILIES.get(pkt.get("eth_type"))
        if family is None:
            raise SimError(f"ct on a non-IP packet is not modelled: {format_packet(pkt)}")
        src_f, dst_f, icmp, type_f, pairs = family
        proto = pkt.get("ip_proto")
        need = [src_f, dst_f, "ip_proto"] + list(_L4_PORTS.get(proto, ()))
        if proto == icmp:
            need.append(type_f)
        missing = [f for f in need if f not in pkt]
        if missing:
            raise SimError(f"ct needs {missing} in the packet: {format_packet(pkt)}")
        if proto in _L4_PORTS:
            a, b = (pkt[f] for f in _L4_PORTS[proto])
        elif proto == icmp:
            if pkt[type_f] not in pairs:
                raise SimError(f"ICMP type {pkt[type_f]} (errors are 'related' "
                               f"via their inner header) is not modelled")
            a, b = pkt.get("icmp_id", 0), pkt[type_f]
        else:
            a = b = 0
        return (zone, proto, pkt[src_f], pkt[dst_f], a, b)

    @staticmethod
    def reverse(key):
        zone, proto, src, dst, a, b = key
        if proto in ICMP_PROTOS:
            return (zone, proto, dst, src, a, ICMP_PROTOS[proto][b])
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
        elif (key[1] == 1 and key[5] not in ICMP_NEW) or (key[1] == 58
                                                          and key[5] not in ICMP6_NEW):
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
        src_f, dst_f = FAMILIES[pkt["eth_type"]][:2]
        pkt[src_f], pkt[dst_f] = dst, src
        if proto in _L4_PORTS:
            fs, fd = _L4_PORTS[proto]
            pkt[fs], pkt[fd] = b, a
        return _NAT_BIT[_NAT_REVERSE[conn.nat] if reply else conn.nat]
