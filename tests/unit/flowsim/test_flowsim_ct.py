"""Conntrack and NAT in the flow simulator (controller/flowsim.py).

The behaviour modelled is OVS 3.1's userspace conntrack (the netdev datapath
the lab runs); the comments name what was checked against a real
ovs-vswitchd on this machine (dummy datapath, packets injected with
netdev-dummy/receive, states read from flow counters and dpctl/dump-conntrack).
"""
from types import SimpleNamespace

import pytest

from controller.compile.meters import MeterId
from controller.compile.flows import FlowError, flow
from controller.flowsim import (Network, SimError, Simulator, format_flow,
                                install_check)
from controller.compile.pipeline import (CT_DNAT, CT_EST, CT_INV, CT_NEW, CT_RPL,
                                 CT_SNAT, CT_TRK, ETH_TYPE_IP, Table)

# Plain table numbers, not Table members: these tests exercise the simulator's
# mechanics with flows of their own, which flow() then does not hold to the
# host pipeline's declared next tables (see flows.flow).
T = SimpleNamespace(**{t.name: int(t) for t in Table})
IN, OUT = 1, 2                       # inside port, outside port
CLIENT, SERVER = "10.0.0.1", "198.51.100.10"
EXT = "203.0.113.11"
MAC1, MAC2 = "02:00:00:00:00:01", "02:00:00:00:00:02"
IP = {"eth_type": ETH_TYPE_IP}


def st(*bits):
    """ct_state match for exactly these bits set (others in the mask clear)."""
    value = sum(bits)
    return (value, CT_TRK | CT_NEW | CT_EST | CT_RPL | CT_INV | value)


def tcp(src, dst, sport, dport, in_port=IN):
    return {"in_port": in_port, "eth_src": MAC1, "eth_dst": MAC2, "eth_type": ETH_TYPE_IP,
            "ip_proto": 6, "ipv4_src": src, "ipv4_dst": dst, "tcp_src": sport, "tcp_dst": dport}


def udp(src, dst, sport, dport, in_port=IN):
    return {"in_port": in_port, "eth_src": MAC1, "eth_dst": MAC2, "eth_type": ETH_TYPE_IP,
            "ip_proto": 17, "ipv4_src": src, "ipv4_dst": dst, "udp_src": sport, "udp_dst": dport}


def icmp(src, dst, type_=8, ident=7, in_port=IN):
    return {"in_port": in_port, "eth_src": MAC1, "eth_dst": MAC2, "eth_type": ETH_TYPE_IP,
            "ip_proto": 1, "ipv4_src": src, "ipv4_dst": dst, "icmpv4_type": type_,
            "icmpv4_code": 0, "icmp_id": ident}


def snat_switch(nat=("src", EXT, EXT, 40000, 40001), zone=5):
    """The shape a router uses: look up (and un-NAT) in the zone, recirculate;
    commit + SNAT new connections; replies from outside only when +est+rpl."""
    return Simulator([
        flow(T.CLASSIFY, 100, dict(IP, in_port=IN), [("ct", False, zone, T.L3, ())]),
        flow(T.CLASSIFY, 100, dict(IP, in_port=OUT), [("ct", False, zone, T.L2, ())]),
        flow(T.L3, 100, dict(IP, ct_state=st(CT_TRK, CT_NEW)),
             [("ct", True, zone, T.L2, nat)]),
        flow(T.L3, 100, dict(IP, ct_state=(CT_TRK | CT_EST, CT_TRK | CT_EST)), goto=T.L2),
        flow(T.L2, 100, {"in_port": IN, "ct_state": (CT_TRK, CT_TRK)}, [("output", OUT)]),
        flow(T.L2, 100, {"in_port": OUT, "ct_state": (CT_TRK | CT_EST | CT_RPL,) * 2},
             [("output", IN)]),
    ])


def out_pkt(res, port):
    pkts = res.outputs_to(port)
    assert len(pkts) == 1, res.format_trace()
    return pkts[0]


