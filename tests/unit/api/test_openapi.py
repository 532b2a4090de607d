"""The OpenAPI document (controller/api/openapi.py, GET /v1/openapi.json) stays true.

- The document's operations are generated from the route table RestApi serves
  (controller/api/routes.py): every route of the mapper is in the document and
  vice versa, with the same methods and success status; a 405 names exactly
  the documented methods in `Allow`.
- Example requests, in a fresh world each: a body the schema rejects gets 400
  from the server; the status is the one the example expects and is documented
  for the operation; the response body matches the documented schema.
- Every status code documented for an operation is produced by some example,
  so the document lists nothing that cannot happen.
- The string patterns of the document and the validators of
  controller/service/validate.py accept the same strings (property test).
"""
import functools
import json
import re

import pytest
from hypothesis import given, settings, strategies as st

from controller.api import openapi
from controller.service import validate
from controller.service.errors import ApiError
from controller.api.body import MAX_BODY
from controller.api.openapi import document
from controller.api.routes import ROUTES
from tests.support.rest_api import Api

jsonschema_rs = pytest.importorskip("jsonschema_rs")   # comes with schemathesis ([test] extra)

DOC = document()
METHODS = ("get", "post", "put", "delete", "patch", "head", "options")


@pytest.fixture
def api(tmp_path):
    a = Api(tmp_path)
    yield a
    a.store.close()


def _template(path):
    return re.sub(r"\{[^}]+\}", "{}", path)


