"""Forged frames for the spoofing test, sent from inside a container.

Why: port security (controller/compile/host.py) claims a container can send
only from its own MAC and IP, ARP only about itself, no DHCP server replies
and no 802.1Q tags.  Only frames written raw onto the container's eth0 (an
AF_PACKET socket: the kernel's own stack would never forge them) show what
br-int really does with them.  The builders are pure functions returning
bytes (the test builds its frames in its own process); the sender runs in the
attacker's namespace as ``python3 labspoof.py IFACE HEX...`` and writes each
frame a few times.  Standard library only (no scapy).
"""
import socket
import struct
import sys

BROADCAST = "ff:ff:ff:ff:ff:ff"
ETH_IP, ETH_ARP, ETH_VLAN = 0x0800, 0x0806, 0x8100


def mac_bytes(text):
    return bytes.fromhex(text.replace(":", ""))


def _checksum(data):
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    return ~(s + (s >> 16)) & 0xFFFF


def ethernet(dst, src, ethertype, payload, vlan=None):
    """An Ethernet frame; ``vlan``: a VLAN id to put an 802.1Q tag in."""
    tag = struct.pack("!HH", ETH_VLAN, vlan & 0x0FFF) if vlan is not None else b""
    return mac_bytes(dst) + mac_bytes(src) + tag + struct.pack("!H", ethertype) + payload


def arp(op, sha, spa, tha, tpa):
    """An ARP body (IPv4 over Ethernet); ``op`` 1 request, 2 reply."""
    return (struct.pack("!HHBBH", 1, ETH_IP, 6, 4, op) + mac_bytes(sha) +
            socket.inet_aton(spa) + mac_bytes(tha) + socket.inet_aton(tpa))


def ipv4_udp(src, dst, sport, dport, payload=b"spoof-test"):
    """An IPv4 header + UDP datagram (UDP checksum 0: allowed in IPv4)."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    return hdr[:10] + struct.pack("!H", _checksum(hdr)) + hdr[12:] + udp


def udp_frame(dst_mac, src_mac, src_ip, dst_ip, sport, dport, vlan=None):
    return ethernet(dst_mac, src_mac, ETH_IP, ipv4_udp(src_ip, dst_ip, sport, dport),
                    vlan=vlan)


ETH_IPV6 = 0x86DD


def ipv6_icmp(src, dst, icmp, hop_limit=255):
    """An IPv6 header + ICMPv6 message (``icmp``: type, code, 0 checksum, body),
    the checksum filled in over the pseudo-header."""
    s6, d6 = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
    pseudo = s6 + d6 + struct.pack("!I3xB", len(icmp), 58)
    icmp = icmp[:2] + struct.pack("!H", _checksum(pseudo + icmp)) + icmp[4:]
    return struct.pack("!IHBB", 0x6000_0000, len(icmp), 58, hop_limit) + s6 + d6 + icmp


def ipv6_udp(src, dst, sport, dport, payload=b"spoof-test"):
    s6, d6 = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    pseudo = s6 + d6 + struct.pack("!I3xB", len(udp), 17)
    udp = udp[:6] + struct.pack("!H", _checksum(pseudo + udp) or 0xFFFF) + udp[8:]
    return struct.pack("!IHBB", 0x6000_0000, len(udp), 17, 64) + s6 + d6 + udp


def router_advert(src_mac, prefix):
    """An RA: router lifetime 1800 s, the source link-layer option and a /64 prefix
    with the autonomous flag (what a rogue router would announce)."""
    body = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0)
    body += bytes([1, 1]) + mac_bytes(src_mac)
    pfx = socket.inet_pton(socket.AF_INET6, prefix)
    body += struct.pack("!BBBBIII", 3, 4, 64, 0xC0, 86400, 14400, 0) + pfx
    return body


def router_solicit(src_mac):
    """An RS with the source link-layer option (what a host sends as its link comes up)."""
    return struct.pack("!BBHI", 133, 0, 0, 0) + bytes([1, 1]) + mac_bytes(src_mac)


def neighbor_advert(target, mac, flags=0x2000_0000):
    """An NA for ``target`` with a target link-layer option ``mac`` (O flag)."""
    return (struct.pack("!BBHI", 136, 0, 0, flags) + socket.inet_pton(socket.AF_INET6, target)
            + bytes([2, 1]) + mac_bytes(mac))


def send(iface, frames, repeat=3):
    """Write each frame ``repeat`` times on ``iface``; returns how many went out."""
    sent = 0
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((iface, 0))
        for _ in range(repeat):
            for frame in frames:
                s.send(frame)
                sent += 1
    return sent


def send_from(lab, ns, frames, iface="eth0"):
    """Send ``frames`` (bytes) from inside namespace ``ns``."""
    out = lab.exec(ns, sys.executable, __file__, iface, *(f.hex() for f in frames))
    return int(out.stdout.split()[-1])


if __name__ == "__main__":
    print(send(sys.argv[1], [bytes.fromhex(h) for h in sys.argv[2:]]))
