"""Flow logs from IPFIX records: one record per port and direction, replies as
reply counters, ACCEPT/REJECT and the rule from the security groups, off by
default, bounded; and the same through the REST API."""
from controller.service.secgroups import rule_record
from controller.trace.flowlogs import FlowLogBook
from tests.unit.trace.test_trace_api import world as rest_world
from tests.unit.trace.test_trace_verdicts import add_group, world


def rec(src, dst, proto, a, b, packets, nbytes, start, src_mac, dst_mac):
    r = {"src": src, "dst": dst, "proto": proto, "packets": packets, "bytes": nbytes,
         "start": start, "end": start + 1, "src_mac": src_mac, "dst_mac": dst_mac}
    r.update({"icmp_type": a, "icmp_code": b} if proto == 1 else {"sport": a, "dport": b})
    return r


def test_accepted_and_rejected_connections_per_port():
    w = world()
    add_group(w, "web", 1, [rule_record("ingress", "tcp", [80, 80], "0.0.0.0/0")], ["p2"])
    p1, p2 = w.port("p1"), w.port("p2")
    book = FlowLogBook()
    assert book.ingest(w.state, w.topo, "h1", [rec(p1.ip, p2.ip, 6, 40000, 22, 2, 120, 10,
                                                   p1.mac, p2.mac)]) == (0, 1)   # off
    book.set_enabled("red", True)
    h1 = [rec(p1.ip, p2.ip, 6, 40000, 80, 5, 300, 10, p1.mac, p2.mac),       # c -> s:80
          rec(p2.ip, p1.ip, 6, 80, 40000, 4, 500, 10, p2.mac, p1.mac),       # its replies
          rec(p1.ip, p2.ip, 6, 40001, 22, 2, 120, 11, p1.mac, p2.mac)]       # c -> s:22
    assert book.ingest(w.state, w.topo, "h1", h1) == (3, 0)
    h2 = [rec(p1.ip, p2.ip, 6, 40000, 80, 5, 300, 10, p1.mac, p2.mac),
          rec(p2.ip, p1.ip, 6, 80, 40000, 4, 500, 10, p2.mac, p1.mac),
          rec(p1.ip, p2.ip, 6, 40001, 22, 2, 120, 11, p1.mac, p2.mac)]
    assert book.ingest(w.state, w.topo, "h2", h2) == (3, 0)
    got = {(r["port_id"], r["direction"], r["dport"]): r for r in book.records("red")}
    assert set(got) == {("p1", "egress", 80), ("p1", "egress", 22), ("p2", "ingress", 80),
                        ("p2", "ingress", 22)}
    ok = got[("p2", "ingress", 80)]
    assert (ok["action"], ok["packets"], ok["bytes"], ok["reply_packets"], ok["reply_bytes"]) \
        == ("ACCEPT", 5, 300, 4, 500)
    assert ok["rule"]["text"] == "ingress tcp/80 from 0.0.0.0/0" and ok["rule"]["group"] == "web"
    bad = got[("p2", "ingress", 22)]
    assert (bad["action"], bad["packets"], bad["reply_packets"]) == ("REJECT", 2, 0)
    assert bad["reason"].startswith("dropped by security group web: no ingress rule for tcp/22")
    out = got[("p1", "egress", 22)]       # c's own group let it out: ACCEPT there
    assert out["action"] == "ACCEPT" and out["rule"]["text"] == "egress any to 0.0.0.0/0"
    # the exporter's next report of the same flow adds up
    book.ingest(w.state, w.topo, "h2", [rec(p1.ip, p2.ip, 6, 40001, 22, 1, 60, 12, p1.mac,
                                            p2.mac)])
    again = [r for r in book.records("red") if r["port_id"] == "p2" and r["dport"] == 22]
    assert again[0]["packets"] == 3 and again[0]["end"] == 13
    book.set_enabled("red", False)
    assert book.records("red") == []


def test_icmp_reply_and_bounded_memory():
    w = world()
    p1, p2 = w.port("p1"), w.port("p2")
    book = FlowLogBook(max_records=3)
    book.set_enabled("red", True)
    book.ingest(w.state, w.topo, "h1", [rec(p2.ip, p1.ip, 1, 0, 0, 3, 252, 5, p2.mac, p1.mac),
                                        rec(p1.ip, p2.ip, 1, 8, 0, 3, 252, 5, p1.mac, p2.mac)])
    (ping,) = book.records("red")
    assert (ping["direction"], ping["icmp_type"], ping["packets"], ping["reply_packets"],
            ping["action"]) == ("egress", 8, 3, 3, "ACCEPT")
    book.ingest(w.state, w.topo, "h1", [rec(p1.ip, p2.ip, 17, 5000 + i, 53, 1, 60, 6 + i,
                                            p1.mac, p2.mac) for i in range(5)])
    assert [r["sport"] for r in book.records("red")] == [5002, 5003, 5004]


def test_flow_logs_over_rest(tmp_path):
    api = rest_world(tmp_path)
    p1, p2 = (api.state.ports[api.ids[k]] for k in ("p1", "p2"))
    assert api.ok("GET", "/v1/hosts/h2/flow-logs")["enabled"] is False
    assert api.ok("GET", "/v1/tenants/red/flow-logs") == {"tenant": "red", "enabled": False,
                                                          "since": None, "records": []}
    disk = api.disk()
    assert api.ok("PUT", "/v1/tenants/red/flow-logs", {"enabled": True})["enabled"] is True
    assert api.ok("GET", "/v1/hosts/h2/flow-logs")["enabled"] is True
    body = {"records": [rec(p1.ip, p2.ip, 6, 40000, 22, 2, 120, 10, p1.mac, p2.mac)]}
    assert api.ok("POST", "/v1/hosts/h2/flow-logs", body)["taken"] == 1
    (r,) = api.ok("GET", "/v1/tenants/red/flow-logs")["records"]
    assert (r["port_id"], r["direction"], r["action"]) == (p2.id, "ingress", "REJECT")
    assert api.disk() == disk            # nothing of it is desired state
    code, out = api.call("POST", "/v1/hosts/h2/flow-logs", {"records": [{"src": 1}]})
    assert code == 400


def test_a_deleted_tenant_takes_its_flow_logs(tmp_path):
    api = rest_world(tmp_path)
    api.ok("POST", "/v1/tenants", {"name": "gone", "network": "gre"})
    api.ok("PUT", "/v1/tenants/gone/flow-logs", {"enabled": True})
    api.ok("DELETE", "/v1/tenants/gone")
    assert api.call("GET", "/v1/tenants/gone/flow-logs")[0] == 404
    api.ok("POST", "/v1/tenants", {"name": "other", "network": "gre"})     # takes gone's id
    api.ok("POST", "/v1/tenants", {"name": "gone", "network": "gre"})
    assert api.ok("GET", "/v1/tenants/gone/flow-logs")["enabled"] is False


def test_sampled_counters_are_scaled():
    w = world()
    p1, p2 = w.port("p1"), w.port("p2")
    book = FlowLogBook()
    book.set_enabled("red", True)
    book.ingest(w.state, w.topo, "h1", [rec(p1.ip, p2.ip, 17, 5000, 53, 2, 120, 5, p1.mac,
                                            p2.mac)], scale=64)
    (r,) = book.records("red")
    assert (r["packets"], r["bytes"]) == (128, 7680)
