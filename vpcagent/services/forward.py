"""Forwarding DNS queries the tenant's names do not answer to its resolvers.

A bounded pool of worker threads does the waiting (up to 2 s per resolver),
so a slow or dead upstream never holds up the receive loop: DHCP and local
names keep being answered at once.  At most ``max_pending`` queries wait for
a worker; beyond that ``submit`` says no and the caller answers SERVFAIL at
once, which bounds memory under a flood.

The sockets are made in the network namespace of the service port (the
host's; the lab runs the agent in the root namespace beside emulated hosts)
with pyroute2's ``netns.create_socket``, which costs a fork: so each worker
makes one socket per address family once and reuses it.  A reused socket
may receive a late answer to an earlier query: an answer counts only when
it comes from the resolver asked, carries the random id we sent, and asks
the same question.
"""
import concurrent.futures
import ipaddress
import logging
import os
import socket
import struct
import threading
import time

log = logging.getLogger("vpc-agent.services")

DEFAULT_TIMEOUT = 2.0


def parse_resolver(text):
    """"ip", "ip:port", "v6", "[v6]:port" -> (family, (address, port))."""
    t = str(text).strip()
    port = 53
    if t.startswith("["):
        host, _, rest = t[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"resolver {text!r}: expected [address]:port")
            port = int(rest[1:])
    elif t.count(":") == 1:
        host, p = t.split(":")
        port = int(p)
    else:
        host = t
    addr = ipaddress.ip_address(host)
    if not 0 < port < 65536:
        raise ValueError(f"resolver {text!r}: bad port")
    fam = socket.AF_INET if addr.version == 4 else socket.AF_INET6
    return fam, (str(addr), port)


def question_key(data):
    """The question section (name lowercased, type, class) of a DNS message,
    or None when it has not exactly one plain question."""
    if len(data) < 12 or struct.unpack_from("!H", data, 4)[0] != 1:
        return None
    i = 12
    while True:
        if i >= len(data):
            return None
        n = data[i]
        if n == 0:
            break
        if n & 0xC0:
            return None
        i += 1 + n
    end = i + 5
    if end > len(data):
        return None
    return data[12:end].lower()


class Forwarder:
    def __init__(self, netns=None, workers=4, max_pending=64, timeout=DEFAULT_TIMEOUT):
        self.netns = netns
        self.timeout = timeout
        self._pool = concurrent.futures.ThreadPoolExecutor(workers,
                                                           thread_name_prefix="dns-fwd")
        self._slots = threading.BoundedSemaphore(max_pending)
        self._local = threading.local()
        self._sockets = []
        self._lock = threading.Lock()

    def submit(self, query, resolvers, done):
        """Ask ``resolvers`` (strings) in order for ``query`` (bytes) in a
        worker; ``done(answer)`` runs there with the upstream's answer (bytes,
        the client's id put back) or None when none answered.  False when
        the queue is full (nothing scheduled)."""
        if not self._slots.acquire(blocking=False):
            return False
        try:
            self._pool.submit(self._run, query, list(resolvers), done)
        except RuntimeError:           # shut down
            self._slots.release()
            return False
        return True

    def _run(self, query, resolvers, done):
        try:
            answer = None
            try:
                answer = self.resolve(query, resolvers)
            except Exception:           # noqa: BLE001 -- a worker must never die
                log.exception("DNS forwarding failed")
            done(answer)
        except Exception:               # noqa: BLE001
            log.exception("DNS forwarding: sending the answer failed")
        finally:
            self._slots.release()

    def resolve(self, query, resolvers):
        """The first upstream answer to ``query``, id restored; None if none."""
        key = question_key(query)
        if key is None:
            return None
        client_id = query[:2]
        for text in resolvers:
            try:
                fam, addr = parse_resolver(text)
            except ValueError as exc:
                log.warning("DNS resolver %r skipped: %s", text, exc)
                continue
            qid = os.urandom(2)
            try:
                sock = self._socket(fam)
                sock.sendto(qid + query[2:], addr)
                answer = self._wait(sock, addr, qid, key)
            except OSError as exc:
                log.info("DNS resolver %s: %s", text, exc)
                continue
            if answer is not None:
                return client_id + answer[2:]
            log.info("DNS resolver %s: no answer within %.1f s", text, self.timeout)
        return None

    def _wait(self, sock, addr, qid, key):
        deadline = time.monotonic() + self.timeout
        want = (ipaddress.ip_address(addr[0]), addr[1])
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            sock.settimeout(left)
            try:
                data, src = sock.recvfrom(65535)
            except socket.timeout:
                return None
            if (ipaddress.ip_address(src[0].split("%")[0]), src[1]) != want:
                continue
            if len(data) < 12 or data[:2] != qid or not data[2] & 0x80:
                continue
            if question_key(data) != key:
                continue
            return data

    def _socket(self, fam):
        socks = getattr(self._local, "socks", None)
        if socks is None:
            socks = self._local.socks = {}
        s = socks.get(fam)
        if s is None:
            if self.netns:
                from pyroute2 import netns as pnetns
                s = pnetns.create_socket(self.netns, fam, socket.SOCK_DGRAM, flags=0)
            else:
                s = socket.socket(fam, socket.SOCK_DGRAM)
            socks[fam] = s
            with self._lock:
                self._sockets.append(s)
        return s

    def close(self):
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for s in self._sockets:
                try:
                    s.close()
                except OSError:
                    pass
            self._sockets = []
