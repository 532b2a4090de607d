"""Port names and aliases, a tenant's DHCP options, its DNS records, and the
view each host's agent answers DHCP and DNS from (service/names.py)."""
import threading
import time

import pytest

from tests.support.rest_api import Api

T = "/v1/tenants/blue"


@pytest.fixture
def api(tmp_path):
    a = Api(tmp_path)
    a.ok("POST", "/v1/hosts", {"name": "h1", "dpid": "1", "tunnel_ip": "198.18.0.1"})
    a.ok("POST", "/v1/hosts", {"name": "h2", "dpid": "2", "tunnel_ip": "198.18.0.2"})
    for t in ("blue", "red"):
        a.ok("POST", "/v1/tenants", {"name": t, "network": "vxlan"})
        a.ok("POST", f"/v1/tenants/{t}/subnets", {"cidr": "10.0.0.0/24"})
    a.ok("POST", T + "/subnets", {"cidr": "fd00:1::/64"})
    yield a
    a.store.close()


def port(api, host, name=None, aliases=None, tenant="blue", **kw):
    body = {"host": host, "port": f"c{len(api.state.ports)}", **kw}
    if name is not None:
        body["name"] = name
    if aliases is not None:
        body["aliases"] = aliases
    return api.ok("POST", f"/v1/tenants/{tenant}/ports", body)


def test_a_port_has_names_and_is_told_its_gateways_as_dns(api):
    p = port(api, "h1", name="Web1", aliases=["web", "WWW.", "web"])
    assert (p["name"], p["aliases"]) == ("web1", ["web", "www"])
    assert p["dns"] == {"nameservers": ["10.0.0.1", "fd00:1::1"], "domain": "blue.internal",
                        "search": ["blue.internal"]}
    assert api.ok("GET", f"{T}/ports/{p['id']}")["name"] == "web1"


def test_renaming_a_port_changes_no_flow(api):
    p = port(api, "h1")
    api.changes.clear()
    got = api.ok("PATCH", f"{T}/ports/{p['id']}", {"name": "db", "aliases": ["sql"]})
    assert (got["name"], got["aliases"], got["security_groups"]) == ("db", ["sql"], ["default"])
    assert api.changes in ([], [[]])
    got = api.ok("PATCH", f"{T}/ports/{p['id']}", {"name": None})
    assert (got["name"], got["aliases"]) == (None, ["sql"])


@pytest.mark.parametrize("body", [{"name": "a b"}, {"name": "-x"}, {"name": "x" * 64},
                                  {"aliases": "web"}, {"aliases": ["ok", 7]},
                                  {"aliases": [f"a{i}" for i in range(33)]}, {"name": 5}])
def test_bad_names_are_refused_and_change_nothing(api, body):
    p = port(api, "h1", name="keep")
    before = api.disk()
    code, err = api.call("PATCH", f"{T}/ports/{p['id']}", body)
    assert code == 400 and err["error"]["code"] in ("invalid", "out_of_range")
    assert api.disk() == before
    code, _ = api.call("POST", T + "/ports", {"host": "h1", "port": "cx", **body})
    assert code == 400 and api.disk() == before


def test_dhcp_options_defaults_changes_and_reset(api):
    assert api.ok("GET", T + "/dhcp-options") == {
        "tenant": "blue", "domain": "blue.internal", "resolvers": [], "lease_time": 3600,
        "ttl": 5}
    got = api.ok("PATCH", T + "/dhcp-options",
                 {"domain": "Corp.Example.", "resolvers": ["10.9.9.9", "10.9.9.8:53",
                                                          "127.0.0.1:5353", "[fd00::53]:5300",
                                                          ], "lease_time": 120})
    assert got == {"tenant": "blue", "domain": "corp.example",
                   "resolvers": ["10.9.9.9", "10.9.9.8", "127.0.0.1:5353", "[fd00::53]:5300"],
                   "lease_time": 120, "ttl": 5}
    got = api.ok("PATCH", T + "/dhcp-options", {"domain": None, "lease_time": None})
    assert (got["domain"], got["lease_time"], got["resolvers"][0]) == \
        ("blue.internal", 3600, "10.9.9.9")
    assert api.ok("GET", "/v1/tenants/red/dhcp-options")["resolvers"] == []


@pytest.mark.parametrize("body", [{"resolvers": ["10.0.0.1:0"]}, {"resolvers": ["x"]},
                                  {"resolvers": ["1.1.1.1"] * 5}, {"ttl": 0},
                                  {"lease_time": 86401}, {"domain": "a..b"}, {"color": 1}])