@functools.lru_cache(maxsize=None)
def _validator(ref):
    return jsonschema_rs.validator_for({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": ref, "components": DOC["components"]})


def _operation(method, path):
    """(template, operation) of the documented operation serving this request."""
    for template, ops in DOC["paths"].items():
        rx = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(rx, path.split("?")[0]) and method.lower() in ops:
            return template, ops[method.lower()]
    raise AssertionError(f"{method} {path} is not in the document")


def _request_schema(op):
    return op["requestBody"]["content"]["application/json"]["schema"]["$ref"]


def _response_schema(op, status):
    resp = op["responses"][str(status)]
    if "$ref" in resp:
        resp = DOC["components"]["responses"][resp["$ref"].rsplit("/", 1)[1]]
    content = resp.get("content")
    return None if content is None else content["application/json"]["schema"]


# --- routes ------------------------------------------------------------------

def _mapper_routes(app):
    routes = set()
    for route in app.mapper.matchlist:
        for method in route.conditions["method"]:
            routes.add((method, _template(route.routepath)))
    return routes


def test_every_route_is_documented_and_nothing_else(api):
    documented = {(m.upper(), _template(p)) for p, ops in DOC["paths"].items() for m in ops}
    served = _mapper_routes(api.app)
    table = {(r.method, _template(r.path)) for r in ROUTES}
    assert served == table, "the mapper serves something else than the route table"
    assert served - documented == set(), "routes missing from the document"
    assert documented - served == set(), "documented operations that are not routes"


def test_each_operation_is_generated_from_its_route():
    """Same path template, same parameter names in path order, same success
    status and schemas: the document cannot drift from what is served."""
    assert sum(len(ops) for ops in DOC["paths"].values()) == len(ROUTES)
    for route in ROUTES:
        op = DOC["paths"][route.path][route.method.lower()]
        assert op == openapi.operation(route)
        assert [p["name"] for p in op.get("parameters", [])] == \
            list(route.params) + [name for name, _, _ in route.query]
        assert str(route.status) in op["responses"]
        assert ("requestBody" in op) == (route.body is not None)


def test_document_is_served_and_json_clean(api):
    code, body = api.call("GET", "/v1/openapi.json")
    assert code == 200 and body == json.loads(json.dumps(DOC))
    assert body["openapi"].startswith("3.1")
    ids = [op["operationId"] for ops in DOC["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def test_request_bodies_are_closed_and_errors_are_the_error_schema():
    for path, ops in DOC["paths"].items():
        for method, op in ops.items():
            if "requestBody" in op:
                schema = DOC["components"]["schemas"][_request_schema(op).rsplit("/", 1)[1]]
                variants = schema.get("oneOf", [schema])
                assert all(v["additionalProperties"] is False for v in variants), (method, path)
                # every field of an update is optional; a create names what it needs
                assert all(v["required"] for v in variants) or method == "patch", (method, path)
            for status, resp in op["responses"].items():
                if status.startswith("4"):
                    assert _response_schema(op, status) == {"$ref": "#/components/schemas/Error"}


def test_405_allow_header_names_the_documented_methods(api):
    import webob
    for path, ops in DOC["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        resp = webob.Request.blank(concrete, method="TRACE").get_response(api.app)
        assert resp.status_code == 405, path
        assert set(resp.headers["Allow"].split(", ")) == {m.upper() for m in ops}, path


def test_component_examples_match_their_schemas():
    for name, schema in DOC["components"]["schemas"].items():
        if "example" in schema:
            assert _validator(f"#/components/schemas/{name}").is_valid(schema["example"]), name


# --- example requests ------------------------------------------------------------

@pytest.fixture
def world(api):
    """h1 (external network), h2, h3 (no ports); tenant red (vxlan) with
    10.0.0.0/24 and an unused 10.1.0.0/24, ports p1, p3 on h1 and p2 on h2, a
    port forward and a floating IP on p1; tenant empty (gre)."""
    api.ok("POST", "/v1/hosts", {"name": "h1", "dpid": 1, "tunnel_ip": "198.18.0.11",
                                 "external_port": "ext0", "external_ip": "203.0.113.11",
                                 "external_gateway": "203.0.113.1"})
    api.ok("POST", "/v1/hosts", {"name": "h2", "dpid": 2, "tunnel_ip": "198.18.0.12"})
    api.ok("POST", "/v1/hosts", {"name": "h3", "dpid": 3, "tunnel_ip": "198.18.0.13"})
    api.ok("POST", "/v1/tenants", {"name": "red", "network": "vxlan"})
    api.ok("POST", "/v1/tenants", {"name": "empty", "network": "gre"})
    api.ok("POST", "/v1/tenants/red/subnets", {"cidr": "10.0.0.0/24"})
    api.ok("POST", "/v1/tenants/red/subnets", {"cidr": "10.1.0.0/24"})
    ids = {}
    for key, host in (("p1", "h1"), ("p2", "h2"), ("p3", "h1")):
        ids[key] = api.ok("POST", "/v1/tenants/red/ports", {"host": host, "port": f"c{key}"})["id"]
    ids["fwd"] = api.ok("POST", "/v1/tenants/red/port-forwards",
                        {"port_id": ids["p1"], "protocol": "tcp", "external_port": 2222,
                         "internal_port": 22})["id"]
    ids["fip"] = api.ok("POST", "/v1/tenants/red/floating-ips",
                        {"port_id": ids["p1"], "external_ip": "203.0.113.100"})["id"]
    web = api.ok("POST", "/v1/tenants/red/security-groups",
                 {"name": "web", "rules": [{"direction": "ingress", "protocol": "tcp",
                                            "ports": "80", "remote": "sg:default"}]})
    ids["rule"] = web["rules"][0]["id"]
    api.ok("POST", "/v1/tenants/red/security-groups", {"name": "spare"})
    api.ok("PATCH", f"/v1/tenants/red/ports/{ids['p3']}", {"security_groups": ["web"]})
    ids["ttok"] = api.ok("POST", "/v1/tenants/red/tokens", {"name": "ci"})["id"]
    ids["htok"] = api.ok("POST", "/v1/hosts/h1/tokens", {"name": "join"})["id"]
    api.ids = ids
    return api


H = {"name": "h9", "dpid": 9, "tunnel_ip": "198.18.0.19"}
R = "/v1/tenants/red"
# (method, path, body, expected status, body valid per schema, setup)
# {p1} {p2} {p3} {fwd} {fip} in paths and string values are the world's ids.
CASES = [
    ("GET", "/v1/health", None, 200, None, None),
    ("GET", "/v1/topology", None, 200, None, None),
    ("GET", "/v1/openapi.json", None, 200, None, None),
    # hosts
    ("GET", "/v1/hosts", None, 200, None, None),
    ("POST", "/v1/hosts", {"name": "h4", "dpid": "0x4", "tunnel_ip": "198.18.0.14"}, 201, True,
     None),
    ("POST", "/v1/hosts", {"name": "h5", "dpid": "00:00:00:00:00:00:00:05",
                           "tunnel_ip": "198.18.0.15", "uplink_port": "patch-phy",
                           "external_port": "ext0", "external_ip": "203.0.113.15",
                           "external_gateway": "203.0.113.1"}, 201, True, None),
    ("POST", "/v1/hosts", dict(H, uplink_port=None, external_ip=None), 201, True, None),
    ("POST", "/v1/hosts", dict(H, name="h1"), 409, True, None),
    ("POST", "/v1/hosts", dict(H, tunnel_ip="198.18.0.11"), 409, True, None),
    ("POST", "/v1/hosts", dict(H, external_port="ext0"), 400, True, None),      # pair rule
    ("POST", "/v1/hosts", dict(H, external_port="ext0", external_ip="203.0.113.19",
                               external_gateway="203.0.113.19"), 400, True, None),
    ("POST", "/v1/hosts", dict(H, dpid=0), 400, False, None),
    ("POST", "/v1/hosts", dict(H, dpid=2 ** 64), 400, False, None),
    ("POST", "/v1/hosts", dict(H, dpid="0x00"), 400, False, None),
    ("POST", "/v1/hosts", dict(H, dpid="12345678901234567"), 400, False, None),
    ("POST", "/v1/hosts", dict(H, dpid=True), 400, False, None),
    ("POST", "/v1/hosts", dict(H, name="h9\n"), 400, False, None),
    ("POST", "/v1/hosts", dict(H, name="-h9"), 400, False, None),
    ("POST", "/v1/hosts", dict(H, tunnel_ip="198.18.0.09"), 400, False, None),
    ("POST", "/v1/hosts", dict(H, tunnel_ip="198.18.0.9\n"), 400, False, None),
    ("POST", "/v1/hosts", {"name": "h9", "dpid": 9}, 400, False, None),
    ("POST", "/v1/hosts", dict(H, color="red"), 400, False, None),
    ("GET", "/v1/hosts/h1", None, 200, None, None),
    ("GET", "/v1/hosts/nope", None, 404, None, None),
    ("DELETE", "/v1/hosts/h3", None, 204, None, None),
    ("DELETE", "/v1/hosts/nope", None, 404, None, None),
    ("DELETE", "/v1/hosts/h1", None, 409, None, None),
    # tenants
    ("GET", "/v1/tenants", None, 200, None, None),
    ("POST", "/v1/tenants", {"name": "blue", "network": "vlan", "segment": 4094}, 201, True, None),
    ("POST", "/v1/tenants", {"name": "green", "network": "gre", "segment": None}, 201, True, None),
    ("POST", "/v1/tenants", {"name": "v", "network": "vxlan", "segment": 16777215}, 201, True,
     None),
    ("POST", "/v1/tenants", {"name": "red", "network": "vlan"}, 409, True, None),
    ("POST", "/v1/tenants", {"name": "t", "network": "vlan", "segment": 4095}, 400, False, None),
    ("POST", "/v1/tenants", {"name": "t", "network": "vxlan", "segment": 16777216}, 400, False,
     None),
    ("POST", "/v1/tenants", {"name": "t", "network": "vlan", "segment": "7"}, 400, False, None),
    ("POST", "/v1/tenants", {"name": "t", "network": "ethernet"}, 400, False, None),
    ("POST", "/v1/tenants", {"name": "t"}, 400, False, None),
    ("POST", "/v1/tenants", ["not", "an", "object"], 400, False, None),
    ("GET", R, None, 200, None, None),
    ("GET", "/v1/tenants/nope", None, 404, None, None),
    ("DELETE", "/v1/tenants/empty", None, 204, None, None),
    ("DELETE", "/v1/tenants/nope", None, 404, None, None),
    ("DELETE", R, None, 409, None, None),
    # SNAT
    ("PUT", R + "/snat", {"enabled": True}, 200, True, None),
    ("PUT", R + "/snat", {"enabled": False}, 200, True, None),
    ("PUT", R + "/snat", {"enabled": "yes"}, 400, False, None),
    ("PUT", R + "/snat", {}, 400, False, None),
    ("PUT", "/v1/tenants/nope/snat", {"enabled": True}, 404, True, None),
    # subnets
    ("GET", R + "/subnets", None, 200, None, None),
    ("GET", "/v1/tenants/nope/subnets", None, 404, None, None),
    ("POST", R + "/subnets", {"cidr": "10.2.0.0/16", "gateway": "10.2.255.254"}, 201, True, None),
    ("POST", R + "/subnets", {"cidr": "10.3.0.0/255.255.0.0"}, 201, True, None),
    ("POST", R + "/subnets", {"cidr": "10.3.0.0/0.0.255.255", "gateway": None}, 201, True, None),
    ("POST", R + "/subnets", {"cidr": "10.0.0.1/24"}, 400, True, None),          # host bits
    ("POST", R + "/subnets", {"cidr": "10.9.0.0/24", "gateway": "10.8.0.1"}, 400, True, None),
    ("POST", R + "/subnets", {"cidr": "10.9.0.0/30"}, 400, False, None),
    ("POST", R + "/subnets", {"cidr": "10.0.0.0/7"}, 400, False, None),
    ("POST", R + "/subnets", {"cidr": "fe80::/64"}, 400, True, None),      # link-local
    ("POST", R + "/subnets", {"cidr": "fd00::/48"}, 400, True, None),      # shorter than /64
    ("POST", R + "/subnets", {"cidr": "10.9.0.0"}, 400, False, None),
    ("POST", R + "/subnets", {"cidr": "10.0.0.0/16"}, 409, True, None),
    ("POST", "/v1/tenants/nope/subnets", {"cidr": "10.9.0.0/24"}, 404, True, None),
    ("GET", R + "/subnets/10.0.0.0_24", None, 200, None, None),
    ("GET", R + "/subnets/10.7.0.0_24", None, 404, None, None),
    ("DELETE", R + "/subnets/10.1.0.0_24", None, 204, None, None),
    ("DELETE", R + "/subnets/10.7.0.0_24", None, 404, None, None),
    ("DELETE", R + "/subnets/10.0.0.0_24", None, 409, None, None),
    # ports
    ("GET", R + "/ports", None, 200, None, None),
    ("GET", "/v1/tenants/nope/ports", None, 404, None, None),
    ("POST", R + "/ports", {"host": "h2", "port": "c9"}, 201, True, None),
    ("POST", R + "/ports", {"host": "h2", "port": "c9", "ip": "10.1.0.9",
                            "mac": "02-AA-bb-cc-dd-ee", "subnet": "10.1.0.0/24"}, 201, True, None),
    ("POST", R + "/ports", {"host": "h2", "port": "c9", "ip": None, "mac": None,
                            "subnet": None}, 201, True, None),
    ("POST", R + "/ports", {"host": "h2", "port": "c9", "mac": "01:00:5e:00:00:01"}, 400, False,
     None),
    ("POST", R + "/ports", {"host": "h2", "port": "c9", "mac": "00:00:00:00:00:00"}, 400, False,
     None),
    ("POST", R + "/ports", {"host": "h2", "port": "c9", "mac": "02:00:00:00:00:09\n"}, 400, False,
     None),
    ("POST", R + "/ports", {"host": "h2", "port": "c9\n"}, 400, False, None),
    ("POST", R + "/ports", {"host": "h2", "port": ".."}, 400, False, None),
    ("POST", R + "/ports", {"host": "h2", "port": "much-too-long-name"}, 400, False, None),
    ("POST", R + "/ports", {"host": "h2", "port": "c9", "ip": "10.0.0.1"}, 400, True, None),
    ("POST", R + "/ports", {"host": "h2", "port": "c9", "ip": "10.5.0.1"}, 400, True, None),
    ("POST", R + "/ports", {"host": "h2", "port": "c9", "subnet": "10.6.0.0/24"}, 404, True,
     None),
    ("POST", R + "/ports", {"host": "h2", "port": "cp2"}, 409, True, None),
    ("POST", R + "/ports", {"host": "h2", "port": "c9", "ip": "10.0.0.2"}, 409, True, None),
    ("POST", R + "/ports", {"host": "h7", "port": "c9"}, 404, True, None),
    ("POST", "/v1/tenants/nope/ports", {"host": "h2", "port": "c9"}, 404, True, None),
    ("POST", "/v1/tenants/empty/ports", {"host": "h2", "port": "c9"}, 409, True, None),
    ("GET", R + "/ports/{p1}", None, 200, None, None),
    ("GET", R + "/ports/nope", None, 404, None, None),
    ("DELETE", R + "/ports/{p2}", None, 204, None, None),
    ("DELETE", R + "/ports/nope", None, 404, None, None),
    ("PATCH", R + "/ports/{p1}", {"security_groups": ["default", "web"]}, 200, True, None),
    ("PATCH", R + "/ports/{p1}", {"port_security": False, "security_groups": []}, 200, True,
     None),
    ("PATCH", R + "/ports/{p1}", {}, 200, True, None),
    ("PATCH", R + "/ports/{p1}", {"port_security": False, "security_groups": ["web"]}, 400,
     True, None),
    ("PATCH", R + "/ports/{p1}", {"port_security": None}, 400, False, None),
    ("PATCH", R + "/ports/{p1}", {"security_groups": "web"}, 400, False, None),
    ("PATCH", R + "/ports/{p1}", {"mac": "02:00:00:00:00:01"}, 400, False, None),
    ("PATCH", R + "/ports/{p1}", {"security_groups": ["nope"]}, 404, True, None),
    ("PATCH", R + "/ports/nope", {}, 404, True, None),
    ("POST", R + "/ports", {"host": "h2", "port": "c9", "security_groups": ["web"],
                            "port_security": True}, 201, True, None),
    ("POST", R + "/ports", {"host": "h2", "port": "c9", "security_groups": ["nope"]}, 404, True,
     None),
    # security groups
    ("GET", R + "/security-groups", None, 200, None, None),
    ("GET", "/v1/tenants/nope/security-groups", None, 404, None, None),
    ("POST", R + "/security-groups", {"name": "db"}, 201, True, None),
    ("POST", R + "/security-groups",
     {"name": "db", "rules": [{"direction": "ingress", "protocol": "tcp", "ports": 5432,
                               "remote": "sg:db"},
                              {"direction": "egress", "protocol": "udp", "ports": "1000-2000",
                               "remote": "10.0.0.7/24"},
                              {"direction": "ingress", "protocol": "icmp", "ports": None},
                              {"direction": "egress"}]}, 201, True, None),
    ("POST", R + "/security-groups", {"name": "web"}, 409, True, None),
    ("POST", "/v1/tenants/nope/security-groups", {"name": "db"}, 404, True, None),
    ("POST", R + "/security-groups", {"name": "db", "rules": [{"direction": "ingress",
                                                               "remote": "sg:nope"}]}, 404,
     True, None),
    ("POST", R + "/security-groups", {"name": "db", "rules": [{"direction": "ingress",
                                                               "protocol": "icmp",
                                                               "ports": "22"}]}, 400, True,
     None),
    ("POST", R + "/security-groups", {"name": "db", "rules": [{"direction": "ingress",
                                                               "protocol": "tcp",
                                                               "ports": "22-21"}]}, 400, True,
     None),
    ("POST", R + "/security-groups", {"name": "db", "rules": [{"direction": "sideways"}]}, 400,
     False, None),
    ("POST", R + "/security-groups", {"name": "db", "rules": [{"direction": "ingress",
                                                               "ports": "22/tcp"}]}, 400,
     False, None),
    ("POST", R + "/security-groups", {"name": "db", "rules": [{"direction": "ingress",
                                                               "remote": None}]}, 400, False,
     None),
    ("POST", R + "/security-groups", {"name": "db", "rules": "all"}, 400, False, None),
    ("POST", R + "/security-groups", {"name": "d b"}, 400, False, None),
    ("GET", R + "/security-groups/web", None, 200, None, None),
    ("GET", R + "/security-groups/nope", None, 404, None, None),
    ("PUT", R + "/security-groups/web", {"rules": []}, 200, True, None),
    ("PUT", R + "/security-groups/web", {"rules": [{"direction": "egress",
                                                    "remote": "sg:spare"}]}, 200, True, None),
    ("PUT", R + "/security-groups/nope", {"rules": []}, 404, True, None),
    ("PUT", R + "/security-groups/web", {}, 400, False, None),
    ("DELETE", R + "/security-groups/spare", None, 204, None, None),
    ("DELETE", R + "/security-groups/nope", None, 404, None, None),
    ("DELETE", R + "/security-groups/web", None, 409, None, None),            # p3 is in it
    ("DELETE", R + "/security-groups/default", None, 409, None, None),
    ("POST", R + "/security-groups/web/rules", {"direction": "ingress", "protocol": "udp",
                                                "ports": "53"}, 201, True, None),
    ("POST", R + "/security-groups/nope/rules", {"direction": "ingress"}, 404, True, None),
    ("POST", R + "/security-groups/web/rules", {"direction": "ingress", "color": "red"}, 400,
     False, None),
    ("DELETE", R + "/security-groups/web/rules/{rule}", None, 204, None, None),
    ("DELETE", R + "/security-groups/web/rules/nope", None, 404, None, None),
    # port forwards
    ("GET", R + "/port-forwards", None, 200, None, None),
    ("GET", "/v1/tenants/nope/port-forwards", None, 404, None, None),
    ("POST", R + "/port-forwards", {"port_id": "{p1}", "protocol": "udp", "external_port": 53,
                                    "internal_port": 53}, 201, True, None),
    ("POST", R + "/port-forwards", {"port_id": "{p1}", "protocol": "tcp", "external_port": 2222,
                                    "internal_port": 22}, 409, True, None),
    ("POST", R + "/port-forwards", {"port_id": "{p2}", "protocol": "tcp", "external_port": 80,
                                    "internal_port": 80}, 409, True, None),   # h2: no external
    ("POST", R + "/port-forwards", {"port_id": "nope", "protocol": "tcp", "external_port": 80,
                                    "internal_port": 80}, 404, True, None),
    ("POST", R + "/port-forwards", {"port_id": "{p1}", "protocol": "tcp",
                                    "external_port": openapi.MAX_FORWARD_PORT + 1,
                                    "internal_port": 80}, 400, False, None),
    ("POST", R + "/port-forwards", {"port_id": "{p1}", "protocol": "icmp", "external_port": 80,
                                    "internal_port": 80}, 400, False, None),
    ("POST", R + "/port-forwards", {"port_id": "{p1}", "protocol": "tcp", "external_port": 80,
                                    "internal_port": 0}, 400, False, None),
    ("POST", R + "/port-forwards", {"port_id": 7, "protocol": "tcp", "external_port": 80,
                                    "internal_port": 80}, 400, False, None),
    ("GET", R + "/port-forwards/{fwd}", None, 200, None, None),
    ("GET", R + "/port-forwards/nope", None, 404, None, None),
    ("DELETE", R + "/port-forwards/{fwd}", None, 204, None, None),
    ("DELETE", R + "/port-forwards/nope", None, 404, None, None),
    # floating IPs
    ("GET", R + "/floating-ips", None, 200, None, None),
    ("GET", "/v1/tenants/nope/floating-ips", None, 404, None, None),
    ("POST", R + "/floating-ips", {"port_id": "{p3}", "external_ip": "203.0.113.101"}, 201, True,
     None),
    ("POST", R + "/floating-ips", {"port_id": "{p1}", "external_ip": "203.0.113.101"}, 409, True,
     None),
    ("POST", R + "/floating-ips", {"port_id": "{p3}", "external_ip": "203.0.113.11"}, 409, True,
     None),
    ("POST", R + "/floating-ips", {"port_id": "{p3}", "external_ip": "203.0.113.256"}, 400, False,
     None),
    ("POST", R + "/floating-ips", {"port_id": "nope", "external_ip": "203.0.113.102"}, 404, True,
     None),
    ("GET", R + "/floating-ips/{fip}", None, 200, None, None),
    ("GET", R + "/floating-ips/nope", None, 404, None, None),
    ("DELETE", R + "/floating-ips/{fip}", None, 204, None, None),
    ("DELETE", R + "/floating-ips/nope", None, 404, None, None),
    # trace (read-only; the verdicts: tests/unit/trace)
    ("POST", R + "/trace", {"from": "{p1}", "to": "{p2}"}, 200, True, None),
    ("POST", R + "/trace", {"from": "{p1}", "to": "10.0.0.9", "proto": "tcp", "dport": 22,
                            "sport": 5000, "src_ip": "10.0.0.7", "live": False}, 200, True, None),
    ("POST", R + "/trace", {"from": "{p1}", "to": "10.0.0.9", "proto": "tcp"}, 400, True, None),
    ("POST", R + "/trace", {"from": "{p1}", "to": "10.0.0.9", "dport": 22}, 400, True, None),
    ("POST", R + "/trace", {"from": "{p1}", "to": "10.0.0.256"}, 400, True, None),
    ("POST", R + "/trace", {"from": "{p1}", "to": "10.0.0.9", "proto": "sctp"}, 400, False, None),
    ("POST", R + "/trace", {"from": "{p1}", "to": "10.0.0.9", "color": 1}, 400, False, None),
    ("POST", R + "/trace", {"from": "{p1}"}, 400, False, None),
    ("POST", R + "/trace", {"from": "nope", "to": "10.0.0.9"}, 404, True, None),
    ("POST", "/v1/tenants/nope/trace", {"from": "x", "to": "10.0.0.9"}, 404, True, None),
    # DHCP options and names (the agent's side: tests/unit/api/test_names.py)
    ("GET", R + "/dhcp-options", None, 200, None, None),
    ("GET", "/v1/tenants/nope/dhcp-options", None, 404, None, None),
    ("PATCH", R + "/dhcp-options", {"domain": "red.example", "resolvers": ["10.9.9.9:5353"],
                                    "lease_time": 600, "ttl": 3}, 200, True, None),
    ("PATCH", R + "/dhcp-options", {"lease_time": 5}, 400, False, None),
    ("PATCH", R + "/dhcp-options", {"resolvers": ["nope"]}, 400, False, None),
    ("PATCH", R + "/dhcp-options", {"domain": "-bad-"}, 400, False, None),
    ("PATCH", "/v1/tenants/nope/dhcp-options", {"ttl": 3}, 404, True, None),
    ("GET", R + "/dns-records", None, 200, None, None),
    ("GET", "/v1/tenants/nope/dns-records", None, 404, None, None),
    ("GET", "/v1/hosts/h1/services", None, 200, None, None),
    ("GET", "/v1/hosts/h1/services?since=x&wait=30.5", None, 400, None, None),
    ("GET", "/v1/hosts/nope/services", None, 404, None, None),
    ("PATCH", R + "/ports/{p1}", {"name": "web", "aliases": ["www", "api"]}, 200, True, None),
    ("PATCH", R + "/ports/{p1}", {"name": "bad name"}, 400, False, None),
    # flow logs (the records: tests/unit/trace/test_flowlogs.py)
    ("PUT", R + "/flow-logs", {"enabled": True}, 200, True, None),
    ("PUT", R + "/flow-logs", {"enabled": "yes"}, 400, False, None),
    ("PUT", "/v1/tenants/nope/flow-logs", {"enabled": True}, 404, True, None),
    ("GET", R + "/flow-logs", None, 200, None, None),
    ("GET", "/v1/tenants/nope/flow-logs", None, 404, None, None),
    ("GET", "/v1/hosts/h1/flow-logs", None, 200, None, None),
    ("GET", "/v1/hosts/nope/flow-logs", None, 404, None, None),
    ("POST", "/v1/hosts/h1/flow-logs", {"records": [{"src": "10.0.0.2", "dst": "10.0.0.3",
                                                     "proto": 6, "sport": 40000, "dport": 80,
                                                     "packets": 3, "bytes": 180,
                                                     "start": 1.5, "end": 2}]}, 200, True, None),
    ("POST", "/v1/hosts/h1/flow-logs", {"records": [{"src": "10.0.0.2"}]}, 400, False, None),
    ("POST", "/v1/hosts/h1/flow-logs", {"records": [{"src": "10.0.0.2", "dst": "10.0.0.3",
                                                     "proto": 6, "color": 1}]}, 400, True, None),
    ("POST", "/v1/hosts/nope/flow-logs", {"records": []}, 404, True, None),
    # tokens (who may call them: tests/unit/api/test_auth_matrix.py)
    ("GET", R + "/tokens", None, 200, None, None),
    ("GET", "/v1/tenants/nope/tokens", None, 404, None, None),
    ("POST", R + "/tokens", {"name": "deploy", "expires_in": 3600}, 201, True, None),
    ("POST", R + "/tokens", {"name": "later", "expires_at": "2030-06-01T00:00:00Z"}, 201, True,
     None),
    ("POST", R + "/tokens", {"name": "ci"}, 409, True, None),
    ("POST", R + "/tokens", {"name": "x", "expires_in": 0}, 400, False, None),
    ("POST", R + "/tokens", {"name": "x", "expires_in": 5,
                             "expires_at": "2030-06-01T00:00:00Z"}, 400, True, None),
    ("POST", R + "/tokens", {"name": "x", "expires_at": "2001-01-01T00:00:00Z"}, 400, True,
     None),
    ("POST", "/v1/tenants/nope/tokens", {"name": "x"}, 404, True, None),
    ("DELETE", R + "/tokens/{ttok}", None, 204, None, None),
    ("DELETE", R + "/tokens/{htok}", None, 404, None, None),
    ("GET", "/v1/hosts/h1/tokens", None, 200, None, None),
    ("POST", "/v1/hosts/h9/tokens", {"name": "join", "networks": True}, 201, True, None),
    ("POST", "/v1/hosts/h1/tokens", {"name": "join"}, 409, True, None),
    ("POST", "/v1/hosts/h1/tokens", {"name": "x", "networks": "yes"}, 400, False, None),
    ("DELETE", "/v1/hosts/h1/tokens/{htok}", None, 204, None, None),
    ("DELETE", "/v1/hosts/h2/tokens/{htok}", None, 404, None, None),
]

# every operation with a body also meets: not JSON (400), not JSON at all (415), too big (413)
RAW = [(m.upper(), re.sub(r"\{[^}]+\}", "x", p), raw, ctype, status)
       for p, ops in DOC["paths"].items() for m, op in ops.items() if "requestBody" in op
       for raw, ctype, status in ((b"{not json", "application/json", 400),
                                  (b"{}", "text/plain", 415),
                                  (b'"' + b"x" * MAX_BODY + b'"', "application/json", 413))]


def _fill(value, ids):
    if isinstance(value, str):
        for key, real in ids.items():
            value = value.replace("{" + key + "}", real)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


@pytest.mark.parametrize("method,path,body,status,schema_ok,setup", CASES,
                         ids=[f"{c[0]} {c[1]} {c[3]} #{i}" for i, c in enumerate(CASES)])
def test_example_request(world, monkeypatch, method, path, body, status, schema_ok, setup):
    template, op = _operation(method, path)
    assert str(status) in op["responses"], f"{status} is not documented for {method} {template}"
    if body is not None:
        valid = _validator(_request_schema(op)).is_valid(body)
        assert valid == schema_ok, f"schema says valid={valid} for {body!r}"
        if not valid:
            assert status == 400, "a body the schema rejects must be a 400"
    if setup:
        setup(monkeypatch)
    code, data = world.call(method, _fill(path, world.ids), _fill(body, world.ids))
    assert code == status, data
    schema = _response_schema(op, status)
    if schema is None:
        assert data is None
    else:
        errors = [e.message for e in jsonschema_rs.validator_for(
            {"$schema": "https://json-schema.org/draft/2020-12/schema",
             "components": DOC["components"], **schema}).iter_errors(data)]
        assert not errors, (data, errors)


@pytest.mark.parametrize("method,path,raw,ctype,status", RAW,
                         ids=[f"{r[0]} {r[1]} {r[4]}" for r in RAW])
def test_malformed_body(api, method, path, raw, ctype, status):
    code, data = api.call(method, path, raw=raw, ctype=ctype)
    assert code == status
    assert _validator("#/components/schemas/Error").is_valid(data)


def test_every_documented_status_is_exercised():
    """401, 403 and 429 (authentication on) are exercised for every operation
    by tests/unit/api/test_auth_matrix.py, which checks they are documented;
    409 busy and 503 by test_store_fault_replies.py, on every writing one."""
    seen = {(m.upper(), p, str(s)) for p, ops in DOC["paths"].items() for m in ops
            for s in (401, 403, 429)}
    seen |= {(m.upper(), _operation(m, p)[0], str(s)) for m, p, _b, s, _v, _s in CASES}
    seen |= {(m, _operation(m, p)[0], str(s)) for m, p, _r, _c, s in RAW}
    # 503 and 409 busy on every writing operation: tests/unit/api/test_store_fault_replies.py
    seen |= {(r.method, r.path, s) for r in ROUTES if r.writes for s in ("409", "503")}
    documented = {(m.upper(), p, s) for p, ops in DOC["paths"].items()
                  for m, op in ops.items() for s in op["responses"]}
    assert documented - seen == set(), "documented statuses no example produces"


# --- patterns == validators -------------------------------------------------

def _accepts(fn, value):
    try:
        fn(value)
        return True
    except ApiError:
        return False


PATTERNED = [
    ("Name", validate.name, "aZ09_.- \n/é"),
    ("IfName", validate.ifname, "aZ09_.:@- \n/"),
    ("Mac", validate.mac, "0123456789abcdefABCDEF:-x \n"),
    ("Dpid", validate.dpid, "0123456789abcdefABCDEFxX: \n-"),
    ("IPv4", lambda v: validate.ipv4(v), "0123456789.\n /"),
]


@pytest.mark.parametrize("name,fn,alphabet", PATTERNED, ids=[p[0] for p in PATTERNED])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_schema_pattern_accepts_what_the_validator_accepts(name, fn, alphabet, data):
    """Exactly the same language: a string the validator takes is schema-valid
    (else negative fuzzing would be wrong) and vice versa (else the document
    would promise what the server refuses)."""
    schema = DOC["components"]["schemas"][name]
    string = next((s for s in schema.get("oneOf", [schema]) if s.get("type") == "string"), schema)
    value = data.draw(st.one_of(
        st.text(alphabet=alphabet, max_size=24),
        st.from_regex(string["pattern"].replace("$", r"\Z"), fullmatch=False).map(
            lambda s: s + data.draw(st.sampled_from(["", "\n", " ", "0", ":"])))))
    valid = _validator(f"#/components/schemas/{name}").is_valid(value)
    assert valid == _accepts(fn, value), value


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.text(alphabet="0123456789./\n ", max_size=22),
                       st.from_regex(openapi.CIDR.replace("$", r"\Z"))))
def test_cidr_pattern_accepts_everything_the_validator_accepts(value):
    """The validator also wants host bits zero: that one is a documented 400."""
    if _accepts(validate.cidr, value):
        assert _validator("#/components/schemas/Cidr").is_valid(value), value
