"""The receive loop of the service port: frame in, reply out, never dies.

``Dispatcher`` is the pure part (a frame and the current view in, reply
frames out through ``send``): it finds the port from the tag MAC, drops a
frame whose source MAC is not that port's (the flows guarantee it; a second
check costs nothing), applies a per-port token bucket (a flooding container
spends its own budget, not its neighbours'), and hands the datagram to
DHCPv4, DHCPv6 or DNS.  ``Responder`` owns the socket: it reads frames,
reopens the port when it vanished (OVS restarted, port deleted) and logs the
counters now and then.  Any exception from one frame is counted and logged;
the next frame is read as usual.
"""
import logging
import socket
import threading
import time

from vpcagent.services import dhcp4, dhcp6, frames
from vpcagent.services.dns import Dns

log = logging.getLogger("vpc-agent.services")

PACKET_OUTGOING = 4
RATE, BURST = 200.0, 400.0            # per port, as its service meter on br-int (200/s, 400)
CHECK_EVERY = 15.0                    # seconds between checks that the port is still there
REPORT_EVERY = 300.0


class Dispatcher:
    def __init__(self, store, send, forwarder, clock=time.monotonic, rate=RATE,
                 burst=BURST):
        self.store, self.send, self.clock = store, send, clock
        self.rate, self.burst = rate, burst
        self.counters = {}
        self.dns = Dns(forwarder, send, self.counters)
        self._buckets = {}

    def count(self, key):
        self.counters[key] = self.counters.get(key, 0) + 1

    def _allow(self, serial):
        now = self.clock()
        tokens, last = self._buckets.get(serial, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self._buckets[serial] = (tokens, now)
            return False
        self._buckets[serial] = (tokens - 1, now)
        return True

    def handle(self, frame):
        """Answer one frame (replies go out through ``send``); never raises."""
        try:
            reply = self._handle(frame)
            if reply is not None:
                self.send(reply)
                self.count("replies")
        except Exception:                 # noqa: BLE001 -- one bad frame must not stop us
            self.count("errors")
            log.exception("service frame (%d bytes) not handled", len(frame))

    def _handle(self, frame):
        pkt = frames.parse(frame)
        if pkt is None:
            self.count("not_for_us")
            return None
        view = self.store.view
        port = view.port(pkt.serial)
        if port is None:
            self.count("unknown_port")
            log.debug("frame for port serial %d, not in the view", pkt.serial)
            return None
        if pkt.eth_src != port.mac:
            self.count("wrong_source_mac")
            log.debug("frame for port %d from %s, not its MAC %s", pkt.serial, pkt.eth_src,
                      port.mac)
            return None
        tenant = view.tenant(port.tenant)
        if not self._allow(pkt.serial):
            self.count("rate_limited")
            return None
        if pkt.version == 4 and (pkt.sport, pkt.dport) == (dhcp4.CLIENT_PORT,
                                                           dhcp4.SERVER_PORT):
            self.count("dhcp4")
            return dhcp4.answer(pkt, port, tenant)
        if pkt.version == 6 and (pkt.sport, pkt.dport) == (dhcp6.CLIENT_PORT,
                                                           dhcp6.SERVER_PORT):
            self.count("dhcp6")
            return dhcp6.answer(pkt, port, tenant)
        if pkt.dport == 53:
            self.count("dns")
            return self.dns.answer(pkt, port, tenant)
        self.count("other_udp")
        return None

    def prune(self, keep):
        """Forget the buckets of ports no longer in the view."""
        for serial in list(self._buckets):
            if serial not in keep:
                self._buckets.pop(serial, None)


class Responder:
    """Reads the service port until ``stop`` is set.  ``service_port``:
    port.ServicePort (ensure/open/ifindex)."""

    def __init__(self, service_port, store, forwarder, retry=10.0):
        self.port, self.store, self.retry = service_port, store, retry
        self.sock = None
        self._lock = threading.Lock()
        self.dispatcher = Dispatcher(store, self.send, forwarder)

    def send(self, frame):
        with self._lock:
            sock = self.sock
        if sock is None:
            self.dispatcher.count("send_no_socket")
            return
        try:
            sock.send(frame)
        except OSError as exc:
            self.dispatcher.count("send_errors")
            log.warning("cannot write into %s: %s", self.port.name, exc)

    def _open(self):
        self.port.ensure()
        sock = self.port.open()
        sock.settimeout(1.0)
        with self._lock:
            old, self.sock = self.sock, sock
        if old is not None:
            old.close()
        self.ifindex = self.port.ifindex()
        log.info("DHCP and DNS for local ports on %s (index %s)", self.port.name,
                 self.ifindex)

    def _close(self):
        with self._lock:
            old, self.sock = self.sock, None
        if old is not None:
            old.close()

    def run(self, stop):
        next_check = next_report = 0.0
        reported = {}
        while not stop.is_set():
            if self.sock is None:
                try:
                    self._open()
                except Exception as exc:  # noqa: BLE001 -- retried
                    log.warning("service port %s not ready: %s; again in %.0f s",
                                self.port.name, exc, self.retry)
                    self._close()
                    stop.wait(self.retry)
                    continue
                next_check = time.monotonic() + CHECK_EVERY
            now = time.monotonic()
            if now >= next_check:
                next_check = now + CHECK_EVERY
                try:
                    if self.port.ifindex() != self.ifindex:
                        log.warning("service port %s changed or vanished; reopening",
                                    self.port.name)
                        self._close()
                        continue
                except Exception as exc:  # noqa: BLE001
                    log.warning("service port %s: %s", self.port.name, exc)
                self.dispatcher.prune(self.store.view.ports)
            if now >= next_report:
                next_report = now + REPORT_EVERY
                if self.dispatcher.counters != reported:
                    reported = dict(self.dispatcher.counters)
                    log.info("services: %s", " ".join(f"{k}={v}" for k, v in
                                                      sorted(reported.items())))
            try:
                frame, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError as exc:
                log.warning("reading %s: %s; reopening", self.port.name, exc)
                self._close()
                stop.wait(1.0)
                continue
            if isinstance(addr, tuple) and len(addr) > 2 and addr[2] == PACKET_OUTGOING:
                continue                  # our own replies, seen on the way out
            self.dispatcher.handle(frame)
        self._close()
