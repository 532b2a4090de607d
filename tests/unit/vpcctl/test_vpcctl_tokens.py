"""vpcctl with authentication on: --token / --token-file / VPC_TOKEN, and
`vpcctl token create/list/revoke`, against the in-process REST server of
tests/support/rest_server.py with an Authenticator swapped in."""
import json

import pytest

from controller.api.auth import Authenticator, FailureLimiter
from controller.api.rest import RestApi
from tests.support.rest_server import lines, server, vpc  # noqa: F401

ADMIN = "cli-admin-token-0123456789abcdef"


@pytest.fixture
def authed(server, vpc):  # noqa: F811
    server.httpd.set_app(RestApi(server.service, auth=Authenticator(
        server.state, ADMIN, limiter=FailureLimiter(burst=10 ** 6))))
    vpc.ok("--token", ADMIN, "tenant", "create", "red", "--network", "vxlan")
    vpc.ok("--token", ADMIN, "tenant", "create", "blue", "--network", "vlan")
    return vpc


def test_no_token_is_refused_with_the_reason(authed):
    err = authed.fail(1, "tenant", "list")
    assert "wants a token" in err and "(unauthorized)" in err


def test_tenant_token_round_trip(authed, tmp_path):
    token = authed.ok("--token", ADMIN, "token", "create", "ci", "--tenant", "red",
                      "--expires-in", "3600", "-q").strip()
    assert token.startswith("vpc_t_")
    f = tmp_path / "red.token"
    f.write_text(token + "\n")
    assert [t["name"] for t in authed.json("--token-file", f, "tenant", "list")] == ["red"]
    r = authed.run("tenant", "list", "--json", env={"VPC_TOKEN": token})
    assert [t["name"] for t in json.loads(r.stdout)] == ["red"]
    r = authed.run("tenant", "list", "--json", env={"VPC_TOKEN_FILE": str(f)})
    assert [t["name"] for t in json.loads(r.stdout)] == ["red"]
    assert "does not exist" in authed.fail(1, "--token", token, "tenant", "show", "blue")
    assert "(forbidden)" in authed.fail(1, "--token", token, "host", "list")
    rows = lines(authed.ok("--token", ADMIN, "token", "list", "--tenant", "red"))
    assert rows[0] == ["ID", "KIND", "SCOPE", "NAME", "CREATED", "EXPIRES", "EXPIRED"]
    tid = rows[1][0]
    assert rows[1][1:4] == ["tenant", "red", "ci"] and tid in token
    assert authed.ok("--token", ADMIN, "token", "revoke", tid, "--tenant", "red") == \
        f"deleted token {tid}\n"
    assert "revoked" in authed.fail(1, "--token-file", f, "tenant", "list")


def test_host_token_and_usage_errors(authed, tmp_path):
    made = authed.json("--token", ADMIN, "token", "create", "join", "--host", "h1",
                       "--networks")
    assert made["host"] == "h1" and made["networks"] is True and made["token"]
    assert [t["id"] for t in authed.json("--token", ADMIN, "token", "ls", "--host", "h1")] == \
        [made["id"]]
    assert "exactly one" in authed.fail(2, "--token", ADMIN, "token", "list")
    assert "--networks is for host tokens" in authed.fail(
        2, "--token", ADMIN, "token", "create", "x", "--tenant", "red", "--networks")
    assert "No such file" in authed.fail(2, "--token-file", tmp_path / "none", "tenant", "list")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert "is empty" in authed.fail(2, "--token-file", empty, "tenant", "list")
