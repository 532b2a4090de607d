"""Routing and NAT, compiled and run through the simulator with conntrack."""
import pytest

from controller import flowsim
from controller.compile.pipeline import SHARED_NAT_ZONE, SNAT_PORTS, router_mac, transit_ip
from tests.support.worlds import EXT, GATEWAY_IP, GATEWAY_MAC, World, ext_ip, ext_mac

SERVER = "198.51.100.10"


def nat_world(**kw):
    """red and blue reuse 10.0.0.0/24 and even the IP 10.0.0.2, both on h1;
    h1 and h2 have external networks; red also has a port on h2."""
    args = dict(tenants=[("red", "vxlan", 5), ("blue", "vlan", 6)],
                ports=[("red", 1, "10.0.0.2"), ("blue", 1, "10.0.0.2"), ("red", 2, "10.0.0.3")],
                external={1, 2}, snat=("red", "blue"))
    args.update(kw)
    return World(**args)


def tcp_out(w, pid, sport=40000, dst=SERVER, dport=80, **kw):
    p = w.port(pid)
    return w.send(pid, eth_dst=router_mac(w.state.tenants[p.tenant].id), eth_type=0x0800,
                  ipv4_src=p.ip, ipv4_dst=dst, ip_proto=6, tcp_src=sport, tcp_dst=dport, **kw)


def from_outside(w, host, **pkt):
    got = w.net.inject(f"h{host}", EXT, {"eth_src": GATEWAY_MAC, "eth_dst": ext_mac(host),
                                         "eth_type": 0x0800, **pkt})
    return [(w.by_location.get((d.switch, d.port)), d.packet) for d in got]


def test_every_nat_flow_is_one_ovs_would_accept():
    w = nat_world(forwards=[("p1", "tcp", 5000, 22)], fips=[("p3", "203.0.113.100")])
    for flows in w.flows.values():
        for f in flows:
            flowsim.install_check(f)


def test_snat_two_tenants_same_ip_same_port_both_work():
    w = nat_world()
    [(where_r, r)] = tcp_out(w, "p1")
    [(where_b, b)] = tcp_out(w, "p2")
    assert where_r == where_b == "ext@h1"
    for pkt in (r, b):
        assert pkt["ipv4_src"] == ext_ip(1) and pkt["eth_dst"] == GATEWAY_MAC
        assert pkt["eth_src"] == ext_mac(1)
    lo, hi = SNAT_PORTS
    assert lo <= r["tcp_src"] <= hi and lo <= b["tcp_src"] <= hi
    assert r["tcp_src"] != b["tcp_src"]          # the shared zone keeps them apart
    entries = w.net.conntrack("h1")
    stage1 = {e["zone"]: e["reply"][1] for e in entries if e["nat"] and e["zone"] in (1, 2)}
    assert stage1 == {1: transit_ip(1), 2: transit_ip(2)}   # each tenant its transit IP
    assert len([e for e in entries if e["zone"] == SHARED_NAT_ZONE]) == 2
    for pid, out in (("p1", r), ("p2", b)):
        got = from_outside(w, 1, ipv4_src=SERVER, ipv4_dst=ext_ip(1), ip_proto=6, tcp_src=80,
                           tcp_dst=out["tcp_src"])
        assert [where for where, _ in got] == [pid]
        back = got[0][1]
        assert (back["ipv4_dst"], back["tcp_dst"]) == ("10.0.0.2", 40000)
        assert back["eth_dst"] == w.port(pid).mac


def test_snat_off_means_nothing_leaves():
    w = nat_world(snat=("blue",))
    assert tcp_out(w, "p1") == []
    assert [x for x, _ in tcp_out(w, "p2")] == ["ext@h1"]


def test_unknown_gateway_mac_sends_nothing_out():
    w = nat_world(gateway_known=False)
    assert tcp_out(w, "p1") == []


def test_snat_ping_and_its_reply():
    w = nat_world()
    p = w.port("p1")
    [(where, out)] = w.send("p1", eth_dst=router_mac(1), eth_type=0x0800, ipv4_src=p.ip,
                            ipv4_dst=SERVER, ip_proto=1, icmpv4_type=8, icmpv4_code=0, icmp_id=77)
    assert where == "ext@h1" and out["ipv4_src"] == ext_ip(1)
    got = from_outside(w, 1, ipv4_src=SERVER, ipv4_dst=ext_ip(1), ip_proto=1, icmpv4_type=0,
                       icmpv4_code=0, icmp_id=77)
    assert [x for x, _ in got] == ["p1"]


SSH_FROM_ANYWHERE = {"id": "ssh", "direction": "ingress", "protocol": "tcp", "ports": [22, 22],
                     "remote": "0.0.0.0/0"}


def test_port_forward_is_subject_to_security_groups():
    w = nat_world(forwards=[("p1", "tcp", 5000, 22)])      # default group: no ingress from outside
    assert from_outside(w, 1, ipv4_src=SERVER, ipv4_dst=ext_ip(1), ip_proto=6, tcp_src=51000,
                        tcp_dst=5000) == []


def test_port_forward_in_and_reply_out():
    w = nat_world(forwards=[("p1", "tcp", 5000, 22)], extra_rules=[SSH_FROM_ANYWHERE])
    got = from_outside(w, 1, ipv4_src=SERVER, ipv4_dst=ext_ip(1), ip_proto=6, tcp_src=51000,
                       tcp_dst=5000)
    assert [x for x, _ in got] == ["p1"]
    assert (got[0][1]["ipv4_dst"], got[0][1]["tcp_dst"]) == ("10.0.0.2", 22)
    [(where, reply)] = tcp_out(w, "p1", sport=22, dport=51000)
    assert where == "ext@h1"
    assert (reply["ipv4_src"], reply["tcp_src"]) == (ext_ip(1), 5000)
    # the same port number on another protocol, or another host, is not forwarded
    assert from_outside(w, 1, ipv4_src=SERVER, ipv4_dst=ext_ip(1), ip_proto=17, udp_src=1,
                        udp_dst=5000) == []
    assert from_outside(w, 2, ipv4_src=SERVER, ipv4_dst=ext_ip(2), ip_proto=6, tcp_src=51000,
                        tcp_dst=5000) == []


