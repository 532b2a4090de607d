"""Tests of the flow simulator itself (controller/flowsim.py).

The simulator is what every compiler test trusts, so each OpenFlow rule it
models gets a small, hand-written flow set here.
"""
from types import SimpleNamespace

import pytest
from hypothesis import given, settings, strategies as st

from controller.compile.actions import arp_reply
from controller.compile.flows import flow
from controller.flowsim import (FlowTable, Network, SimError, Simulator,
                                format_flow, install_check)
from controller.compile.pipeline import (ARP_REPLY, ARP_REQUEST, ETH_TYPE_ARP,
                                 ETH_TYPE_IP, ETH_TYPE_VLAN, FROM_NET,
                                 METADATA_MASK, MULTICAST_BIT, OFPVID_PRESENT,
                                 TENANT_MASK, Prio, Table, metadata_for)

# Plain table numbers, not Table members: these tests exercise the simulator's
# mechanics with flows of their own, which flow() then does not hold to the
# host pipeline's declared next tables (see flows.flow).
T = SimpleNamespace(**{t.name: int(t) for t in Table})
MAC1, MAC2, MAC3 = "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"
BCAST = "ff:ff:ff:ff:ff:ff"


def pkt(in_port=1, **fields):
    p = {"in_port": in_port, "eth_src": MAC1, "eth_dst": MAC2, "eth_type": ETH_TYPE_IP,
         "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.2"}
    p.update(fields)
    return p


# --- lookup ---------------------------------------------------------------------
def test_highest_priority_wins():
    sim = Simulator([
        flow(T.CLASSIFY, 10, {}, [("output", 7)]),
        flow(T.CLASSIFY, 100, {"eth_dst": MAC2}, [("output", 8)]),
        flow(T.CLASSIFY, 50, {"eth_dst": MAC2}, [("output", 9)]),
    ])
    assert sim.run(pkt()).ports == [8]
    assert sim.run(pkt(eth_dst=MAC3)).ports == [7]
    assert [f.priority for f in sim.run(pkt()).trace] == [100]


def test_table_miss_drops():
    sim = Simulator([flow(T.CLASSIFY, 100, {"in_port": 2}, [("output", 3)])])
    res = sim.run(pkt(in_port=1))
    assert res.dropped and res.outputs == [] and res.trace == []
    assert "table miss in table 0" in res.drop_reason
    # A goto into a table with no matching flow is a miss there too.
    sim = Simulator([flow(T.CLASSIFY, 0, {}, goto=T.L2)])
    res = sim.run(pkt())
    assert res.dropped and res.drop_reason == "table miss in table 50"


def test_flow_without_actions_or_goto_drops():
    sim = Simulator([flow(T.CLASSIFY, 0, {}, [])])
    res = sim.run(pkt())
    assert res.dropped and res.drop_reason == "dropped by flow"


def test_multicast_bit_match():
    sim = Simulator([
        flow(T.CLASSIFY, 50, {"eth_dst": MULTICAST_BIT}, [("output", 60)]),
        flow(T.CLASSIFY, 10, {}, [("output", 10)]),
    ])
    for group in (BCAST, "01:00:5e:00:00:01", "33:33:00:00:00:01", "03:00:00:00:00:00"):
        assert sim.run(pkt(eth_dst=group)).ports == [60], group
    for unicast in (MAC2, "fe:ff:ff:ff:ff:ff", "00:00:00:00:00:01"):
        assert sim.run(pkt(eth_dst=unicast)).ports == [10], unicast


def test_masked_ipv4_and_metadata_match():
    sim = Simulator([
        flow(T.CLASSIFY, 100, {"eth_type": ETH_TYPE_IP,
                               "ipv4_dst": ("10.1.0.0", "255.255.0.0")}, [("output", 2)]),
    ])
    assert sim.run(pkt(ipv4_dst="10.1.200.3")).ports == [2]
    assert sim.run(pkt(ipv4_dst="10.2.0.3")).dropped
    sim = Simulator([
        flow(T.CLASSIFY, 0, {}, metadata=(metadata_for(7, True), METADATA_MASK), goto=T.L2),
        flow(T.L2, 100, {"metadata": (7, TENANT_MASK)}, [("output", 2)]),
        flow(T.L2, 100, {"metadata": (8, TENANT_MASK)}, [("output", 3)]),
    ])
    assert sim.run(pkt()).ports == [2]


