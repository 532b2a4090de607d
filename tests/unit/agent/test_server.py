"""The plugin transport: JSON over HTTP on a unix socket, dockerd's quirks."""
import http.client
import json
import os
import socket

import pytest

from vpcagent import server


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=5)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.unix_path)


def post(path, method, raw, headers=None):
    c = UnixHTTP(path)
    c.request("POST", method, body=raw, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, json.loads(body)


@pytest.fixture
def served(agent, tmp_path):
    sock = str(tmp_path / "plugins" / "vpc.sock")
    srv = server.serve(sock, agent.router)
    yield sock
    server.stop(srv)


def test_activate_over_the_socket_with_an_empty_body(served):
    assert post(served, "/Plugin.Activate", b"") == \
        (200, {"Implements": ["NetworkDriver", "IpamDriver"]})


def test_capabilities(served):
    assert post(served, "/NetworkDriver.GetCapabilities", b"")[1]["Scope"] == "local"
    caps = post(served, "/IpamDriver.GetCapabilities", b"null")[1]
    assert caps["RequiresMACAddress"] is False
    spaces = post(served, "/IpamDriver.GetDefaultAddressSpaces", b"")[1]
    assert set(spaces) == {"LocalDefaultAddressSpace", "GlobalDefaultAddressSpace"}


def test_unknown_method_is_404_json(served):
    status, body = post(served, "/NetworkDriver.AllocateNetworkX", b"{}")
    assert status == 404 and "unknown method" in body["Err"]


@pytest.mark.parametrize("method,key", [("NetworkDriver.CreateNetwork", "Err"),
                                        ("IpamDriver.RequestPool", "Error")])
def test_empty_body_gets_a_sentence_in_the_protocols_key(agent, served, method, key):
    before = agent.snapshot()
    status, body = post(served, f"/{method}", b"")
    assert status == 200 and list(body) == [key]
    assert "empty request body" in body[key]
    assert agent.snapshot() == before


@pytest.mark.parametrize("raw,words", [(b"{not json", "not JSON"), (b"[1, 2]", "JSON object"),
                                       (b"\xff\xfe", "not JSON")])
def test_bad_json_is_refused_and_the_connection_answered(agent, served, raw, words):
    before = agent.snapshot()
    status, body = post(served, "/NetworkDriver.CreateNetwork", raw)
    assert status == 200 and words in body["Err"]
    status, body = post(served, "/IpamDriver.RequestAddress", raw)
    assert status == 200 and words in body["Error"]
    assert agent.snapshot() == before


def test_a_stale_socket_is_replaced_and_a_regular_file_is_not(agent, tmp_path):
    sock = str(tmp_path / "vpc.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(sock)
    s.close()                       # a socket file nobody listens on: a killed agent's
    srv = server.serve(sock, agent.router)
    try:
        assert post(sock, "/Plugin.Activate", b"")[0] == 200
    finally:
        server.stop(srv)
    assert not os.path.exists(sock)
    plain = tmp_path / "plain"
    plain.write_text("x")
    with pytest.raises(OSError, match="not a socket"):
        server.serve(str(plain), agent.router)
    assert plain.read_text() == "x"


def test_a_handler_crash_is_an_error_reply_not_a_dropped_connection(tmp_path):
    router = server.Router()
    router.add("/NetworkDriver.Join", lambda body: 1 / 0)
    sock = str(tmp_path / "x.sock")
    srv = server.serve(sock, router)
    try:
        status, body = post(sock, "/NetworkDriver.Join", b"{}")
    finally:
        server.stop(srv)
    assert status == 200 and "ZeroDivisionError" in body["Err"]
