"""POST /v1/tenants/{t}/trace through the real REST app: read-only, tenant-scoped,
clear 400s, and the live topology graph as the app holds it."""
from controller.compile.pipeline import TUNNEL_PORTS
from controller.service.trace import TraceBudget
from tests.support.rest_api import Api
from topology.graph import Topology


class FakeApp:
    """What the app gives the service: topology facts, and the graph itself."""

    def __init__(self):
        self.topology = Topology()

    def host_connected(self, dpid):
        return self.topology.connected(dpid)

    def port_number(self, dpid, name):
        return self.topology.port_number(dpid, name)

    def port_link_down(self, dpid, name):
        return self.topology.port_link_down(dpid, name)


def world(tmp_path, budget=None):
    api = Api(tmp_path)
    app = FakeApp()
    api.service.topology = app
    api.service.trace_budget = budget or TraceBudget(per_tenant=(1e6, 1e6), overall=(1e6, 1e6))
    for i in (1, 2):
        api.ok("POST", "/v1/hosts", {"name": f"h{i}", "dpid": i, "tunnel_ip": f"198.18.0.1{i}"})
    api.ok("POST", "/v1/tenants", {"name": "red", "network": "vxlan"})
    api.ok("POST", "/v1/tenants/red/subnets", {"cidr": "10.0.0.0/24"})
    ids = {}
    for i in (1, 2):
        ids[f"p{i}"] = api.ok("POST", "/v1/tenants/red/ports",
                              {"host": f"h{i}", "port": f"c{i}"})["id"]
        app.topology.datapath_up(i)
        app.topology.set_ports(i, {TUNNEL_PORTS["vxlan"]: 2, TUNNEL_PORTS["gre"]: 3,
                                   f"c{i}": 10})
    api.ok("POST", "/v1/tenants/red/security-groups",
           {"name": "web", "rules": [{"direction": "ingress", "protocol": "tcp",
                                      "ports": "80"}]})
    api.ok("PATCH", f"/v1/tenants/red/ports/{ids['p2']}", {"security_groups": ["web"]})
    api.ids = ids
    return api


def test_trace_over_rest_is_read_only(tmp_path):
    api = world(tmp_path)
    p1, p2 = api.ids["p1"], api.ids["p2"]
    disk, model, changes = api.disk(), api.state.to_collections(), len(api.changes)
    code, out = api.call("POST", "/v1/tenants/red/trace",
                         {"from": p1, "to": p2, "proto": "tcp", "dport": 22})
    assert code == 200, out
    assert out["verdict"]["code"] == "security_group"
    assert out["verdict"]["reason"].startswith("dropped by security group web: no ingress "
                                               "rule for tcp/22")
    code, out = api.call("POST", "/v1/tenants/red/trace",
                         {"from": "c1", "to": "c2", "proto": "tcp", "dport": 80})
    assert code == 200 and out["verdict"]["code"] == "delivered", out["verdict"]
    assert out["simulated"]["hosts"] == ["h1", "h2"] and out["simulated"]["ms"] > 0
    assert (api.disk(), api.state.to_collections(), len(api.changes)) == (disk, model, changes)


def test_bad_input_is_a_400_and_changes_nothing(tmp_path):
    api = world(tmp_path)
    p1 = api.ids["p1"]
    disk = api.disk()
    for body, words in (({"from": p1, "to": "10.0.0.3", "proto": "tcp"}, "needs dport"),
                        ({"from": p1, "to": "10.0.0.3", "dport": 22}, "icmp has no ports"),
                        ({"from": p1, "to": "10.0.0.3", "proto": "gre"}, "proto must be"),
                        ({"from": p1, "to": "10.0.0.3", "proto": "tcp", "dport": 0},
                         "1-65535"),
                        ({"from": p1, "to": "10.0.0.03"}, "IPv4 address"),
                        ({"from": p1, "to": "224.0.0.1"}, "unicast"),
                        ({"from": p1, "to": "10.0.0.3", "src_ip": "x"}, "src_ip"),
                        ({"from": p1, "to": "10.0.0.3", "live": "yes"}, "live"),
                        ({"from": p1}, "missing"),
                        ({"from": p1, "to": "10.0.0.3", "color": 1}, "unknown field")):
        code, out = api.call("POST", "/v1/tenants/red/trace", body)
        assert code == 400 and words in out["error"]["message"], (body, out)
    code, out = api.call("POST", "/v1/tenants/red/trace", {"from": "nope", "to": "10.0.0.3"})
    assert code == 404 and out["error"]["message"] == "tenant 'red' has no port 'nope'"
    assert api.disk() == disk


def test_live_without_a_tracer_says_so(tmp_path):
    api = world(tmp_path)
    code, out = api.call("POST", "/v1/tenants/red/trace",
                         {"from": api.ids["p1"], "to": api.ids["p2"], "live": True})
    assert code == 200 and out["live"]["available"] is False


def test_traces_have_a_budget_per_tenant(tmp_path):
    """A trace costs the controller a compile: past the tenant's budget (2/s,
    burst 10) the answer is 429 with Retry-After, and the budget comes back."""
    now = [100.0]
    api = world(tmp_path, TraceBudget(clock=lambda: now[0]))
    body = {"from": api.ids["p1"], "to": api.ids["p2"], "proto": "tcp", "dport": 80}
    codes = [api.call("POST", "/v1/tenants/red/trace", body)[0] for _ in range(11)]
    assert codes == [200] * 10 + [429]
    code, out = api.call("POST", "/v1/tenants/red/trace", body)
    assert code == 429 and out["error"]["code"] == "rate_limited", out
    now[0] += 1.0                                         # two more tokens a second later
    assert [api.call("POST", "/v1/tenants/red/trace", body)[0] for _ in range(3)] == \
        [200, 200, 429]
