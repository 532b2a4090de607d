"""Authentication beyond the route matrix (test_auth_matrix.py): tokens stored
as hashes only and surviving a restart, expiry, revocation, tokens dying with
their tenant, the failure rate limit, the admin token file, the loopback-only
rule, /metrics, the audit log, and hostile JSON answered 400 before parsing."""
import json
import logging
import os
import stat

import pytest
import webob

from controller.api import auth as auth_mod
from controller.api.auth import Authenticator, FailureLimiter, admin_token
from controller.api.metrics import Metrics
from controller.api.rest import RestApi
from controller.config import Config, ConfigError
from controller.model.state import State
from controller.service import tokens
from controller.service.vpc import VpcService
from controller.store.msgpack_store import MsgpackStore
from tests.support.rest_api import Api

ADMIN = "unit-admin-token-0123456789abcdef"


class Clock:
    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def call(app, method, path, body=None, token=None, addr="192.0.2.1", raw=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = webob.Request.blank(path, method=method, headers=headers,
                              environ={"REMOTE_ADDR": addr})
    if raw is not None or body is not None:
        req.body = raw if raw is not None else json.dumps(body).encode()
        req.content_type = "application/json"
    resp = req.get_response(app)
    return resp.status_code, (json.loads(resp.body) if resp.body else None), resp.headers


@pytest.fixture
def server(tmp_path):
    """A RestApi with authentication on over a msgpack store in tmp_path."""
    class Server:
        def __init__(self):
            self.clock = Clock()
            self.open()

        def open(self):
            self.store = MsgpackStore(tmp_path)
            self.service = VpcService(State(self.store.load()), self.store)
            self.service.clock = self.clock
            self.limiter = FailureLimiter(burst=3, refill=0.5, clock=self.clock)
            self.app = RestApi(self.service, auth=Authenticator(
                self.service.state, ADMIN, clock=self.clock, limiter=self.limiter))

        def restart(self):
            self.store.close()
            self.open()

        def call(self, *a, **kw):
            return call(self.app, *a, **kw)

    s = Server()
    assert s.call("POST", "/v1/tenants", {"name": "red", "network": "vxlan"}, ADMIN)[0] == 201
    yield s
    s.store.close()


def test_a_token_is_shown_once_and_stored_as_a_hash_only(server, tmp_path):
    code, made, _ = server.call("POST", "/v1/tenants/red/tokens", {"name": "ci"}, ADMIN)
    assert code == 201 and made["token"].startswith(f"vpc_t_{made['id']}_")
    secret = made["token"].rsplit("_", 1)[1]
    listed = server.call("GET", "/v1/tenants/red/tokens", None, ADMIN)[1]
    assert listed == [{k: v for k, v in made.items() if k != "token"}]
    assert secret not in json.dumps(listed)
    server.store.compact()          # the snapshot too, not only the journal
    disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert secret.encode() not in disk and made["token"].encode() not in disk
    assert tokens.digest(secret).encode() in disk
    server.restart()                # a restarted controller still accepts it
    assert server.call("GET", "/v1/tenants/red", None, made["token"])[0] == 200


def test_expiry_revocation_and_tenant_deletion_end_a_token(server):
    short = server.call("POST", "/v1/tenants/red/tokens",
                        {"name": "short", "expires_in": 60}, ADMIN)[1]
    keep = server.call("POST", "/v1/tenants/red/tokens",
                       {"name": "keep", "expires_at": "2027-03-01T00:00:00Z"}, ADMIN)[1]
    assert keep["expires_at"] == "2027-03-01T00:00:00Z"
    assert server.call("GET", "/v1/tenants/red", None, short["token"])[0] == 200
    server.clock.now += 61
    assert server.call("GET", "/v1/tenants/red", None, short["token"])[0] == 401
    assert sorted((t["name"], t["expired"]) for t in server.call(
        "GET", "/v1/tenants/red/tokens", None, ADMIN)[1]) == [("keep", False), ("short", True)]
    assert server.call("DELETE", f"/v1/tenants/red/tokens/{keep['id']}", None, ADMIN)[0] == 204
    assert server.call("GET", "/v1/tenants/red", None, keep["token"])[0] == 401
    # a tenant's tokens go with it: a new "red" is not the old one's
    last = server.call("POST", "/v1/tenants/red/tokens", {"name": "last"}, ADMIN)[1]
    assert server.call("DELETE", "/v1/tenants/red", None, ADMIN)[0] == 204
    assert server.service.state.tokens_of("tenant", "red") == []
    assert server.call("POST", "/v1/tenants", {"name": "red", "network": "gre"}, ADMIN)[0] == 201
    assert server.call("GET", "/v1/tenants/red", None, last["token"])[0] == 401


def test_a_tampered_token_is_refused_in_constant_time(server, monkeypatch):
    made = server.call("POST", "/v1/tenants/red/tokens", {"name": "ci"}, ADMIN)[1]
    compared = []
    real = tokens.hmac.compare_digest
    monkeypatch.setattr(tokens.hmac, "compare_digest",
                        lambda a, b: compared.append(1) or real(a, b))
    flipped = made["token"][:-1] + ("1" if made["token"].endswith("0") else "0")
    for bad in (flipped, made["token"].replace(made["id"], "f" * 12),
                "vpc_h_" + made["token"][6:], "Bearer", "x" * 10_000):
        server.clock.now += 10          # keep the limiter out of it
        code, data, headers = server.call("GET", "/v1/tenants/red", None, bad)
        assert code == 401 and data["error"]["code"] == "unauthorized", bad
        assert "invalid_token" in headers["WWW-Authenticate"]
    assert len(compared) == 10      # each: the admin digest, a token digest (even unknown ids)
    code, _, headers = server.call("GET", "/v1/tenants/red")
    assert code == 401 and headers["WWW-Authenticate"] == 'Bearer realm="vpc-controller"'
    req = webob.Request.blank("/v1/tenants/red", headers={"Authorization": f"Basic {ADMIN}"})
    assert req.get_response(server.app).status_code == 401


def test_failed_attempts_are_rate_limited_per_address(server):
    for _ in range(3):
        assert server.call("GET", "/v1/tenants", None, "wrong")[0] == 401
    code, data, headers = server.call("GET", "/v1/tenants", None, "wrong")
    assert code == 429 and data["error"]["code"] == "rate_limited"
    assert headers["Retry-After"] == "2"
    # while limited even the right token is refused (or guessing would go on) ...
    assert server.call("GET", "/v1/tenants", None, ADMIN)[0] == 429
    # ... from that address only
    assert server.call("GET", "/v1/tenants", None, ADMIN, addr="192.0.2.2")[0] == 200
    server.clock.now += 2
    assert server.call("GET", "/v1/tenants", None, ADMIN)[0] == 200
    # successes do not spend the bucket
    for _ in range(10):
        assert server.call("GET", "/v1/tenants", None, ADMIN, addr="192.0.2.3")[0] == 200


def test_the_limiter_forgets_addresses_when_full(monkeypatch):
    monkeypatch.setattr(auth_mod, "MAX_ADDRESSES", 4)
    clock = Clock()
    limiter = FailureLimiter(burst=2, refill=1, clock=clock)
    for i in range(20):
        limiter.failed(f"10.0.0.{i}")
        assert len(limiter.buckets) <= 4


def test_every_change_is_logged_with_who_made_it(server, caplog):
    made = server.call("POST", "/v1/tenants/red/tokens", {"name": "ci"}, ADMIN)[1]
    with caplog.at_level(logging.INFO, logger="controller.api.audit"):
        server.call("POST", "/v1/tenants/red/subnets", {"cidr": "10.0.0.0/24"}, made["token"])
        server.call("GET", "/v1/tenants/red/subnets", None, made["token"])
        server.call("POST", "/v1/tenants/red/subnets", {"cidr": "bad"}, made["token"])
    lines = [r.getMessage() for r in caplog.records if r.name == "controller.api.audit"]
    assert lines == [f"POST /v1/tenants/red/subnets by tenant token {made['id']} (red) from "
                     f"192.0.2.1: 201"]


def test_metrics_are_the_admins(server):
    made = server.call("POST", "/v1/tenants/red/tokens", {"name": "ci"}, ADMIN)[1]
    web = Metrics().wsgi(server.app)
    assert call(web, "GET", "/metrics", addr="192.0.2.9")[0] == 401
    assert call(web, "GET", "/metrics", token=made["token"])[0] == 403
    req = webob.Request.blank("/metrics", headers={"Authorization": f"Bearer {ADMIN}"})
    resp = req.get_response(web)
    assert resp.status_code == 200 and b"vpc_rest_requests_total" in resp.body


def test_openapi_needs_no_token_and_declares_the_scheme(server):
    code, doc, _ = server.call("GET", "/v1/openapi.json")
    assert code == 200 and doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert doc["paths"]["/v1/openapi.json"]["get"]["security"] == []
    assert server.call("GET", "/v1/nothing-here")[0] == 401      # no map of the API without one


# --- hostile JSON -----------------------------------------------------------------
HOSTILE = [b"[" * 100_000, b'{"a":' * 100_000, b"[" * 33 + b"]" * 33,
           b'{"name": "x", "network": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"]


@pytest.mark.parametrize("raw", HOSTILE, ids=["100k [", "100k {", "33 deep", "deep value"])
def test_deep_json_is_a_400_and_changes_nothing(tmp_path, raw):
    api = Api(tmp_path)
    try:
        before = api.disk()
        code, data = api.call("POST", "/v1/tenants", raw=raw)
        assert code == 400 and data["error"]["code"] == "bad_json", data
        assert api.disk() == before and api.state.tenants == {}
    finally:
        api.store.close()


def test_nesting_within_the_limit_and_brackets_in_strings_are_fine(tmp_path):
    api = Api(tmp_path)
    try:
        code, data = api.call("POST", "/v1/tenants", raw=json.dumps(
            {"name": "red", "network": "vxlan", "segment": None}).encode())
        assert code == 201
        rules = [{"direction": "ingress", "protocol": "tcp", "ports": "80"}]
        code, _ = api.call("POST", "/v1/tenants/red/security-groups",
                           raw=json.dumps({"name": "web", "rules": rules}).encode())
        assert code == 201
        # 10,000 '[' inside a string nest nothing
        code, data = api.call("POST", "/v1/tenants", raw=json.dumps(
            {"name": "[" * 10_000, "network": "vxlan"}).encode())
        assert code == 400 and data["error"]["code"] == "invalid"
    finally:
        api.store.close()


def test_deep_json_from_a_valid_token_is_a_400_too(server):
    code, data, _ = server.call("POST", "/v1/tenants", None, ADMIN, raw=b"[" * 100_000)
    assert code == 400 and data["error"]["code"] == "bad_json"


# --- switching it on --------------------------------------------------------------
def test_auth_is_off_on_loopback_and_on_beyond_it():
    assert Config.from_env({}).auth is False
    assert Config.from_env({"VPC_REST_HOST": "127.0.0.5"}).auth is False
    assert Config.from_env({"VPC_REST_HOST": "::1"}).auth is False
    assert Config.from_env({"VPC_REST_HOST": "0.0.0.0"}).auth is True
    assert Config.from_env({"VPC_REST_HOST": "198.18.0.1"}).auth is True
    assert Config.from_env({"VPC_AUTH": "on"}).auth is True
    assert Config.from_env({"VPC_ADMIN_TOKEN": ADMIN}).auth is True
    assert Config.from_env({"VPC_STATE": "/s"}).admin_token_file == "/s/admin.token"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "198.18.0.1", "controller.example"])