def test_absent_field_never_matches_but_pipeline_fields_read_zero():
    sim = Simulator([
        flow(T.CLASSIFY, 100, {"eth_type": ETH_TYPE_ARP, "arp_op": ARP_REQUEST}, [("output", 2)]),
        flow(T.CLASSIFY, 50, {"reg3": 0, "tunnel_id": 0, "metadata": 0}, [("output", 3)]),
    ])
    # An IP packet has no arp_op; it falls to the flow matching zeroed registers.
    assert sim.run(pkt()).ports == [3]


def test_vlan_vid_zero_matches_untagged_and_present_bit_matches_any_tag():
    sim = Simulator([
        flow(T.CLASSIFY, 100, {"vlan_vid": 0}, [("output", 2)]),
        flow(T.CLASSIFY, 100, {"vlan_vid": (OFPVID_PRESENT, OFPVID_PRESENT)}, [("output", 3)]),
    ])
    assert sim.run(pkt()).ports == [2]
    assert sim.run(pkt(vlan_vid=OFPVID_PRESENT | 42)).ports == [3]


def test_same_priority_overlap_is_an_error():
    flows = [
        flow(T.CLASSIFY, 100, {"in_port": 1}, [("output", 2)]),
        flow(T.CLASSIFY, 100, {"eth_dst": MAC2}, [("output", 3)]),
        flow(T.CLASSIFY, 100, {"in_port": 5, "eth_dst": MAC3}, [("output", 4)]),
    ]
    sim = Simulator(flows)
    with pytest.raises(SimError, match="both match"):
        sim.run(pkt(in_port=1, eth_dst=MAC2))
    assert sim.run(pkt(in_port=1, eth_dst=MAC3)).ports == [2]   # no tie here
    pairs = FlowTable.from_flows(flows).overlaps()
    assert pairs == [(flows[0], flows[1])] or pairs == [(flows[1], flows[0])]


def test_duplicate_key_with_other_content_is_an_error():
    a = flow(T.CLASSIFY, 100, {"in_port": 1}, [("output", 2)])
    b = flow(T.CLASSIFY, 100, {"in_port": 1}, [("output", 3)])
    assert len(FlowTable.from_flows([a, a])) == 1
    with pytest.raises(SimError, match="share table/priority/match"):
        FlowTable.from_flows([a, b])


# --- instructions and actions --------------------------------------------------------
def test_goto_carries_modified_headers_and_masked_metadata_write():
    sim = Simulator([
        flow(T.CLASSIFY, 0, {}, [("set_field", "reg4", 9)], metadata=(0xFF00, 0xFFFF),
             goto=T.PORT_SECURITY),
        flow(T.PORT_SECURITY, 0, {}, [("set_field", "eth_dst", MAC3)],
             metadata=(0x5, 0xF), goto=T.L2),
        flow(T.L2, 100, {"eth_dst": MAC3, "metadata": 0xFF05, "reg4": 9}, [("output", 4)]),
    ])
    res = sim.run(pkt())
    assert res.ports == [4], res.format_trace()
    assert res.outputs[0][1]["metadata"] == 0xFF05
    assert [s.table for s in res.steps] == [0, 10, 50]


def test_metadata_write_keeps_bits_outside_mask():
    sim = Simulator([
        flow(T.CLASSIFY, 0, {}, [("set_field", "metadata", 0xABCD_0000_0000)],
             metadata=(0x12, 0xFF), goto=T.L2),
        flow(T.L2, 0, {}, [("output", 2)]),
    ])
    assert sim.run(pkt()).outputs[0][1]["metadata"] == 0xABCD_0000_0012


def test_apply_actions_run_before_write_metadata():
    sim = Simulator([
        flow(T.CLASSIFY, 0, {}, [("set_field", "metadata", 0xF0)], metadata=(0x1, 0x1),
             goto=T.L2),
        flow(T.L2, 0, {"metadata": 0xF1}, [("output", 2)]),
    ])
    assert sim.run(pkt()).ports == [2]


def test_output_copies_the_packet_as_it_is_then():
    sim = Simulator([flow(T.CLASSIFY, 0, {}, [
        ("output", 2),
        ("set_field", "eth_dst", MAC3), ("output", 3),
        ("set_field", "eth_dst", BCAST),
    ])])
    res = sim.run(pkt())
    assert res.ports == [2, 3]
    assert res.outputs_to(2)[0]["eth_dst"] == MAC2
    assert res.outputs_to(3)[0]["eth_dst"] == MAC3
    assert sim.outputs_to(3) == res.outputs_to(3)


