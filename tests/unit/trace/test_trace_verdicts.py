"""Trace verdicts, one per drop point of the pipeline, with their words.

Each world is tests/support/worlds.World (the compiler's test worlds); the
trace compiles the desired flows itself from the same state and topology,
so what it says is what the switches would do with the flows we install."""
import dataclasses

import pytest

from controller.model.state import SecurityGroup, group_key, record
from controller.service.errors import ApiError
from controller.service.secgroups import rule_record
from controller.trace import trace
from tests.support.worlds import World

TENANTS = (("red", "vxlan", 100), ("blue", "vlan", 5))
PORTS = (("red", 1, "10.0.0.2"), ("red", 2, "10.0.0.3"), ("blue", 2, "10.0.0.4"),
         ("red", 1, "10.1.0.5"))


def world(**kw):
    kw.setdefault("subnets", (("red", "10.1.0.0/24"),))
    return World(hosts=3, tenants=TENANTS, ports=PORTS, **kw)


def run(w, body, tenant="red"):
    return trace(w.state, w.topo, tenant, body)[1]


def add_group(w, name, index, rules, ports):
    """A security group with `rules` for `ports` (their only group)."""
    g = SecurityGroup("red", name, index, tuple(rules))
    ops = [("put", "security_groups", group_key("red", name), record(g))]
    for pid in ports:
        p = dataclasses.replace(w.state.ports[pid], security_groups=(name,))
        ops.append(("put", "ports", pid, record(p)))
    w.state.apply(ops)


def test_delivered_across_hosts_with_every_table_named():
    out = run(world(), {"from": "p1", "to": "p2", "proto": "tcp", "dport": 22})
    assert out["verdict"]["code"] == "delivered"
    assert out["verdict"]["reason"] == "delivered to port p2 (c2 on h2, 10.0.0.3)"
    assert [h["host"] for h in out["hops"]] == ["h1", "h2"]
    first = out["hops"][0]["steps"]
    assert [s["table_name"] for s in first][:4] == ["CLASSIFY", "PORT_SECURITY", "ARP", "ACL"]
    assert first[0]["owner"] == {"kind": "port", "id": 1, "port_id": "p1",
                                 "text": "port p1 (c1 on h1, 10.0.0.2)"}
    sg = next(s for s in first if s["table_name"] == "SG_OUT")
    assert sg["owner"]["group"] == "default"
    assert sg["owner"]["rule"]["text"] == "egress any to 0.0.0.0/0"
    l2 = next(s for s in first if s["table_name"] == "L2")
    assert l2["owner"]["kind"] == "remote" and l2["owner"]["port_id"] == "p2"
    assert out["hops"][0]["outputs"][0]["to"] == "a tunnel to h2 (key 100)"
    sg_in = next(s for s in out["hops"][1]["steps"] if s["table_name"] == "SG_IN")
    assert sg_in["owner"]["rule"]["text"] == "ingress any from sg:default"
    assert out["arp"]["answered_by"] == "ARP answer for port p2 (c2 on h2, 10.0.0.3)"
    assert out["path"] == ["port:0000000000000001:c1", "dp:0000000000000001",
                           "port:0000000000000001:vxlan0", "port:0000000000000002:vxlan0",
                           "dp:0000000000000002", "port:0000000000000002:c2"]


def test_spoofed_source():
    out = run(world(), {"from": "p1", "to": "p2", "src_ip": "10.0.0.9"})
    v = out["verdict"]
    assert (v["action"], v["code"]) == ("dropped", "spoof")
    assert v["reason"] == "dropped: source 10.0.0.9 is not bound to port p1"
    assert (v["host"], v["table_name"]) == ("h1", "PORT_SECURITY")


def test_security_group_ingress():
    w = world()
    add_group(w, "web", 1, [rule_record("ingress", "tcp", [80, 80], "0.0.0.0/0")], ["p2"])
    assert run(w, {"from": "p1", "to": "p2", "proto": "tcp", "dport": 80})["verdict"][
        "code"] == "delivered"
    v = run(w, {"from": "p1", "to": "p2", "proto": "tcp", "dport": 22})["verdict"]
    assert v["code"] == "security_group" and v["table_name"] == "SG_IN" and v["host"] == "h2"
    assert v["reason"] == ("dropped by security group web: no ingress rule for tcp/22 from "
                           "10.0.0.2 (port p2 receives)")
    assert v["owner"]["kind"] == "base"          # the table's miss dropped it


def test_security_group_egress():
    w = world()
    add_group(w, "locked", 1, [rule_record("egress", "udp", [53, 53], "0.0.0.0/0")], ["p1"])
    v = run(w, {"from": "p1", "to": "p2", "proto": "tcp", "dport": 443})["verdict"]
    assert v["code"] == "security_group" and v["table_name"] == "SG_OUT"
    assert v["reason"] == ("dropped by security group locked: no egress rule for tcp/443 to "
                           "10.0.0.3 (port p1 sends)")


def test_no_route_inside_the_tenant():
    v = run(world(), {"from": "p1", "to": "10.1.0.77"})["verdict"]
    assert v["code"] == "no_route" and v["table_name"] == "L3"
    assert v["reason"] == ("dropped by the router of tenant red: no route to 10.1.0.77: it is "
                           "in a subnet of the tenant, but no port has that address")


