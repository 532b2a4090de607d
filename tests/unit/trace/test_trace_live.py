"""Live mode's plumbing without a switch: the flow argument ofproto/trace gets,
the parser of its output, and the comparison, against a fake ofproto/trace
that walks given flows (the desired ones, or the desired minus one deleted
"by hand")."""
from controller.flowsim import Simulator
from controller.trace import trace
from controller.trace.live import LiveTracer, flow_text, parse
from tests.support.worlds import World

SAMPLE = """\
Flow: icmp,in_port=5,vlan_tci=0x0000,dl_src=02:f1:0c:4e:ac:d4,dl_dst=02:fd:fe:83:28:ea

bridge("br-int")
----------------
 0. in_port=5, priority 100, cookie 0x20000015f9cabd7
    set_field:0x1->reg3
    goto_table:10
10. ip,in_port=5,dl_src=02:f1:0c:4e:ac:d4,nw_src=10.0.0.2, priority 100, cookie 0x2000001843ed608
    goto_table:20
20. priority 0, cookie 0x1000000bac477c9
    goto_table:30
30. ip,in_port=5, priority 100, cookie 0x2000001f3ec4fc9
    ct(commit,table=31,zone=32769)
    drop

Final flow: unchanged
Datapath actions: ct(commit,zone=32769),recirc(0x2)

===============================================================================
recirc(0x2) - resume conntrack with default ct_state=trk|new (use --ct-next to customize)
===============================================================================

bridge("br-int")
----------------
    thaw
        Resuming from table 31
31. ip,metadata=0x1/0xffffffff,nw_dst=10.0.0.3, priority 100, cookie 0x4000002f3539b06
    goto_table:32
50. metadata=0x1,dl_dst=02:fd:fe:83:28:ea, priority 100, cookie 0x40000025693b98e
    output:1

bridge("br-phy")
----------------
 0. priority 0
    NORMAL

Datapath actions: push_vlan(vid=1,pcp=0),3,2
"""


def test_parse_reads_br_int_steps_across_recirculations():
    steps, actions = parse(SAMPLE)
    assert [(s["table"], s["priority"], s["cookie"]) for s in steps] == [
        (0, 100, 0x20000015f9cabd7), (10, 100, 0x2000001843ed608), (20, 0, 0x1000000bac477c9),
        (30, 100, 0x2000001f3ec4fc9), (31, 100, 0x4000002f3539b06), (50, 100, 0x40000025693b98e)]
    assert steps[2]["match"] == "(any)" and steps[0]["match"] == "in_port=5"
    assert actions == ["ct(commit,zone=32769),recirc(0x2)", "push_vlan(vid=1,pcp=0),3,2"]


def test_flow_text_puts_prerequisites_first():
    text = flow_text({"in_port": 2, "tunnel_id": 100, "tun_ipv4_src": "198.18.0.11",
                      "tun_ipv4_dst": "198.18.0.12", "eth_src": "02:00:00:00:00:01",
                      "eth_dst": "02:00:00:00:00:02", "eth_type": 0x0800, "ip_proto": 1,
                      "icmpv4_type": 8, "icmpv4_code": 0, "ipv4_src": "10.0.0.2",
                      "ipv4_dst": "10.0.0.3", "ip_ttl": 64, "icmp_id": 7})
    assert text == ("in_port=2,tun_id=0x64,tun_src=198.18.0.11,tun_dst=198.18.0.12,"
                    "dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,dl_type=0x0800,"
                    "nw_src=10.0.0.2,nw_dst=10.0.0.3,nw_proto=1,nw_ttl=64,icmp_type=8,"
                    "icmp_code=0")


def fake_ofproto_trace(world, deleted=()):
    """ofproto/trace over the world's desired flows minus `deleted` cookies."""
    sims = {h: Simulator([f for f in fl if f.cookie not in deleted])
            for h, fl in world.flows.items()}

    def run(host, flow):
        fields = dict(kv.split("=", 1) for kv in flow.split(","))
        packet = dict(run.packets.pop(0))
        res = sims[host].run(packet)
        assert fields["in_port"] == str(packet["in_port"])
        lines = ['bridge("br-int")', "----------------"]
        for s in res.steps:
            f = s.flow
            lines.append(f"{s.table:>2}. No match." if f is None else
                         f"{s.table:>2}. priority {f.priority}, cookie {f.cookie:#x}")
        lines.append("Datapath actions: " + ("drop" if res.dropped else "out"))
        return "\n".join(lines)
    run.packets = []
    return run


def live_trace(world, deleted=()):
    runner = fake_ofproto_trace(world, deleted)
    tracer = LiveTracer(runner)

    def live(hops):
        runner.packets = [h.result.steps[0].packet for h in hops]
        return tracer(hops)
    return trace(world.state, world.topo, "red", {"from": "p1", "to": "p2", "live": True},
                 live=live)[1]


def test_agreement_and_a_deleted_flow():
    w = World(hosts=2, tenants=(("red", "vxlan", 100),),
              ports=(("red", 1, "10.0.0.2"), ("red", 2, "10.0.0.3")))
    out = live_trace(w)
    assert out["live"]["available"] and not out["live"]["differs"], out["live"]
    assert [h["host"] for h in out["live"]["hops"]] == ["h1", "h2"]
    l2 = next(s for s in out["hops"][1]["steps"] if s["table_name"] == "L2")
    out = live_trace(w, deleted={int(l2["cookie"], 16)})
    live = out["live"]
    assert live["differs"] and len(live["differences"]) == 1
    assert live["differences"][0].startswith(
        "installed flows differ from desired on h2: desired table 50 L2: table=50,priority=100")
    assert "the switch used table 50 (any), priority 0" in live["differences"][0]
    row = next(r for r in live["hops"][1]["rows"] if not r["same"])
    assert (row["table_name"], row["desired"]) == ("L2", f"{int(l2['cookie'], 16):#x}")


def test_a_switch_that_cannot_be_asked_is_an_error_not_a_difference():
    w = World(hosts=2, tenants=(("red", "vxlan", 100),),
              ports=(("red", 1, "10.0.0.2"), ("red", 2, "10.0.0.3")))

    def broken(host, flow):
        raise RuntimeError("ovs-appctl: cannot connect")
    out = trace(w.state, w.topo, "red", {"from": "p1", "to": "p2", "live": True},
                live=LiveTracer(broken))[1]
    assert not out["live"]["differs"]
    assert out["live"]["errors"][0] == "h1: ofproto/trace failed: ovs-appctl: cannot connect"