# --- the flow representation --------------------------------------------------
@pytest.mark.parametrize("action", [
    ("ct", False, 0, None, None),
    ("ct", True, 65535, T.L2, ()),
    ("ct", True, 7, None, ("src", EXT, EXT, 0, 0)),
    ("ct", True, 7, T.L3, ("dst", "10.0.0.5", "10.0.0.9", 80, 80)),
    ("ct", True, 7, T.CLASSIFY, ("src", EXT, "203.0.113.12", 40000, 40511)),
    ("output", "controller"),
    ("set_field", "metadata", 0x1_0000_0005),
])
def test_flow_accepts(action):
    # a packet-in path is accepted only through a meter (controller/compile/meters.py)
    meter = MeterId.LLDP if action == ("output", "controller") else None
    f = flow(T.L3, 100, IP, [action], meter=meter)
    install_check(f)
    assert f.actions == (action,)


@pytest.mark.parametrize("action, needle", [
    (("ct", 1, 0, None, None), "commit must be a bool"),
    (("ct", False, 65536, None, None), "zone"),
    (("ct", False, -1, None, None), "zone"),
    (("ct", False, 0, 41, None), "table"),
    (("ct", False, 0, None, ("src", EXT, EXT, 0, 0)), "needs commit"),
    (("ct", True, 0, None, ("snat", EXT, EXT, 0, 0)), "nat must be"),
    (("ct", True, 0, None, ("src", EXT, "203.0.113.10", 0, 0)), "empty"),
    (("ct", True, 0, None, ("src", "0.0.0.0", EXT, 0, 0)), "zero"),
    (("ct", True, 0, None, ("src", EXT, EXT, 40000, 0)), "port range"),
    (("ct", True, 0, None, ("src", EXT, EXT, 5, 4)), "port range"),
    (("ct", True, 0, None, ("src", EXT, EXT, 1, 70000)), "outside"),
    (("ct", True, 0, None, ("src", "10.0.0.01", EXT, 0, 0)), "canonical"),
    (("ct", True, 0), "arguments"),
    (("output", "CONTROLLER"), "output to"),
    (("set_field", "ct_state", 1), "unknown field"),
    (("set_field", "ct_zone", 1), "unknown field"),
])
def test_flow_refuses(action, needle):
    with pytest.raises(FlowError, match=needle):
        flow(T.L3, 100, IP, [action])


def test_ct_with_table_must_end_the_flow():
    ct = ("ct", False, 1, T.L2, ())
    for kw in (dict(actions=[ct, ("output", 3)]), dict(actions=[ct], goto=T.L2),
               dict(actions=[ct], metadata=5)):
        with pytest.raises(FlowError, match="last action"):
            flow(T.L3, 100, IP, **kw)
    flow(T.L3, 100, IP, [("output", 3), ct])                       # fine
    flow(T.L3, 100, IP, [("ct", False, 1, None, ()), ("output", 3)], goto=T.L2)


def test_install_check_ct():
    with pytest.raises(SimError, match="eth_type=0x0800"):
        install_check(flow(T.L3, 100, {}, [("ct", False, 1, T.L2, None)]))
    with pytest.raises(SimError, match=r"\+inv"):
        install_check(flow(T.L3, 100, dict(IP, ct_state=(CT_INV, CT_INV)),
                           [("ct", True, 1, None, None)]))
    with pytest.raises(SimError, match="ct_zone cannot be masked"):
        install_check(flow(T.L3, 100, {"ct_zone": (1, 1)}, [("output", 2)]))
    with pytest.raises(SimError, match="out of range"):
        install_check(flow(T.L3, 100, {"ct_state": (0x100, 0x100)}, [("output", 2)]))
    f = flow(T.L3, 100, IP, [("ct", True, 3, T.L2, ("src", EXT, "203.0.113.12", 40000, 40511))])
    assert format_flow(f).endswith(
        "actions=ct(commit,table=50,zone=3,nat(src=203.0.113.11-203.0.113.12:40000-40511))")
    assert "ct(zone=0,nat)" in format_flow(flow(T.L3, 1, IP, [("ct", False, 0, None, ())]))