def test_output_to_in_port_is_suppressed_unless_in_port_action():
    sim = Simulator([flow(T.CLASSIFY, 0, {}, [("output", 1), ("output", 2)])])
    res = sim.run(pkt(in_port=1))
    assert res.ports == [2] and res.suppressed == [1]
    res = sim.run(pkt(in_port=2))
    assert res.ports == [1] and res.suppressed == [2]
    sim = Simulator([flow(T.CLASSIFY, 0, {}, [("output", "in_port")])])
    assert sim.run(pkt(in_port=5)).ports == [5]


def test_push_and_pop_vlan():
    sim = Simulator([
        flow(T.CLASSIFY, 100, {"in_port": 1}, [
            ("push_vlan", ETH_TYPE_VLAN), ("set_field", "vlan_vid", OFPVID_PRESENT | 100),
            ("output", 10)]),
        flow(T.CLASSIFY, 100, {"in_port": 10, "vlan_vid": OFPVID_PRESENT | 100},
             [("pop_vlan",), ("output", 1)]),
    ])
    out = sim.run(pkt(in_port=1)).outputs_to(10)[0]
    assert out["vlan_vid"] == OFPVID_PRESENT | 100 and out["eth_type"] == ETH_TYPE_IP
    back = sim.run(out | {"in_port": 10}).outputs_to(1)[0]
    assert "vlan_vid" not in back
    assert sim.run(pkt(in_port=10, vlan_vid=OFPVID_PRESENT | 101)).dropped


def test_push_vlan_without_set_field_gives_vid_zero():
    sim = Simulator([flow(T.CLASSIFY, 0, {}, [("push_vlan", ETH_TYPE_VLAN), ("output", 2)])])
    assert sim.run(pkt()).outputs[0][1]["vlan_vid"] == OFPVID_PRESENT


def test_arp_responder_shape_with_move():
    gw_mac, gw_ip = "02:aa:00:00:00:01", "10.0.0.254"
    sim = Simulator([
        flow(T.CLASSIFY, 0, {}, goto=T.ARP),
        flow(T.ARP, Prio.ARP.RESPOND,
             {"eth_type": ETH_TYPE_ARP, "arp_op": ARP_REQUEST, "arp_tpa": gw_ip},
             arp_reply(gw_mac, gw_ip)),
    ])
    request = {"in_port": 3, "eth_src": MAC1, "eth_dst": BCAST, "eth_type": ETH_TYPE_ARP,
               "arp_op": ARP_REQUEST, "arp_sha": MAC1, "arp_spa": "10.0.0.1",
               "arp_tha": "00:00:00:00:00:00", "arp_tpa": gw_ip}
    res = sim.run(request)
    assert res.ports == [3], res.format_trace()
    assert res.outputs[0][1] == {
        "in_port": 3, "eth_src": gw_mac, "eth_dst": MAC1, "eth_type": ETH_TYPE_ARP,
        "arp_op": ARP_REPLY, "arp_sha": gw_mac, "arp_spa": gw_ip,
        "arp_tha": MAC1, "arp_tpa": "10.0.0.1"}
    assert sim.run(request | {"arp_tpa": "10.0.0.9"}).dropped


def test_dec_ttl():
    sim = Simulator([flow(T.CLASSIFY, 0, {"eth_type": ETH_TYPE_IP},
                          [("output", 2), ("dec_ttl",), ("output", 3)])])
    res = sim.run(pkt(ip_ttl=5))
    assert res.outputs_to(2)[0]["ip_ttl"] == 5 and res.outputs_to(3)[0]["ip_ttl"] == 4
    assert sim.run(pkt()).outputs_to(3)[0]["ip_ttl"] == 63      # default 64
    res = sim.run(pkt(ip_ttl=1))
    assert res.ports == [2] and res.drop_reason == "ttl expired"


def test_run_does_not_modify_the_callers_packet():
    p = pkt()
    Simulator([flow(T.CLASSIFY, 0, {}, [("set_field", "eth_dst", MAC3), ("output", 2)],
                    metadata=(1, 1))]).run(p)
    assert p == pkt()


