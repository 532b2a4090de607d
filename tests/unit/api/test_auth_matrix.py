"""Every route of routes.ROUTES, tried with every kind of token, authentication on.

The matrix is generated from the route table, so a new route is tried the
moment it is declared: it needs an entry in SAMPLES (its path parameters and
body) or test_every_route_has_a_sample fails.  What each principal may do is
EXPECT below, per `access` class -- the contract of docs/security.md written
as a table -- and "allowed" means: the same answer the admin gets in the same
world (a 2xx, or the service's own 409 for the two samples that conflict).
A refused request changes nothing in the model.
"""
import json
import time

import pytest
import webob

from controller.api.auth import Authenticator, FailureLimiter
from controller.api.openapi import document
from controller.api.rest import RestApi
from controller.api.routes import ROUTES
from controller.model.state import State
from controller.service.vpc import VpcService
from controller.store.base import Store

ADMIN = "matrix-admin-token-0123456789abcdef"
PRINCIPALS = ("admin", "own", "other", "host", "hostnet", "none", "bad", "expired", "revoked")
ALLOWED = "allowed"
# access class -> principal -> ALLOWED or the status it gets.  "own" is red's
# tenant token, "other" blue's; every sample targets tenant red and host h1;
# "host" is h1's host token, "hostnet" h1's made with networks.  404 on a
# tenant route is "no such tenant": another tenant's token learns nothing.
_T = "tenant-in-path"
EXPECT = {
    "open":    dict(own=ALLOWED, other=ALLOWED, host=ALLOWED, hostnet=ALLOWED, none=ALLOWED),
    "any":     dict(own=ALLOWED, other=ALLOWED, host=ALLOWED, hostnet=ALLOWED, none=401),
    "admin":   dict(own=403, other=(404, _T, 403), host=403, hostnet=403, none=401),
    "host":    dict(own=403, other=403, host=ALLOWED, hostnet=ALLOWED, none=401),
    "tenants": dict(own=ALLOWED, other=ALLOWED, host=403, hostnet=ALLOWED, none=401),
    "network": dict(own=403, other=403, host=403, hostnet=ALLOWED, none=401),
    "tenant":  dict(own=ALLOWED, other=404, host=403, hostnet=ALLOWED, none=401),
    "port":    dict(own=ALLOWED, other=404, host=ALLOWED, hostnet=ALLOWED, none=401),
}
ADMIN_CONFLICTS = {"createHost", "deleteHost", "deleteTenant"}   # h1 exists / is in use


class MemoryStore(Store):
    def load(self):
        return {}

    def commit(self, ops):
        pass


def call(app, method, path, body=None, token=None, addr="192.0.2.1"):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = webob.Request.blank(path, method=method, headers=headers,
                              environ={"REMOTE_ADDR": addr})
    if body is not None:
        req.body = json.dumps(body).encode()
        req.content_type = "application/json"
    resp = req.get_response(app)
    return resp.status_code, (json.loads(resp.body) if resp.body else None), resp.headers


class World:
    """h1 (external) and h2; tenants red and blue, each with a subnet, a spare
    subnet, ports on h1 (two) and h2, a group with a rule, a forward and a floating
    IP; tokens for red, blue, h1 (plain and networks), an expired and a
    revoked one."""

    def __init__(self, clock=time.time, limiter=None):
        self.service = VpcService(State(), MemoryStore())
        s = self.service
        s.create_host({"name": "h1", "dpid": 1, "tunnel_ip": "198.18.0.11",
                       "external_port": "ext0", "external_ip": "203.0.113.11",
                       "external_gateway": "203.0.113.1"})
        s.create_host({"name": "h2", "dpid": 2, "tunnel_ip": "198.18.0.12"})
        self.ids = {}
        for t in ("red", "blue"):
            s.create_tenant({"name": t, "network": "vxlan"})
            s.create_subnet(t, {"cidr": "10.0.0.0/24"})
            s.create_subnet(t, {"cidr": "10.1.0.0/24"})
            on_h1 = s.create_port(t, {"host": "h1", "port": f"{t}1"})["id"]
            on_h2 = s.create_port(t, {"host": "h2", "port": f"{t}2"})["id"]
            spare = s.create_port(t, {"host": "h1", "port": f"{t}3"})["id"]
            rule = s.create_group(t, {"name": "web", "rules": [{"direction": "ingress"}]})
            fwd = s.create_forward(t, {"port_id": on_h1, "protocol": "tcp",
                                       "external_port": 2000 + len(self.ids),
                                       "internal_port": 22})["id"]
            fip = s.create_fip(t, {"port_id": spare,
                                   "external_ip": f"203.0.113.{100 + len(self.ids)}"})["id"]
            self.ids[t] = dict(port_h1=on_h1, port_h2=on_h2, rule=rule["rules"][0]["id"],
                               fwd=fwd, fip=fip)
        self.tokens = {"admin": ADMIN, "none": None, "bad": "vpc_t_" + "0" * 12 + "_" + "1" * 64}
        made = s.create_tenant_token("red", {"name": "own"})
        self.tokens["own"], self.ids["red"]["token"] = made["token"], made["id"]
        self.tokens["other"] = s.create_tenant_token("blue", {"name": "other"})["token"]
        made = s.create_host_token("h1", {"name": "host"})
        self.tokens["host"], self.ids["red"]["host_token"] = made["token"], made["id"]
        self.tokens["hostnet"] = s.create_host_token("h1", {"name": "net", "networks": True})[
            "token"]
        self.tokens["expired"] = s.create_tenant_token("red", {"name": "old",
                                                               "expires_in": 1})["token"]
        s.clock = lambda: time.time() + 5         # the views see it expired too
        gone = s.create_tenant_token("red", {"name": "gone"})
        s.delete_tenant_token("red", gone["id"])
        self.tokens["revoked"] = gone["token"]
        self.app = RestApi(s, auth=Authenticator(
            s.state, ADMIN, clock=lambda: time.time() + 5,
            limiter=limiter or FailureLimiter(burst=10 ** 6)))

    def call(self, method, path, body=None, who="admin", **kw):
        return call(self.app, method, path, body, self.tokens[who], **kw)