def test_bad_dhcp_options_are_refused(api, body):
    before = api.disk()
    code, _ = api.call("PATCH", T + "/dhcp-options", body)
    assert code == 400 and api.disk() == before


def test_dns_records_of_a_tenant_only_and_shared_names(api):
    a = port(api, "h1", name="web1", aliases=["web"])
    b = port(api, "h2", name="web2", aliases=["web"])
    port(api, "h1", name="web", tenant="red")
    recs = {r["name"]: r for r in api.ok("GET", T + "/dns-records")}
    assert recs["web"]["ip"] == [a["ip"], b["ip"]] and recs["web"]["ports"] == [a["id"], b["id"]]
    assert recs["web"]["fqdn"] == "web.blue.internal"
    assert recs["web1"]["ip6"] == [a["ip6"]]
    assert "ip-" + a["ip"].replace(".", "-") in recs          # AWS-style name of every port
    red = {r["name"] for r in api.ok("GET", "/v1/tenants/red/dns-records")}
    assert red == {"web", "ip-10-0-0-2"}


def test_the_agents_view_has_its_hosts_ports_and_their_tenants_names(api):
    a = port(api, "h1", name="web1", aliases=["web"])
    b = port(api, "h2", name="web2", aliases=["web"], family="ipv4")
    view = api.ok("GET", "/v1/hosts/h1/services")
    assert view["service_port"] == "vpc-svc"
    [mine] = view["ports"]
    assert mine == {"serial": api.state.ports[a["id"]].serial, "id": a["id"], "tenant": "blue",
                    "mac": a["mac"], "name": "web1", "ip": a["ip"], "prefixlen": 24,
                    "gateway": "10.0.0.1", "ip6": a["ip6"], "prefixlen6": 64,
                    "gateway6": "fd00:1::1", "mtu": a["mtu"]}
    blue = view["tenants"]["blue"]
    assert set(view["tenants"]) == {"blue"}
    assert blue["domain"] == "blue.internal" and blue["ttl"] == 5
    assert blue["router_mac"] == "02:76:70:63:00:01"
    assert blue["router_ll6"] == "fe80::76:70ff:fe63:1"
    assert {(tuple(r["names"]), r["ip"], r["ip6"]) for r in blue["records"]} == {
        (("web1", "web", "ip-10-0-0-2"), a["ip"], a["ip6"]),
        (("web2", "web", "ip-10-0-0-3"), b["ip"], None)}
    assert view["etag"] == api.ok("GET", "/v1/hosts/h1/services")["etag"]


def test_the_etag_changes_with_a_name_a_port_or_an_option(api):
    a = port(api, "h1")
    etag = api.ok("GET", "/v1/hosts/h1/services")["etag"]
    steps = [lambda: api.ok("PATCH", f"{T}/ports/{a['id']}", {"aliases": ["x"]}),
             lambda: port(api, "h2", name="far"),
             lambda: api.ok("PATCH", T + "/dhcp-options", {"ttl": 9})]
    for step in steps:
        step()
        new = api.ok("GET", "/v1/hosts/h1/services")["etag"]
        assert new != etag
        etag = new
    port(api, "h2", tenant="red")                   # another tenant, not on h1: no change
    assert api.ok("GET", "/v1/hosts/h1/services")["etag"] == etag


def test_a_long_poll_returns_when_the_view_changes(api):
    a = port(api, "h1")
    etag = api.ok("GET", "/v1/hosts/h1/services")["etag"]
    t0 = time.monotonic()
    same = api.ok("GET", f"/v1/hosts/h1/services?since={etag}&wait=0.3")
    assert same["etag"] == etag and time.monotonic() - t0 >= 0.3
    threading.Timer(0.3, lambda: api.ok("PATCH", f"{T}/ports/{a['id']}",
                                        {"name": "late"})).start()
    t0 = time.monotonic()
    got = api.ok("GET", f"/v1/hosts/h1/services?since={etag}&wait=10")
    assert got["etag"] != etag and got["ports"][0]["name"] == "late"
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("query", ["wait=31", "wait=-1", "wait=x", "since=" + "a" * 65])
def test_bad_long_poll_queries_are_400(api, query):
    code, err = api.call("GET", f"/v1/hosts/h1/services?{query}")
    assert code == 400, err


def test_the_services_port_name_cannot_be_a_container_port(api):
    code, err = api.call("POST", T + "/ports", {"host": "h1", "port": "vpc-svc"})
    assert code == 409 and "service port" in err["error"]["message"]
