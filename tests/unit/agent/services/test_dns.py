"""DNS at the gateway: queries built with scapy, answers parsed with scapy.

Forwarding goes to a real resolver: a small dnslib server the test runs on
127.0.0.1."""
import ipaddress
import queue
import socket
import threading

import pytest
from dnslib import QTYPE, RR, DNSRecord
from scapy.layers.dns import DNS, DNSQR, DNSRROPT
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from tests.unit.agent.services.conftest import (RED_MAC, ROUTER_MAC, WEB1_MAC, checked, tag,
                                                 v4_frame, v6_frame)
from vpcagent.services.forward import Forwarder, parse_resolver
from vpcagent.services.responder import Dispatcher
from vpcagent.services.view import Store

NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5


class Env:
    def __init__(self, view, timeout=0.5):
        self.store = Store()
        self.store.set(view)
        self.out = queue.Queue()
        self.forwarder = Forwarder(timeout=timeout)
        self.dispatcher = Dispatcher(self.store, self.out.put, self.forwarder)

    def ask(self, name, qtype="A", serial=7, v6=False, edns=False, qid=0x4242, raw=None,
            mac=WEB1_MAC, src="10.0.0.5", wait=0.0):
        dns = raw if raw is not None else DNS(id=qid, rd=1, qd=DNSQR(qname=name, qtype=qtype),
                                              ar=[DNSRROPT(rclass=1232)] if edns else [])
        if v6:
            frame = v6_frame(dns, serial=serial, src_mac=mac, src="fd00:1::5", dst="fd00:1::1",
                             sport=40000, dport=53)
        else:
            frame = v4_frame(dns, serial=serial, src_mac=mac, src=src, dst="10.0.0.1",
                             sport=40000, dport=53)
        self.dispatcher.handle(frame)
        try:
            reply = self.out.get(timeout=wait) if wait else self.out.get_nowait()
        except queue.Empty:
            return None
        p = checked(reply)
        assert p[Ether].dst == tag(serial) and p[Ether].src in (ROUTER_MAC,
                                                                 "02:76:70:63:00:04")
        ip = p[IPv6] if v6 else p[IP]
        assert (ip.src, ip.dst) == (("fd00:1::1", "fd00:1::5") if v6 else ("10.0.0.1", src))
        assert (p[UDP].sport, p[UDP].dport) == (53, 40000)
        return p[DNS]


@pytest.fixture
def env(view):
    e = Env(view)
    yield e
    e.forwarder.close()


def answers(d, rtype=None):
    return [(r.rdata if not isinstance(r.rdata, bytes) else r.rdata.decode())
            for r in (d.an or []) if rtype is None or r.type == rtype]


def soa_of(d):
    [soa] = [r for r in (d.ns or []) if r.type == 6]
    return soa


@pytest.mark.parametrize("name", ["web1.", "WEB1.", "web1.blue.internal.",
                                  "Web1.Blue.Internal."])
def test_a_of_a_port_name(env, name):
    d = env.ask(name)
    assert (d.rcode, d.qr, d.aa, d.id) == (NOERROR, 1, 1, 0x4242)
    assert answers(d, 1) == ["10.0.0.5"]
    assert d.an[0].ttl == 5 and d.qd[0].qname.decode().lower() == name.lower()


def test_aaaa_and_ipv6_transport(env):
    d = env.ask("web1.blue.internal.", "AAAA", v6=True)
    assert answers(d, 28) == ["fd00:1::5"]


def test_alias_round_robin(env):
    seen = [tuple(answers(env.ask("web."), 1)) for _ in range(3)]
    assert sorted(seen[0]) == ["10.0.0.5", "10.0.0.6", "10.0.0.7"]
    assert len(set(seen)) == 3                     # each query starts elsewhere
    assert {s[0] for s in seen} == {"10.0.0.5", "10.0.0.6", "10.0.0.7"}
    assert seen[1] == seen[0][1:] + seen[0][:1]    # rotated by one


