"""VXLAN and GRE overlays between hosts, on real OVS (the module's 3-host lab).

Each test makes its own tenants (unique names) and containers; the fixtures
remove the containers, the ``tenants`` fixture the tenants.  Underlay
captures run on a host's ``eth0``: the NIC on its ``br-phy``, which every
tunnel packet of that host crosses.
"""
import re
import secrets

import pytest

from vpclab.labtraffic import (INNER_ARP_FILTER, TUNNEL_FILTER, arping, ping, ping_many,
                        tcp_transfer, wait_until)

OVERLAYS = ["vxlan", "gre"]
ENCAP_OVERHEAD = {"vlan": 0, "vxlan": 50, "gre": 42}
FLOOD_TARGET = "10.0.0.200"     # in the subnet, nobody has it: ARP for it floods


@pytest.fixture
def tenants(api, lab):
    """make(network, prefix) -> a new tenant with 10.0.0.0/24; deleted at the
    end (after make_container's teardown when requested before it)."""
    made = []
    a = api(lab.api_url)

    def make(network, prefix="t"):
        name = f"{prefix}{network[:2]}{secrets.token_hex(3)}"
        status, body = a.post("/v1/tenants", {"name": name, "network": network})
        assert status == 201, body
        made.append(name)
        status, body = a.post(f"/v1/tenants/{name}/subnets", {"cidr": "10.0.0.0/24"})
        assert status == 201, body
        return name

    yield make
    for name in made:
        a.delete(f"/v1/tenants/{name}")


def flood_flows(lab, host):
    return lab.ovs_ofctl(host, "dump-flows", "table=60")


def assert_pings(lab, src, dst, count=3):
    """At least count-1 replies: the first echo of a pair may be lost."""
    r = ping(lab, src["ns"], dst["ip"], count=count)
    assert r.received >= count - 1, r.output
    return r


# --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", OVERLAYS)
def test_all_pairs_ping_and_20mb_tcp_cross_hosts(kind, lab, tenants, make_container,
                                                 record_property):
    t = tenants(kind, "all")
    c = {i: make_container(f"all{i}", i, t, ip=f"10.0.0.{10 + i}") for i in (1, 2, 3)}
    assert all(p["mtu"] == 1500 - ENCAP_OVERHEAD[kind] for p in c.values())

    results = {}
    for a in c:                      # one pair at a time: first-packet loss shows
        for b in c:
            if a != b:
                results[(a, b)] = ping(lab, c[a]["ns"], c[b]["ip"], count=3)
    failed = {k: r.output for k, r in results.items() if r.received < 2}
    assert not failed, failed
    first_lost = sorted(f"h{a}->h{b}" for (a, b), r in results.items() if r.first_lost)
    record_property("first_ping_lost", first_lost)
    print(f"{kind}: first echo lost for {first_lost or 'no pair'} of {len(results)} pairs")

    # The MTU the controller handed out fits the underlay: full-size, DF set.
    size = c[1]["mtu"] - 28
    big = ping(lab, c[1]["ns"], c[3]["ip"], count=3, size=size, dont_fragment=True)
    assert big.received >= 2, big.output

    xfer = tcp_transfer(lab, c[2]["ns"], c[1]["ns"], c[2]["ip"], 20 * 1000 * 1000)
    assert xfer.client_rc == 0, xfer.detail
    assert xfer.received == xfer.sent == 20 * 1000 * 1000
    assert xfer.identical


