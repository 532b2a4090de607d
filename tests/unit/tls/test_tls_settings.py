"""TLS settings are checked before anything starts, and the pieces agree.

Why: a controller that silently fell back to HTTP, or a host-join that left
OVS logging a missing key forever, would look configured and not be.  Each
refusal here happens at start with the reason; and the certificates
scripts/pki makes are the ones the REST server loads and vpcctl's client
verifies (a real HTTPS round trip on loopback)."""
import importlib.machinery
import importlib.util
import ssl
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from controller.api.tls import server_context
from controller.config import Config, ConfigError
from vpcctl.client import Client, ca_context

REPO = Path(__file__).resolve().parents[3]
SCRIPTS = REPO / "scripts"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    for args in (["init", d], ["cert", d, "controller", "--ip", "127.0.0.1"],
                 ["init", d / "other"]):
        subprocess.run([sys.executable, SCRIPTS / "pki", *map(str, args)], check=True,
                       capture_output=True)
    return d


def test_rest_cert_and_key_go_together_and_must_be_readable(pki, tmp_path):
    cert, key = str(pki / "controller-cert.pem"), str(pki / "controller-key.pem")
    assert Config.from_env({}).rest_cert is None
    c = Config.from_env({"VPC_REST_CERT": cert, "VPC_REST_KEY": key})
    assert (c.rest_cert, c.rest_key) == (cert, key)
    with pytest.raises(ConfigError, match="go together"):
        Config.from_env({"VPC_REST_CERT": cert})
    with pytest.raises(ConfigError, match="VPC_REST_KEY .*readable"):
        Config.from_env({"VPC_REST_CERT": cert, "VPC_REST_KEY": str(tmp_path / "nope")})


def test_a_key_that_does_not_match_is_refused(pki):
    with pytest.raises(ssl.SSLError):
        server_context(str(pki / "controller-cert.pem"), str(pki / "other" / "ca-key.pem"))


def test_pki_keeps_what_exists_and_refuses_bad_names(pki):
    before = (pki / "ca-cert.pem").read_bytes()
    p = subprocess.run([sys.executable, SCRIPTS / "pki", "init", str(pki)],
                       capture_output=True, text=True)
    assert p.returncode == 0 and "kept" in p.stdout
    assert (pki / "ca-cert.pem").read_bytes() == before
    for bad in (["cert", str(pki), "../x"], ["cert", str(pki), "h1", "--ip", "nope"]):
        assert subprocess.run([sys.executable, SCRIPTS / "pki", *bad],
                              capture_output=True).returncode == 2


# An HTTPS /v1/health in its own process: os-ken's hub (imported by other unit
# tests) monkey-patches this process, and a green server thread next to a
# blocking client can stall; a separate process is what a client meets anyway.
HTTPS_HEALTH = """
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
server = http.server.HTTPServer(("127.0.0.1", 0), H)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def test_the_client_verifies_the_https_server_against_the_given_ca(pki):
    proc = subprocess.Popen([sys.executable, "-c", HTTPS_HEALTH, str(pki / "controller-cert.pem"),
                             str(pki / "controller-key.pem")], stdout=subprocess.PIPE, text=True)
    try:
        url = f"https://127.0.0.1:{int(proc.stdout.readline())}"
        ok = Client(url, 5, ssl_context=ca_context(str(pki / "ca-cert.pem")))
        assert ok.call("GET", "/v1/health") == (200, {"status": "ok"})
        foreign = Client(url, 5, ssl_context=ca_context(str(pki / "other" / "ca-cert.pem")))
        with pytest.raises(OSError):
            foreign.call("GET", "/v1/health")
    finally:
        proc.kill()
        proc.wait()


def test_vpcctl_refuses_a_ca_file_it_cannot_load(tmp_path):
    p = subprocess.run([sys.executable, "-m", "vpcctl", "--ca-file", str(tmp_path / "nope.pem"),
                        "health"], capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 2 and "--ca-file" in p.stderr


def host_join():
    loader = importlib.machinery.SourceFileLoader("host_join", str(SCRIPTS / "host-join"))
    spec = importlib.util.spec_from_loader("host_join", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def test_host_join_wants_all_ssl_files_exactly_for_ssl_targets(pki):
    hj = host_join()
    files = dict(ssl_key=str(pki / "controller-key.pem"),
                 ssl_cert=str(pki / "controller-cert.pem"), ssl_ca=str(pki / "ca-cert.pem"))
    none = dict.fromkeys(files)
    hj.check_ssl(SimpleNamespace(controller=["tcp:10.0.0.1:6653"], **none))
    hj.check_ssl(SimpleNamespace(controller=["ssl:10.0.0.1:6653"], **files))
    with pytest.raises(hj.UsageError, match="missing --ssl-ca"):
        hj.check_ssl(SimpleNamespace(controller=["ssl:10.0.0.1:6653"],
                                     **dict(files, ssl_ca=None)))
    with pytest.raises(hj.UsageError, match="are for ssl: controller targets"):
        hj.check_ssl(SimpleNamespace(controller=["tcp:10.0.0.1:6653"], **files))
    with pytest.raises(hj.UsageError, match="readable"):
        hj.check_ssl(SimpleNamespace(controller=["ssl:10.0.0.1:6653"],
                                     **dict(files, ssl_key="/nonexistent")))
    assert hj.parse_args(["--name", "h1", "--controller", "ssl:10.0.0.1:6653",
                          "--tunnel-ip", "198.18.0.11/24", "--ca-file", "x.pem"]).ca_file == "x.pem"
