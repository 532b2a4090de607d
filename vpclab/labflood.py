"""Packet floods for the lab: a hostile container, a hostile outside network.

Why: the flood test (tests/lab/test_flood.py) must show that no tenant and
no outside sender can make the controller busy, whatever they send.  The
generator runs *inside* a namespace the lab made (``ip netns exec``) and
writes raw frames with an AF_PACKET socket, as fast as Python can, for a
bounded time; it never sends from or to the root namespace.

Two kinds, run as ``python3 labflood.py KIND IFACE SECONDS ARGS...``:

  scan    SRC_MAC SRC_IP NET   from a container: ARP requests for random
          addresses of NET (nobody has them) alternating with broadcast UDP
          frames, with the container's own MAC/IP so port security passes
          them on (a spoofed source would be dropped at once: not a flood)
  arp-reply TARGET_IP          from the outside: ARP replies to a host's
          external IP, which br-int punts to the controller (metered)
  dhcp    SRC_MAC              from a container: DHCPDISCOVERs with its own MAC,
          each with a new transaction id (what a broken or hostile DHCP client
          sends; the host agent answers them, through the port's service meter)

At the end it prints the number of frames sent.  Standard library only.
``start(lab, ns, ...)`` spawns it and ``finish(proc)`` returns that count.
"""
import contextlib
import ipaddress
import os
import random
import socket
import struct
import subprocess
import sys
import time

BROADCAST = b"\xff" * 6


def sh(cmd):
    subprocess.run(cmd, check=True, capture_output=True, timeout=15)


def _mac(text):
    return bytes.fromhex(text.replace(":", ""))


def _ip(text):
    return socket.inet_aton(text)


def arp(op, sha, spa, tpa, dst=BROADCAST):
    return (dst + sha + b"\x08\x06" +
            struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + sha + spa + b"\x00" * 6 + tpa)


def _checksum(data):
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    return ~(s + (s >> 16)) & 0xFFFF


def dhcp_discover(sha, xid):
    """A DHCPDISCOVER from 0.0.0.0:68 to 255.255.255.255:67 (RFC 2131)."""
    bootp = (struct.pack("!BBBBIHH4s4s4s4s", 1, 1, 6, 0, xid, 0, 0x8000, b"\0" * 4, b"\0" * 4,
                         b"\0" * 4, b"\0" * 4) + sha + b"\0" * 10 + b"\0" * 192
             + b"\x63\x82\x53\x63" + bytes([53, 1, 1, 55, 3, 1, 3, 6, 255]))
    return broadcast_udp(sha, b"\0" * 4, bootp, ports=(68, 67))


def broadcast_udp(sha, spa, payload=b"x" * 64, ports=(40000, 9)):
    udp = struct.pack("!HHHH", *ports, 8 + len(payload), 0) + payload
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, spa,
                      b"\xff" * 4)
    hdr = hdr[:10] + struct.pack("!H", _checksum(hdr)) + hdr[12:]
    return BROADCAST + sha + b"\x08\x00" + hdr + udp


def frames(kind, args):
    """An endless iterator of frames of one kind."""
    if kind == "scan":
        sha, spa = _mac(args[0]), _ip(args[1])
        hosts = list(ipaddress.ip_network(args[2]).hosts())
        bcast = broadcast_udp(sha, spa)
        while True:
            yield arp(1, sha, spa, socket.inet_aton(str(random.choice(hosts))))
            yield bcast
    elif kind == "dhcp":
        sha = _mac(args[0])
        while True:
            yield dhcp_discover(sha, random.getrandbits(32))
    elif kind == "arp-reply":
        tpa = _ip(args[0])
        while True:
            sha = b"\x02" + os.urandom(5)
            yield arp(2, sha, _ip("203.0.113.77"), tpa)
    else:
        raise SystemExit(f"unknown flood kind {kind!r}")


def run(kind, iface, seconds, args):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    sent = 0
    end = time.monotonic() + seconds
    gen = frames(kind, args)
    while True:
        for _ in range(256):
            try:
                s.send(next(gen))
                sent += 1
            except OSError:          # ENOBUFS: the link is full; keep going
                pass
        if time.monotonic() >= end:
            break
    return sent


def start(lab, ns, kind, iface, seconds, *args):
    """Spawn a flood in namespace ``ns``; returns the Popen (stdout piped)."""
    return lab.spawn(ns, sys.executable, os.path.abspath(__file__), kind, iface,
                     str(seconds), *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@contextlib.contextmanager
def sink(lab):
    """Two throwaway namespaces joined by a veth pair, outside every switch:
    ``with sink(lab) as (a, b):`` a flood from ``a``'s eth0 lands on ``b``.

    Why: on a small lab machine the flood generators themselves (and the
    kernel's veth/softirq work for their frames) take CPU from everyone,
    whatever the network does with the frames.  Flooding into this sink
    first measures that contention alone, so the flood test can tell the
    share of its slowdown our switches cause from the share any full-speed
    sender on the same cores causes.  Both namespaces go when the block
    ends, also on failure."""
    names = [f"sk{os.getpid() % 10000}a", f"sk{os.getpid() % 10000}b"]
    nss = []
    try:
        for name in names:
            nss.append((name, lab.add_container(name)))
        a, b = nss[0][1], nss[1][1]
        sh(["ip", "link", "add", "fl0", "netns", a, "type", "veth",
            "peer", "name", "fl1", "netns", b])
        for ns, dev in ((a, "fl0"), (b, "fl1")):
            sh(["ip", "-n", ns, "link", "set", dev, "name", "eth0"])
            sh(["ip", "-n", ns, "link", "set", "eth0", "up"])
        yield a, b
    finally:
        for name, _ in nss:
            lab.del_container(name)


def finish(proc, timeout=60):
    """Wait for a flood to end; the number of frames it sent."""
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"flood failed ({proc.returncode}): {err.decode()[-300:]}")
    return int(out.split()[-1])


if __name__ == "__main__":
    print(run(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]))
