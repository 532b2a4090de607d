"""The controller with authentication on (VPC_AUTH=on), end to end.

Two hosts join with their own host tokens through scripts/host-join and
attach through scripts/attach; a host token cannot register or attach as
another host; a tenant token sees its own tenant (with its ports' host names)
and gets 403/404 on every route of the table aimed at another tenant, which
stays as it was.  And a controller asked to serve without tokens beyond
loopback refuses to start, saying why.
"""
import secrets

import pytest

from tests.support.labhelp import pings, wait_for
from tests.support.tenant_wall import assert_walled_off
from vpclab import lablib
from vpclab.labctl import Api, Controller


@pytest.fixture(scope="module")
def authed(controller_factory):
    ctl = controller_factory("authctl", start=False)
    ctl.auth = True
    ctl.start()
    yield ctl
    ctl.stop()


@pytest.fixture(scope="module")
def world(authed):
    admin = authed.api
    lab = lablib.Lab(name=f"va{secrets.token_hex(2)}", hosts=2, of_port=authed.of_port)
    try:
        lab.up()
        tokens = {}
        for i in lab.hosts_range():
            status, made = admin.post(f"/v1/hosts/{lab.host_name(i)}/tokens", {"name": "join"})
            assert status == 201, made
            tokens[i] = made["token"]
        for t, cidr in (("red", "10.1.0.0/24"), ("blue", "10.2.0.0/24")):
            assert admin.post("/v1/tenants", {"name": t, "network": "vxlan"})[0] == 201
            assert admin.post(f"/v1/tenants/{t}/subnets", {"cidr": cidr})[0] == 201
            status, made = admin.post(f"/v1/tenants/{t}/tokens", {"name": "owner"})
            tokens[t] = made["token"]
        yield lab, tokens
    finally:
        lab.down()


def _attach(lab, monkeypatch, token, tenant, name, host):
    monkeypatch.setenv("VPC_TOKEN", token)
    try:
        lab.add_container(name, host=host)
        return lab.attach(tenant, name, host, lab_url(lab), check=False)
    finally:
        monkeypatch.delenv("VPC_TOKEN")


def lab_url(lab):
    return lab.api_url


def test_hosts_join_and_attach_with_host_tokens(authed, world, monkeypatch):
    lab, tokens = world
    lab.api_url = authed.url
    h1, h2 = list(lab.hosts_range())
    with pytest.raises(lablib.LabError, match="not allowed"):     # h2 posing as h1
        lab.join(h2, authed.url, extra=["--token", tokens[h1]])
    with pytest.raises(lablib.LabError, match="token"):           # no token at all
        lab.join(h1, authed.url)
    for i in (h1, h2):
        lab.join(i, authed.url, extra=["--token", tokens[i]])
    lab.join(h1, authed.url, extra=["--token", tokens[h1]])       # again: harmless
    assert wait_for(lambda: all(h["connected"] for h in authed.api.get("/v1/hosts")[1]), 30)

    refused = _attach(lab, monkeypatch, tokens[h1], "red", "cx", h2)    # h1's token on h2
    assert refused.returncode != 0 and "not allowed" in refused.stderr
    assert authed.api.get("/v1/tenants/red/ports")[1] == []
    a = _attach(lab, monkeypatch, tokens[h1], "red", "c1", h1)
    b = _attach(lab, monkeypatch, tokens[h2], "red", "c2", h2)
    assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
    ip2 = authed.api.get("/v1/tenants/red/ports")[1]
    ip2 = [p["ip"] for p in ip2 if p["host"] == lab.host_name(h2)][0]
    assert pings(lab, lab.container_ns("c1"), ip2)


def test_a_tenant_token_cannot_see_or_touch_another_tenant(authed, world):
    lab, tokens = world
    red, blue = Api(authed.url, token=tokens["red"]), Api(authed.url, token=tokens["blue"])
    assert_walled_off(authed.api, blue, "red", "blue", lab.host_name(1), "10.1.0.0/24")
    # its own tenant: everything, ports with their host names; no hosts, no topology
    assert [t["name"] for t in red.get("/v1/tenants")[1]] == ["red"]
    assert {p["host"] for p in red.get("/v1/tenants/red/ports")[1]} <= \
        {lab.host_name(i) for i in lab.hosts_range()}
    assert red.get("/v1/topology")[0] == 403 and red.get("/v1/hosts")[0] == 403
    assert Api(authed.url).get("/v1/tenants")[0] == 401


def test_no_tokens_beyond_loopback_is_refused(tmp_path):
    ctl = Controller(tmp_path, extra_env={"VPC_REST_HOST": "0.0.0.0", "VPC_AUTH": "off"})
    with pytest.raises(RuntimeError, match="exited"):
        ctl.start(timeout=30)
    assert "not a loopback address and VPC_AUTH=off" in ctl.tail()
    assert ctl.proc.returncode != 0
