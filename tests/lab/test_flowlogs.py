"""Flow logs on real OVS: the agents' IPFIX collectors (vpcagent/flowlogs.py)
on h1 and h2, a tenant with flow logs on, an accepted ping (c -> d) and a
rejected one (c -> s, whose group admits tcp/80 only); the records carry the
right action, rule and counters; off again turns IPFIX off on the bridges."""
import os
import subprocess
import sys

import pytest

from tests.lab.conftest import REPO
from tests.support.labhelp import make_tenant, pings, wait_for

ICMP_BYTES = 84          # ping's default 56 data bytes + ICMP 8 + IPv4 20


def ipfix_on(lab, i):
    return lab.ovs_vsctl(i, "get", "Bridge", "br-int", "ipfix").strip() != "[]"


@pytest.fixture
def collectors(lab):
    procs = []
    env = dict(os.environ, PYTHONPATH=str(REPO))
    try:
        for i in (1, 2):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "vpcagent.flowlogs", "--host", lab.host_name(i),
                 "--api", lab.api_url, "--netns", lab.host_ns(i), "--ovs-rundir",
                 lab.rundir(i)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                text=True))
        yield procs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        for i in (1, 2):
            if ipfix_on(lab, i):
                lab.ovs_vsctl(i, "clear", "Bridge", "br-int", "ipfix")


def test_accepted_and_rejected_connections_with_counters(api, lab, make_container,
                                                         collectors):
    a = api(lab.api_url)
    make_tenant(api, lab, "fl", network="vxlan")
    status, body = a.post("/v1/tenants/fl/security-groups", {"name": "web", "rules": [
        {"direction": "ingress", "protocol": "tcp", "ports": "80"}]})
    assert status == 201, body
    c = make_container("flc", 1, "fl")
    d = make_container("fld", 2, "fl")
    s = make_container("fls", 2, "fl")
    status, body = a.request("PATCH", f"/v1/tenants/fl/ports/{s['id']}",
                             {"security_groups": ["web"]})
    assert status == 200, body
    assert wait_for(lambda: pings(lab, c["ns"], d["ip"], count=1), timeout=15)
    assert not ipfix_on(lab, 1) and not ipfix_on(lab, 2)         # off by default
    status, body = a.request("PUT", "/v1/tenants/fl/flow-logs", {"enabled": True})
    assert status == 200 and body["enabled"], body
    assert wait_for(lambda: ipfix_on(lab, 1) and ipfix_on(lab, 2), timeout=15)
    assert lab.ping(c["ns"], d["ip"], count=3, interval=0.2, wait=1.0)
    assert not lab.ping(c["ns"], s["ip"], count=2, interval=0.2, wait=1.0)

    def records():
        status, body = a.get("/v1/tenants/fl/flow-logs")
        assert status == 200, body
        return {(r["port_id"], r["direction"], r["dst"]): r for r in body["records"]
                if r["proto"] == "icmp"}

    def settled():
        got = records()
        ok = got.get((d["id"], "ingress", d["ip"]))
        bad = got.get((s["id"], "ingress", s["ip"]))
        return ok and bad and ok["packets"] >= 3 and ok["reply_packets"] >= 3 and \
            bad["packets"] >= 2
    assert wait_for(settled, timeout=30), records()
    got = records()
    ok = got[(d["id"], "ingress", d["ip"])]
    assert (ok["action"], ok["src"], ok["packets"], ok["bytes"], ok["reply_packets"],
            ok["reply_bytes"]) == ("ACCEPT", c["ip"], 3, 3 * ICMP_BYTES, 3, 3 * ICMP_BYTES)
    assert ok["rule"]["text"] == "ingress any from sg:default"
    bad = got[(s["id"], "ingress", s["ip"])]
    assert (bad["action"], bad["packets"], bad["bytes"], bad["reply_packets"]) == \
        ("REJECT", 2, 2 * ICMP_BYTES, 0)
    assert bad["reason"].startswith("dropped by security group web: no ingress rule for icmp")
    out = got[(c["id"], "egress", s["ip"])]          # c's own group let it out
    assert (out["action"], out["packets"]) == ("ACCEPT", 2)
    assert out["end"] >= out["start"] > 0

    status, body = a.request("PUT", "/v1/tenants/fl/flow-logs", {"enabled": False})
    assert status == 200 and not body["enabled"]
    assert wait_for(lambda: not ipfix_on(lab, 1) and not ipfix_on(lab, 2), timeout=15)
    assert all(p.poll() is None for p in collectors), [p.stderr.read() for p in collectors]
