"""vpcctl trace against the real REST server (tests/support/rest_server.py):
the walk, the verdict's words and the exit codes."""
from tests.support.rest_server import server, vpc  # noqa: F401


def plug(server, vpc):
    vpc.ok("host", "add", "h1", "--dpid", "1", "--tunnel-ip", "198.18.0.11")
    vpc.ok("host", "add", "h2", "--dpid", "2", "--tunnel-ip", "198.18.0.12")
    vpc.ok("tenant", "create", "red", "--network", "vxlan")
    vpc.ok("subnet", "create", "red", "10.0.0.0/24")
    ports = [vpc.json("port", "attach", "red", "--host", f"h{i}", "--port", f"c{i}")
             for i in (1, 2)]
    for i in (1, 2):
        server.topo.datapath_up(i)
        server.topo.set_ports(i, {"vxlan0": 2, "gre0": 3, f"c{i}": 10})
    return ports


def test_trace_walks_and_exits_by_verdict(server, vpc):  # noqa: F811
    p1, p2 = plug(server, vpc)
    out = vpc.ok("trace", "red", "--from", "c1", "--to", p2["id"])
    assert out.splitlines()[0] == f"icmp echo {p1['ip']} -> {p2['ip']}  (from port {p1['id']} on h1)"
    assert "  0 CLASSIFY" in out and "h2  in vxlan0" in out
    assert f"verdict: DELIVERED  delivered to port {p2['id']} (c2 on h2, {p2['ip']})" in out
    data = vpc.json("trace", "red", "--from", p1["id"], "--to", p2["ip"], "--proto", "tcp",
                    "--dport", "22")
    assert data["verdict"]["code"] == "delivered"
    r = vpc.run("trace", "red", "--from", "c1", "--to", p2["ip"], "--src-ip", "10.0.0.99")
    assert r.exit_code == 4
    assert f"verdict: DROPPED  dropped: source 10.0.0.99 is not bound to port {p1['id']}" \
        in r.stdout
    assert vpc.run("trace", "red", "--from", "c1", "--to", "8.8.8.8").exit_code == 4


def test_trace_usage_and_refusals(server, vpc):  # noqa: F811
    plug(server, vpc)
    assert "needs --dport" in vpc.fail(2, "trace", "red", "--from", "c1", "--to", "10.0.0.3",
                                       "--proto", "tcp")
    vpc.fail(2, "trace", "red", "--from", "c1", "--to", "10.0.0.3", "--proto", "sctp")
    assert "has no port 'nope'" in vpc.fail(1, "trace", "red", "--from", "nope", "--to",
                                            "10.0.0.3")
    assert "does not exist" in vpc.fail(1, "trace", "blue", "--from", "c1", "--to", "10.0.0.3")
    assert "IPv4" in vpc.fail(1, "trace", "red", "--from", "c1", "--to", "10.0.0.3",
                              "--src-ip", "10.0.0.300")


def test_flow_logs_command(server, vpc):  # noqa: F811
    import json
    import time
    p1, p2 = plug(server, vpc)
    assert vpc.ok("flow-logs", "red", "--on").strip() == "flow logs of red: on"
    now = time.time()
    recs = [{"src": p1["ip"], "dst": p2["ip"], "proto": 1, "icmp_type": 8, "icmp_code": 0,
             "packets": 3, "bytes": 252, "start": now - 600, "end": now - 599,
             "src_mac": p1["mac"], "dst_mac": p2["mac"]},
            {"src": p1["ip"], "dst": p2["ip"], "proto": 6, "sport": 40000, "dport": 22,
             "packets": 2, "bytes": 120, "start": now - 5, "end": now - 4,
             "src_mac": p1["mac"], "dst_mac": p2["mac"]}]
    server.service.flow_book.ingest(server.state, server.service.topology_view(server.state),
                                    "h1", recs)
    table = vpc.ok("flow-logs", "red")
    assert table.splitlines()[0].split()[:4] == ["START", "PORT", "DIR", "PROTO"]
    assert len(table.strip().splitlines()) == 3
    lines = vpc.ok("flow-logs", "red", "--since", "5m", "--jsonl").strip().splitlines()
    assert [json.loads(x)["dport"] for x in lines] == [22]
    assert vpc.ok("flow-logs", "red", "--action", "reject", "--jsonl").strip() == ""
    assert "a duration" in vpc.fail(2, "flow-logs", "red", "--since", "5 minutes")
    assert "does not exist" in vpc.fail(1, "flow-logs", "blue")
    assert vpc.json("flow-logs", "red", "--off") == {"tenant": "red", "enabled": False,
                                                     "since": None}
