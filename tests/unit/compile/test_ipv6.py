"""IPv6 through the compiled flows, in the simulator (the dual-stack golden world):
neighbour discovery answered by flows (NA fields exact, router flag for the
gateway, DAD for a taken address answered, the owner's own DAD not), ping6
within a subnet across hosts and between two IPv6 subnets, isolation of two
tenants reusing one prefix, anti-spoofing and RA guard, IPv6 security groups."""
import pytest

from controller.compile.ipv6 import link_local
from controller.compile.pipeline import (ND_FLAG_OVERRIDE, ND_FLAG_ROUTER, ND_FLAG_SOLICITED,
                                         router_mac)
from tests.support.golden import dual_stack_world

NS, NA, RA = 135, 136, 134
ICMP6 = {"eth_type": 0x86DD, "ip_proto": 58, "ip_ttl": 255}


@pytest.fixture(scope="module")
def w():
    return dual_stack_world()


def solicited_node(ip6):
    import ipaddress
    low = ipaddress.IPv6Address(ip6).packed[-3:]
    return ("33:33:ff:" + ":".join(f"{b:02x}" for b in low),
            str(ipaddress.IPv6Address(b"\xff\x02" + b"\x00" * 9 + b"\x01\xff" + low)))


def ns(w, src, target, ipv6_src=None, sll=None):
    p = w.port(src)
    mac, dst = solicited_node(target)
    return w.send(src, eth_dst=mac, **ICMP6, ipv6_src=p.ip6 if ipv6_src is None else ipv6_src,
                  ipv6_dst=dst, icmpv6_type=NS, icmpv6_code=0, ipv6_nd_target=target,
                  ipv6_nd_sll=p.mac if sll is None else sll, nd_reserved=0,
                  nd_options_type=0 if sll == "00:00:00:00:00:00" else 1)


def ping6(w, src, dst_mac, dst_ip, src_ip=None, **extra):
    p = w.port(src)
    pkt = {**ICMP6, "ip_ttl": 64, "icmpv6_type": 128, "icmpv6_code": 0, "icmp_id": 9, **extra}
    return w.send(src, eth_dst=dst_mac, ipv6_src=src_ip or p.ip6, ipv6_dst=dst_ip, **pkt)


def test_ns_for_a_port_is_answered_in_place_with_the_exact_na(w):
    got = ns(w, "p1", "fd00:1::3")
    assert len(got) == 1
    where, na = got[0]
    assert where == "p1"
    a2 = w.port("p2")
    assert {k: na[k] for k in ("eth_src", "eth_dst", "ipv6_src", "ipv6_dst", "icmpv6_type",
                               "nd_reserved", "nd_options_type", "ipv6_nd_target",
                               "ipv6_nd_tll")} == {
        "eth_src": a2.mac, "eth_dst": w.port("p1").mac, "ipv6_src": "fd00:1::3",
        "ipv6_dst": "fd00:1::2", "icmpv6_type": NA,
        "nd_reserved": ND_FLAG_SOLICITED | ND_FLAG_OVERRIDE, "nd_options_type": 2,
        "ipv6_nd_target": "fd00:1::3", "ipv6_nd_tll": a2.mac}


def test_ns_for_the_gateway_and_the_router_link_local_carry_the_router_flag(w):
    rmac = router_mac(w.state.tenants["a"].id)
    for target in ("fd00:1::1", "fd00:2::1", link_local(rmac)):
        [(where, na)] = ns(w, "p1", target)
        assert where == "p1" and na["eth_src"] == rmac and na["ipv6_nd_tll"] == rmac
        assert na["nd_reserved"] == ND_FLAG_ROUTER | ND_FLAG_SOLICITED | ND_FLAG_OVERRIDE


def test_dad_for_a_taken_address_fails_and_the_owners_own_dad_succeeds(w):
    [(where, na)] = ns(w, "p1", "fd00:1::3", ipv6_src="::", sll="00:00:00:00:00:00")
    assert where == "p1" and na["ipv6_dst"] == "ff02::1" and na["eth_dst"] == "33:33:00:00:00:01"
    assert na["icmpv6_type"] == NA and na["ipv6_src"] == "fd00:1::3"
    own = ns(w, "p1", "fd00:1::2", ipv6_src="::", sll="00:00:00:00:00:00")
    assert "p1" not in [d for d, _ in own]
    assert all(pkt["icmpv6_type"] == NS for _, pkt in own)         # flooded, nobody answers
    assert {d for d, _ in own} <= {"p2", "p3", "p4", "p7"}           # tenant a only


