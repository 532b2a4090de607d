"""The real controller serves /metrics and /ui for the lab it runs.

- /metrics: Prometheus text on the REST port; after the lab connected, the
  reconcile counters have moved, every switch has its desired and installed
  flow counts, the gateway ARP replies were counted as packet-ins.
- /ui: headless Chromium loads the page from the controller and the page
  draws the lab's three hosts, connected, and the tenant's ports, up.
"""
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.chromium import chromium, page_state


def scrape(url):
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def total(samples, name, **labels):
    return sum(v for lab, v in samples.get(name, [])
               if all(lab.get(k) == want for k, want in labels.items()))


def test_metrics_after_the_lab_connected(lab):
    deadline = time.monotonic() + 15
    while True:      # gateway ARP replies come back within a second or two
        m = scrape(lab.api_url)
        if total(m, "vpc_packet_ins_total", reason="gateway_arp") > 0 \
                or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert total(m, "vpc_switches_connected") == 3
    assert total(m, "vpc_hosts") == 3
    dpids = {lab.dpid(i).lower().removeprefix("0x").rjust(16, "0") for i in (1, 2, 3)}
    runs = {lab_["dpid"]: v for lab_, v in m["vpc_reconcile_runs_total"]}
    assert set(runs) >= dpids and all(runs[d] > 0 for d in dpids), runs
    assert total(m, "vpc_reconcile_duration_seconds_count") >= 3
    assert total(m, "vpc_reconcile_flows_total", action="added") > 0
    assert total(m, "vpc_flow_mods_total") >= total(m, "vpc_reconcile_flows_total",
                                                    action="added")
    desired = {lab_["dpid"]: v for lab_, v in m["vpc_flows_desired"]}
    installed = {lab_["dpid"]: v for lab_, v in m["vpc_flows_installed"]}
    for d in dpids:
        assert desired[d] > 0 and installed[d] == desired[d], (d, desired, installed)
    assert total(m, "vpc_reconcile_failures_total") == 0
    assert total(m, "vpc_packet_ins_total", reason="gateway_arp") > 0
    assert total(m, "vpc_rest_requests_total", method="POST", route="/v1/hosts",
                 code="201") == 3
    [(info, _)] = m["vpc_controller_info"]
    assert info["store"] == "msgpack"


def test_metrics_follow_the_api(lab, api):
    a = api(lab.api_url)
    before = total(scrape(lab.api_url), "vpc_tenants")
    assert a.post("/v1/tenants", {"name": "metered", "network": "vxlan"})[0] == 201
    try:
        m = scrape(lab.api_url)
        assert total(m, "vpc_tenants") == before + 1
        assert total(m, "vpc_rest_requests_total", method="POST", route="/v1/tenants",
                     code="201") >= 1
    finally:
        a.delete("/v1/tenants/metered")


@pytest.fixture
def ui_tenant(lab, api):
    """Tenant "uiview"; requested before make_container, so it is deleted after
    the containers' ports are detached."""
    a = api(lab.api_url)
    assert a.post("/v1/tenants", {"name": "uiview", "network": "vxlan"})[0] == 201
    assert a.post("/v1/tenants/uiview/subnets", {"cidr": "10.9.0.0/24"})[0] == 201
    yield "uiview"
    a.delete("/v1/tenants/uiview")


def test_ui_draws_the_lab(lab, ui_tenant, make_container):
    chromium()      # skip (or fail under CI) before building anything
    make_container("ui1", 1, ui_tenant)
    make_container("ui2", 2, ui_tenant)
    s, title, dom = page_state(lab.api_url + "/ui", want=lambda s: s.get("ports-up", 0) >= 2)
    assert s["hosts"] == 3 and s["hosts-up"] == 3, s
    assert s["tunnels"] == 3, s                     # the full mesh of 3 hosts
    assert s["ports"] >= 2 and s["ports-up"] >= 2, s
    assert title.startswith("VPC topology: 3 hosts")
    assert f"<strong>{ui_tenant}</strong>" in dom