def test_no_route_to_the_outside():
    v = run(world(), {"from": "p1", "to": "198.51.100.7"})["verdict"]
    assert v["code"] == "no_route"
    assert v["reason"] == ("dropped by the router of tenant red: no route to 198.51.100.7: it "
                           "is outside the tenant's subnets and host h1 has no external network")
    v = run(world(external=(1,)), {"from": "p1", "to": "198.51.100.7"})["verdict"]
    assert v["reason"].endswith("and SNAT is off for tenant red")


def test_other_tenant():
    """blue's 10.0.0.4 is in red's 10.0.0.0/24 too: red cannot reach it."""
    v = run(world(), {"from": "p1", "to": "10.0.0.4"})["verdict"]
    assert v["code"] == "not_in_tenant"
    assert v["reason"] == ("dropped: no port of tenant red has 10.0.0.4, so its ARP request is "
                           "not answered; tenants are isolated: a port of another tenant is "
                           "never reached")
    with pytest.raises(ApiError) as err:          # naming blue's port: as if it did not exist
        run(world(), {"from": "p1", "to": "p3"})
    assert err.value.status == 404 and "tenant 'red' has no port 'p3'" in err.value.message


def test_nat_miss():
    """h1 NATs for red (a floating IP on p4), but SNAT is off and p1 has no floating IP."""
    w = world(external=(1,), fips=(("p4", "203.0.113.100"),))
    v = run(w, {"from": "p1", "to": "198.51.100.7", "proto": "tcp", "dport": 80})["verdict"]
    assert v["code"] == "nat_miss" and v["table_name"] == "NAT_OUT"
    assert v["reason"] == ("dropped by NAT on h1 (NAT miss): no NAT rule takes a new connection "
                           "from 10.0.0.2: SNAT is off for tenant red and port p1 has no "
                           "floating IP")
    out = run(w, {"from": "p4", "to": "198.51.100.7", "proto": "tcp", "dport": 80})
    assert out["verdict"]["code"] == "outside"
    assert out["verdict"]["reason"] == ("leaves h1 by its external port ext0 to 198.51.100.7 "
                                        "as 203.0.113.100:40000")


def test_snat_to_the_outside():
    w = world(external=(1,), snat=("red",))
    out = run(w, {"from": "p1", "to": "198.51.100.7", "proto": "udp", "dport": 53})
    v = out["verdict"]
    assert (v["action"], v["code"]) == ("forwarded", "outside")
    assert v["reason"].startswith("leaves h1 by its external port ext0 to 198.51.100.7 as "
                                  "203.0.113.11:")
    assert out["path"][-1] == "port:0000000000000001:ext0"
    assert any(s["owner"]["kind"] == "nat" for s in out["hops"][0]["steps"] if s["flow"])


def test_gateway_answers_ping():
    v = run(world(), {"from": "p1", "to": "10.0.0.1"})["verdict"]
    assert v["code"] == "answered" and "10.0.0.1 is a gateway" in v["reason"]


def test_dns_to_the_gateway_is_answered_by_the_hosts_agent():
    v = run(world(services=(1, 2, 3)), {"from": "p1", "to": "10.0.0.1", "proto": "udp",
                                        "dport": 53})["verdict"]
    assert (v["action"], v["code"], v["host"]) == ("delivered", "agent", "h1"), v
    assert "vpc-agent" in v["reason"] and "DNS server" in v["reason"]


def test_port_without_ovs_port_sends_nothing():
    v = run(world(missing=("p1",)), {"from": "p1", "to": "p2"})["verdict"]
    assert (v["action"], v["code"]) == ("not_sent", "port_down")
    assert v["reason"] == "not sent: port p1 cannot send: host h1 has no OVS port c1 (no veth " \
                          "plugged in)"


def test_peer_host_disconnected():
    v = run(world(disconnected=(2,)), {"from": "p1", "to": "p2"})["verdict"]
    assert (v["action"], v["code"]) == ("dropped", "host_down")
    assert v["reason"] == ("not delivered: the host of port p2, h2, is not connected to the "
                           "controller, so no flow leads there")


def test_vlan_tenant_across_the_fabric():
    w = World(hosts=3, tenants=(("blue", "vlan", 5),),
              ports=(("blue", 1, "10.0.0.2"), ("blue", 3, "10.0.0.3")))
    out = run(w, {"from": "p1", "to": "p2"}, tenant="blue")
    assert out["verdict"]["code"] == "delivered"
    assert out["hops"][0]["outputs"][0]["to"] == "the VLAN fabric, tag 5"


def test_the_trace_changes_nothing():
    w = world()
    before = w.state.to_collections()
    for body in ({"from": "p1", "to": "p2"}, {"from": "p1", "to": "8.8.8.8"}):
        run(w, body)
    assert w.state.to_collections() == before


def test_dhcp_server_reply_is_spoofing():
    v = run(world(), {"from": "p1", "to": "p2", "proto": "udp", "sport": 67, "dport": 68})[
        "verdict"]
    assert v["code"] == "spoof"
    assert v["reason"] == "dropped: port p1 may not send DHCP server replies (UDP from port 67)"


def test_nat_miss_while_the_gateway_mac_is_unknown():
    w = world(external=(1,), snat=("red",), gateway_known=False)
    v = run(w, {"from": "p1", "to": "198.51.100.7", "proto": "udp", "dport": 53})["verdict"]
    assert v["code"] == "nat_miss" and v["table_name"] == "EXT_OUT"
    assert v["reason"] == ("dropped on h1 (NAT miss): the MAC of the external gateway "
                           "203.0.113.1 is not known yet (it did not answer ARP)")
