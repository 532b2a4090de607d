"""The compiler's output, checked flow by flow and by running packets through it."""
import pytest

from controller import flowsim
from controller.compile.datapath import compile_datapath
from controller.compile.pipeline import FROM_NET, OFPVID_PRESENT, Table
from tests.support.worlds import GRE, UPLINK, VXLAN, World

NETWORKS = ["vlan", "vxlan", "gre"]


def two_tenants(network, **kw):
    """Tenants a and b reuse 10.0.0.0/24 and the very same IPs."""
    return World(tenants=[("a", network, 5), ("b", network, 6)],
                 ports=[("a", 1, "10.0.0.2"), ("a", 2, "10.0.0.3"),
                        ("b", 1, "10.0.0.2"), ("b", 3, "10.0.0.3")], **kw)


def test_every_flow_is_one_ovs_would_accept():
    for network in NETWORKS:
        w = two_tenants(network)
        for flows in w.flows.values():
            for f in flows:
                flowsim.install_check(f)


def test_compile_is_deterministic():
    a, b = two_tenants("vxlan"), two_tenants("vxlan")
    assert a.flows == b.flows
    assert {f.cookie for f in a.flows["h1"]} == {f.cookie for f in b.flows["h1"]}


def test_unregistered_datapath_gets_only_the_drop_pipeline():
    w = two_tenants("vlan")
    flows = compile_datapath(w.state, w.topo, 99)
    assert all(f.priority == 0 for f in flows)
    assert {f.table for f in flows} == {int(t) for t in Table}


def test_vlan_flows_on_a_host():
    w = two_tenants("vlan")
    h1 = {(f.table, f.match): f for f in w.flows["h1"]}
    p1 = w.port("p1")
    # from the uplink, tag 5 is tenant a (id 1), popped, marked FROM_NET
    f = h1[(Table.CLASSIFY, (("in_port", UPLINK), ("vlan_vid", OFPVID_PRESENT | 5)))]
    assert f.actions == (("pop_vlan",),) and f.metadata[0] == 1 | FROM_NET
    # unicast to a's port on h2 leaves tagged on the uplink
    f = h1[(Table.L2, (("eth_dst", w.port("p2").mac), ("metadata", 1)))]
    assert f.actions == (("push_vlan", 0x8100), ("set_field", "vlan_vid", OFPVID_PRESENT | 5),
                         ("output", UPLINK))
    # port security for p1: its own untagged IPv4, and no DHCP server replies
    assert (Table.PORT_SECURITY, (("eth_src", p1.mac), ("eth_type", 0x0800), ("in_port", 10),
                                  ("ipv4_src", "10.0.0.2"), ("vlan_vid", 0))) in h1
    f = h1[(Table.PORT_SECURITY, (("eth_type", 0x0800), ("in_port", 10), ("ip_proto", 17),
                                  ("udp_src", 67)))]
    assert f.actions == () and f.goto is None
    # tenant b has no remote port reachable from h1 except on h3: its tag is 6
    f = h1[(Table.FLOOD, (("metadata", 2),))]
    assert ("set_field", "vlan_vid", OFPVID_PRESENT | 6) in f.actions


def test_tunnel_flows_on_a_host():
    w = two_tenants("vxlan")
    h1 = {(f.table, f.match): f for f in w.flows["h1"]}
    f = h1[(Table.L2, (("eth_dst", w.port("p2").mac), ("metadata", 1)))]
    assert f.actions == (("set_field", "tunnel_id", 5), ("set_field", "tun_ipv4_dst", "198.18.0.12"),
                         ("output", VXLAN))
    assert (Table.CLASSIFY, (("in_port", VXLAN), ("tunnel_id", 5))) in h1
    assert not any(("in_port", GRE) in k[1] for k in h1)


@pytest.mark.parametrize("network", NETWORKS)
def test_unicast_reaches_only_its_port(network):
    w = two_tenants(network)
    got = w.ipv4("p1", w.port("p2").mac, "10.0.0.3")
    assert [pid for pid, _ in got] == ["p2"]
    assert "vlan_vid" not in got[0][1]


@pytest.mark.parametrize("network", NETWORKS)
def test_unicast_to_another_tenants_mac_goes_nowhere(network):
    w = two_tenants(network)
    assert w.ipv4("p1", w.port("p4").mac, "10.0.0.3") == []
    assert w.ipv4("p1", w.port("p3").mac, "10.0.0.2") == []    # b's port on the same host


