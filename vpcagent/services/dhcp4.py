"""DHCPv4 server for one port at a time (RFC 2131/2132), messages via dpkt.

The controller has already decided everything (address, prefix, gateway,
MTU, domain); this module only answers the client in DHCP's terms.  A client
is known by its hardware address (chaddr == the port's MAC, and the frame's
source MAC, checked by the responder): no pool, no lease table, so nothing
to lose when the agent restarts -- the "lease" is the port's address for as
long as the port exists.

Replies go from the gateway (also the server identifier, router and DNS
server) to the offered address, or to 255.255.255.255 when the client set
the broadcast flag (it cannot receive unicast before it has an address).
"""
import ipaddress
import logging
import struct

import dpkt
from dpkt import dhcp as D

from vpcagent.services import frames

log = logging.getLogger("vpc-agent.services")

SERVER_PORT, CLIENT_PORT = 67, 68
BROADCAST = "255.255.255.255"
FLAG_BROADCAST = 0x8000
MIN_BOOTP = 300                  # some clients drop shorter BOOTP messages

DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = 1, 2, 3, 4, 5, 6, 7, 8
OPT_MASK, OPT_ROUTER, OPT_DNS, OPT_HOSTNAME, OPT_DOMAIN, OPT_MTU = 1, 3, 6, 12, 15, 26
OPT_REQ_IP, OPT_LEASE, OPT_MSGTYPE, OPT_SERVER_ID, OPT_PARAMS, OPT_MESSAGE = \
    50, 51, 53, 54, 55, 56
OPT_T1, OPT_T2, OPT_SEARCH, OPT_ROUTES = 58, 59, 119, 121
NAMES = {DISCOVER: "DISCOVER", OFFER: "OFFER", REQUEST: "REQUEST", DECLINE: "DECLINE",
         ACK: "ACK", NAK: "NAK", RELEASE: "RELEASE", INFORM: "INFORM"}


