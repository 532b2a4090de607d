"""TLS on both channels, end to end: REST over HTTPS verified against the lab
CA (vpcctl, host-join), OpenFlow over SSL from hosts joined with ssl:
targets, and a bridge whose certificate comes from a foreign CA (or that
presents none) refused by the controller.

Why in the lab: only a real ovs-vswitchd and os-ken's real SSL listener show
that the options fit together (set-ssl, ssl: targets through the lab's byte
relays, --ctl-privkey/--ctl-cert/--ca-certs) and that a refused bridge never
gets an OpenFlow session.
"""
import os
import socket
import ssl
import subprocess
import sys
import time

import pytest

from vpclab import lablib, labtls
from vpclab.labtraffic import ping, wait_until

REPO = lablib.SCRIPTS.rsplit("/", 1)[0]
VPCCTL = os.path.join(REPO, ".venv", "bin", "vpcctl")
FOREIGN_HOST = 3


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with labtls.secured_lab(str(tmp_path_factory.mktemp("tls"))) as (lab, ctl, pki, foreign):
        for i in (1, 2):
            labtls.join_ssl(lab, i, ctl.url, pki)
        labtls.join_ssl(lab, FOREIGN_HOST, ctl.url, pki, host_pki=foreign)
        lab.wait_connected(timeout=30, hosts=[1, 2], api_url=ctl.url)
        yield lab, ctl, pki, foreign


def vpcctl(url, *args, ca=None):
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "VPC_CA_FILE")}
    cmd = [VPCCTL, "--url", url] + (["--ca-file", ca] if ca else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=30)


def test_rest_is_https_and_vpcctl_verifies_the_ca(world):
    _, ctl, pki, foreign = world
    assert ctl.url.startswith("https://")
    ok = vpcctl(ctl.url, "--json", "health", ca=pki.ca_cert)
    assert ok.returncode == 0, ok.stderr
    # no CA given: the system store does not know the lab CA -> unreachable (3)
    unknown = vpcctl(ctl.url, "health")
    assert unknown.returncode == 3 and "certificate" in unknown.stderr.lower(), unknown.stderr
    wrong = vpcctl(ctl.url, "health", ca=foreign.ca_cert)
    assert wrong.returncode == 3, wrong.stderr
    plain = vpcctl(ctl.url.replace("https://", "http://"), "health")
    assert plain.returncode == 3, plain.stderr
    bad = vpcctl(ctl.url, "health", ca="/nonexistent.pem")
    assert bad.returncode == 2


def test_hosts_joined_over_ssl_pass_traffic(world):
    lab, ctl, pki, _ = world
    for i in (1, 2):
        targets = lab.ovs_vsctl(i, "get-controller", "br-int").split()
        assert targets == [labtls.ssl_target()]
        assert pki.ca_cert in lab.ovs_vsctl(i, "get-ssl")
    status, _ = ctl.api.post("/v1/tenants", {"name": "tls", "network": "vxlan"})
    assert status == 201
    assert ctl.api.post("/v1/tenants/tls/subnets", {"cidr": "10.9.0.0/24"})[0] == 201
    made = []
    try:
        for name, host in (("ta", 1), ("tb", 2)):
            lab.add_container(name, host=host)
            made.append((name, host, lab.attach("tls", name, host, ctl.url)))
        target = made[1][2]["ip"]
        assert wait_until(lambda: ping(lab, lab.container_ns("ta"), target, count=1).received,
                          timeout=20), "no ping over hosts joined with ssl:"
    finally:
        for name, host, port in made:
            lab.detach("tls", port["id"], host, ctl.url, check=False)
            lab.del_container(name)


def test_a_bridge_with_a_foreign_certificate_is_refused(world):
    lab, ctl, _, _ = world
    i = FOREIGN_HOST
    # it had as long as the others to connect, and more: nothing ever did
    time.sleep(3)
    assert not lab.controller_sees(i, ctl.url)
    assert not lab.is_connected(i)
    assert ctl.api.get("/v1/health")[1]["switches"] == 2
    with open(ctl.log, errors="replace") as f:
        log = f.read()
    refused = [line for line in log.splitlines() if "OpenFlow TLS connection from" in line]
    assert refused and "certificate" in refused[0].lower(), ctl.tail(30)
    print(f"controller log: {refused[0]}", file=sys.stderr)
    with open(os.path.join(lab.rundir(i), "ovs-vswitchd.log"), errors="replace") as f:
        ovs_log = f.read()
    said = [line for line in ovs_log.splitlines() if "ssl:" in line or "SSL" in line]
    print("bridge log:\n" + "\n".join(said[-3:]), file=sys.stderr)


def test_a_client_without_a_certificate_gets_no_openflow_session(world):
    _, ctl, pki, _ = world
    ctx = ssl.create_default_context(cafile=pki.ca_cert)      # trusts the controller
    got = b""
    with socket.create_connection(("127.0.0.1", ctl.of_port), timeout=5) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.settimeout(3)
                got = s.recv(8)          # an OpenFlow HELLO would come first
        except (ssl.SSLError, ConnectionError, TimeoutError) as exc:
            print(f"refused: {exc!r}", file=sys.stderr)
    assert got == b"", f"the controller spoke OpenFlow to a client without a certificate: {got!r}"
