"""One JSON client (vpcctl/client.py) under every hand-written one.

- it imports the standard library only (the scripts and the lab use it
  without click installed or imported);
- labctl's `Api` and demo's `call` keep their faces: `(status, body)`, HTTP
  errors returned, no answer raised as OSError; `request` raises the CLI's
  two exceptions.
"""
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.rest_server import server  # noqa: F401
from vpcctl.client import ApiError, Client, Unreachable, decode
from vpclab import demo, labctl

REPO = Path(__file__).resolve().parents[3]


def test_client_imports_only_the_standard_library():
    code = ("import sys; import vpcctl.client; "
            "print(sorted(m.split('.')[0] for m in sys.modules))")
    out = subprocess.run([sys.executable, "-S", "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    loaded = set(eval(out.stdout))      # noqa: S307 -- our own print of module names
    assert "click" not in loaded
    assert loaded - set(sys.stdlib_module_names) - {"vpcctl", "__main__"} == set()


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_labctl_api_returns_status_and_body(server):  # noqa: F811
    api = labctl.Api(server.url + "/")
    assert api.post("/v1/tenants", {"name": "red", "network": "vlan"})[0] == 201
    status, body = api.get("/v1/tenants/red")
    assert status == 200 and body["name"] == "red"
    status, body = api.post("/v1/tenants", {"name": "red", "network": "vlan"})
    assert status == 409 and body["error"]["code"] == "duplicate"
    assert api.request("GET", "/v1/tenants/nope")[0] == 404
    assert api.put("/v1/tenants/red/snat", {"enabled": True})[0] == 200
    assert api.delete("/v1/tenants/red") == (204, None)


def test_demo_call_returns_status_and_body(server):  # noqa: F811
    status, body = demo.call(server.url, "POST", "/v1/tenants", {"name": "b", "network": "gre"})
    assert status == 201 and body["network"] == "gre"
    assert demo.call(server.url, "GET", "/v1/hosts/nope")[0] == 404


def test_no_answer_is_an_oserror_for_call_and_unreachable_for_request():
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(OSError):
        labctl.Api(url, timeout=2).get("/v1/health")
    with pytest.raises(Unreachable, match="connection refused"):
        Client(url, timeout=2).get("/v1/health")


def test_request_raises_the_api_error(server):  # noqa: F811
    with pytest.raises(ApiError) as exc:
        Client(server.url).get("/v1/tenants/nope")
    assert (exc.value.status, exc.value.code) == (404, "not_found")


def test_decode_json_text_or_none():
    assert decode(b'{"a": 1}') == {"a": 1}
    assert decode(b"# HELP x\n") == "# HELP x\n"
    assert decode(b"") is None
