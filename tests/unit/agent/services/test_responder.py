"""The dispatcher's guards and the receive loop (over a socketpair in place
of the AF_PACKET socket)."""
import socket
import threading
import time

from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.l2 import Ether

from tests.unit.agent.services.conftest import v4_frame
from tests.unit.agent.services.test_dhcp4 import NoForward, bootp, discover
from vpcagent.services import dhcp4
from vpcagent.services.responder import Dispatcher, Responder


def test_per_port_rate_limit(store):
    now = [0.0]
    out = []
    d = Dispatcher(store, out.append, NoForward(), clock=lambda: now[0], rate=10, burst=5)
    for _ in range(8):
        d.handle(discover())
    assert len(out) == 5 and d.counters["rate_limited"] == 3
    now[0] += 0.5                                        # 5 tokens back
    for _ in range(8):
        d.handle(discover())
    assert len(out) == 10


def test_a_handler_exception_is_counted_not_raised(store, monkeypatch):
    out = []
    d = Dispatcher(store, out.append, NoForward())

    def boom(*a):
        raise RuntimeError("bug")

    monkeypatch.setattr(dhcp4, "answer", boom)
    d.handle(discover())
    assert d.counters["errors"] == 1 and out == []
    monkeypatch.undo()
    d.handle(discover())
    assert len(out) == 1


def test_other_udp_and_non_udp_are_ignored(store):
    out = []
    d = Dispatcher(store, out.append, NoForward())
    d.handle(v4_frame(b"x", src="10.0.0.5", sport=1234, dport=9999))
    d.handle(b"\x02\x76\x70\x73\x00\x07" + b"\0" * 50)
    assert out == [] and d.counters["other_udp"] == 1 and d.counters["not_for_us"] == 1


class FakePort:
    """ServicePort over a datagram socketpair; ``index`` changes when "OVS
    restarts" the port."""
    name = "vpc-svc"

    def __init__(self):
        self.index, self.opened, self.peers = 5, 0, []

    def ensure(self):
        pass

    def ifindex(self):
        return self.index

    def open(self):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.opened += 1
        self.peers.append(theirs)
        return ours


def test_receive_loop_answers_and_reopens(store, monkeypatch):
    from vpcagent.services import responder as r
    monkeypatch.setattr(r, "CHECK_EVERY", 0.2)
    port = FakePort()
    resp = Responder(port, store, NoForward(), retry=0.1)
    stop = threading.Event()
    t = threading.Thread(target=resp.run, args=(stop,), daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 3
        while not port.peers and time.monotonic() < deadline:
            time.sleep(0.02)
        peer = port.peers[-1]
        peer.settimeout(3)
        peer.send(b"garbage")
        peer.send(discover())
        reply = Ether(peer.recv(65535))
        assert reply[BOOTP].yiaddr == "10.0.0.5"
        port.index = 6                                    # the port was made again
        deadline = time.monotonic() + 3
        while port.opened < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert port.opened == 2
        peer = port.peers[-1]
        peer.settimeout(3)
        peer.send(v4_frame(bootp() / DHCP(options=[("message-type", "request"),
                                                   ("requested_addr", "10.0.0.5"), "end"])))
        assert Ether(peer.recv(65535))[DHCP].options[0] == ("message-type", 5)
    finally:
        stop.set()
        t.join(3)
    assert not t.is_alive() and resp.sock is None


def test_unready_port_is_retried():
    class Broken(FakePort):
        def ensure(self):
            self.opened += 1
            raise OSError("no bridge")

    from vpcagent.services.view import Store
    port = Broken()
    resp = Responder(port, Store(), NoForward(), retry=0.05)
    stop = threading.Event()
    t = threading.Thread(target=resp.run, args=(stop,), daemon=True)
    t.start()
    time.sleep(0.3)
    stop.set()
    t.join(3)
    assert port.opened >= 3 and not t.is_alive()


def test_agent_flags():
    from vpcagent.main import parse_args
    a = parse_args(["--host", "h1", "--api", "127.0.0.1:8080"])
    assert a.services is True and a.state_dir == "/var/lib/vpc-agent"
    a = parse_args(["--host", "h1", "--api", "127.0.0.1:8080", "--no-services",
                    "--state-dir", "/tmp/x"])
    assert a.services is False and a.state_dir == "/tmp/x"
