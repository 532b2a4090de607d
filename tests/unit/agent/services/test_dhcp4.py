"""DHCPv4: DISCOVER/REQUEST/INFORM built with scapy, through the dispatcher,
replies parsed with scapy (every field and option)."""
import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from tests.unit.agent.services.conftest import (RED_MAC, ROUTER_MAC, V6ONLY_MAC, WEB1_MAC,
                                                 checked, tag, v4_frame)
from vpcagent.services import frames
from vpcagent.services.responder import Dispatcher


class NoForward:
    def submit(self, *a):
        raise AssertionError("DHCP never forwards")


def dispatch(store, frame):
    out = []
    Dispatcher(store, out.append, NoForward()).handle(frame)
    return out


def bootp(mac=WEB1_MAC, xid=0x1234abcd, flags=0, ciaddr="0.0.0.0"):
    return BOOTP(op=1, chaddr=frames.mac_bytes(mac) + b"\0" * 10, xid=xid, flags=flags,
                 ciaddr=ciaddr)


def options(p):
    out = {}
    for o in p[DHCP].options:
        if isinstance(o, tuple):
            out[o[0]] = o[1] if len(o) == 2 else o[1:]
    return out


def discover(params=(1, 3, 6, 15, 26, 119), **kw):
    return v4_frame(bootp(**kw) / DHCP(options=[("message-type", "discover"),
                                                ("param_req_list", list(params)), "end"]))


def test_discover_gets_an_offer_with_every_option(store):
    [reply] = dispatch(store, discover())
    p = checked(reply)
    assert p[Ether].dst == tag(7) and p[Ether].src == ROUTER_MAC
    assert (p[IP].src, p[IP].dst) == ("10.0.0.1", "10.0.0.5")
    assert (p[UDP].sport, p[UDP].dport) == (67, 68)
    b = p[BOOTP]
    assert (b.op, b.xid, b.yiaddr, b.ciaddr, b.flags) == (2, 0x1234abcd, "10.0.0.5",
                                                         "0.0.0.0", 0)
    assert b.chaddr[:6] == frames.mac_bytes(WEB1_MAC)
    assert len(p[UDP].payload) >= 300
    o = options(p)
    assert o["message-type"] == 2                     # OFFER
    assert o["server_id"] == "10.0.0.1"
    assert o["lease_time"] == 3600
    assert o["renewal_time"] == 1800 and o["rebinding_time"] == 3150
    assert o["subnet_mask"] == "255.255.255.0"
    assert o["router"] == "10.0.0.1"
    assert o["name_server"] == "10.0.0.1"
    assert o["domain"] == b"blue.internal"
    assert o[119] == b"\x04blue\x08internal\x00"          # scapy has no name for 119
    assert o["interface-mtu"] == 1450
    assert o["hostname"] == b"web1"
    assert "classless_static_routes" not in o and 121 not in o


def test_classless_routes_only_when_asked(store):
    [reply] = dispatch(store, discover(params=(1, 3, 121)))
    o = options(checked(reply))
    routes = o.get("classless_static_routes") or o.get(121)
    assert routes in (["0.0.0.0/0:10.0.0.1"], b"\x00\x0a\x00\x00\x01"), routes


def test_broadcast_flag_sends_to_broadcast(store):
    [reply] = dispatch(store, discover(flags=0x8000))
    p = checked(reply)
    assert p[IP].dst == "255.255.255.255" and p[BOOTP].flags == 0x8000


def request(requested=None, server="10.0.0.1", ciaddr="0.0.0.0", **kw):
    opts = [("message-type", "request")]
    if requested:
        opts.append(("requested_addr", requested))
    if server:
        opts.append(("server_id", server))
    return v4_frame(bootp(ciaddr=ciaddr, **kw) / DHCP(options=opts + ["end"]),
                    src=ciaddr)