def test_ping6_within_a_subnet_across_hosts_and_between_subnets(w):
    a2, a3 = w.port("p2"), w.port("p3")
    got = ping6(w, "p1", a2.mac, a2.ip6)
    assert [d for d, _ in got] == ["p2"]
    rmac = router_mac(w.state.tenants["a"].id)
    got = ping6(w, "p1", rmac, a3.ip6)                       # fd00:1:: -> fd00:2::, h1 -> h3
    assert [d for d, _ in got] == ["p3"]
    pkt = got[0][1]
    assert (pkt["eth_src"], pkt["eth_dst"], pkt["ip_ttl"]) == (rmac, a3.mac, 63)
    [(where, reply)] = ping6(w, "p1", rmac, "fd00:1::1")     # the gateway answers
    assert where == "p1" and reply["icmpv6_type"] == 129 and reply["ipv6_src"] == "fd00:1::1"


def test_two_tenants_reusing_one_prefix_stay_apart(w):
    b1 = w.port("p5")                                        # tenant b, fd00:1::2, on h1
    [(where, na)] = ns(w, "p1", "fd00:1::3")                 # a's fd00:1::3 (p2), not b's (p6)
    assert na["ipv6_nd_tll"] == w.port("p2").mac
    assert not ping6(w, "p1", b1.mac, b1.ip6)                # b's MAC is unknown in tenant a
    flood = ns(w, "p1", "fe80::99", ipv6_src=link_local(w.port("p1").mac))
    assert flood and {d for d, _ in flood} <= {"p2", "p3", "p4", "p7"}


@pytest.mark.parametrize("forge", [
    dict(src_ip="fd00:1::3"),                                # another port's address
    dict(src_ip="fd00:1::99"),                               # an address nobody has
])
def test_a_spoofed_ipv6_source_is_dropped(w, forge):
    a2 = w.port("p2")
    assert ping6(w, "p1", a2.mac, a2.ip6, **forge) == []


def test_forged_ra_na_and_ns_are_dropped(w):
    p1, a2 = w.port("p1"), w.port("p2")
    ra = w.send("p1", eth_dst="33:33:00:00:00:01", **ICMP6, ipv6_src=link_local(p1.mac),
                ipv6_dst="ff02::1", icmpv6_type=RA, icmpv6_code=0)
    assert ra == []
    forged_na = dict(eth_dst="33:33:00:00:00:01", **ICMP6, ipv6_src=p1.ip6, ipv6_dst="ff02::1",
                     icmpv6_type=NA, icmpv6_code=0, nd_reserved=ND_FLAG_OVERRIDE,
                     nd_options_type=2)
    assert w.send("p1", **forged_na, ipv6_nd_target=a2.ip6, ipv6_nd_tll=p1.mac) == []
    assert w.send("p1", **forged_na, ipv6_nd_target=p1.ip6, ipv6_nd_tll=a2.mac) == []
    honest = w.send("p1", **forged_na, ipv6_nd_target=p1.ip6, ipv6_nd_tll=p1.mac)
    assert honest and "p2" in {d for d, _ in honest}
    assert ns(w, "p1", "fd00:1::3", sll=a2.mac) == []          # a poisoning source LL option


def test_an_ipv4_only_port_gets_no_ipv6(w):
    p4 = w.port("p4")                                         # tenant a, IPv4 only, on h1
    assert w.send("p4", eth_dst=w.port("p2").mac, **ICMP6, ipv6_src=link_local(p4.mac),
                  ipv6_dst="fd00:1::3", icmpv6_type=128, icmpv6_code=0, icmp_id=1) == []
    got = ping6(w, "p1", p4.mac, "fd00:1::5")
    assert got == []                                          # nothing IPv6 reaches it