def test_floating_ip_both_ways_and_arp():
    fip = "203.0.113.100"
    http = dict(SSH_FROM_ANYWHERE, id="http", ports=[80, 80])
    w = nat_world(fips=[("p3", fip)], snat=(), extra_rules=[http])
    got = from_outside(w, 2, ipv4_src=SERVER, ipv4_dst=fip, ip_proto=6, tcp_src=1234, tcp_dst=80)
    assert [x for x, _ in got] == ["p3"] and got[0][1]["ipv4_dst"] == "10.0.0.3"
    [(where, out)] = tcp_out(w, "p3", sport=2222, dst=SERVER, dport=443)
    assert where == "ext@h2" and out["ipv4_src"] == fip and out["tcp_src"] == 2222
    arp = w.net.inject("h2", EXT, {"eth_src": GATEWAY_MAC, "eth_dst": "ff:ff:ff:ff:ff:ff",
                                   "eth_type": 0x0806, "arp_op": 1, "arp_spa": GATEWAY_IP,
                                   "arp_sha": GATEWAY_MAC, "arp_tpa": fip,
                                   "arp_tha": "00:00:00:00:00:00"})
    assert [(d.port, d.packet["arp_sha"]) for d in arp] == [(EXT, ext_mac(2))]
    # h1 does not answer for a floating IP that lives on h2
    assert w.net.inject("h1", EXT, {"eth_src": GATEWAY_MAC, "eth_dst": "ff:ff:ff:ff:ff:ff",
                                    "eth_type": 0x0806, "arp_op": 1, "arp_spa": GATEWAY_IP,
                                    "arp_sha": GATEWAY_MAC, "arp_tpa": fip,
                                    "arp_tha": "00:00:00:00:00:00"}) == []


def test_gateway_arp_reply_goes_to_the_controller():
    w = nat_world()
    w.net.inject("h1", EXT, {"eth_src": GATEWAY_MAC, "eth_dst": ext_mac(1), "eth_type": 0x0806,
                             "arp_op": 2, "arp_spa": GATEWAY_IP, "arp_sha": GATEWAY_MAC,
                             "arp_tpa": ext_ip(1), "arp_tha": ext_mac(1)})
    assert len(w.net.packet_ins) == 1


def test_outside_cannot_reach_private_addresses_or_unforwarded_ports():
    w = nat_world(forwards=[("p1", "tcp", 5000, 22)])
    assert from_outside(w, 1, ipv4_src=SERVER, ipv4_dst="10.0.0.2", ip_proto=6, tcp_src=1,
                        tcp_dst=22) == []
    assert from_outside(w, 1, ipv4_src=SERVER, ipv4_dst=ext_ip(1), ip_proto=6, tcp_src=1,
                        tcp_dst=5001) == []
    # an unsolicited packet to an SNAT port finds no connection
    assert from_outside(w, 1, ipv4_src=SERVER, ipv4_dst=ext_ip(1), ip_proto=6, tcp_src=80,
                        tcp_dst=SNAT_PORTS[0] + 7) == []


def test_every_ct_action_uses_its_tenants_zone():
    w = nat_world(forwards=[("p1", "tcp", 5000, 22)], fips=[("p3", "203.0.113.100")])
    for flows in w.flows.values():
        for f in flows:
            for a in f.actions:
                if a[0] == "ct":
                    tenant = f.owner >> 32 & 0xFFFFFF
                    kind = f.owner >> 56
                    if kind == 0x07:                 # NAT flows are owned by their tenant
                        assert a[2] == tenant, f
                    elif kind == 0x08:               # the host's stage 2: the shared zone
                        assert a[2] == SHARED_NAT_ZONE, f


@pytest.mark.parametrize("network", ["vlan", "vxlan", "gre"])
def test_routing_between_subnets_never_crosses_tenants(network):
    w = World(tenants=[("a", network, 5), ("b", network, 6)],
              ports=[("a", 1, "10.0.0.2"), ("a", 2, "10.1.0.2"), ("b", 3, "10.1.0.3")],
              subnets=[("a", "10.1.0.0/24"), ("b", "10.1.0.0/24")])
    src = w.port("p1")
    icmp = dict(ip_proto=1, icmpv4_type=8, icmpv4_code=0, icmp_id=9)
    got = w.send("p1", eth_dst=router_mac(1), eth_type=0x0800, ipv4_src=src.ip,
                 ipv4_dst="10.1.0.2", ip_ttl=64, **icmp)
    assert [pid for pid, _ in got] == ["p2"]
    assert got[0][1]["ip_ttl"] == 63 and got[0][1]["eth_src"] == router_mac(1)
    # b's 10.1.0.3 is not a's to route to, though a has 10.1.0.0/24 too
    assert w.send("p1", eth_dst=router_mac(1), eth_type=0x0800, ipv4_src=src.ip,
                  ipv4_dst="10.1.0.3", **icmp) == []
    # nor through b's router MAC
    assert w.send("p1", eth_dst=router_mac(2), eth_type=0x0800, ipv4_src=src.ip,
                  ipv4_dst="10.1.0.3", **icmp) == []
