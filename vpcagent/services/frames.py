"""Ethernet/IPv4/IPv6/UDP frames of the service port, read and written with dpkt.

The controller's flows and the agent meet on one OVS internal port
(``vpc-svc``) and agree on a *frame contract* instead of on OpenFlow
metadata, so the agent needs no OpenFlow connection of its own:

* a frame steered to the agent has ``eth_dst = 02:76:70:73:HH:LL`` (the *tag
  MAC*), HHLL being the 16-bit serial of the container's port in the
  controller's model; ``eth_src`` is the container's own MAC;
* a reply goes back with the same tag MAC as ``eth_dst`` (the switch rewrites
  it to the port's MAC and outputs it to that port only) and the tenant's
  router MAC as ``eth_src``.

Nothing offloads checksums on this path (an AF_PACKET write into a userspace
datapath port), so IPv4 header and UDP checksums are computed here, always.
"""
import ipaddress
import socket
import struct
from collections import namedtuple

import dpkt

TAG_PREFIX = bytes.fromhex("02767073")
ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD
UDP = 17

Udp = namedtuple("Udp", "serial eth_src version src dst sport dport payload")
Udp.__doc__ = """One UDP datagram received on the service port: ``serial`` from the
tag MAC, ``eth_src`` as "aa:bb:..", ``version`` 4 or 6, ``src``/``dst`` as
address strings (IPv6 compressed), ``payload`` the UDP payload (bytes)."""


def tag_mac(serial):
    """The tag MAC of port ``serial`` (bytes)."""
    if not 0 <= serial <= 0xFFFF:
        raise ValueError(f"port serial {serial} does not fit in 16 bits")
    return TAG_PREFIX + struct.pack("!H", serial)


def serial_of(mac):
    """The port serial a tag MAC (bytes) carries, or None for any other MAC."""
    if len(mac) != 6 or mac[:4] != TAG_PREFIX:
        return None
    return struct.unpack("!H", mac[4:])[0]


def mac_bytes(text):
    b = bytes.fromhex(text.replace(":", "").replace("-", ""))
    if len(b) != 6:
        raise ValueError(f"{text!r} is not a MAC address")
    return b


def mac_str(b):
    return ":".join(f"{x:02x}" for x in b)


def parse(frame):
    """``Udp`` for an untagged Ethernet frame to a tag MAC carrying a whole
    (unfragmented) UDP datagram over IPv4 or IPv6; None for anything else.
    Never raises on bad input: what the port carries is not trusted."""
    if len(frame) < 14:
        return None
    serial = serial_of(frame[:6])
    if serial is None:
        return None
    try:
        eth = dpkt.ethernet.Ethernet(frame)
    except (dpkt.UnpackError, struct.error, ValueError, IndexError):
        return None
    if getattr(eth, "vlan_tags", None) or getattr(eth, "vlan", None):
        return None
    ip = eth.data
    if eth.type == ETH_P_IP and isinstance(ip, dpkt.ip.IP):
        if ip.v != 4 or ip.p != UDP or ip.mf or ip.offset:
            return None
        version, src, dst = 4, socket.inet_ntop(socket.AF_INET, ip.src), \
            socket.inet_ntop(socket.AF_INET, ip.dst)
    elif eth.type == ETH_P_IPV6 and isinstance(ip, dpkt.ip6.IP6):
        if ip.nxt != UDP:                      # no extension headers on this path
            return None
        version, src, dst = 6, socket.inet_ntop(socket.AF_INET6, ip.src), \
            socket.inet_ntop(socket.AF_INET6, ip.dst)
    else:
        return None
    udp = ip.data
    if not isinstance(udp, dpkt.udp.UDP):
        return None
    payload = bytes(udp.data)
    if udp.ulen < 8 or udp.ulen - 8 > len(payload):
        return None                            # truncated datagram
    payload = payload[:udp.ulen - 8]
    return Udp(serial, mac_str(eth.src), version, src, dst, udp.sport, udp.dport, payload)


def _csum(pseudo, segment):
    s = dpkt.in_cksum_add(0, pseudo)
    s = dpkt.in_cksum_add(s, segment)
    c = dpkt.in_cksum_done(s)
    return c or 0xFFFF                          # RFC 768: 0 is sent as all ones


def build(serial, eth_src, src, dst, sport, dport, payload, hop_limit=64):
    """The reply frame: tag MAC of ``serial`` -> ``eth_dst``, ``eth_src`` (a
    MAC string), IPv4 or IPv6 by the addresses' family, UDP with a correct
    checksum (and a correct IPv4 header checksum)."""
    srca, dsta = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if srca.version != dsta.version:
        raise ValueError(f"{src} and {dst} are of different families")
    payload = bytes(payload)
    ulen = 8 + len(payload)
    if srca.version == 4:
        pseudo = struct.pack("!4s4sxBH", srca.packed, dsta.packed, UDP, ulen)
    else:
        pseudo = struct.pack("!16s16sIxxxB", srca.packed, dsta.packed, ulen, UDP)
    hdr = struct.pack("!HHHH", sport, dport, ulen, 0)
    udp = dpkt.udp.UDP(sport=sport, dport=dport, ulen=ulen,
                       sum=_csum(pseudo, hdr + payload), data=payload)
    if srca.version == 4:
        ip = dpkt.ip.IP(src=srca.packed, dst=dsta.packed, p=UDP, ttl=hop_limit, data=udp)
        ip.len = 20 + ulen
        ip.sum = 0
        ip.sum = dpkt.in_cksum(ip.pack_hdr())
        etype = ETH_P_IP
        body = ip.pack_hdr() + bytes(udp)
    else:
        ip = dpkt.ip6.IP6(src=srca.packed, dst=dsta.packed, nxt=UDP, hlim=hop_limit,
                          plen=ulen, data=udp)
        ip.extension_hdrs = {}
        etype = ETH_P_IPV6
        body = ip.pack_hdr() + bytes(udp)
    return tag_mac(serial) + mac_bytes(eth_src) + struct.pack("!H", etype) + body