def test_format_trace_is_readable():
    sim = Simulator([flow(T.CLASSIFY, 0, {"in_port": 1}, [("output", 1)], goto=T.L2)])
    text = sim.run(pkt()).format_trace()
    assert "table 0:" in text and "output:1" in text and "goto_table:50" in text
    assert "suppressed" in text and "table miss in table 50" in text


# --- what the switch would refuse ---------------------------------------------------
@pytest.mark.parametrize("bad, why", [
    (flow(T.CLASSIFY, 0, {"arp_tpa": "10.0.0.1"}), "needs"),
    (flow(T.CLASSIFY, 0, {"eth_type": ETH_TYPE_IP, "tcp_dst": 80}), "needs"),
    (flow(T.CLASSIFY, 0, {"metadata": (0x1_0000_0001, TENANT_MASK)}), "outside its mask"),
    (flow(T.CLASSIFY, 0, {"in_port": (1, 1)}), "cannot be masked"),
    (flow(T.CLASSIFY, 0, {"vlan_vid": 100}), "never matches"),
    (flow(T.CLASSIFY, 0, {"vlan_vid": 0x2000}), "out of range"),
    (flow(T.CLASSIFY, 0, {"eth_type": ETH_TYPE_VLAN}), "inner type"),
    (flow(T.CLASSIFY, 0, {}, [("pop_vlan",)]), "pop_vlan"),
    (flow(T.CLASSIFY, 0, {}, [("set_field", "vlan_vid", OFPVID_PRESENT | 5)]), "vlan_vid"),
    (flow(T.CLASSIFY, 0, {}, [("push_vlan", ETH_TYPE_VLAN), ("set_field", "vlan_vid", 5)]),
     "OFPVID_PRESENT"),
    (flow(T.CLASSIFY, 0, {}, [("set_field", "arp_op", 2)]), "needs"),
    (flow(T.CLASSIFY, 0, {}, [("move", "arp_sha", "arp_tha")]), "needs"),
    (flow(T.CLASSIFY, 0, {}, [("dec_ttl",)]), "dec_ttl"),
    (flow(T.CLASSIFY, 0, {}, [("push_vlan", 0x0800)]), "push_vlan"),
])
def test_install_check_refuses_what_ovs_refuses(bad, why):
    with pytest.raises(SimError, match=why):
        install_check(bad)
    with pytest.raises(SimError):
        Simulator([bad])
    Simulator([bad], check=False)   # the escape hatch still loads it


def test_bad_test_packets_are_refused():
    sim = Simulator([flow(T.CLASSIFY, 0, {}, [("output", 2)])])
    for bad in (pkt(eth_dst="AA:BB:CC:DD:EE:FF"), pkt(vlan_vid=100), pkt(eth_dest=MAC1),
                pkt(eth_type=ETH_TYPE_VLAN), {"eth_src": MAC1}, pkt(ipv4_dst="10.0.0.01")):
        with pytest.raises(SimError):
            sim.run(bad)


# --- properties ----------------------------------------------------------------------
_bytes6 = st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b))


@given(value=_bytes6, mask=_bytes6, mac=_bytes6)
def test_masked_mac_matches_bytewise(value, mask, mac):
    value = ":".join(f"{int(v, 16) & int(m, 16):02x}"
                     for v, m in zip(value.split(":"), mask.split(":")))
    sim = Simulator([flow(T.CLASSIFY, 0, {"eth_dst": (value, mask)}, [("output", 2)])])
    expect = all(int(a, 16) & int(m, 16) == int(v, 16)
                 for a, m, v in zip(mac.split(":"), mask.split(":"), value.split(":")))
    assert (not sim.run(pkt(eth_dst=mac)).dropped) == expect


_masked_reg = st.tuples(st.integers(0, 3), st.integers(0, 3)).map(lambda t: (t[0] & t[1], t[1]))


@settings(max_examples=200)
@given(a=st.dictionaries(st.sampled_from(["reg3", "reg4"]), _masked_reg, max_size=2),
       b=st.dictionaries(st.sampled_from(["reg4", "reg7"]), _masked_reg, max_size=2))