def test_packets_enter_untracked():
    sim = Simulator([
        flow(T.CLASSIFY, 100, {"ct_state": (0, CT_TRK)}, [("output", 3)]),
        flow(T.CLASSIFY, 100, {"ct_state": (CT_TRK, CT_TRK)}, [("output", 4)]),
    ])
    assert sim.run(tcp(CLIENT, SERVER, 1000, 80)).ports == [3]
    with pytest.raises(SimError, match="untracked"):
        sim.run(dict(tcp(CLIENT, SERVER, 1000, 80), ct_state=CT_TRK))


# --- SNAT -----------------------------------------------------------------------
def test_snat_tcp_out_and_reply_back_port_range_enforced():
    sim = snat_switch()
    res = sim.run(tcp(CLIENT, SERVER, 1001, 80))
    p = out_pkt(res, OUT)
    assert (p["ipv4_src"], p["tcp_src"], p["ipv4_dst"], p["tcp_dst"]) == (EXT, 40000, SERVER, 80)
    assert p["ct_state"] == CT_TRK | CT_NEW | CT_SNAT and p["ct_zone"] == 5
    assert res.recirculations == 2 and [s.table for s in res.steps] == [0, 40, 50]
    # a second client port takes the other port of the range
    p2 = out_pkt(sim.run(tcp(CLIENT, SERVER, 1002, 80)), OUT)
    assert (p2["ipv4_src"], p2["tcp_src"]) == (EXT, 40001)
    # the range is full: OVS records nothing and lets the packet go untranslated
    res3 = sim.run(tcp(CLIENT, SERVER, 1003, 80))
    p3 = out_pkt(res3, OUT)
    assert (p3["ipv4_src"], p3["tcp_src"]) == (CLIENT, 1003)
    assert p3["ct_state"] == CT_TRK | CT_NEW
    assert any("NAT exhausted" in n for n in res3.notes)
    assert sim.conntrack == [
        {"zone": 5, "proto": 6, "orig": (CLIENT, SERVER, 1001, 80),
         "reply": (SERVER, EXT, 80, 40000), "nat": "src", "mark": 0, "replied": False},
        {"zone": 5, "proto": 6, "orig": (CLIENT, SERVER, 1002, 80),
         "reply": (SERVER, EXT, 80, 40001), "nat": "src", "mark": 0, "replied": False},
    ]
    # the reply is un-NATed back to the client
    back = out_pkt(sim.run(tcp(SERVER, EXT, 80, 40000, in_port=OUT)), IN)
    assert (back["ipv4_src"], back["tcp_src"], back["ipv4_dst"], back["tcp_dst"]) == \
        (SERVER, 80, CLIENT, 1001)
    assert back["ct_state"] == CT_TRK | CT_EST | CT_RPL | CT_DNAT
    # the next original packet is +est, translated the same way
    again = out_pkt(sim.run(tcp(CLIENT, SERVER, 1001, 80)), OUT)
    assert (again["ipv4_src"], again["tcp_src"]) == (EXT, 40000)
    assert again["ct_state"] == CT_TRK | CT_EST | CT_SNAT
    # an unsolicited packet to the external address is not a reply: dropped
    assert sim.run(tcp(SERVER, EXT, 80, 40005, in_port=OUT)).dropped