def test_known_name_other_type_is_nodata_with_soa(env):
    for qtype in ("MX", "TXT", "ALL"):
        d = env.ask("web1.blue.internal.", qtype)
        assert (d.rcode, d.aa, d.ancount) == (NOERROR, 1, 0)
        soa = soa_of(d)
        assert soa.rrname == b"blue.internal." and soa.minimum == 5


def test_a_of_an_ipv6_only_name_is_nodata(env):
    d = env.ask("v6only.", "A")
    assert (d.rcode, d.ancount) == (NOERROR, 0) and soa_of(d)
    assert answers(env.ask("v6only.", "AAAA"), 28) == ["fd00:1::6"]


@pytest.mark.parametrize("name", ["nosuch.blue.internal.", "nosuch.", "secret.",
                                  "r1.blue.internal."])
def test_unknown_names_are_nxdomain_with_soa(env, name):
    d = env.ask(name)                              # secret/r1: the red tenant's names
    assert (d.rcode, d.aa, d.ancount) == (NXDOMAIN, 1, 0)
    soa = soa_of(d)
    assert soa.minimum == 5 and soa.ttl == 5


def test_other_tenant_sees_only_its_own_names(env):
    d = env.ask("secret.", serial=9, mac=RED_MAC)
    assert answers(d, 1) == ["10.0.0.5"] and d.an[0].ttl == 7
    d = env.ask("web.", serial=9, mac=RED_MAC)
    assert d.rcode == NXDOMAIN and soa_of(d).minimum == 7


def test_ptr(env):
    d = env.ask("5.0.0.10.in-addr.arpa.", "PTR")
    assert (d.rcode, d.aa) == (NOERROR, 1)
    assert answers(d, 12) == ["web1.blue.internal."]
    v6 = ipaddress.ip_address("fd00:1::5").reverse_pointer + "."
    assert answers(env.ask(v6, "PTR"), 12) == ["web1.blue.internal."]


def test_ptr_in_a_subnet_without_port_is_nxdomain(env):
    d = env.ask("99.0.0.10.in-addr.arpa.", "PTR")
    assert (d.rcode, d.aa) == (NXDOMAIN, 1)
    assert soa_of(d).rrname == b"0.0.10.in-addr.arpa."


def test_apex_soa(env):
    d = env.ask("blue.internal.", "SOA")
    assert d.rcode == NOERROR and d.an[0].type == 6 and d.an[0].minimum == 5


def test_refused_without_resolvers_and_ede_with_edns(env):
    d = env.ask("example.com.", edns=True)
    assert (d.rcode, d.aa) == (REFUSED, 0)
    [opt] = [r for r in d.ar if r.type == 41]
    [ede] = [o for o in opt.rdata if o.optcode == 15]
    code, text = ede.info_code, ede.extra_text.decode()      # scapy's EDE layer
    assert code == 20
    assert text == ("tenant blue has no DNS resolver set: vpcctl tenant dhcp-options blue "
                    "--resolver IP")


def test_refused_without_edns_has_no_opt(env):
    d = env.ask("example.com.")
    assert d.rcode == REFUSED and not d.arcount


def test_truncated_without_edns(view):
    view["tenants"]["blue"]["records"] += [
        {"names": ["big"], "ip": f"10.0.1.{i}", "ip6": None} for i in range(1, 60)]
    e = Env(view)
    d = e.ask("big.")
    assert d.tc == 1 and 0 < d.ancount < 59
    d = e.ask("big.", edns=True)
    assert d.tc == 0 and d.ancount == 59
    e.forwarder.close()