def test_no_tokens_beyond_loopback_is_refused_at_start(host):
    with pytest.raises(ConfigError, match="not a loopback address and VPC_AUTH=off"):
        Config.from_env({"VPC_REST_HOST": host, "VPC_AUTH": "off"})


def test_bad_auth_settings_are_refused():
    with pytest.raises(ConfigError, match="VPC_AUTH"):
        Config.from_env({"VPC_AUTH": "maybe"})
    with pytest.raises(ConfigError, match="16 characters"):
        Config.from_env({"VPC_ADMIN_TOKEN": "short"})


def test_the_admin_token_is_made_once_mode_0600_and_logged_by_path(tmp_path, caplog):
    cfg = Config.from_env({"VPC_STATE": str(tmp_path / "state"), "VPC_AUTH": "on"})
    with caplog.at_level(logging.INFO, logger="controller.api.auth"):
        first = admin_token(cfg)
    path = tmp_path / "state" / "admin.token"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text().strip() == first and len(first) > 40
    assert [r.getMessage() for r in caplog.records] == [
        f"authentication on: made a new admin token; read it from {path} "
        f"(e.g. vpcctl --token-file {path} ...)"]
    assert first not in caplog.text
    assert admin_token(cfg) == first                     # read back, not made again
    env = Config.from_env({"VPC_ADMIN_TOKEN": ADMIN, "VPC_STATE": str(tmp_path)})
    assert admin_token(env) == ADMIN