def test_snat_udp_new_until_replied():
    sim = snat_switch(nat=("src", EXT, EXT, 50000, 50099))
    first = out_pkt(sim.run(udp(CLIENT, SERVER, 5353, 53)), OUT)
    assert (first["ipv4_src"], first["udp_src"]) == (EXT, 50000)
    # OVS: a UDP connection is +new in the original direction until a reply
    # was seen (checked on OVS 3.1); it is translated the same, not twice.
    second = out_pkt(sim.run(udp(CLIENT, SERVER, 5353, 53)), OUT)
    assert (second["ipv4_src"], second["udp_src"]) == (EXT, 50000)
    assert second["ct_state"] == CT_TRK | CT_NEW | CT_SNAT
    assert len(sim.conntrack) == 1
    back = out_pkt(sim.run(udp(SERVER, EXT, 53, 50000, in_port=OUT)), IN)
    assert (back["ipv4_dst"], back["udp_dst"]) == (CLIENT, 5353)
    third = out_pkt(sim.run(udp(CLIENT, SERVER, 5353, 53)), OUT)
    assert third["ct_state"] == CT_TRK | CT_EST | CT_SNAT
    assert sim.conntrack[0]["replied"] is True
    # a reply to the wrong port is not part of anything
    assert sim.run(udp(SERVER, EXT, 53, 50001, in_port=OUT)).dropped


def test_snat_without_port_range_keeps_the_port_until_it_collides():
    sim = snat_switch(nat=("src", EXT, EXT, 0, 0))
    p = out_pkt(sim.run(tcp(CLIENT, SERVER, 33000, 80)), OUT)
    assert (p["ipv4_src"], p["tcp_src"]) == (EXT, 33000)
    # another client with the same source port: OVS moves to another port
    # of the ephemeral class (1024-65535 here)
    p = out_pkt(sim.run(tcp("10.0.0.2", SERVER, 33000, 80)), OUT)
    assert p["ipv4_src"] == EXT and p["tcp_src"] != 33000 and p["tcp_src"] >= 1024


def test_two_zones_identical_tuples_are_two_entries():
    sims = Simulator([
        flow(T.CLASSIFY, 100, dict(IP, in_port=1), [("ct", True, 1, T.L2, None)]),
        flow(T.CLASSIFY, 100, dict(IP, in_port=3), [("ct", True, 2, T.L2, None)]),
        flow(T.L2, 100, {"ct_state": (CT_TRK, CT_TRK)}, [("output", 9)]),
    ])
    for port in (1, 3):
        p = out_pkt(sims.run(tcp(CLIENT, SERVER, 1000, 80, in_port=port)), 9)
        assert p["ct_state"] == CT_TRK | CT_NEW and p["ct_zone"] == {1: 1, 3: 2}[port]
    entries = sims.conntrack
    assert [e["zone"] for e in entries] == [1, 2]
    assert entries[0]["orig"] == entries[1]["orig"] == (CLIENT, SERVER, 1000, 80)
    sims.ct.flush(zone=1)
    assert [e["zone"] for e in sims.conntrack] == [2]
    sims.ct.flush()
    assert sims.conntrack == []


def test_same_reply_tuple_in_two_zones_does_not_collide():
    """NAT picks a reply tuple unique within its zone only."""
    a = snat_switch(zone=1)
    b = Simulator(snat_switch(zone=2).table, conntrack=a.ct)   # one table, as in one vswitchd
    out_pkt(a.run(tcp(CLIENT, SERVER, 1001, 80)), OUT)
    p = out_pkt(b.run(tcp(CLIENT, SERVER, 1001, 80)), OUT)
    assert p["tcp_src"] == 40000
    assert len(a.ct) == 2 and a.conntrack == b.conntrack


# --- DNAT (port forward, floating IP) -----------------------------------------------
def dnat_switch(zone=9):
    fip, inner = "203.0.113.100", "10.0.0.5"
    return Simulator([
        # from outside: look up; new connections to fip:8080 are forwarded
        flow(T.CLASSIFY, 100, dict(IP, in_port=OUT), [("ct", False, zone, T.L3, ())]),
        flow(T.L3, 100, dict(IP, ct_state=st(CT_TRK, CT_NEW), ip_proto=6,
                             ipv4_dst=fip, tcp_dst=8080),
             [("ct", True, zone, T.L2, ("dst", inner, inner, 80, 80))]),
        flow(T.L3, 100, dict(IP, ct_state=(CT_TRK | CT_EST, CT_TRK | CT_EST)), goto=T.L2),
        flow(T.L2, 100, {"in_port": OUT, "ct_state": (CT_TRK, CT_TRK)}, [("output", IN)]),
        # from inside: replies only
        flow(T.CLASSIFY, 100, dict(IP, in_port=IN), [("ct", False, zone, T.L2, ())]),
        flow(T.L2, 100, {"in_port": IN, "ct_state": (CT_TRK | CT_EST | CT_RPL,) * 2},
             [("output", OUT)]),
    ])