def test_static_overlaps_agree_with_runtime_ties(a, b):
    flows = [flow(T.CLASSIFY, 5, a, [("output", 2)]), flow(T.CLASSIFY, 5, b, [("output", 3)])]
    if flows[0].key == flows[1].key:
        return
    sim = Simulator(flows)
    tie = False
    for r5 in range(4):
        for r6 in range(4):
            for r7 in range(4):
                try:
                    sim.run(pkt(reg3=r5, reg4=r6, reg7=r7))
                except SimError:
                    tie = True
    assert tie == bool(sim.table.overlaps())


# --- networks --------------------------------------------------------------------------
UPLINK, TUN = 100, 200
TENANTS = {1: {"vlan": 101, "vni": 5001}, 2: {"vlan": 102, "vni": 5002}}


def _switch_flows(local, remote_ips=(), transport="vlan"):
    """A small but real pipeline: `local` maps port -> tenant.  Broadcast goes
    to the tenant's local ports and, if it came from a local port, to the
    network (fabric VLAN or one tunnel copy per remote); network traffic is
    delivered locally only (split horizon)."""
    flows = []
    for port, tenant in local.items():
        flows.append(flow(T.CLASSIFY, Prio.CLASSIFY.IN_PORT, {"in_port": port},
                          metadata=(metadata_for(tenant), METADATA_MASK), goto=T.L2))
    for tenant, ids in TENANTS.items():
        if transport == "vlan":
            flows.append(flow(T.CLASSIFY, Prio.CLASSIFY.IN_PORT,
                              {"in_port": UPLINK, "vlan_vid": OFPVID_PRESENT | ids["vlan"]},
                              [("pop_vlan",)], metadata=(metadata_for(tenant, True),
                                                         METADATA_MASK), goto=T.L2))
            to_net = [("push_vlan", ETH_TYPE_VLAN),
                      ("set_field", "vlan_vid", OFPVID_PRESENT | ids["vlan"]),
                      ("output", UPLINK), ("pop_vlan",)]
        else:
            flows.append(flow(T.CLASSIFY, Prio.CLASSIFY.IN_PORT, {"in_port": TUN, "tunnel_id": ids["vni"]},
                              metadata=(metadata_for(tenant, True), METADATA_MASK),
                              goto=T.L2))
            to_net = [("set_field", "tunnel_id", ids["vni"])]
            for ip in remote_ips:
                to_net += [("set_field", "tun_ipv4_dst", ip), ("output", TUN)]
        ports = [("output", p) for p, t in sorted(local.items()) if t == tenant]
        flows.append(flow(T.FLOOD, Prio.FLOOD.ALL, {"metadata": (metadata_for(tenant, True),
                                                             METADATA_MASK)}, ports))
        flows.append(flow(T.FLOOD, Prio.FLOOD.ALL, {"metadata": (metadata_for(tenant),
                                                             METADATA_MASK)}, ports + to_net))
    flows.append(flow(T.L2, Prio.L2.MULTICAST, {"eth_dst": MULTICAST_BIT}, goto=T.FLOOD))
    return flows


def _bcast(src=MAC1):
    return {"eth_src": src, "eth_dst": BCAST, "eth_type": ETH_TYPE_ARP, "arp_op": ARP_REQUEST,
            "arp_sha": src, "arp_spa": "10.0.0.1", "arp_tha": "00:00:00:00:00:00",
            "arp_tpa": "10.0.0.2"}


def test_vlan_fabric_isolates_tenants():
    net = Network()
    for name in ("h1", "h2", "h3"):
        net.add_switch(name, _switch_flows({1: 1, 2: 2, 3: 1}))
    net.add_fabric("fabric", ("h1", UPLINK), ("h2", UPLINK))
    net.add_fabric("fabric", ("h3", UPLINK))
    got = net.inject("h1", 1, _bcast())
    assert sorted((d.switch, d.port) for d in got) == [
        ("h1", 3), ("h2", 1), ("h2", 3), ("h3", 1), ("h3", 3)], net.format_trace()
    assert all(d.packet == _bcast() for d in got)       # untagged, no pipeline state
    assert not net.lost
    got = net.inject("h2", 2, _bcast(MAC2))
    assert sorted((d.switch, d.port) for d in got) == [("h1", 2), ("h3", 2)]