def dns_name(domain):
    """RFC 1035 wire format of ``domain`` (no compression): option 119."""
    out = b""
    for label in domain.strip(".").split("."):
        raw = label.encode("idna") if not label.isascii() else label.encode()
        if not 0 < len(raw) < 64:
            raise ValueError(f"bad label {label!r} in {domain!r}")
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def classless_route(dst, gateway):
    """One RFC 3442 entry: width, significant octets of ``dst``, gateway."""
    net = ipaddress.ip_network(dst)
    width = net.prefixlen
    return bytes([width]) + net.network_address.packed[:(width + 7) // 8] + \
        ipaddress.ip_address(gateway).packed


def _options(msg):
    """{code: bytes}: a repeated option is concatenated (RFC 3396)."""
    out = {}
    for code, data in msg.opts:
        out[code] = out.get(code, b"") + bytes(data)
    return out


def _pack(code, data):
    """(code, data) tuples, splitting data longer than 255 (RFC 3396)."""
    if not data:
        return [(code, b"")]
    return [(code, data[i:i + 255]) for i in range(0, len(data), 255)]


def _u32(v):
    return struct.pack("!I", max(0, min(int(v), 0xFFFFFFFF)))


def config_options(port, tenant, params, lease=True):
    """The configuration the client gets, as [(code, bytes)]; ``params`` is
    its parameter request list (option 121 only when asked for)."""
    gw = port.gateway.packed
    opts = []
    if lease:
        t = tenant.lease_time
        opts += [(OPT_LEASE, _u32(t)), (OPT_T1, _u32(t // 2)), (OPT_T2, _u32(t * 7 // 8))]
    mask = ipaddress.ip_network(f"0.0.0.0/{port.prefixlen}").netmask.packed
    opts += [(OPT_MASK, mask), (OPT_ROUTER, gw), (OPT_DNS, gw)]
    if tenant.domain:
        opts.append((OPT_DOMAIN, tenant.domain.encode()))
        try:
            opts.append((OPT_SEARCH, dns_name(tenant.domain)))
        except (ValueError, UnicodeError) as exc:
            log.warning("tenant %s: domain %r not sent as a search list: %s", tenant.name,
                        tenant.domain, exc)
    if port.mtu:
        opts.append((OPT_MTU, struct.pack("!H", max(68, min(port.mtu, 0xFFFF)))))
    if port.name:
        opts.append((OPT_HOSTNAME, port.name.encode()[:255]))
    if OPT_ROUTES in params:
        opts.append((OPT_ROUTES, classless_route("0.0.0.0/0", port.gateway)))
    return opts


def _reply(req, port, tenant, mtype, yiaddr, options, dst):
    msg = D.DHCP(op=D.DHCP_OP_REPLY, hrd=req.hrd, hln=req.hln, hops=0, xid=req.xid,
                 secs=0, flags=req.flags, ciaddr=req.ciaddr if mtype != NAK else 0,
                 yiaddr=int(yiaddr) if yiaddr else 0, siaddr=0, giaddr=req.giaddr,
                 chaddr=(bytes(req.chaddr) + b"\0" * 16)[:16])
    opts = [(OPT_MSGTYPE, bytes([mtype])), (OPT_SERVER_ID, port.gateway.packed)]
    for code, data in options:
        opts += _pack(code, data)
    msg.opts = opts
    body = bytes(msg)
    if len(body) < MIN_BOOTP:
        body += b"\0" * (MIN_BOOTP - len(body))
    return frames.build(port.serial, tenant.router_mac, str(port.gateway), dst,
                        SERVER_PORT, CLIENT_PORT, body)


def answer(pkt, port, tenant):
    """The reply frame to one DHCPv4 datagram ``pkt`` (frames.Udp) from
    ``port``, or None (with the reason logged) when it gets none."""
    if port.ip is None:
        log.debug("DHCPv4 from port %s, which has no IPv4 address: ignored", port.serial)
        return None
    try:
        req = D.DHCP(pkt.payload)
    except (dpkt.UnpackError, struct.error, ValueError, IndexError):
        log.debug("DHCPv4 from port %s: not a DHCP message", port.serial)
        return None
    if req.op != D.DHCP_OP_REQUEST or req.hrd != 1 or req.hln != 6:
        return None
    chaddr = frames.mac_str(bytes(req.chaddr)[:6])
    if chaddr != port.mac:
        log.info("DHCPv4 from port %s for chaddr %s, not its MAC %s: ignored", port.serial,
                 chaddr, port.mac)
        return None
    opts = _options(req)
    mtype = (opts.get(OPT_MSGTYPE) or b"\0")[0]
    params = set(opts.get(OPT_PARAMS, b""))
    bcast = bool(req.flags & FLAG_BROADCAST)
    dst = BROADCAST if bcast else str(port.ip)
    server_id = opts.get(OPT_SERVER_ID)
    if mtype == DISCOVER:
        return _reply(req, port, tenant, OFFER, port.ip,
                      config_options(port, tenant, params), dst)
    if mtype == REQUEST:
        if server_id is not None and server_id != port.gateway.packed:
            log.debug("DHCPv4 REQUEST from port %s for another server: ignored",
                      port.serial)
            return None
        wanted = opts.get(OPT_REQ_IP)
        if wanted is not None and len(wanted) == 4:
            wanted = ipaddress.IPv4Address(wanted)
        elif req.ciaddr:
            wanted = ipaddress.IPv4Address(req.ciaddr)
        else:
            wanted = None
        if wanted == port.ip:
            log.info("DHCPv4 ACK %s to port %s (%s)", port.ip, port.serial, port.mac)
            return _reply(req, port, tenant, ACK, port.ip,
                          config_options(port, tenant, params), dst)
        log.info("DHCPv4 NAK to port %s: it asked for %s, its address is %s", port.serial,
                 wanted, port.ip)
        return _reply(req, port, tenant, NAK, None,
                      [(OPT_MESSAGE, f"the address of this port is {port.ip}".encode())],
                      BROADCAST)
    if mtype == INFORM:
        dst = str(ipaddress.IPv4Address(req.ciaddr)) if req.ciaddr and not bcast else dst
        return _reply(req, port, tenant, ACK, None,
                      config_options(port, tenant, params, lease=False), dst)
    if mtype in (RELEASE, DECLINE):
        log.info("DHCPv4 %s from port %s (%s): nothing to do, the address stays the "
                 "port's", NAMES[mtype], port.serial, port.mac)
        return None
    log.debug("DHCPv4 message type %s from port %s: ignored", mtype, port.serial)
    return None