def test_dnat_port_forward_new_and_reply():
    sim = dnat_switch()
    fwd = out_pkt(sim.run(tcp(SERVER, "203.0.113.100", 40123, 8080, in_port=OUT)), IN)
    assert (fwd["ipv4_src"], fwd["tcp_src"], fwd["ipv4_dst"], fwd["tcp_dst"]) == \
        (SERVER, 40123, "10.0.0.5", 80)
    assert fwd["ct_state"] == CT_TRK | CT_NEW | CT_DNAT
    assert sim.conntrack == [{"zone": 9, "proto": 6, "orig": (SERVER, "203.0.113.100", 40123, 8080),
                              "reply": ("10.0.0.5", SERVER, 80, 40123), "nat": "dst",
                              "mark": 0, "replied": False}]
    back = out_pkt(sim.run(tcp("10.0.0.5", SERVER, 80, 40123, in_port=IN)), OUT)
    assert (back["ipv4_src"], back["tcp_src"], back["ipv4_dst"], back["tcp_dst"]) == \
        ("203.0.113.100", 8080, SERVER, 40123)
    assert back["ct_state"] == CT_TRK | CT_EST | CT_RPL | CT_SNAT
    # another port of the floating IP is not forwarded; the inside cannot
    # start connections through this path
    assert sim.run(tcp(SERVER, "203.0.113.100", 40124, 22, in_port=OUT)).dropped
    assert sim.run(tcp("10.0.0.5", SERVER, 80, 40999, in_port=IN)).dropped


# --- plain nat, commit, zones ---------------------------------------------------------
def test_plain_nat_applies_an_existing_connection_only():
    commit = flow(T.CLASSIFY, 100, dict(IP, in_port=IN),
                  [("ct", True, 4, None, ("src", EXT, EXT, 0, 0)), ("output", OUT)])
    lookup = flow(T.CLASSIFY, 100, dict(IP, in_port=3), [("ct", False, 4, T.L2, ())])
    deliver = flow(T.L2, 100, {"ct_state": (CT_TRK, CT_TRK)}, [("output", 9)])
    sim = Simulator([commit, lookup, deliver])
    # ct without table: translated at output, untracked afterwards
    p = out_pkt(sim.run(tcp(CLIENT, SERVER, 1234, 80)), OUT)
    assert (p["ipv4_src"], p["tcp_src"]) == (EXT, 1234) and "ct_state" not in p
    # nat=() in the original direction (another port, same tuple) applies it
    p = out_pkt(sim.run(tcp(CLIENT, SERVER, 1234, 80, in_port=3)), 9)
    assert (p["ipv4_src"], p["ct_state"]) == (EXT, CT_TRK | CT_NEW | CT_SNAT)
    # ... and in the reply direction the reverse
    p = out_pkt(sim.run(tcp(SERVER, EXT, 80, 1234, in_port=3)), 9)
    assert (p["ipv4_dst"], p["ct_state"]) == (CLIENT, CT_TRK | CT_EST | CT_RPL | CT_DNAT)
    # on an unknown connection it does nothing and records nothing
    p = out_pkt(sim.run(tcp(CLIENT, SERVER, 999, 80, in_port=3)), 9)
    assert (p["ipv4_src"], p["ct_state"]) == (CLIENT, CT_TRK | CT_NEW)
    assert len(sim.conntrack) == 1


