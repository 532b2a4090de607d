"""vpcctl trace --live on real OVS: the switches' ofproto/trace agrees with the
simulated trace on a working and on a blocked path; a flow deleted by hand on
a switch is reported as "installed flows differ from desired".

The controller reaches each host's ovs-vswitchd with VPC_TRACE_APPCTL (the
lab's run directory per host), so this module makes its own controller and
lab (the lab's name must be known before the controller starts)."""
import os
import secrets
import subprocess
import warnings

import pytest

from tests.lab.conftest import REPO
from tests.support.labhelp import make_tenant, pings, wait_for
from vpclab import lablib
from vpclab.labctl import Api

LAB = f"vt{secrets.token_hex(2)}"
APPCTL = f"env OVS_RUNDIR={lablib.BASE}/{LAB}/{{host}} ovs-appctl -t ovs-vswitchd"


@pytest.fixture(scope="module")
def controller(controller_factory):
    ctl = controller_factory("trace", extra_env={"VPC_TRACE_APPCTL": APPCTL})
    yield ctl
    ctl.stop()


@pytest.fixture(scope="module")
def lab(controller):
    lab = lablib.Lab(name=LAB, hosts=3, of_port=controller.of_port)
    lab.api_url = controller.url
    try:
        lab.up()
        lab.join_all(controller.url)
        lab.wait_connected(timeout=30, api_url=controller.url)
        yield lab
    finally:
        problems = lab.down()
        if problems:
            warnings.warn(f"lab {lab.name} teardown: {problems}")


@pytest.fixture(scope="module")
def web(lab):
    """Tenant tr (vxlan): c on h1 in default, s on h2 in web (tcp/80 only)."""
    make_tenant(Api, lab, "tr", network="vxlan")
    a = Api(lab.api_url)
    status, body = a.post("/v1/tenants/tr/security-groups", {"name": "web", "rules": [
        {"direction": "ingress", "protocol": "tcp", "ports": "80"},
        {"direction": "ingress", "protocol": "icmp"}]})
    assert status == 201, body
    made = []
    try:
        for name, host in (("trc", 1), ("trs", 2)):
            ns = lab.add_container(name, host=host)
            made.append((name, host, None))
            port = lab.attach("tr", name, host, lab.api_url)
            made[-1] = (name, host, port["id"])
        c, s = (dict(id=pid, ns=lab.container_ns(n)) for n, _, pid in made)
        status, body = a.request("PATCH", f"/v1/tenants/tr/ports/{s['id']}",
                                 {"security_groups": ["web"]})
        assert status == 200, body
        s.update(ip=body["ip"])
        assert wait_for(lambda: pings(lab, c["ns"], s["ip"], count=1), timeout=15)
        yield c, s
    finally:
        for name, host, pid in reversed(made):
            if pid:
                lab.detach("tr", pid, host, lab.api_url, check=False)
            lab.del_container(name)


def trace(api, lab, body):
    status, out = api(lab.api_url).post("/v1/tenants/tr/trace", dict(body, live=True))
    assert status == 200, out
    return out


def test_live_agrees_on_a_working_and_a_blocked_path(api, lab, web):
    c, s = web
    ok = trace(api, lab, {"from": c["id"], "to": s["id"], "proto": "tcp", "dport": 80})
    assert ok["verdict"]["code"] == "delivered", ok["verdict"]
    live = ok["live"]
    print(f"trace latency: simulated {ok['simulated']['ms']} ms "
          f"({ok['simulated']['flows']} flows), live {live['ms']} ms")
    assert live["available"] and not live["differs"], live
    assert [h["host"] for h in live["hops"]] == ["h1", "h2"]
    assert all(r["same"] for h in live["hops"] for r in h["rows"])
    blocked = trace(api, lab, {"from": c["id"], "to": s["id"], "proto": "tcp", "dport": 22})
    assert blocked["verdict"]["code"] == "security_group"
    assert blocked["verdict"]["reason"].startswith("dropped by security group web: no ingress "
                                                   "rule for tcp/22")
    assert not blocked["live"]["differs"], blocked["live"]
    assert blocked["live"]["hops"][-1]["datapath_actions"][-1] == "drop"


def test_live_reports_a_flow_deleted_by_hand(api, lab, web):
    c, s = web
    body = {"from": c["id"], "to": s["id"]}
    before = trace(api, lab, body)
    assert not before["live"]["differs"], before["live"]
    l2 = next(st for st in before["hops"][0]["steps"] if st["table_name"] == "L2")
    assert l2["owner"]["kind"] == "remote"
    lab.ovs_ofctl(1, "del-flows", f"cookie={l2['cookie']}/-1")
    try:
        after = trace(api, lab, body)
        assert after["verdict"]["code"] == "delivered"       # desired: still delivered
        live = after["live"]
        assert live["differs"], live
        (diff,) = live["differences"]
        assert diff.startswith("installed flows differ from desired on h1: desired table 50 L2")
        assert f"(cookie {int(l2['cookie'], 16):#x})" in diff
        cli = subprocess.run([str(REPO / ".venv/bin/vpcctl"), "--url", lab.api_url, "trace",
                              "tr", "--from", c["id"], "--to", s["id"], "--live"],
                             capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, VPC_URL=""))
        assert cli.returncode == 5, cli.stdout + cli.stderr
        assert "installed flows differ from desired" in cli.stdout
    finally:
        lab.reconnect(1)            # the controller re-reads h1 and puts the flow back
        assert wait_for(lambda: not trace(api, lab, body)["live"]["differs"], timeout=30)
