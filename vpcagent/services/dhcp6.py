"""Stateful DHCPv6 server for one port at a time (RFC 8415), with struct.

Why struct and not a library: the only Python DHCPv6 codecs are part of big
packet toolkits (scapy) that are too heavy for the agent's hot path, and a
server needs only a handful of TLVs -- client/server id, IA_NA with one
IAADDR, status code, rapid commit, DNS servers (RFC 3646) and domain list.
The unit tests check what this module builds with scapy as an independent
parser.

Like DHCPv4 there is no lease table: the client is the port whose frame this
is (source MAC checked by the responder, source address link-local), and its
address is the port's ``ip6`` for as long as the port exists.  The server
DUID is DUID-LL of the tenant's router MAC, the same on every host, so a
client that moves between hosts with its port keeps talking to "the same"
server.
"""
import ipaddress
import logging
import struct

from vpcagent.services import frames
from vpcagent.services.dhcp4 import dns_name

log = logging.getLogger("vpc-agent.services")

SERVER_PORT, CLIENT_PORT = 547, 546
(SOLICIT, ADVERTISE, REQUEST, CONFIRM, RENEW, REBIND, REPLY, RELEASE, DECLINE,
 RECONFIGURE, INFORMATION_REQUEST) = range(1, 12)
NAMES = {1: "SOLICIT", 3: "REQUEST", 4: "CONFIRM", 5: "RENEW", 6: "REBIND", 8: "RELEASE",
         9: "DECLINE", 11: "INFORMATION-REQUEST"}
OPT_CLIENTID, OPT_SERVERID, OPT_IA_NA, OPT_IA_TA, OPT_IAADDR, OPT_ORO = 1, 2, 3, 4, 5, 6
OPT_STATUS, OPT_RAPID_COMMIT, OPT_DNS, OPT_DOMAINS, OPT_IA_PD = 13, 14, 23, 24, 25
SUCCESS, NO_ADDRS_AVAIL, NOT_ON_LINK, NO_PREFIX_AVAIL = 0, 2, 4, 6
HOP_LIMIT = 64


class Malformed(ValueError):
    """A message whose TLVs do not add up."""


def parse_options(data):
    """[(code, bytes)] of a run of TLVs; Malformed when a length overruns."""
    out, i = [], 0
    while i < len(data):
        if i + 4 > len(data):
            raise Malformed("truncated option header")
        code, n = struct.unpack_from("!HH", data, i)
        if i + 4 + n > len(data):
            raise Malformed(f"option {code} overruns the message")
        out.append((code, bytes(data[i + 4:i + 4 + n])))
        i += 4 + n
    return out


def parse(payload):
    """(msg_type, transaction id bytes, [(code, bytes)]) of a client message."""
    if len(payload) < 4:
        raise Malformed("shorter than a DHCPv6 header")
    return payload[0], bytes(payload[1:4]), parse_options(payload[4:])


def opt(code, data=b""):
    return struct.pack("!HH", code, len(data)) + data


def status(code, message=""):
    return opt(OPT_STATUS, struct.pack("!H", code) + message.encode())


def duid_ll(mac):
    """DUID-LL (type 3), hardware type 1 (Ethernet)."""
    return struct.pack("!HH", 3, 1) + frames.mac_bytes(mac)


def iaaddr(addr, preferred, valid):
    return opt(OPT_IAADDR, addr.packed + struct.pack("!II", preferred, valid))


def ia_na(iaid, t1, t2, inner):
    return opt(OPT_IA_NA, iaid + struct.pack("!II", t1, t2) + inner)


def _ia_addresses(data):
    """The addresses inside one IA_NA option's payload."""
    try:
        return [ipaddress.IPv6Address(d[:16]) for c, d in parse_options(data[12:])
                if c == OPT_IAADDR and len(d) >= 24]
    except Malformed:
        return []