def test_plain_nat_commit_of_a_new_connection_is_refused():
    """OVS 3.1 userspace: ct(commit,nat) on a new connection records the reply
    tuple as (0.0.0.0 -> client, dport 0) -- seen with dpctl/dump-conntrack --
    and the reply is +new again.  The simulator refuses it."""
    sim = Simulator([flow(T.CLASSIFY, 100, IP, [("ct", True, 1, T.L2, ())]),
                     flow(T.L2, 0, {}, [("output", 9)])])
    with pytest.raises(SimError, match="broken reply tuple"):
        sim.run(udp(CLIENT, SERVER, 1, 53))


def test_uncommitted_new_is_not_recorded():
    sim = Simulator([flow(T.CLASSIFY, 100, IP, [("ct", False, 1, T.L2, None)]),
                     flow(T.L2, 100, {"ct_state": st(CT_TRK, CT_NEW)}, [("output", 9)])])
    for _ in range(2):
        assert out_pkt(sim.run(udp(CLIENT, SERVER, 1, 53)), 9)["ct_state"] == CT_TRK | CT_NEW
    assert sim.conntrack == [] and len(sim.ct) == 0


def test_icmp_keeps_its_id_and_replies_without_request_are_invalid():
    sim = snat_switch(nat=("src", EXT, EXT, 40000, 40001))
    p = out_pkt(sim.run(icmp(CLIENT, SERVER, 8, 77)), OUT)
    assert (p["ipv4_src"], p["icmp_id"]) == (EXT, 77)
    assert sim.conntrack[0]["orig"] == (CLIENT, SERVER, 77, 8)
    assert sim.conntrack[0]["reply"] == (SERVER, EXT, 77, 0)
    back = out_pkt(sim.run(icmp(SERVER, EXT, 0, 77, in_port=OUT)), IN)
    assert (back["ipv4_dst"], back["icmp_id"]) == (CLIENT, 77)
    # an echo reply nobody asked for: +inv, never committed
    inv = Simulator([flow(T.CLASSIFY, 100, IP, [("ct", True, 1, T.L2, None)]),
                     flow(T.L2, 100, {"ct_state": (CT_TRK | CT_INV,) * 2}, [("output", 9)])])
    assert out_pkt(inv.run(icmp(SERVER, CLIENT, 0, 5)), 9)["ct_state"] == CT_TRK | CT_INV
    assert inv.conntrack == []
    with pytest.raises(SimError, match="ICMP type 3"):
        inv.run(icmp(SERVER, CLIENT, 3, 5))


def test_chaining_zones_fresh_lookup_per_zone():
    sim = Simulator([
        # port 1: zone 1 (never committed) then zone 2
        flow(T.CLASSIFY, 100, dict(IP, in_port=1), [("ct", False, 1, T.L3, None)]),
        flow(T.L3, 100, dict(IP, ct_zone=1), [("set_field", "reg3", 1),
                                              ("ct", False, 2, T.L2, None)]),
        flow(T.L2, 100, {"reg3": 1}, [("output", 9)]),
        # port 3: commit in zone 2; port 4: replies in zone 2
        flow(T.CLASSIFY, 100, dict(IP, in_port=3), [("ct", True, 2, None, None), ("output", 8)]),
        flow(T.CLASSIFY, 100, dict(IP, in_port=4), [("ct", False, 2, None, None), ("output", 8)]),
    ])
    sim.run(tcp(CLIENT, SERVER, 1000, 80, in_port=3))
    sim.run(tcp(SERVER, CLIENT, 80, 1000, in_port=4))
    res = sim.run(tcp(CLIENT, SERVER, 1000, 80, in_port=1))
    assert res.steps[1].packet["ct_state"] == CT_TRK | CT_NEW      # zone 1: miss
    assert res.steps[1].packet["ct_zone"] == 1
    p = out_pkt(res, 9)
    assert (p["ct_state"], p["ct_zone"], p["reg3"]) == (CT_TRK | CT_EST, 2, 1)


