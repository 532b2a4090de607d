"""Dual-stack addressing (model, IPAM, REST): IPv6 subnets beside IPv4 ones, a
port's addresses from each family its tenant has (or the one it chooses),
static requests honoured, the subnet-router anycast never handed out, bad
input a 400 that changes nothing, and records from before IPv6 still load."""
import pytest

from controller.model.state import State
from tests.support.rest_api import Api

R = "/v1/tenants/red"


@pytest.fixture
def api(tmp_path):
    api = Api(tmp_path)
    api.ok("POST", "/v1/hosts", {"name": "h1", "dpid": 1, "tunnel_ip": "198.18.0.11"})
    for t in ("red", "blue"):
        api.ok("POST", "/v1/tenants", {"name": t, "network": "vxlan"})
    return api


def port(api, tenant="red", name="p1", status=201, **extra):
    code, body = api.call("POST", f"/v1/tenants/{tenant}/ports",
                          {"host": "h1", "port": name, **extra})
    assert code == status, body
    return body


def test_ipv6_subnet_beside_ipv4_and_overlap_only_within_a_family(api):
    api.ok("POST", R + "/subnets", {"cidr": "10.0.0.0/24"})
    s6 = api.ok("POST", R + "/subnets", {"cidr": "fd00:1::/64"})
    assert s6 == {"tenant": "red", "cidr": "fd00:1::/64", "gateway": "fd00:1::1",
                  "ip_version": 6, "ports": 0}
    code, err = api.call("POST", R + "/subnets", {"cidr": "fd00:1::/96"})
    assert code == 409 and err["error"]["code"] == "overlap", err
    # another tenant may reuse the very same prefix (as with IPv4)
    api.ok("POST", "/v1/tenants/blue/subnets", {"cidr": "fd00:1::/64"})
    assert api.ok("GET", R)["subnets"] == ["10.0.0.0/24", "fd00:1::/64"]
    # the path may spell the prefix any valid way
    assert api.ok("GET", R + "/subnets/fd00:1:0:0::_64")["cidr"] == "fd00:1::/64"


@pytest.mark.parametrize("body,words", [
    ({"cidr": "fe80::/64"}, "global or unique-local"),
    ({"cidr": "ff02::/64"}, "global or unique-local"),
    ({"cidr": "fd00::/48"}, "between /64 and /120"),
    ({"cidr": "fd00::/121"}, "between /64 and /120"),
    ({"cidr": "fd00::1/64"}, "not a valid network"),
    ({"cidr": "fd00:1::/64", "gateway": "10.0.0.1"}, "IPv6 address"),
    ({"cidr": "fd00:1::/64", "gateway": "fd00:2::1"}, "not a usable address"),
    ({"cidr": "fd00:1::/64", "gateway": "fd00:1::"}, "not a usable address"),
    ({"cidr": "10.0.0.0/24", "gateway": "fd00:1::1"}, "IPv4 address"),
])
def test_bad_ipv6_subnets_are_refused_and_change_nothing(api, body, words):
    before = api.disk()
    code, err = api.call("POST", R + "/subnets", body)
    assert code == 400 and words in err["error"]["message"], err
    assert api.disk() == before


def test_a_port_of_a_dual_stack_tenant_gets_both_families(api):
    api.ok("POST", R + "/subnets", {"cidr": "10.0.0.0/24"})
    api.ok("POST", R + "/subnets", {"cidr": "fd00:1::/64"})
    p = port(api)
    assert (p["ip"], p["prefixlen"], p["gateway"]) == ("10.0.0.2", 24, "10.0.0.1")
    assert (p["ip6"], p["prefixlen6"], p["gateway6"], p["subnet6"]) == \
        ("fd00:1::2", 64, "fd00:1::1", "fd00:1::/64")
    assert port(api, name="p2")["ip6"] == "fd00:1::3"
    # pinning one family keeps the other; a chosen family gives only that one
    pinned = port(api, name="p3", ip="10.0.0.9")
    assert pinned["ip"] == "10.0.0.9" and pinned["ip6"] == "fd00:1::4"
    v4 = port(api, name="p4", family="ipv4")
    assert v4["ip"] and "ip6" not in v4
    v6 = port(api, name="p5", family="ipv6", ip6="fd00:1::abcd")
    assert v6["ip"] is None and v6["prefixlen"] is None and v6["ip6"] == "fd00:1::abcd"
    assert v6["mac"] != v4["mac"]
    # the listing and one port read back the same view
    assert api.ok("GET", f"{R}/ports/{v6['id']}") == v6
    assert api.ok("GET", R + "/subnets/fd00:1::_64")["ports"] == 4


def test_an_ipv4_only_tenant_sees_ports_as_before(api):
    api.ok("POST", R + "/subnets", {"cidr": "10.0.0.0/24"})
    p = port(api)
    assert not {"ip6", "prefixlen6", "gateway6", "subnet6"} & set(p)


def test_ipam_skips_the_subnet_router_anycast_and_the_gateway(api):
    api.ok("POST", R + "/subnets", {"cidr": "fd00:9::/120", "gateway": "fd00:9::2"})
    assert port(api, family="ipv6")["ip6"] == "fd00:9::1"
    assert port(api, name="p2", family="ipv6")["ip6"] == "fd00:9::3"
    for taken in ("fd00:9::", "fd00:9::2"):
        code, err = api.call("POST", R + "/ports", {"host": "h1", "port": "px", "ip6": taken})
        assert code == 400 and "anycast" in err["error"]["message"], err