@pytest.mark.parametrize("kind", OVERLAYS)
def test_bum_and_arp_stay_where_needed(kind, lab, tenants, make_container):
    """Tenant A lives on h1 and h2, tenant B (same CIDR, same IP as A's h2
    port) on h2 and h3.  A's broadcasts reach h2 only; B never sees a frame of
    A's; ARP for a known IP is answered on h1 and never enters a tunnel."""
    ta, tb = tenants(kind, "a"), tenants(kind, "b")
    a1 = make_container("bum_a1", 1, ta, ip="10.0.0.11")
    a2 = make_container("bum_a2", 2, ta, ip="10.0.0.12")
    b2 = make_container("bum_b2", 2, tb, ip="10.0.0.12")
    b3 = make_container("bum_b3", 3, tb, ip="10.0.0.13")
    # Both tenants work, and prime the fabric's MAC learning (an unknown
    # destination MAC would make the Linux bridge flood tunnel packets to h3).
    assert_pings(lab, a1, a2)
    assert_pings(lab, b3, b2)
    # A's head-end replication on h1 lists h2 only
    a_flood = [ln for ln in flood_flows(lab, 1).splitlines() if "actions=" in ln]
    assert any(lab.tunnel_ip(2) in ln for ln in a_flood)
    assert not any(lab.tunnel_ip(3) in ln for ln in a_flood), a_flood

    # -- ARP for a known IP is answered on h1: no tunnel packet at all
    tun = TUNNEL_FILTER[kind]
    lab.exec(a1["ns"], "ip", "neigh", "flush", "dev", "eth0")
    with lab.tcpdump(lab.host_ns(1), "eth0", tun) as u1, \
            lab.tcpdump(lab.host_ns(2), "eth0", tun) as u2:
        replies = arping(lab, a1["ns"], a2["ip"], count=3)
    assert replies >= 1
    assert u1.count == 0, u1.lines
    assert u2.count == 0, u2.lines
    # ... and the first ping after a flush: the echo crosses, its ARP does not
    lab.exec(a1["ns"], "ip", "neigh", "flush", "dev", "eth0")
    with lab.tcpdump(lab.host_ns(1), "eth0", INNER_ARP_FILTER[kind]) as arp1, \
            lab.tcpdump(lab.host_ns(2), "eth0", INNER_ARP_FILTER[kind]) as arp2, \
            lab.tcpdump(lab.host_ns(2), "eth0", tun) as all2:
        assert_pings(lab, a1, a2)
        all2.wait_for(".", count=4, timeout=5)
    assert all2.count >= 4, all2.lines          # positive control: echoes went by
    assert arp1.count == 0, arp1.lines
    assert arp2.count == 0, arp2.lines
    neigh = lab.exec(a1["ns"], "ip", "neigh", "show", a2["ip"]).stdout
    assert a2["mac"] in neigh, neigh

    # -- A floods: ARP for a nobody, an IP broadcast (security groups keep it
    # from every port, AWS-like, but it must not leak either), and unicast to
    # .12 (which B's b2 also has, on the same host as a2).
    a_macs = f"ether host {a1['mac']} or ether host {a2['mac']}"
    with lab.tcpdump(lab.host_ns(3), "eth0", tun) as under3, \
            lab.tcpdump(lab.host_ns(2), "eth0", INNER_ARP_FILTER[kind]) as under2, \
            lab.tcpdump(b2["ns"], "eth0", a_macs) as seen_b2, \
            lab.tcpdump(b3["ns"], "eth0", a_macs) as seen_b3, \
            lab.tcpdump(a2["ns"], "eth0", f"ether src {a1['mac']}") as seen_a2:
        assert arping(lab, a1["ns"], FLOOD_TARGET, count=4) == 0
        ping(lab, a1["ns"], "10.0.0.255", count=3, broadcast=True)
        assert_pings(lab, a1, a2)
        under2.wait_for(FLOOD_TARGET, count=4, timeout=5)
        seen_a2.wait_for(FLOOD_TARGET, count=4, timeout=5)
    # positive controls: the flood did reach h2's underlay and A's container
    assert len(under2.matching(f"{FLOOD_TARGET}")) >= 4, under2.lines
    assert len(seen_a2.matching(f"{FLOOD_TARGET}")) >= 4, seen_a2.lines
    assert len(seen_a2.matching(r"> 10\.0\.0\.12: ICMP echo request")) >= 2, seen_a2.lines
    # ... and nowhere else
    assert under3.count == 0, under3.lines
    assert seen_b2.count == 0, seen_b2.lines
    assert seen_b3.count == 0, seen_b3.lines


def test_vlan_vxlan_gre_tenants_with_one_cidr_stay_isolated(lab, tenants, make_container):
    """Three tenants, one per network type, all 10.0.0.0/24, each on h1-h3:
    every container pings every other one; only same-tenant pairs answer."""
    base = {"vlan": 20, "vxlan": 30, "gre": 40}
    c = {}
    for kind, b in base.items():
        t = tenants(kind, "mix")
        for i in (1, 2, 3):
            c[(kind, i)] = make_container(f"mix{kind}{i}", i, t, ip=f"10.0.0.{b + i}")
    jobs = {(s, d): (c[s]["ns"], c[d]["ip"]) for s in c for d in c if s != d}
    results = ping_many(lab, jobs, workers=24, count=3)
    wrong = {}
    for (s, d), r in results.items():
        same = s[0] == d[0]
        if (same and r.received < 2) or (not same and r.received != 0):
            wrong[f"{s[0]}@h{s[1]} -> {d[0]}@h{d[1]}"] = r.received
    assert not wrong, wrong


