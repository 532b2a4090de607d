"""DHCP and DNS steering to the host agent (compile/services.py), through the
flow simulator: what reaches the service port, tagged how, and what the
agent's answers reach."""
from controller.compile.datapath import compile_datapath
from controller.compile.meters import SERVICE_METER_BASE, meters_for
from controller.compile.pipeline import SERVICE_PORT, service_tag
from tests.support.worlds import SERVICE, World

BCAST = "ff:ff:ff:ff:ff:ff"
ROUTER = "02:76:70:63:00:01"


def world(**kw):
    kw.setdefault("services", (1, 2))
    return World(tenants=[("a", "vxlan", 5), ("b", "vlan", 7)],
                 ports=[("a", 1, "10.0.0.2"), ("a", 2, "10.0.0.3"), ("b", 1, "10.0.0.2"),
                        ("a", 1, "10.0.0.4", "fd00:1::4")],
                 subnets6=[("a", "fd00:1::/64")], **kw)


def dhcp(w, pid, **over):
    pkt = dict(eth_dst=BCAST, eth_type=0x0800, ipv4_src="0.0.0.0", ipv4_dst="255.255.255.255",
               ip_proto=17, udp_src=68, udp_dst=67)
    pkt.update(over)
    return w.send(pid, **pkt)


def dns(w, pid, dst="10.0.0.1", **over):
    p = w.port(pid)
    pkt = dict(eth_dst=ROUTER, eth_type=0x0800, ipv4_src=p.ip, ipv4_dst=dst, ip_proto=17,
               udp_src=40000, udp_dst=53)
    pkt.update(over)
    return w.send(pid, **pkt)


def test_a_dhcp_discover_reaches_the_agent_tagged_with_the_port_serial_only():
    w = world()
    got = dhcp(w, "p1")
    assert [(where, pkt["eth_dst"]) for where, pkt in got] == [("svc@h1", service_tag(1))]
    assert got[0][1]["eth_src"] == w.port("p1").mac


def test_a_renewal_unicast_to_the_gateway_reaches_the_agent_too():
    w = world()
    got = dhcp(w, "p3", eth_dst=ROUTER, ipv4_src="10.0.0.2", ipv4_dst="10.0.0.1")
    assert [(where, pkt["eth_dst"]) for where, pkt in got] == [("svc@h1", service_tag(3))]


def test_dns_to_the_gateway_goes_to_the_agent_and_dns_elsewhere_is_routed():
    w = world()
    got = dns(w, "p2")
    assert [(where, pkt["eth_dst"]) for where, pkt in got] == [("svc@h2", service_tag(2))]
    assert all(where != "svc@h1" for where, _ in dns(w, "p1", dst="10.0.0.3"))
    # DNS over TCP to the gateway is not the agent's
    p = w.port("p1")
    tcp = w.send("p1", eth_dst=ROUTER, eth_type=0x0800, ipv4_src=p.ip, ipv4_dst="10.0.0.1",
                 ip_proto=6, tcp_src=40000, tcp_dst=53)
    assert not any(str(where).startswith("svc") for where, _ in tcp)


def test_requests_with_a_forged_source_never_reach_the_agent():
    w = world()
    assert dhcp(w, "p1", eth_src="02:00:00:00:00:09") == []
    assert dns(w, "p1", ipv4_src="10.0.0.9") == []


def test_ipv6_dhcp_and_dns_to_gateway6_reach_the_agent():
    w = world()
    from controller.compile.ipv6 import link_local
    p = w.port("p4")
    got = w.send("p4", eth_dst="33:33:00:01:00:02", eth_type=0x86DD,
                 ipv6_src=link_local(p.mac), ipv6_dst="ff02::1:2", ip_proto=17,
                 udp_src=546, udp_dst=547)
    assert [(where, pkt["eth_dst"]) for where, pkt in got] == [("svc@h1", service_tag(4))]
    got = w.send("p4", eth_dst=ROUTER, eth_type=0x86DD, ipv6_src="fd00:1::4",
                 ipv6_dst="fd00:1::1", ip_proto=17, udp_src=40000, udp_dst=53)
    assert [(where, pkt["eth_dst"]) for where, pkt in got] == [("svc@h1", service_tag(4))]


def test_an_answer_to_a_tag_reaches_that_port_with_its_mac_and_nothing_else():
    w = world()
    answer = dict(eth_src=ROUTER, eth_dst=service_tag(3), eth_type=0x0800,
                  ipv4_src="10.0.0.1", ipv4_dst="10.0.0.2", ip_proto=17, udp_src=67, udp_dst=68)
    got = w.net.inject("h1", SERVICE, answer)
    assert [(w.by_location[(d.switch, d.port)], d.packet["eth_dst"]) for d in got] == \
        [("p3", w.port("p3").mac)]
    # a tag of a port on another host, or of no port: dropped
    assert w.net.inject("h1", SERVICE, dict(answer, eth_dst=service_tag(2))) == []
    assert w.net.inject("h1", SERVICE, dict(answer, eth_dst=service_tag(99))) == []


def test_requests_go_through_the_ports_own_service_meter():
    w = world()
    flows = w.flows["h1"]
    to_agent = [f for f in flows if ("output", 5) in f.actions and f.table == 10]
    assert {f.meter for f in to_agent} == {SERVICE_METER_BASE + s for s in (1, 3, 4)}
    meters = meters_for(flows)
    assert meters[SERVICE_METER_BASE + 1].rate == 200


def test_no_service_port_no_service_flows_and_dhcp_is_dropped_as_before():
    """From 0.0.0.0 a secured port's DISCOVER is no source of its own."""
    w = world(services=())
    assert not any(("output", 5) in f.actions for f in w.flows["h1"])
    assert dhcp(w, "p1") == []


def test_service_flows_per_port_match_the_flow_count():
    """3 per IPv4 port (reply, DHCP, DNS), 2 more per IPv6 address (DHCPv6, DNS)."""
    with_svc, without = world(), world(services=())
    for h, n in (("h1", 3 + 3 + 3 + 2), ("h2", 3)):
        assert len(with_svc.flows[h]) - len(without.flows[h]) == n


def test_service_port_name_and_tags_are_the_agents():
    """The agent keeps its own copies (it runs on hosts without controller code)."""
    from vpcagent.services import frames, port
    assert SERVICE_PORT == port.NAME
    for serial in (1, 0x1234, 0x7FFF):
        assert service_tag(serial) == frames.mac_str(frames.tag_mac(serial))


def test_compiles_are_deterministic_with_the_service_port():
    w = world()
    assert compile_datapath(w.state, w.topo, 1) == w.flows["h1"]