@pytest.mark.parametrize("network", NETWORKS)
def test_broadcast_stays_in_the_tenant_and_arrives_once(network):
    w = two_tenants(network)
    got = w.arp_request("p1", "10.0.0.99")        # nobody has it: flooded
    assert sorted(pid for pid, _ in got) == ["p2"]


@pytest.mark.parametrize("network", NETWORKS)
def test_unknown_unicast_stays_in_the_tenant(network):
    w = two_tenants(network)
    got = w.ipv4("p1", "02:99:99:99:99:99", "10.0.0.77")
    assert {pid for pid, _ in got} <= {"p2"}


@pytest.mark.parametrize("network", NETWORKS)
def test_arp_for_a_known_ip_is_answered_on_the_host(network):
    w = two_tenants(network)
    got = w.arp_request("p1", "10.0.0.3")
    assert [pid for pid, _ in got] == ["p1"]
    reply = got[0][1]
    assert reply["arp_op"] == 2 and reply["arp_sha"] == w.port("p2").mac
    assert reply["arp_spa"] == "10.0.0.3" and reply["eth_dst"] == w.port("p1").mac
    assert w.switches_visited() == {"h1"}         # nothing crossed the underlay


@pytest.mark.parametrize("network", NETWORKS)
def test_spoofed_sources_are_dropped(network):
    w = two_tenants(network)
    p1 = w.port("p1")
    assert w.send("p1", eth_src=w.port("p3").mac, eth_dst=w.port("p2").mac, eth_type=0x0800,
                  ipv4_src=p1.ip, ipv4_dst="10.0.0.3", ip_proto=1) == []
    assert w.ipv4("p1", w.port("p2").mac, "10.0.0.3", ) != []
    assert w.send("p1", eth_dst=w.port("p2").mac, eth_type=0x0800, ipv4_src="10.0.0.3",
                  ipv4_dst="10.0.0.3", ip_proto=1) == []
    assert w.send("p1", eth_dst="ff:ff:ff:ff:ff:ff", eth_type=0x0806, arp_op=2,
                  arp_spa="10.0.0.3", arp_sha=p1.mac, arp_tpa="10.0.0.3",
                  arp_tha="ff:ff:ff:ff:ff:ff") == []     # gratuitous ARP for someone else's IP
    assert w.send("p1", eth_dst="33:33:00:00:00:01", eth_type=0x86DD) == []   # no IPv6


@pytest.mark.parametrize("network", ["vxlan", "gre"])
def test_overlay_flood_reaches_only_hosts_with_the_tenant(network):
    w = two_tenants(network)
    w.arp_request("p1", "10.0.0.99")
    assert w.switches_visited() == {"h1", "h2"}   # h3 has only tenant b


def test_overlay_disconnected_host_leaves_the_mesh():
    w = two_tenants("vxlan", disconnected={2})
    flood = [f for f in w.flows["h1"] if f.table == Table.FLOOD and f.match == (("metadata", 1),)]
    assert flood and not any(a[0] == "set_field" and a[1] == "tun_ipv4_dst" for a in flood[0].actions)
    l2 = [f for f in w.flows["h1"] if f.table == Table.L2 and ("eth_dst", w.port("p2").mac) in f.match]
    assert l2 == []


def test_port_without_ovs_port_has_no_local_flows_until_it_appears():
    w = two_tenants("vlan", missing={"p1"})
    assert not any(("in_port", 10) in f.match for f in w.flows["h1"])
    # the other host still knows where p1 will be
    assert any(("eth_dst", w.port("p1").mac) in f.match for f in w.flows["h2"])
    w2 = two_tenants("vlan")
    assert any(("in_port", 10) in f.match for f in w2.flows["h1"])


def test_mixed_network_types_with_equal_segments_are_isolated():
    w = World(tenants=[("v", "vlan", 7), ("x", "vxlan", 7), ("g", "gre", 7)],
              ports=[("v", 1, "10.0.0.2"), ("v", 2, "10.0.0.3"),
                     ("x", 1, "10.0.0.2"), ("x", 2, "10.0.0.3"),
                     ("g", 1, "10.0.0.2"), ("g", 2, "10.0.0.3")])
    for src, peer in (("p1", "p2"), ("p3", "p4"), ("p5", "p6")):
        assert sorted(pid for pid, _ in w.arp_request(src, "10.0.0.99")) == [peer]
        assert [pid for pid, _ in w.ipv4(src, w.port(peer).mac, "10.0.0.3")] == [peer]