@pytest.mark.parametrize("kind", OVERLAYS)
def test_host_that_leaves_drops_out_of_the_mesh_and_comes_back(kind, lab, tenants,
                                                                make_container):
    t = tenants(kind, "dis")
    x = {i: make_container(f"dis{i}", i, t, ip=f"10.0.0.{50 + i}") for i in (1, 2, 3)}
    # (also primes the fabric's MAC learning: an unknown destination MAC
    # would make the Linux bridge flood h1's tunnel packets to h3 as well)
    assert_pings(lab, x[1], x[3])
    assert_pings(lab, x[1], x[2])
    assert lab.tunnel_ip(3) in flood_flows(lab, 1)
    try:
        lab.stop_relay(3)
        assert wait_until(lambda: not lab.controller_sees(3, lab.api_url), timeout=30)
        assert wait_until(lambda: lab.tunnel_ip(3) not in flood_flows(lab, 1), timeout=30), \
            flood_flows(lab, 1)
        assert lab.tunnel_ip(2) in flood_flows(lab, 1)
        # the unicast flow towards x3 is gone too
        assert x[3]["mac"] not in lab.ovs_ofctl(1, "dump-flows", "table=50")
        tun = TUNNEL_FILTER[kind]
        with lab.tcpdump(lab.host_ns(3), "eth0", tun) as under3, \
                lab.tcpdump(lab.host_ns(2), "eth0", tun) as under2:
            arping(lab, x[1]["ns"], FLOOD_TARGET, count=3)
            under2.wait_for(FLOOD_TARGET, count=3, timeout=5)
        assert len(under2.matching(FLOOD_TARGET)) >= 3, under2.lines
        assert under3.count == 0, under3.lines
        assert_pings(lab, x[1], x[2])     # the rest of the mesh still works
    finally:
        if not lab.relay_alive(3):
            lab.start_relay(3)
        lab.wait_connected(timeout=30, api_url=lab.api_url)
    assert wait_until(lambda: lab.tunnel_ip(3) in flood_flows(lab, 1), timeout=30), \
        flood_flows(lab, 1)
    assert_pings(lab, x[1], x[3])
    assert_pings(lab, x[3], x[2])
    # back in the flood list (and the positive control of the h3 capture above)
    with lab.tcpdump(lab.host_ns(3), "eth0", TUNNEL_FILTER[kind]) as under3:
        arping(lab, x[1]["ns"], FLOOD_TARGET, count=3)
        under3.wait_for(FLOOD_TARGET, count=3, timeout=5)
    assert len(under3.matching(FLOOD_TARGET)) >= 3, under3.lines


def test_only_br_phy_answers_arp_for_a_tunnel_ip(lab, tenants, make_container):
    """A host's tunnel IP lives on br-phy; its NIC eth0 is only a port of
    br-phy.  The host kernel must not answer ARP for the tunnel IP on eth0
    too: OVS's tunnel neighbour cache keeps the *last* answer it snoops, and
    with eth0's MAC there every tunnel packet to that host goes to a MAC that
    br-phy does not terminate -- the overlay to that host is dead until the
    entry is replaced (``ovs-appctl tnl/neigh/set br-phy 198.18.0.12
    <h2 eth0 MAC>`` on h1: 0 of 5 pings).  Today br-phy's answer usually
    arrives second and wins the race."""
    t = tenants("vxlan", "arp")
    u1 = make_container("arp1", 1, t, ip="10.0.0.61")
    u2 = make_container("arp2", 2, t, ip="10.0.0.62")
    phy_mac = lab.exec(lab.host_ns(2), "cat", "/sys/class/net/br-phy/address").stdout.strip()
    nic_mac = lab.exec(lab.host_ns(2), "cat", "/sys/class/net/eth0/address").stdout.strip()
    lab.appctl(1, "tnl/neigh/flush")            # h1's OVS must ARP for h2 again
    with lab.tcpdump(lab.host_ns(1), "eth0", "arp") as cap:
        assert_pings(lab, u1, u2)
        cap.wait_for(rf"Reply {lab.tunnel_ip(2)} is-at", count=2, timeout=2)
    answers = re.findall(rf"Reply {re.escape(lab.tunnel_ip(2))} is-at ([0-9a-f:]{{17}})",
                         "\n".join(cap.lines))
    assert answers, cap.lines
    assert set(answers) == {phy_mac}, \
        f"ARP for {lab.tunnel_ip(2)} answered by {answers} (br-phy {phy_mac}, eth0 {nic_mac})"
    assert phy_mac in lab.appctl(1, "tnl/neigh/show")
