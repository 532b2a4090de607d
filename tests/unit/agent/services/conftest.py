"""Shared pieces of the services tests: a view as the controller sends it,
and scapy frames as the controller's flows deliver them to vpc-svc.

scapy is the independent parser: what the agent builds (dpkt, dnslib,
struct) is read back with scapy and every field checked."""
import copy

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from vpcagent.services.view import Store

ROUTER_MAC = "02:76:70:63:00:03"
ROUTER_LL6 = "fe80::76:70ff:fe63:3"
WEB1_MAC = "02:00:0a:00:00:05"
V6ONLY_MAC = "02:00:0a:00:00:06"
RED_MAC = "02:00:0a:00:00:07"
WEB1_LL = "fe80::ff:fe00:5"


def tag(serial):
    return "02:76:70:73:%02x:%02x" % (serial >> 8, serial & 0xFF)


VIEW = {
    "host": "h1", "etag": "e1", "service_port": "vpc-svc",
    "ports": [
        {"serial": 7, "id": "p7", "tenant": "blue", "mac": WEB1_MAC, "name": "web1",
         "ip": "10.0.0.5", "prefixlen": 24, "gateway": "10.0.0.1",
         "ip6": "fd00:1::5", "prefixlen6": 64, "gateway6": "fd00:1::1", "mtu": 1450},
        {"serial": 0x1234, "id": "p8", "tenant": "blue", "mac": V6ONLY_MAC, "name": None,
         "ip": None, "prefixlen": None, "gateway": None,
         "ip6": "fd00:1::6", "prefixlen6": 64, "gateway6": "fd00:1::1", "mtu": 1450},
        {"serial": 9, "id": "p9", "tenant": "red", "mac": RED_MAC, "name": "r1",
         "ip": "10.0.0.5", "prefixlen": 24, "gateway": "10.0.0.1",
         "ip6": None, "prefixlen6": None, "gateway6": None, "mtu": 1400},
    ],
    "tenants": {
        "blue": {"router_mac": ROUTER_MAC, "router_ll6": ROUTER_LL6,
                 "domain": "blue.internal", "resolvers": [], "lease_time": 3600, "ttl": 5,
                 "subnets": ["10.0.0.0/24", "fd00:1::/64"],
                 "records": [
                     {"names": ["web1", "web"], "ip": "10.0.0.5", "ip6": "fd00:1::5"},
                     {"names": ["web2", "web"], "ip": "10.0.0.6", "ip6": None},
                     {"names": ["web3", "web"], "ip": "10.0.0.7", "ip6": None},
                     {"names": ["v6only"], "ip": None, "ip6": "fd00:1::6"},
                 ]},
        "red": {"router_mac": "02:76:70:63:00:04", "router_ll6": "fe80::76:70ff:fe63:4",
                "domain": "red.internal", "resolvers": [], "lease_time": 600, "ttl": 7,
                "subnets": ["10.0.0.0/24"],
                "records": [{"names": ["r1", "secret"], "ip": "10.0.0.5", "ip6": None}]},
    },
}


@pytest.fixture
def view():
    """A fresh copy of VIEW (tests may edit it before building the store)."""
    return copy.deepcopy(VIEW)


@pytest.fixture
def store(view):
    s = Store()
    s.set(view)
    return s


def v4_frame(payload_layer, serial=7, src_mac=WEB1_MAC, src="0.0.0.0",
             dst="255.255.255.255", sport=68, dport=67):
    return bytes(Ether(dst=tag(serial), src=src_mac) / IP(src=src, dst=dst) /
                 UDP(sport=sport, dport=dport) / payload_layer)


def v6_frame(payload_layer, serial=7, src_mac=WEB1_MAC, src=WEB1_LL, dst="ff02::1:2",
             sport=546, dport=547):
    return bytes(Ether(dst=tag(serial), src=src_mac) / IPv6(src=src, dst=dst) /
                 UDP(sport=sport, dport=dport) / payload_layer)


def checked(frame):
    """The reply as scapy sees it, after checking its IP/UDP checksums by
    letting scapy compute them again."""
    p = Ether(frame)
    again = p.copy()
    if IP in again:
        del again[IP].chksum
    del again[UDP].chksum
    again = Ether(bytes(again))
    if IP in p:
        assert p[IP].chksum == again[IP].chksum, "IPv4 header checksum"
        assert p[IP].len == len(p[IP])
    else:
        assert p[IPv6].plen == len(p[UDP])
    assert p[UDP].chksum == again[UDP].chksum, "UDP checksum"
    assert p[UDP].len == len(p[UDP])
    return p
