"""GET /metrics (Prometheus text) and GET /ui, served in front of the REST API
the way apps/vpc.py serves them: Metrics.wsgi(RestApi, mounts={"/ui": UiApp()})."""
import pytest
import webob
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from controller.api.metrics import Metrics
from controller.reconcile.plan import Plan, SwitchSync
from controller.api.ui import UiApp
from tests.support.fake_switch import FakeSwitch, f, run
from tests.support.rest_api import Api


class Web:
    """The REST API of test_rest.Api behind the metrics/UI front, in-process."""

    def __init__(self, tmp_path):
        self.api = Api(tmp_path)
        self.flows = {}
        state = self.api.state
        self.metrics = Metrics(store="msgpack", switches=lambda: 2, flows=lambda: self.flows,
                               counts=lambda: {"hosts": len(state.hosts),
                                               "tenants": len(state.tenants),
                                               "ports": len(state.ports)})
        self.app = self.metrics.wsgi(self.api.app, mounts={"/ui": UiApp()})

    def call(self, method, path, body=None, headers=None):
        req = webob.Request.blank(path, method=method, headers=headers or {})
        if body is not None:
            req.json_body = body
            req.content_type = "application/json"
        return req.get_response(self.app)

    def scrape(self):
        resp = self.call("GET", "/metrics")
        assert resp.status_code == 200
        assert resp.content_type == "text/plain"
        samples = {}
        for fam in text_string_to_metric_families(resp.text):
            for s in fam.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def web(tmp_path):
    w = Web(tmp_path)
    yield w
    w.api.store.close()


def test_rest_requests_are_counted_by_method_route_template_and_code(web):
    before = web.scrape()
    assert value(before, "vpc_rest_requests_total", method="GET", route="/v1/health",
                 code="200") is None
    for _ in range(3):
        assert web.call("GET", "/v1/health").status_code == 200
    assert web.call("POST", "/v1/tenants", {"name": "red", "network": "vlan"}).status_code == 201
    assert web.call("GET", "/v1/tenants/red").status_code == 200
    assert web.call("GET", "/v1/tenants/nope").status_code == 404
    assert web.call("DELETE", "/v1/health").status_code == 405
    assert web.call("GET", "/no/such/thing/42").status_code == 404
    s = web.scrape()
    assert value(s, "vpc_rest_requests_total", method="GET", route="/v1/health", code="200") == 3
    assert value(s, "vpc_rest_requests_total", method="POST", route="/v1/tenants",
                 code="201") == 1
    # the template, never the raw path: one series for every tenant name
    assert value(s, "vpc_rest_requests_total", method="GET", route="/v1/tenants/{t}",
                 code="200") == 1
    assert value(s, "vpc_rest_requests_total", method="GET", route="/v1/tenants/{t}",
                 code="404") == 1
    assert value(s, "vpc_rest_requests_total", method="DELETE", route="/v1/health",
                 code="405") == 1
    assert value(s, "vpc_rest_requests_total", method="GET", route="unmatched",
                 code="404") == 1
    assert not any("/no/such" in str(k) for k in s)
    # the first scrape itself is counted by the second
    assert value(s, "vpc_rest_requests_total", method="GET", route="/metrics", code="200") == 1
    assert value(s, "vpc_rest_request_duration_seconds_count", method="GET",
                 route="/v1/health") == 3
    assert value(s, "vpc_rest_request_duration_seconds_bucket", method="GET",
                 route="/v1/health", le="+Inf") == 3
    assert value(s, "vpc_rest_request_duration_seconds_sum", method="GET",
                 route="/v1/health") > 0


def test_model_counts_and_switches_are_read_at_scrape_time(web):
    s = web.scrape()
    assert (value(s, "vpc_hosts"), value(s, "vpc_tenants"), value(s, "vpc_ports")) == (0, 0, 0)
    assert value(s, "vpc_switches_connected") == 2
    web.call("POST", "/v1/hosts", {"name": "h1", "dpid": 1, "tunnel_ip": "198.18.0.11"})
    web.call("POST", "/v1/tenants", {"name": "red", "network": "vxlan"})
    web.call("POST", "/v1/tenants/red/subnets", {"cidr": "10.0.0.0/24"})
    assert web.call("POST", "/v1/tenants/red/ports", {"host": "h1", "port": "c1"}).status_code == 201
    s = web.scrape()
    assert (value(s, "vpc_hosts"), value(s, "vpc_tenants"), value(s, "vpc_ports")) == (1, 1, 1)


def test_info_metric_names_the_store(web):
    s = web.scrape()
    [(name, labels)] = [k for k in s if k[0] == "vpc_controller_info"]
    assert dict(labels)["store"] == "msgpack" and "version" in dict(labels)
    assert s[(name, labels)] == 1