def test_ipv6_security_groups(w):
    """The default group allows ingress from its members; web6 tcp/80 from ::/0;
    p7 (no port security) is in no group: only tcp/80 and ping6 from fd00::/16
    reach a secured port from it."""
    a2, p7 = w.port("p2"), w.port("p7")
    tcp = dict(ip_proto=6, tcp_src=40000)
    base = dict(eth_type=0x86DD, ip_ttl=64, eth_dst=a2.mac, ipv6_src=p7.ip6, ipv6_dst=a2.ip6)
    assert [d for d, _ in w.send("p7", **base, **tcp, tcp_dst=80)] == ["p2"]
    assert w.send("p7", **base, **tcp, tcp_dst=22) == []
    assert [d for d, _ in w.send("p7", **base, ip_proto=58, icmpv6_type=128, icmpv6_code=0,
                                 icmp_id=3)] == ["p2"]
    # from a member of default: anything
    member = dict(base, ipv6_src=w.port("p1").ip6)
    assert [d for d, _ in w.send("p1", **member, **tcp, tcp_dst=22)] == ["p2"]


def test_the_flow_count_formula_holds_for_dual_stack_hosts():
    """docs/pipeline.md "Flow count", IPv6 terms included (bench/scenario.formula):
    every port dual-stack, secured, in the default group with its ::/0 twin."""
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "bench"))
    from scenario import formula
    from tests.support.worlds import World
    twin = [{"id": "out6", "direction": "egress", "protocol": "any", "ports": None,
             "remote": "::/0"}]
    world = World(tenants=[("a", "vxlan", 5), ("b", "gre", 6)],
                  subnets6=[("a", "fd00:1::/64"), ("b", "fd00:1::/64"), ("b", "fd00:2::/64")],
                  ports=[("a", 1, "10.0.0.2", "fd00:1::2"), ("a", 1, "10.0.0.3", "fd00:1::3"),
                         ("a", 2, "10.0.0.4", "fd00:1::4"), ("b", 1, "10.0.0.2", "fd00:2::2"),
                         ("b", 3, "10.0.0.3", "fd00:1::3")],
                  extra_rules=twin)
    for h in ("h1", "h2", "h3"):
        expected, terms = formula(world.state, h)
        assert len(world.flows[h]) == expected, (h, terms)


def test_a_router_solicitation_goes_to_the_controller_metered(w):
    from controller.compile.meters import MeterId
    p1 = w.port("p1")
    got = w.send("p1", eth_dst="33:33:00:00:00:02", **ICMP6, ipv6_src=link_local(p1.mac),
                 ipv6_dst="ff02::2", icmpv6_type=133, icmpv6_code=0)
    assert got == []
    [pin] = w.net.packet_ins
    assert pin.switch == "h1" and pin.packet["icmpv6_type"] == 133
    rs_flows = [f for f in w.flows["h1"] if ("icmpv6_type", 133) in f.match and f.actions]
    assert rs_flows and all(f.meter == MeterId.ROUTER_SOLICIT for f in rs_flows)


def test_the_na_the_flows_build_is_byte_for_byte_the_one_a_host_sends(w):
    """The NA as frame bytes, from the simulator's output fields, equals an NA
    built independently (vpclab.labspoof, RFC 4861 layout); a real
    ovs-vswitchd building it is checked by tcpdump in tests/lab/test_ipv6.py."""
    import struct
    from vpclab import labspoof
    [(_, na)] = ns(w, "p1", "fd00:1::3")
    body = (struct.pack("!BBHI", na["icmpv6_type"], na["icmpv6_code"], 0, na["nd_reserved"])
            + __import__("ipaddress").IPv6Address(na["ipv6_nd_target"]).packed
            + bytes([na["nd_options_type"], 1]) + labspoof.mac_bytes(na["ipv6_nd_tll"]))
    got = labspoof.ethernet(na["eth_dst"], na["eth_src"], na["eth_type"],
                            labspoof.ipv6_icmp(na["ipv6_src"], na["ipv6_dst"], body,
                                               hop_limit=na["ip_ttl"]))
    a1, a2 = w.port("p1"), w.port("p2")
    want = labspoof.ethernet(a1.mac, a2.mac, 0x86DD, labspoof.ipv6_icmp(
        a2.ip6, a1.ip6, labspoof.neighbor_advert(a2.ip6, a2.mac, flags=0x6000_0000)))
    assert got == want
