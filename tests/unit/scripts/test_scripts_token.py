"""host-join, attach and detach send a token (docs/security.md): --token,
--token-file, else VPC_TOKEN / VPC_TOKEN_FILE; an unreadable file is refused
before any change (UsageError, exit 2), and api_call sends it as Bearer."""
import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from controller.api.auth import Authenticator, FailureLimiter
from controller.api.rest import RestApi
from tests.support.rest_server import Server

SCRIPTS = Path(__file__).resolve().parents[3] / "scripts"
sys.path.insert(0, str(SCRIPTS))
import vpcscript  # noqa: E402


def args(*argv):
    p = argparse.ArgumentParser()
    vpcscript.add_token_args(p)
    return p.parse_args(argv)


@pytest.fixture(autouse=True)
def clean(monkeypatch):
    monkeypatch.delenv("VPC_TOKEN", raising=False)
    monkeypatch.delenv("VPC_TOKEN_FILE", raising=False)
    monkeypatch.delenv("VPC_CA_FILE", raising=False)
    yield
    vpcscript.TOKEN = None
    vpcscript.CONTEXT = None


def test_token_sources(tmp_path, monkeypatch):
    f = tmp_path / "t"
    f.write_text("vpc_h_file\n")
    vpcscript.use_token(args())
    assert vpcscript.TOKEN is None
    vpcscript.use_token(args("--token", "flag"))
    assert vpcscript.TOKEN == "flag"
    vpcscript.use_token(args("--token-file", str(f)))
    assert vpcscript.TOKEN == "vpc_h_file"
    monkeypatch.setenv("VPC_TOKEN_FILE", str(f))
    vpcscript.use_token(args())
    assert vpcscript.TOKEN == "vpc_h_file"
    monkeypatch.setenv("VPC_TOKEN", "env")
    vpcscript.use_token(args())
    assert vpcscript.TOKEN == "env"
    with pytest.raises(vpcscript.UsageError, match="--token-file"):
        vpcscript.use_token(args("--token-file", str(tmp_path / "missing")))


def test_api_call_sends_the_token(tmp_path):
    """Against the real REST app with authentication on."""
    srv = Server(tmp_path)
    srv.httpd.set_app(RestApi(srv.service, auth=Authenticator(
        srv.state, "script-admin-token-0123456789", limiter=FailureLimiter(burst=10 ** 6))))
    try:
        with pytest.raises(vpcscript.ApiError, match="wants a token") as e:
            vpcscript.api_call("GET", f"{srv.url}/v1/hosts")
        assert e.value.status == 401
        vpcscript.TOKEN = "script-admin-token-0123456789"
        assert vpcscript.api_call("GET", f"{srv.url}/v1/hosts") == (200, [])
    finally:
        srv.stop()


def test_ca_file_sources_and_a_bad_one_is_refused(tmp_path, monkeypatch):
    """attach and detach verify an https:// API like host-join does: --ca-file,
    else VPC_CA_FILE, else the system's CAs; an unreadable or non-PEM file is a
    UsageError (exit 2) before any change."""
    vpcscript.use_token(args())
    assert vpcscript.CONTEXT is None
    ca = tmp_path / "ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(tmp_path / "k"),
                    "-out", str(ca), "-subj", "/CN=test-ca", "-days", "1"],
                   check=True, capture_output=True)
    vpcscript.use_token(args("--ca-file", str(ca)))
    assert vpcscript.CONTEXT is not None
    vpcscript.CONTEXT = None
    monkeypatch.setenv("VPC_CA_FILE", str(ca))
    vpcscript.use_token(args())
    assert vpcscript.CONTEXT is not None
    for bad in (tmp_path / "missing", tmp_path / "k"):
        with pytest.raises(vpcscript.UsageError, match="--ca-file"):
            vpcscript.use_token(args("--ca-file", str(bad)))