def test_flows_per_switch_desired_and_installed(web):
    web.flows = {1: (40, 40), 0xab: (12, None)}      # 0xab: cache unknown (re-reading)
    s = web.scrape()
    assert value(s, "vpc_flows_desired", dpid="0000000000000001") == 40
    assert value(s, "vpc_flows_installed", dpid="0000000000000001") == 40
    assert value(s, "vpc_flows_desired", dpid="00000000000000ab") == 12
    assert value(s, "vpc_flows_installed", dpid="00000000000000ab") is None
    web.flows = {}
    s = web.scrape()
    assert not [k for k in s if k[0] in ("vpc_flows_desired", "vpc_flows_installed")]


def test_reconciles_and_failures_from_a_real_switch_sync(web):
    """Wired like apps/vpc.py: on_result -> reconciled, on_error -> reconcile_failed."""
    m = web.metrics
    desired = {f(1, 2), f(2, 3), f(3, 4)}
    sw = FakeSwitch(dpid=7, fail_apply=1)
    sync = SwitchSync(sw, lambda dpid: desired,
                      lambda sy, plan, seconds: m.reconciled(sy.dpid, plan, seconds),
                      on_error=lambda sy, exc: m.reconcile_failed(sy.dpid))
    try:
        sync.request(full=True)
        run(sync)
        assert len(sw.flows) == 3
        desired = {f(1, 2), f(2, 3), f(4, 5)}
        sync.request()
        run(sync)
    finally:
        sync.stop()
    s = web.scrape()
    d = "0000000000000007"
    assert value(s, "vpc_reconcile_failures_total", dpid=d) == 1
    assert value(s, "vpc_reconcile_runs_total", dpid=d) == 2
    assert value(s, "vpc_reconcile_flows_total", dpid=d, action="added") == 4
    assert value(s, "vpc_reconcile_flows_total", dpid=d, action="removed") == 1
    assert value(s, "vpc_reconcile_flows_total", dpid=d, action="kept") == 2
    assert value(s, "vpc_flow_mods_total", dpid=d) == 5
    assert value(s, "vpc_reconcile_duration_seconds_count") == 2


def test_packet_ins_by_reason_feed_health_too(web):
    m = web.metrics
    assert m.packet_ins() == {}
    for reason in ("gateway_arp", "gateway_arp", "other"):
        m.packet_in(reason)
    assert m.packet_ins() == {"gateway_arp": 2, "other": 1}
    s = web.scrape()
    assert value(s, "vpc_packet_ins_total", reason="gateway_arp") == 2


def test_registry_is_private_to_each_instance(tmp_path):
    a, b = Metrics(), Metrics()
    a.reconciled(1, Plan([], [], 3), 0.01)
    assert a.value("vpc_reconcile_runs_total", {"dpid": "0000000000000001"}) == 1
    assert b.value("vpc_reconcile_runs_total", {"dpid": "0000000000000001"}) is None
    assert REGISTRY.get_sample_value("vpc_reconcile_runs_total",
                                     {"dpid": "0000000000000001"}) is None


def test_metrics_is_get_only_and_outside_v1(web):
    assert web.call("POST", "/metrics").status_code == 405
    assert web.call("HEAD", "/metrics").status_code == 200
    assert web.call("GET", "/v1/metrics").status_code == 404


def test_ui_serves_the_page_and_its_files(web):
    page = web.call("GET", "/ui")
    assert page.status_code == 200 and page.content_type == "text/html"
    assert 'src="ui/cytoscape.min.js"' in page.text and 'src="ui/app.js"' in page.text
    slash = web.call("GET", "/ui/")
    assert 'src="cytoscape.min.js"' in slash.text and "{{static}}" not in slash.text
    js = web.call("GET", "/ui/cytoscape.min.js")
    assert js.status_code == 200 and js.content_type == "application/javascript"
    assert len(js.body) > 100_000
    again = web.call("GET", "/ui/app.js", headers={"If-None-Match": js.headers["ETag"]})
    assert again.status_code == 200
    etag = web.call("GET", "/ui/app.js").headers["ETag"]
    assert web.call("GET", "/ui/app.js", headers={"If-None-Match": etag}).status_code == 304
    for bad in ("/ui/../setup.cfg", "/ui/%2e%2e/setup.cfg", "/ui/.hidden", "/ui/nope.js",
                "/ui/static/app.js", "/uix"):
        assert web.call("GET", bad).status_code == 404, bad
    assert web.call("POST", "/ui").status_code == 405
    s = web.scrape()
    assert value(s, "vpc_rest_requests_total", method="GET", route="/ui", code="200") >= 4
    assert value(s, "vpc_rest_requests_total", method="GET", route="/ui", code="304") == 1


def test_vendored_library_is_recorded():
    from controller.api.ui import STATIC
    notes = (STATIC / "VENDORED.md").read_text()
    assert "cytoscape" in notes and "3.34.4" in notes and "MIT" in notes
    assert (STATIC / "cytoscape.LICENSE").read_text().startswith("Copyright")
    import hashlib
    digest = hashlib.sha256((STATIC / "cytoscape.min.js").read_bytes()).hexdigest()
    assert digest in notes