@pytest.mark.parametrize("extra,status,words", [
    ({"ip6": "fd00:1::2"}, 409, "already used"),
    ({"ip6": "fd00:7::5"}, 400, "not inside any IPv6 subnet"),
    ({"ip6": "fe80::5"}, 400, "link-local"),
    ({"ip6": "10.0.0.5"}, 400, "not a valid IPv6"),
    ({"ip": "fd00:1::5"}, 400, "not a valid IPv4"),
    ({"subnet6": "fd00:7::/64"}, 404, "no subnet"),
    ({"subnet6": "10.0.0.0/24"}, 400, "only IPv6"),
    ({"subnet": "fd00:1::/64"}, 400, "only IPv4"),
    ({"ip6": "fd00:1::5", "subnet6": "fd00:1::/64", "family": "ipv4"}, 400, "family ipv4"),
    ({"ip": "10.0.0.5", "family": "ipv6"}, 400, "family ipv6"),
    ({"family": "ipx"}, 400, "family must be one of"),
])
def test_bad_port_addresses_are_refused_and_change_nothing(api, extra, status, words):
    api.ok("POST", R + "/subnets", {"cidr": "10.0.0.0/24"})
    api.ok("POST", R + "/subnets", {"cidr": "fd00:1::/64"})
    port(api)
    before = api.disk()
    code, err = api.call("POST", R + "/ports", {"host": "h1", "port": "px", **extra})
    assert code == status and words in err["error"]["message"], err
    assert api.disk() == before


def test_a_family_the_tenant_lacks_is_a_conflict(api):
    api.ok("POST", R + "/subnets", {"cidr": "10.0.0.0/24"})
    for extra in ({"family": "ipv6"}, {"family": "dual"}, {"ip6": "fd00:1::5"}):
        code, err = api.call("POST", R + "/ports", {"host": "h1", "port": "px", **extra})
        assert code == 409 and err["error"]["code"] == "no_subnet", (extra, err)


def test_an_ipv6_subnet_with_ports_cannot_be_deleted(api):
    api.ok("POST", R + "/subnets", {"cidr": "10.0.0.0/24"})
    api.ok("POST", R + "/subnets", {"cidr": "fd00:1::/64"})
    p = port(api)
    code, err = api.call("DELETE", R + "/subnets/fd00:1::_64")
    assert code == 409 and err["error"]["code"] == "in_use", err
    api.ok("DELETE", f"{R}/ports/{p['id']}")
    api.ok("DELETE", R + "/subnets/fd00:1::_64")
    assert api.ok("GET", R)["subnets"] == ["10.0.0.0/24"]


def test_dual_stack_ports_survive_a_restart_and_old_records_load(api, tmp_path):
    api.ok("POST", R + "/subnets", {"cidr": "10.0.0.0/24"})
    api.ok("POST", R + "/subnets", {"cidr": "fd00:1::/64"})
    p = port(api)
    again = State(api.store.load())             # what a restart reads back
    assert (again.ports[p["id"]].ip6, again.ports[p["id"]].subnet6) == ("fd00:1::2", "fd00:1::/64")
    assert again.port_with_ip("red", "fd00:1::2").id == p["id"]
    old = State({"ports": {"x": {"id": "x", "tenant": "red", "host": "h1", "port": "c",
                                 "ip": "10.0.0.3", "mac": "02:00:00:00:00:03",
                                 "subnet": "10.0.0.0/24", "serial": 7}}})
    assert old.ports["x"].ip6 is None and old.ports["x"].subnet6 is None


def test_an_ipv6_only_port_cannot_carry_ipv4_nat(api):
    api.ok("POST", "/v1/hosts", {"name": "h2", "dpid": 2, "tunnel_ip": "198.18.0.12",
                                 "external_port": "eth2", "external_ip": "203.0.113.12",
                                 "external_gateway": "203.0.113.1"})
    api.ok("POST", R + "/subnets", {"cidr": "fd00:1::/64"})
    code, p = api.call("POST", R + "/ports", {"host": "h2", "port": "p6"})
    assert code == 201 and p["ip"] is None, p
    before = api.disk()
    for path, body in (("/port-forwards", {"port_id": p["id"], "protocol": "tcp",
                                           "external_port": 8080, "internal_port": 80}),
                       ("/floating-ips", {"port_id": p["id"], "external_ip": "203.0.113.50"})):
        code, err = api.call("POST", R + path, body)
        assert code == 409 and err["error"]["code"] == "no_ipv4", err
    assert api.disk() == before


def test_the_first_ipv6_subnet_gives_the_default_group_its_ipv6_egress_twin(api):
    """As AWS does; found by the incremental property with a ports rule in the group."""
    api.ok("POST", R + "/subnets", {"cidr": "10.0.0.0/24"})
    api.ok("POST", R + "/security-groups/default/rules",
           {"direction": "ingress", "protocol": "tcp", "ports": "80", "remote": "sg:default"})
    api.ok("POST", R + "/subnets", {"cidr": "fd00:1::/64"})
    api.ok("POST", R + "/subnets", {"cidr": "fd00:2::/64"})          # only once
    rules = api.ok("GET", R + "/security-groups/default")["rules"]
    egress = sorted(r["remote"] for r in rules if r["direction"] == "egress")
    assert egress == ["0.0.0.0/0", "::/0"]
