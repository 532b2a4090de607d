"""The whole product secured at once: HTTPS on REST, OpenFlow over SSL, tokens on.

Why one more lab test: test_tls.py and test_auth.py each switch on one half;
a real deployment has both, and only then do the pieces have to fit together
-- host-join with a host token *and* ssl: targets with per-host certificates
from scripts/pki, scripts/attach with a host token file against an https API,
a tenant token walled off over HTTPS, and a bridge with a foreign CA's
certificate refused while the others run.

The hosts reach the controller through labtls's relays (ssl:127.0.0.1 inside
each host namespace); the admin acts through ``Controller.api`` (the token the
controller made, the lab CA).
"""
import os

import pytest

from tests.support.labhelp import pings, wait_for
from tests.support.tenant_wall import assert_walled_off
from vpclab import labtls
from vpclab.labctl import Api

FOREIGN_HOST = 3
TENANTS = (("red", "10.1.0.0/24"), ("blue", "10.2.0.0/24"))


def _secret_file(directory, name, token):
    path = os.path.join(directory, f"{name}.token")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return path


@pytest.fixture(scope="module")
def product(tmp_path_factory):
    """Controller (HTTPS + OpenFlow SSL + auth), three hosts joined with host
    tokens over ssl: (h3 with a foreign CA's certificate), tenants red and
    blue with a tenant token each."""
    base = str(tmp_path_factory.mktemp("secure"))
    with labtls.secured_lab(base, auth=True) as (lab, ctl, pki, foreign):
        files = {}
        for i in lab.hosts_range():
            status, made = ctl.api.post(f"/v1/hosts/{lab.host_name(i)}/tokens",
                                        {"name": "join"})
            assert status == 201, made
            files[i] = _secret_file(base, lab.host_name(i), made["token"])
            labtls.join_ssl(lab, i, ctl.url, pki,
                            host_pki=foreign if i == FOREIGN_HOST else None,
                            extra=["--token-file", files[i]])
        assert wait_for(lambda: all(_connected(ctl, i) for i in (1, 2)), 30), \
            ctl.api.get("/v1/hosts")
        tokens = {}
        for t, cidr in TENANTS:
            assert ctl.api.post("/v1/tenants", {"name": t, "network": "vxlan"})[0] == 201
            assert ctl.api.post(f"/v1/tenants/{t}/subnets", {"cidr": cidr})[0] == 201
            status, made = ctl.api.post(f"/v1/tenants/{t}/tokens", {"name": "owner"})
            assert status == 201, made
            tokens[t] = made["token"]
        yield lab, ctl, pki, files, tokens


def _connected(ctl, i):
    status, host = ctl.api.get(f"/v1/hosts/h{i}")
    return status == 200 and host.get("connected")


@pytest.fixture(scope="module")
def attached(product):
    """Red containers on h1 and h2, attached by scripts/attach with each host's
    token file and the lab CA (--ca-file); detached (with the same token) and removed at the end."""
    lab, ctl, pki, files, _ = product
    made = []
    try:
        for name, host in (("sp1", 1), ("sp2", 2)):
            lab.add_container(name, host=host)
            made.append((name, host, None))
            port = lab.attach("red", name, host, ctl.url,
                              extra=["--token-file", files[host], "--ca-file", pki.ca_cert])
            made[-1] = (name, host, port)
        yield [p for _, _, p in made]
    finally:
        for name, host, port in reversed(made):
            if port:
                lab.detach("red", port["id"], host, ctl.url, check=False,
                           extra=["--token-file", files[host], "--ca-file", pki.ca_cert])
            lab.del_container(name)


def test_both_channels_are_secured(product):
    lab, ctl, pki, _, _ = product
    assert ctl.url.startswith("https://")
    assert Api(ctl.url, ca_file=pki.ca_cert).get("/v1/tenants")[0] == 401   # no token
    with pytest.raises(OSError):                     # no plain HTTP on the REST port
        Api(ctl.url.replace("https://", "http://"), timeout=3).get("/v1/health")
    for i in (1, 2):
        assert lab.ovs_vsctl(i, "get-controller", "br-int").split() == [labtls.ssl_target()]
    assert ctl.api.get("/v1/health")[1]["switches"] == 2


def test_containers_attached_with_host_tokens_ping_across_hosts(product, attached):
    lab = product[0]
    first, second = attached
    assert {first["host"], second["host"]} == {"h1", "h2"}
    assert pings(lab, lab.container_ns("sp1"), second["ip"])
    assert pings(lab, lab.container_ns("sp2"), first["ip"])


def test_a_host_token_cannot_attach_on_another_host(product):
    lab, ctl, pki, files, _ = product
    lab.add_container("spx", host=2)
    try:
        with labtls.trusting(pki.ca_cert):
            refused = lab.attach("red", "spx", 2, ctl.url, check=False,
                                 extra=["--token-file", files[1]])     # h1's token on h2
        assert refused.returncode != 0 and "not allowed" in refused.stderr, refused.stderr
        assert all(p["port"] != "spx" for p in ctl.api.get("/v1/tenants/red/ports")[1])
    finally:
        lab.del_container("spx")


def test_a_tenant_token_cannot_see_or_touch_another_tenant(product, attached):
    lab, ctl, pki, _, tokens = product
    blue = Api(ctl.url, ca_file=pki.ca_cert, token=tokens["blue"])
    assert_walled_off(ctl.api, blue, "red", "blue", lab.host_name(1), TENANTS[0][1])
    red = Api(ctl.url, ca_file=pki.ca_cert, token=tokens["red"])
    assert {p["id"] for p in red.get("/v1/tenants/red/ports")[1]} >= {p["id"] for p in attached}


def test_a_bridge_with_a_foreign_certificate_never_connects(product):
    lab, ctl, _, _, _ = product
    # registered through REST with its valid host token, yet its bridge is refused:
    # wait until it has tried (the controller logs each refused handshake)
    assert wait_for(lambda: _refusals(ctl), 30), ctl.tail(30)
    status, host = ctl.api.get(f"/v1/hosts/{lab.host_name(FOREIGN_HOST)}")
    assert status == 200 and host["connected"] is False, host
    assert not lab.is_connected(FOREIGN_HOST)
    assert ctl.api.get("/v1/health")[1]["switches"] == 2
    assert "certificate" in _refusals(ctl)[0].lower(), ctl.tail(30)


def _refusals(ctl):
    with open(ctl.log, errors="replace") as f:
        return [ln for ln in f if "OpenFlow TLS connection from" in ln]