def answer(pkt, port, tenant):
    """The reply frame to one DHCPv6 datagram ``pkt`` (frames.Udp) from
    ``port``, or None when it gets none."""
    if port.ip6 is None:
        log.debug("DHCPv6 from port %s, which has no IPv6 address: ignored", port.serial)
        return None
    if not ipaddress.ip_address(pkt.src).is_link_local:
        log.debug("DHCPv6 from port %s not from a link-local address: ignored", port.serial)
        return None
    if tenant.router_ll6 is None:
        log.warning("tenant %s has no router_ll6 in the view: DHCPv6 not answered",
                    tenant.name)
        return None
    try:
        mtype, xid, opts = parse(pkt.payload)
    except Malformed as exc:
        log.debug("DHCPv6 from port %s: %s", port.serial, exc)
        return None
    if mtype not in NAMES:
        return None                       # server or relay messages: not for us
    client_id = next((d for c, d in opts if c == OPT_CLIENTID), None)
    server_ids = [d for c, d in opts if c == OPT_SERVERID]
    ours = duid_ll(tenant.router_mac)
    if mtype in (REQUEST, RENEW, RELEASE, DECLINE):
        if server_ids != [ours] or client_id is None:
            log.debug("DHCPv6 %s from port %s for another server (or without client "
                      "id): ignored", NAMES[mtype], port.serial)
            return None
    elif mtype in (SOLICIT, REBIND, CONFIRM):
        if server_ids or client_id is None:
            return None
    elif server_ids and server_ids != [ours]:      # INFORMATION-REQUEST
        return None
    body = opt(OPT_SERVERID, ours)
    if client_id is not None:
        body = opt(OPT_CLIENTID, client_id) + body
    rapid = mtype == SOLICIT and any(c == OPT_RAPID_COMMIT for c, _ in opts)
    reply_type = ADVERTISE if mtype == SOLICIT and not rapid else REPLY
    lease = tenant.lease_time
    if mtype in (SOLICIT, REQUEST, RENEW, REBIND):
        given = False
        for c, d in opts:
            if c == OPT_IA_NA and len(d) >= 12:
                iaid = d[:4]
                if given:                 # one address per port: further IAs get none
                    body += ia_na(iaid, 0, 0, status(NO_ADDRS_AVAIL, "one address per port"))
                    continue
                inner = iaaddr(port.ip6, lease, lease)
                for old in _ia_addresses(d):
                    if old != port.ip6:   # an address the client must stop using
                        inner += iaaddr(old, 0, 0)
                body += ia_na(iaid, lease // 2, lease * 4 // 5, inner)
                given = True
            elif c == OPT_IA_PD and len(d) >= 12:
                body += opt(OPT_IA_PD, d[:4] + struct.pack("!II", 0, 0) +
                            status(NO_PREFIX_AVAIL, "no prefix delegation"))
        if not given and mtype == SOLICIT:
            body += status(NO_ADDRS_AVAIL, "ask for an IA_NA")
        if given:
            log.info("DHCPv6 %s %s to port %s (%s)",
                     "ADVERTISE" if reply_type == ADVERTISE else "REPLY", port.ip6,
                     port.serial, port.mac)
    elif mtype == CONFIRM:
        addrs = [a for c, d in opts if c == OPT_IA_NA for a in _ia_addresses(d)]
        if not addrs:
            return None                   # RFC 8415 18.3.3: nothing to confirm
        ok = all(a == port.ip6 for a in addrs)
        body += status(SUCCESS if ok else NOT_ON_LINK,
                       "on link" if ok else f"the address of this port is {port.ip6}")
    elif mtype in (RELEASE, DECLINE):
        log.info("DHCPv6 %s from port %s (%s): nothing to do, the address stays the "
                 "port's", NAMES[mtype], port.serial, port.mac)
        body += status(SUCCESS, "release received" if mtype == RELEASE else
                       "decline received")
    if mtype not in (RELEASE, DECLINE):
        if port.gateway6 is not None:
            body += opt(OPT_DNS, port.gateway6.packed)
        if tenant.domain:
            try:
                body += opt(OPT_DOMAINS, dns_name(tenant.domain))
            except (ValueError, UnicodeError):
                pass
    if rapid:
        body += opt(OPT_RAPID_COMMIT)
    msg = bytes([reply_type]) + xid + body
    return frames.build(port.serial, tenant.router_mac, str(tenant.router_ll6), pkt.src,
                        SERVER_PORT, CLIENT_PORT, msg, hop_limit=HOP_LIMIT)
