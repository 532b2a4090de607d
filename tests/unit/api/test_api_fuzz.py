"""schemathesis against the REST API, in process (WSGI), from its own OpenAPI
document (GET /v1/openapi.json).

Per operation, up to MAX_EXAMPLES generated requests -- schema-valid ones and
schema-violating ones -- plus the document's explicit examples and
schemathesis' coverage phase (boundary values, missing fields, wrong types).
For every response: no 5xx, a documented status code, a documented content
type, a body matching the documented schema, and a schema-violating request
is never accepted.

The world is seeded (hosts h1/h2, tenant red with a subnet, a security group
and a port; the
path parameters' examples name these) so that generated requests reach past
"404 no such tenant" into the validators and IPAM.  It is shared by every
generated request of the module, so the fuzzer also meets what earlier
requests made.  Run with -s to see how many requests got which status.

Authentication is on (controller/api/auth.py), as beyond loopback: every
generated case carries the admin token (schemathesis' programmatic auth
below) except the cases schemathesis makes without it or with a wrong one,
which must get 401 -- "negative_data_rejection" checks that.  The failure
rate limit is lifted (it would turn the fuzz into 429s after 20 misses).

Not checked: "schema-valid requests are accepted" -- many are rightly refused
for rules a schema cannot say (unknown tenant, duplicate, gateway outside its
subnet, 150.0 where an integer is wanted: JSON Schema calls 150.0 an integer,
the validators do not), and the document lists those 4xx per operation.
"""
import collections
import json

import pytest
import webob
from hypothesis import HealthCheck, given, settings, strategies as st

schemathesis = pytest.importorskip("schemathesis")

from controller.api.auth import Authenticator, FailureLimiter  # noqa: E402
from controller.model.state import State  # noqa: E402
from controller.api.rest import RestApi  # noqa: E402
from controller.service.vpc import VpcService  # noqa: E402
from controller.store.msgpack_store import MsgpackStore# noqa: E402

MAX_EXAMPLES = 25          # per operation and generation mode
SEEDED_EXAMPLES = 150      # across all operations, aimed at the seeded objects
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_schema_conformance", "negative_data_rejection", "unsupported_method")


def _checks():
    from schemathesis import checks as core
    from schemathesis.specs.openapi import checks as openapi
    return [getattr(openapi, name, None) or getattr(core, name) for name in CHECKS]


ADMIN = "fuzz-admin-token-0123456789abcdef"


def _auth(state):
    return Authenticator(state, ADMIN, limiter=FailureLimiter(burst=10 ** 9))


def _seed(app):
    def call(method, path, body):
        req = webob.Request.blank(path, method=method, headers={"Authorization": f"Bearer {ADMIN}"})
        req.body = json.dumps(body).encode()
        req.content_type = "application/json"
        resp = req.get_response(app)
        assert resp.status_code == 201, resp.text
        return json.loads(resp.body)

    call("POST", "/v1/hosts", {"name": "h1", "dpid": 0xa1, "tunnel_ip": "198.18.0.11",
                               "external_port": "ext0", "external_ip": "203.0.113.11",
                               "external_gateway": "203.0.113.1"})
    call("POST", "/v1/hosts", {"name": "h2", "dpid": 0xa2, "tunnel_ip": "198.18.0.12"})
    call("POST", "/v1/tenants", {"name": "red", "network": "vxlan"})
    call("POST", "/v1/tenants/red/subnets", {"cidr": "10.0.0.0/24"})
    call("POST", "/v1/tenants/red/security-groups",
         {"name": "web", "rules": [{"direction": "ingress", "protocol": "tcp", "ports": "80"}]})
    return call("POST", "/v1/tenants/red/ports", {"host": "h1", "port": "c1"})


class _Proxy:
    """The WSGI app schemathesis calls.  The schema is loaded when this module
    is imported (schemathesis' lazy fixture loader does not work with pytest 9),
    from a RestApi over an empty, store-less service -- GET /v1/openapi.json
    touches neither; the module fixture below then swaps in the real app over
    a store in tmp_path."""

    def __init__(self):
        self.target = RestApi(VpcService(State(), store=None))

        self.statuses = collections.Counter()     # (method, status) -> requests

    def __call__(self, environ, start_response):
        def counting(status, headers, exc_info=None):
            self.statuses[environ["REQUEST_METHOD"], int(status[:3])] += 1
            return start_response(status, headers, exc_info)
        return self.target(environ, counting)


APP = _Proxy()
schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", APP)


@pytest.fixture(scope="module")
def fuzz_world(tmp_path_factory):
    store = MsgpackStore(tmp_path_factory.mktemp("fuzzstate"))
    service = VpcService(State(store.load()), store)
    idle, APP.target = APP.target, RestApi(service, auth=_auth(service.state))
    service.port_id = _seed(APP.target)["id"]
    yield service
    APP.target = idle
    store.close()
    print(f"\nschemathesis sent {sum(APP.statuses.values())} requests: " +
          ", ".join(f"{m} {c}: {n}" for (m, c), n in sorted(APP.statuses.items())))


@schema.auth()
class AdminToken:
    """The admin token on every case that does not test its absence."""

    def get(self, case, context):
        return ADMIN

    def set(self, case, data, context):
        case.headers = dict(case.headers or {}, Authorization=f"Bearer {data}")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_document(case, fuzz_world):
    case.call_and_validate(checks=_checks())


NO_DELETES = schema.exclude(method="DELETE")


@given(data=st.data())
@settings(max_examples=SEEDED_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_in_the_seeded_world(data, fuzz_world):
    """Schema-valid requests aimed at the seeded objects: path parameters
    name them, and a body's port_id / host names them half of the time, so
    requests get past 404 into the conflict rules, IPAM and NAT checks.
    Deletes are left out so that the world stays populated."""
    fixed = {"tenant": "red", "host": "h2", "subnet": "10.0.0.0_24", "group": "web",
             "port_id": fuzz_world.port_id}
    case = data.draw(NO_DELETES.as_strategy(path_parameters=fixed))
    if isinstance(case.body, dict):
        if "port_id" in case.body and data.draw(st.booleans()):
            case.body["port_id"] = fuzz_world.port_id
        if "host" in case.body and data.draw(st.booleans()):
            case.body["host"] = data.draw(st.sampled_from(["h1", "h2"]))
    case.call_and_validate(checks=_checks())