def test_recirculation_keeps_metadata_and_is_bounded():
    sim = Simulator([
        flow(T.CLASSIFY, 100, IP, metadata=0x1_0000_0007, goto=T.L3),
        flow(T.L3, 100, IP, [("set_field", "reg4", 3), ("ct", False, 7, T.L2, None)]),
        flow(T.L2, 100, {"metadata": 0x1_0000_0007, "reg4": 3, "in_port": IN}, [("output", 9)]),
    ])
    p = out_pkt(sim.run(udp(CLIENT, SERVER, 1, 53)), 9)
    assert (p["in_port"], p["ct_zone"]) == (IN, 7)
    loop = Simulator([flow(T.CLASSIFY, 100, IP, [("ct", False, 1, T.CLASSIFY, None)])])
    with pytest.raises(SimError, match=r"depth over 6 \(0 \+ 7 recirculations\)"):
        loop.run(udp(CLIENT, SERVER, 1, 53))
    # a chain of 6 zones is the most OVS does; from a tunnel, 5
    chain = [flow(T.CLASSIFY, 100, IP, [("ct", False, 1, T.EXT_TRANSIT, None)])]
    chain += [flow(T.EXT_TRANSIT, 100, dict(IP, ct_zone=z), [("ct", False, z + 1, T.EXT_TRANSIT, None)])
              for z in range(1, 6)]
    chain += [flow(T.EXT_TRANSIT, 100, dict(IP, ct_zone=6), [("output", 9)])]
    sim = Simulator(chain)
    assert sim.run(udp(CLIENT, SERVER, 1, 53)).ports == [9]
    with pytest.raises(SimError, match=r"depth over 6 \(1 \+ 6"):
        sim.run(udp(CLIENT, SERVER, 1, 53), depth=1)


def test_matching_nat_fields_after_a_ct_without_table_is_refused():
    sim = Simulator([
        flow(T.CLASSIFY, 100, IP, [("ct", True, 1, None, ("src", EXT, EXT, 0, 0))], goto=T.L2),
        flow(T.L2, 100, dict(IP, ipv4_src=EXT), [("output", 9)]),
    ])
    with pytest.raises(SimError, match="without recirculation"):
        sim.run(udp(CLIENT, SERVER, 1, 53))
    # without NAT nothing was rewritten: later matches are fine
    ok = Simulator([
        flow(T.CLASSIFY, 100, IP, [("ct", True, 1, None, None)], goto=T.L2),
        flow(T.L2, 100, dict(IP, ipv4_src=CLIENT, ct_state=(0, CT_TRK)), [("output", 9)]),
    ])
    assert ok.run(udp(CLIENT, SERVER, 1, 53)).ports == [9]


def test_set_field_metadata_and_packet_in():
    sim = Simulator([
        flow(T.CLASSIFY, 100, {}, [("set_field", "metadata", 0x1_0000_0002)], goto=T.L2),
        flow(T.L2, 100, {"metadata": 0x1_0000_0002}, [("output", "controller")],
             meter=MeterId.LLDP),
    ])
    res = sim.run(udp(CLIENT, SERVER, 1, 53))
    assert res.ports == ["controller"] and not res.dropped
    assert res.outputs_to("controller")[0]["metadata"] == 0x1_0000_0002


def test_network_packet_in_and_per_switch_conntrack():
    net = Network()
    flows = [flow(T.CLASSIFY, 100, dict(IP, in_port=1), [("ct", True, 1, T.L2, None)]),
             flow(T.L2, 100, {"ct_state": (CT_TRK, CT_TRK)}, [("output", 2)]),
             flow(T.CLASSIFY, 100, dict(IP, in_port=3), [("output", "controller")],
                  meter=MeterId.LLDP)]
    net.add_switch("a", flows)
    net.add_switch("b", flows)
    net.add_link(("a", 2), ("b", 1))
    got = net.inject("a", 1, udp(CLIENT, SERVER, 1, 53))
    assert [(d.switch, d.port) for d in got] == [("b", 2)]
    assert "ct_state" not in got[0].packet           # ct state does not cross a wire
    assert len(net.conntrack("a")) == len(net.conntrack("b")) == 1
    assert net.inject("a", 3, udp(CLIENT, SERVER, 1, 53)) == []
    assert [pi.switch for pi in net.packet_ins] == ["a"]