def test_tunnels_carry_tunnel_id_and_reset_pipeline_state():
    ips = {"h1": "192.168.0.1", "h2": "192.168.0.2", "h3": "192.168.0.3"}
    net = Network()
    for name, ip in ips.items():
        others = [o for n, o in ips.items() if n != name]
        net.add_switch(name, _switch_flows({1: 1, 2: 2}, others, "tunnel"),
                       tunnel_ip=ip, tunnel_port=TUN)
    got = net.inject("h1", 2, _bcast())
    assert sorted((d.switch, d.port) for d in got) == [("h2", 2), ("h3", 2)]
    assert all(d.packet == _bcast() for d in got)
    arrived = [h for h in net.hops if h.switch == "h2"][0].result.steps[0].packet
    assert arrived["in_port"] == TUN and arrived["tunnel_id"] == 5002
    assert arrived["tun_ipv4_src"] == "192.168.0.1" and arrived["tun_ipv4_dst"] == ips["h2"]
    assert "metadata" not in arrived and "reg3" not in arrived


def test_tunnel_to_unknown_ip_is_lost_and_vxlan_cuts_tunnel_id():
    net = Network()
    net.add_switch("a", [flow(T.CLASSIFY, 0, {"in_port": 1}, [
        ("set_field", "tunnel_id", 0x1_000005), ("set_field", "tun_ipv4_dst", "10.9.9.9"),
        ("output", TUN), ("set_field", "tun_ipv4_dst", "10.0.0.2"), ("output", TUN)])],
        tunnel_ip="10.0.0.1", tunnel_port=TUN)
    net.add_switch("b", [flow(T.CLASSIFY, 0, {"in_port": TUN, "tunnel_id": 5}, [("output", 4)])],
                   tunnel_ip="10.0.0.2", tunnel_port=TUN)
    got = net.inject("a", 1, pkt())
    assert [(d.switch, d.port) for d in got] == [("b", 4)]
    assert [lost.reason for lost in net.lost] == ["no vxlan endpoint 10.9.9.9"]


def test_point_to_point_link_and_host_delivery():
    net = Network()
    net.add_switch("a", [flow(T.CLASSIFY, 0, {"in_port": 1}, [("output", 9)])])
    net.add_switch("b", [flow(T.CLASSIFY, 0, {"in_port": 7}, [("output", 2)])])
    net.add_link(("a", 9), ("b", 7))
    got = net.inject("a", 1, pkt())
    assert got == [("b", 2, {k: v for k, v in pkt().items() if k != "in_port"})]
    with pytest.raises(SimError):
        net.add_link(("a", 9), ("b", 8))


def test_fabric_loop_is_detected():
    # Two switches joined twice, flooding without split horizon: the classic loop.
    flood = [flow(T.CLASSIFY, 0, {}, [("output", 1), ("output", UPLINK), ("output", UPLINK + 1)])]
    net = Network()
    net.add_switch("a", flood)
    net.add_switch("b", flood)
    net.add_fabric("f", ("a", UPLINK), ("b", UPLINK))
    net.add_fabric("g", ("a", UPLINK + 1), ("b", UPLINK + 1))
    with pytest.raises(SimError, match="loop at") as err:
        net.inject("a", 1, pkt())
    assert len(net.hops) < 10, "caught by the repeated state, not the hop budget"
    assert "== a in_port 1" in str(err.value)


def test_hop_budget_stops_growing_loops():
    # Each pass changes the packet (dec_ttl), so no state repeats; the budget stops it.
    grow = [flow(T.CLASSIFY, 0, {"eth_type": ETH_TYPE_IP},
                 [("dec_ttl",), ("output", UPLINK), ("output", UPLINK + 1)])]
    net = Network(max_hops=50)
    net.add_switch("a", grow)
    net.add_switch("b", grow)
    net.add_fabric("f", ("a", UPLINK), ("b", UPLINK))
    net.add_fabric("g", ("a", UPLINK + 1), ("b", UPLINK + 1))
    with pytest.raises(SimError, match="loop"):
        net.inject("a", 1, pkt(ip_ttl=255))
    assert len(net.hops) == 50


def test_format_flow():
    f = flow(T.L2, 100, {"eth_dst": MAC2, "metadata": (1, TENANT_MASK)}, [("output", 3)],
             metadata=(FROM_NET, FROM_NET), goto=T.FLOOD)
    assert format_flow(f) == (
        "table=50,priority=100,eth_dst=02:00:00:00:00:02,metadata=0x1/0xffffffff "
        "actions=output:3,write_metadata:0x100000000/0x100000000,goto_table:60")