@pytest.mark.parametrize("frame", [
    request("10.0.0.5"),                               # SELECTING
    request("10.0.0.5", server=None),                  # INIT-REBOOT
    request(server=None, ciaddr="10.0.0.5"),           # RENEWING / REBINDING
], ids=["selecting", "init-reboot", "renewing"])
def test_request_for_the_ports_address_is_acked(store, frame):
    [reply] = dispatch(store, frame)
    p = checked(reply)
    o = options(p)
    assert o["message-type"] == 5 and p[BOOTP].yiaddr == "10.0.0.5"
    assert o["lease_time"] == 3600 and o["router"] == "10.0.0.1"
    assert p[IP].dst == "10.0.0.5"


def test_request_for_another_address_is_naked(store):
    [reply] = dispatch(store, request("10.0.0.99", server=None))
    p = checked(reply)
    o = options(p)
    assert o["message-type"] == 6 and p[BOOTP].yiaddr == "0.0.0.0"
    assert o["server_id"] == "10.0.0.1" and "lease_time" not in o
    assert p[IP].dst == "255.255.255.255"


def test_request_to_another_server_is_ignored(store):
    assert dispatch(store, request("10.0.0.5", server="10.0.0.254")) == []


def test_inform_gets_an_ack_without_lease(store):
    frame = v4_frame(bootp(ciaddr="10.0.0.5") / DHCP(options=[("message-type", "inform"),
                                                              "end"]), src="10.0.0.5")
    [reply] = dispatch(store, frame)
    p = checked(reply)
    o = options(p)
    assert o["message-type"] == 5 and p[BOOTP].yiaddr == "0.0.0.0"
    assert "lease_time" not in o and "renewal_time" not in o
    assert o["router"] == "10.0.0.1" and p[IP].dst == "10.0.0.5"


@pytest.mark.parametrize("mtype", ["release", "decline"])
def test_release_and_decline_get_nothing(store, mtype):
    frame = v4_frame(bootp(ciaddr="10.0.0.5") / DHCP(options=[("message-type", mtype),
                                                              ("server_id", "10.0.0.1"),
                                                              "end"]))
    assert dispatch(store, frame) == []


def test_unknown_chaddr_gets_nothing(store):
    assert dispatch(store, discover(mac="02:00:00:00:00:99")) == []


def test_source_mac_other_than_the_ports_gets_nothing(store):
    frame = bytes(Ether(discover()))
    spoofed = frame[:6] + frames.mac_bytes("02:00:00:00:00:99") + frame[12:]
    assert dispatch(store, spoofed) == []


def test_unknown_serial_gets_nothing(store):
    frame = discover()
    assert dispatch(store, frames.tag_mac(99) + frame[6:]) == []


def test_port_without_ipv4_gets_nothing(store):
    frame = v4_frame(bootp(mac=V6ONLY_MAC) / DHCP(options=[("message-type", "discover"),
                                                           "end"]),
                     serial=0x1234, src_mac=V6ONLY_MAC)
    assert dispatch(store, frame) == []


def test_other_tenant_gets_its_own_config(store):
    frame = v4_frame(bootp(mac=RED_MAC) / DHCP(options=[("message-type", "discover"),
                                                        "end"]),
                     serial=9, src_mac=RED_MAC)
    [reply] = dispatch(store, frame)
    p = checked(reply)
    o = options(p)
    assert p[Ether].dst == tag(9) and p[Ether].src == "02:76:70:63:00:04"
    assert o["lease_time"] == 600 and o["domain"] == b"red.internal"
    assert o["interface-mtu"] == 1400 and o["hostname"] == b"r1"


@pytest.mark.parametrize("payload", [b"", b"\x01", b"\x01\x01\x06\x00" + b"\xff" * 40,
                                     bytes(bootp()) [:100]])
def test_garbage_gets_nothing_and_does_not_raise(store, payload):
    out = []
    d = Dispatcher(store, out.append, NoForward())
    d.handle(v4_frame(payload))
    assert out == [] and d.counters.get("errors", 0) == 0


def test_long_option_is_split():
    from vpcagent.services.dhcp4 import _pack
    parts = _pack(119, b"x" * 600)
    assert [len(d) for _, d in parts] == [255, 255, 90] and {c for c, _ in parts} == {119}