def test_malformed(env):
    assert env.ask("x.", raw=b"\x12\x34\x01") is None                 # no header: dropped
    d = env.ask("x.", raw=b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07abc")
    assert (d.id, d.qr, d.rcode) == (0x1234, 1, FORMERR)
    d = env.ask("x.", raw=DNS(id=5, opcode=2, qd=DNSQR(qname="x.")))   # STATUS
    assert d.rcode == NOTIMP
    assert env.ask("x.", raw=DNS(id=5, qr=1, qd=DNSQR(qname="x."))) is None   # a response
    assert env.dispatcher.counters.get("errors", 0) == 0


def test_query_not_from_the_ports_address_is_dropped(env):
    assert env.ask("web1.", src="10.0.0.99") is None


# -- forwarding ---------------------------------------------------------------------------------

class Upstream:
    """A tiny resolver on 127.0.0.1: answers A of anything with 192.0.2.1,
    after `delay` seconds; remembers the queries."""

    def __init__(self, delay=0.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.delay, self.queries, self.stop = delay, [], threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            q = DNSRecord.parse(data)
            self.queries.append(q)
            r = q.reply(aa=0)
            r.add_answer(RR(q.q.qname, QTYPE.A, ttl=300, rdata=__import__("dnslib").A(
                "192.0.2.1")))
            if self.delay:
                self.stop.wait(self.delay)
            self.sock.sendto(r.pack(), addr)

    def close(self):
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def upstream():
    u = Upstream()
    yield u
    u.close()


def dead_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_forwarded_to_the_tenants_resolver(view, upstream):
    view["tenants"]["blue"]["resolvers"] = [f"127.0.0.1:{upstream.port}"]
    e = Env(view)
    try:
        d = e.ask("example.com.", qid=0x7777, wait=3)
        assert (d.id, d.rcode, d.qr) == (0x7777, NOERROR, 1)
        assert answers(d, 1) == ["192.0.2.1"]
        assert str(upstream.queries[0].q.qname) == "example.com."
        # local names are never forwarded
        assert answers(e.ask("web1."), 1) == ["10.0.0.5"] and len(upstream.queries) == 1
    finally:
        e.forwarder.close()


def test_second_resolver_after_a_dead_first(view, upstream):
    view["tenants"]["blue"]["resolvers"] = [f"127.0.0.1:{dead_port()}",
                                            f"127.0.0.1:{upstream.port}"]
    e = Env(view, timeout=0.3)
    try:
        d = e.ask("example.org.", wait=3)
        assert d.rcode == NOERROR and answers(d, 1) == ["192.0.2.1"]
    finally:
        e.forwarder.close()


def test_servfail_when_every_resolver_is_dead(view):
    view["tenants"]["blue"]["resolvers"] = [f"127.0.0.1:{dead_port()}"]
    e = Env(view, timeout=0.3)
    try:
        d = e.ask("example.net.", qid=99, wait=3)
        assert (d.id, d.rcode) == (99, SERVFAIL)
    finally:
        e.forwarder.close()


def test_forwarding_never_blocks_local_answers(view):
    slow = Upstream(delay=1.0)
    view["tenants"]["blue"]["resolvers"] = [f"127.0.0.1:{slow.port}"]
    e = Env(view, timeout=3)
    try:
        e.dispatcher.handle(v4_frame(DNS(id=1, qd=DNSQR(qname="slow.example.")),
                                     src="10.0.0.5", dst="10.0.0.1", sport=40000, dport=53))
        d = e.ask("web1.")                          # answered while the other waits
        assert answers(d, 1) == ["10.0.0.5"]
        late = Ether(e.out.get(timeout=3))[DNS]
        assert late.id == 1 and answers(late, 1) == ["192.0.2.1"]
    finally:
        e.forwarder.close()
        slow.close()


@pytest.mark.parametrize("text,want", [
    ("10.9.9.9", (socket.AF_INET, ("10.9.9.9", 53))),
    ("127.0.0.1:5353", (socket.AF_INET, ("127.0.0.1", 5353))),
    ("fd00::53", (socket.AF_INET6, ("fd00::53", 53))),
    ("[fd00::53]:5353", (socket.AF_INET6, ("fd00::53", 5353))),
])
def test_parse_resolver(text, want):
    assert parse_resolver(text) == want


@pytest.mark.parametrize("text", ["", "x", "1.2.3.4:0", "[fd00::1]x", "1.2.3.4:99999"])
def test_parse_resolver_rejects(text):
    with pytest.raises(ValueError):
        parse_resolver(text)