def _sample(route, ids):
    """(path, body) of the route's sample, ids filled in."""
    params, body = SAMPLES[route.op_id]
    red = ids["red"]
    values = dict(tenant="red", host="h1", subnet="10.1.0.0_24", port_id=red["port_h1"],
                  forward_id=red["fwd"], fip_id=red["fip"], group="web", rule_id=red["rule"],
                  token_id=red["host_token"] if route.path.startswith("/v1/hosts")
                  else red["token"])
    values.update(params)
    path = route.path.format(**values)
    if isinstance(body, dict):
        body = {k: red.get(v[1:], v) if isinstance(v, str) and v.startswith("$") else v
                for k, v in body.items()}
    return path, body


# op_id -> (path parameters overriding the defaults, body)
SAMPLES = {
    "health": ({}, None), "topology": ({}, None), "openapi": ({}, None),
    "listHosts": ({}, None), "getHost": ({}, None), "deleteHost": ({}, None),
    "createHost": ({}, {"name": "h1", "dpid": 9, "tunnel_ip": "198.18.0.19"}),
    "listTenants": ({}, None), "getTenant": ({}, None), "deleteTenant": ({}, None),
    "createTenant": ({}, {"name": "green", "network": "gre"}),
    "setSnat": ({}, {"enabled": True}),
    "listSubnets": ({}, None), "getSubnet": ({}, None), "deleteSubnet": ({}, None),
    "createSubnet": ({}, {"cidr": "10.2.0.0/24"}),
    "listPorts": ({}, None), "getPort": ({}, None), "deletePort": ({}, None),
    "createPort": ({}, {"host": "h1", "port": "c9"}),
    "updatePort": ({}, {"security_groups": ["default", "web"]}),
    "listSecurityGroups": ({}, None), "getSecurityGroup": ({}, None),
    "deleteSecurityGroup": ({}, None), "createSecurityGroup": ({}, {"name": "db"}),
    "replaceRules": ({}, {"rules": []}), "addRule": ({}, {"direction": "egress"}),
    "deleteRule": ({}, None),
    "listPortForwards": ({}, None), "getPortForward": ({}, None),
    "deletePortForward": ({}, None),
    "createPortForward": ({}, {"port_id": "$port_h1", "protocol": "udp", "external_port": 3333,
                               "internal_port": 53}),
    "listFloatingIPs": ({}, None), "getFloatingIP": ({}, None), "deleteFloatingIP": ({}, None),
    "createFloatingIP": ({}, {"port_id": "$port_h1", "external_ip": "203.0.113.150"}),
    "listTenantTokens": ({}, None), "createTenantToken": ({}, {"name": "new"}),
    "deleteTenantToken": ({}, None),
    "listHostTokens": ({}, None), "createHostToken": ({}, {"name": "new"}),
    "deleteHostToken": ({}, None),
    "tracePacket": ({}, {"from": "$port_h1", "to": "10.0.0.9", "proto": "tcp", "dport": 22}),
    "setFlowLogs": ({}, {"enabled": True}), "getFlowLogs": ({}, None),
    "getHostFlowLogs": ({}, None), "postHostFlowLogs": ({}, {"records": []}),
    "getDhcpOptions": ({}, None), "setDhcpOptions": ({}, {"ttl": 7}),
    "listDnsRecords": ({}, None), "getHostServices": ({}, None),
}


