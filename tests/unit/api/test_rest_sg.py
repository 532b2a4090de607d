"""REST for security groups and port security."""
import pytest

from tests.support.rest_api import Api


@pytest.fixture
def sg(tmp_path):
    a = Api(tmp_path)
    a.ok("POST", "/v1/hosts", {"name": "h1", "dpid": 1, "tunnel_ip": "198.18.0.11"})
    a.ok("POST", "/v1/tenants", {"name": "t", "network": "vlan"})
    a.ok("POST", "/v1/tenants/t/subnets", {"cidr": "10.0.0.0/24"})
    yield a
    a.store.close()


def test_every_tenant_has_a_default_group_and_ports_join_it(sg):
    [d] = sg.ok("GET", "/v1/tenants/t/security-groups")
    assert d["name"] == "default" and {r["direction"] for r in d["rules"]} == {"ingress", "egress"}
    p = sg.ok("POST", "/v1/tenants/t/ports", {"host": "h1", "port": "c1"})
    assert p["security_groups"] == ["default"] and p["port_security"] is True
    assert sg.ok("GET", "/v1/tenants/t/security-groups/default")["ports"] == [p["id"]]


def test_group_rules_round_trip(sg):
    g = sg.ok("POST", "/v1/tenants/t/security-groups", {"name": "web", "rules": [
        {"direction": "ingress", "protocol": "tcp", "ports": "8000-8080", "remote": "sg:default"},
        {"direction": "ingress", "protocol": "icmp", "remote": "10.1.2.3/8"},
        {"direction": "egress", "protocol": "any"}]})
    assert g["index"] == 1
    assert [r["ports"] for r in g["rules"]] == ["8000-8080", None, None]
    assert g["rules"][1]["remote"] == "10.0.0.0/8" and g["rules"][2]["remote"] == "0.0.0.0/0"
    rule = sg.ok("POST", "/v1/tenants/t/security-groups/web/rules",
                 {"direction": "ingress", "protocol": "udp", "ports": 53, "remote": "sg:web"})
    assert rule["ports"] == "53"
    sg.ok("DELETE", f"/v1/tenants/t/security-groups/web/rules/{rule['id']}")
    assert len(sg.ok("GET", "/v1/tenants/t/security-groups/web")["rules"]) == 3
    g = sg.ok("PUT", "/v1/tenants/t/security-groups/web", {"rules": []})
    assert g["rules"] == []


def test_port_groups_change_with_patch(sg):
    sg.ok("POST", "/v1/tenants/t/security-groups", {"name": "web"})
    p = sg.ok("POST", "/v1/tenants/t/ports", {"host": "h1", "port": "c1",
                                              "security_groups": ["web", "default", "web"]})
    assert p["security_groups"] == ["web", "default"]
    p = sg.ok("PATCH", f"/v1/tenants/t/ports/{p['id']}", {"security_groups": ["web"]})
    assert p["security_groups"] == ["web"]
    p = sg.ok("PATCH", f"/v1/tenants/t/ports/{p['id']}", {"port_security": False,
                                                          "security_groups": []})
    assert (p["port_security"], p["security_groups"]) == (False, [])
    p = sg.ok("PATCH", f"/v1/tenants/t/ports/{p['id']}", {"port_security": True})
    assert p["security_groups"] == ["default"]


def test_tenant_delete_takes_its_groups(sg):
    sg.ok("POST", "/v1/tenants/t/security-groups", {"name": "web"})
    sg.ok("DELETE", "/v1/tenants/t")
    sg.ok("POST", "/v1/tenants", {"name": "t", "network": "vlan"})
    assert [g["name"] for g in sg.ok("GET", "/v1/tenants/t/security-groups")] == ["default"]


def test_group_limit(sg):
    for i in range(31):
        sg.ok("POST", "/v1/tenants/t/security-groups", {"name": f"g{i}"})
    code, err = sg.call("POST", "/v1/tenants/t/security-groups", {"name": "one-too-many"})
    assert code == 409 and err["error"]["code"] == "exhausted"


SG_BAD = [
    ("POST", "/v1/tenants/t/security-groups", {"name": "default"}, 409),
    ("POST", "/v1/tenants/t/security-groups", {"name": "x", "rules": {}}, 400),
    ("POST", "/v1/tenants/t/security-groups", {"name": "x", "rules": [{"direction": "up"}]}, 400),
    ("POST", "/v1/tenants/t/security-groups", {"name": "x", "rules": [
        {"direction": "ingress", "protocol": "icmp", "ports": "22"}]}, 400),
    ("POST", "/v1/tenants/t/security-groups", {"name": "x", "rules": [
        {"direction": "ingress", "protocol": "tcp", "ports": "90-80"}]}, 400),
    ("POST", "/v1/tenants/t/security-groups", {"name": "x", "rules": [
        {"direction": "ingress", "protocol": "tcp", "ports": "0"}]}, 400),
    ("POST", "/v1/tenants/t/security-groups", {"name": "x", "rules": [
        {"direction": "ingress", "remote": "sg:nope"}]}, 404),
    ("POST", "/v1/tenants/t/security-groups", {"name": "x", "rules": [
        {"direction": "ingress", "remote": "10.0.0.0/33"}]}, 400),
    ("POST", "/v1/tenants/t/security-groups", {"name": "x", "rules": [
        {"direction": "ingress", "color": "red"}]}, 400),
    ("DELETE", "/v1/tenants/t/security-groups/default", None, 409),
    ("DELETE", "/v1/tenants/t/security-groups/used", None, 409),
    ("DELETE", "/v1/tenants/t/security-groups/referenced", None, 409),
    ("DELETE", "/v1/tenants/t/security-groups/nope", None, 404),
    ("DELETE", "/v1/tenants/t/security-groups/used/rules/nope", None, 404),
    ("POST", "/v1/tenants/t/ports", {"host": "h1", "port": "c9", "security_groups": ["nope"]}, 404),
    ("POST", "/v1/tenants/t/ports", {"host": "h1", "port": "c9", "security_groups": "used"}, 400),
    ("POST", "/v1/tenants/t/ports", {"host": "h1", "port": "c9", "port_security": False,
                                     "security_groups": ["used"]}, 400),
    ("PATCH", "/v1/tenants/t/ports/P", {"security_groups": ["nope"]}, 404),
    ("PATCH", "/v1/tenants/t/ports/P", {"mac": "02:00:00:00:00:01"}, 400),
]


@pytest.mark.parametrize("method,path,body,status", SG_BAD,
                         ids=[f"{m} {p} {b}" for m, p, b, _ in SG_BAD])
def test_bad_sg_requests_change_nothing(sg, method, path, body, status):
    sg.ok("POST", "/v1/tenants/t/security-groups", {"name": "used"})
    sg.ok("POST", "/v1/tenants/t/security-groups", {"name": "referenced"})
    sg.ok("POST", "/v1/tenants/t/security-groups/used/rules",
          {"direction": "ingress", "remote": "sg:referenced"})
    p = sg.ok("POST", "/v1/tenants/t/ports", {"host": "h1", "port": "c1",
                                              "security_groups": ["used"]})
    path = path.replace("/P", f"/{p['id']}") if path.endswith("/P") else path
    before_disk, before = sg.disk(), sg.state.to_collections()
    code, err = sg.call(method, path, body)
    assert code == status, err
    assert sg.disk() == before_disk and sg.state.to_collections() == before