def test_every_route_has_a_sample():
    assert {r.op_id for r in ROUTES} == set(SAMPLES)


def _expected(route, who):
    if who == "admin":
        return ALLOWED
    if who in ("bad", "expired", "revoked"):
        who = "none"
    want = EXPECT[route.access][who]
    if isinstance(want, tuple):         # (status with {tenant} in the path, marker, else)
        return want[0] if "tenant" in route.params else want[2]
    return want


_ADMIN_ANSWER = {}


def _admin_answer(route):
    if route.op_id not in _ADMIN_ANSWER:
        world = World()
        path, body = _sample(route, world.ids)
        _ADMIN_ANSWER[route.op_id] = world.call(route.method, path, body)[0]
    return _ADMIN_ANSWER[route.op_id]


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.path}" for r in ROUTES])
def test_admin_succeeds_on_every_sample(route):
    status = _admin_answer(route)
    if route.op_id in ADMIN_CONFLICTS:
        assert status == 409
    else:
        assert status == route.status


@pytest.mark.parametrize("who", PRINCIPALS[1:])
@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.path}" for r in ROUTES])
def test_route_with_token(route, who):
    world = World()
    path, body = _sample(route, world.ids)
    before = world.service.state.to_collections()
    status, data, headers = world.call(route.method, path, body, who=who)
    want = _expected(route, who)
    if want == ALLOWED:
        assert status == _admin_answer(route), data
        return
    assert status == want, data
    assert set(data) == {"error"} and set(data["error"]) == {"code", "message"}
    assert world.service.state.to_collections() == before, "a refused request changed the model"
    assert str(status) in document()["paths"][route.path][route.method.lower()]["responses"]
    if status == 401:
        assert headers["WWW-Authenticate"].startswith("Bearer")
    if status == 404:       # the same words as for a tenant that does not exist
        assert data["error"]["message"] == "tenant 'red' does not exist"


def test_lists_show_only_what_the_token_may_see():
    w = World()
    assert [t["name"] for t in w.call("GET", "/v1/tenants", who="own")[1]] == ["red"]
    assert [t["name"] for t in w.call("GET", "/v1/tenants", who="other")[1]] == ["blue"]
    assert [t["name"] for t in w.call("GET", "/v1/tenants", who="hostnet")[1]] == ["blue", "red"]
    mine = w.call("GET", "/v1/tenants/red/ports", who="host")[1]
    assert [p["host"] for p in mine] == ["h1", "h1"]
    assert len(w.call("GET", "/v1/tenants/red/ports", who="hostnet")[1]) == 3
    # a tenant sees its own ports' host names
    assert {p["host"] for p in w.call("GET", "/v1/tenants/red/ports", who="own")[1]} == \
        {"h1", "h2"}


def test_a_host_token_attaches_and_detaches_on_its_own_host_only():
    w = World()
    red = w.ids["red"]
    code, data, _ = w.call("POST", "/v1/tenants/blue/ports", {"host": "h2", "port": "x"},
                           who="host")
    assert code == 403
    for method in ("GET", "DELETE"):
        code, data, _ = w.call(method, f"/v1/tenants/red/ports/{red['port_h2']}", who="host")
        assert code == 404 and data["error"]["message"].startswith("tenant 'red' has no port")
    assert w.call("POST", "/v1/tenants/blue/ports", {"host": "h1", "port": "x"},
                  who="host")[0] == 201
    # networks: sees every port, but still attaches and detaches on its own host only
    assert w.call("GET", f"/v1/tenants/red/ports/{red['port_h2']}", who="hostnet")[0] == 200
    assert w.call("DELETE", f"/v1/tenants/red/ports/{red['port_h2']}",
                  who="hostnet")[0] == 404
    assert w.call("POST", "/v1/tenants/red/ports", {"host": "h2", "port": "y"},
                  who="hostnet")[0] == 403


def test_a_host_token_registers_its_own_host_only():
    w = World()
    s = w.service
    tok = s.create_host_token("h3", {"name": "join"})["token"]     # before h3 exists
    body = {"name": "h3", "dpid": 3, "tunnel_ip": "198.18.0.13"}
    assert call(w.app, "POST", "/v1/hosts", dict(body, name="h4"), tok)[0] == 403
    assert call(w.app, "POST", "/v1/hosts", body, tok)[0] == 201
    assert call(w.app, "GET", "/v1/hosts/h3", None, tok)[0] == 200
    assert call(w.app, "GET", "/v1/hosts/h1", None, tok)[0] == 403
    assert call(w.app, "DELETE", "/v1/hosts/h3", None, tok)[0] == 403
