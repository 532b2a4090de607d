"""REST v1: the contract of ../shared/DESIGN.md, validation, and 'a rejected
request changes nothing' (neither memory nor disk)."""
import threading

import pytest

from controller.model.state import State
from controller.store.msgpack_store import MsgpackStore
from tests.support.rest_api import Api


@pytest.fixture
def api(tmp_path):
    a = Api(tmp_path)
    yield a
    a.store.close()


@pytest.fixture
def world(api):
    api.ok("POST", "/v1/hosts", {"name": "h1", "dpid": "0000000000000001", "tunnel_ip": "198.18.0.11",
                                 "uplink_port": "patch-phy"})
    api.ok("POST", "/v1/hosts", {"name": "h2", "dpid": 2, "tunnel_ip": "198.18.0.12"})
    api.ok("POST", "/v1/tenants", {"name": "red", "network": "vlan"})
    api.ok("POST", "/v1/tenants/red/subnets", {"cidr": "10.0.0.0/24"})
    return api


def test_health_and_topology(api):
    assert api.call("GET", "/v1/health") == (200, {"status": "ok"})
    assert api.call("GET", "/v1/topology")[0] == 200


def test_host_round_trip(world):
    h = world.ok("GET", "/v1/hosts/h1")
    assert h == {"name": "h1", "dpid": "0000000000000001", "tunnel_ip": "198.18.0.11",
                 "uplink_port": "patch-phy", "external_port": None, "external_ip": None,
                 "external_gateway": None, "connected": False}
    assert [x["name"] for x in world.ok("GET", "/v1/hosts")] == ["h1", "h2"]
    assert world.ok("GET", "/v1/hosts/h2")["dpid"] == "0000000000000002"


def test_tenant_segments_allocated_and_checked(world):
    t = world.ok("POST", "/v1/tenants", {"name": "blue", "network": "vlan"})
    assert (t["segment"], t["id"]) == (2, 2)
    assert world.call("POST", "/v1/tenants", {"name": "x", "network": "vlan", "segment": 2})[0] == 409
    vx = world.ok("POST", "/v1/tenants", {"name": "vx", "network": "vxlan", "segment": 5000})
    assert vx["segment"] == 5000
    gre = world.ok("POST", "/v1/tenants", {"name": "g", "network": "gre"})
    assert gre["segment"] == 1     # GRE keys are their own space


def test_same_cidr_in_two_tenants_but_no_overlap_within_one(world):
    world.ok("POST", "/v1/tenants", {"name": "blue", "network": "vlan"})
    world.ok("POST", "/v1/tenants/blue/subnets", {"cidr": "10.0.0.0/24"})
    code, err = world.call("POST", "/v1/tenants/red/subnets", {"cidr": "10.0.0.128/25"})
    assert code == 409 and err["error"]["code"] == "overlap"


def test_port_ipam_and_view(world):
    p = world.ok("POST", "/v1/tenants/red/ports", {"host": "h1", "port": "c1"})
    assert p["ip"] == "10.0.0.2" and p["prefixlen"] == 24 and p["gateway"] == "10.0.0.1"
    assert p["mtu"] == 1500 and p["status"] == "down"
    first = int(p["mac"][:2], 16)
    assert first & 2 and not first & 1       # locally administered unicast
    q = world.ok("POST", "/v1/tenants/red/ports", {"host": "h2", "port": "c1", "ip": "10.0.0.9",
                                                   "mac": "02:AA:bb:cc:dd:ee"})
    assert q["mac"] == "02:aa:bb:cc:dd:ee"
    r = world.ok("POST", "/v1/tenants/red/ports", {"host": "h2", "port": "c2"})
    assert r["ip"] == "10.0.0.3"
    assert world.ok("GET", f"/v1/tenants/red/ports/{p['id']}")["id"] == p["id"]
    assert len(world.ok("GET", "/v1/tenants/red/ports")) == 3
    world.ok("DELETE", f"/v1/tenants/red/ports/{p['id']}")
    assert world.call("GET", f"/v1/tenants/red/ports/{p['id']}")[0] == 404


def test_subnet_delete_by_underscore_name(world):
    world.ok("POST", "/v1/tenants/red/subnets", {"cidr": "10.1.0.0/16", "gateway": "10.1.255.254"})
    assert world.ok("GET", "/v1/tenants/red/subnets/10.1.0.0_16")["gateway"] == "10.1.255.254"
    world.ok("DELETE", "/v1/tenants/red/subnets/10.1.0.0_16")
    assert [s["cidr"] for s in world.ok("GET", "/v1/tenants/red/subnets")] == ["10.0.0.0/24"]


BAD = [
    # (method, path, body, status, error code or None)
    ("POST", "/v1/hosts", {"name": "h1", "dpid": 9, "tunnel_ip": "198.18.0.99"}, 409, "duplicate"),
    ("POST", "/v1/hosts", {"name": "h9", "dpid": 1, "tunnel_ip": "198.18.0.99"}, 409, "duplicate"),
    ("POST", "/v1/hosts", {"name": "h9", "dpid": "xyz", "tunnel_ip": "198.18.0.99"}, 400, None),
    ("POST", "/v1/hosts", {"name": "h9", "dpid": 0, "tunnel_ip": "198.18.0.99"}, 400, None),
    ("POST", "/v1/hosts", {"name": "h9", "dpid": 9, "tunnel_ip": "198.18.0.300"}, 400, None),
    ("POST", "/v1/hosts", {"name": "h 9", "dpid": 9, "tunnel_ip": "198.18.0.9"}, 400, None),
    ("POST", "/v1/hosts", {"name": "h9", "dpid": 9}, 400, "missing_field"),
    ("POST", "/v1/hosts", {"name": "h9", "dpid": 9, "tunnel_ip": "198.18.0.9",
                           "external_port": "ext0"}, 400, None),
    ("POST", "/v1/tenants", {"name": "red", "network": "vlan"}, 409, "duplicate"),
    ("POST", "/v1/tenants", {"name": "t", "network": "vlan", "segment": 4095}, 400, "out_of_range"),
    ("POST", "/v1/tenants", {"name": "t", "network": "vlan", "segment": 0}, 400, "out_of_range"),
    ("POST", "/v1/tenants", {"name": "t", "network": "vlan", "segment": "7"}, 400, None),
    ("POST", "/v1/tenants", {"name": "t", "network": "vlan", "segment": True}, 400, None),
    ("POST", "/v1/tenants", {"name": "t", "network": "vxlan", "segment": 16777216}, 400, None),
    ("POST", "/v1/tenants", {"name": "t", "network": "ethernet"}, 400, None),
    ("POST", "/v1/tenants", {"name": "t", "network": "vlan", "color": "red"}, 400, "unknown_field"),
    ("POST", "/v1/tenants", ["not", "an", "object"], 400, None),
    ("POST", "/v1/tenants/red/subnets", {"cidr": "10.0.0.1/24"}, 400, None),
    ("POST", "/v1/tenants/red/subnets", {"cidr": "10.9.0.0/31"}, 400, None),
    ("POST", "/v1/tenants/red/subnets", {"cidr": "fe80::/64"}, 400, None),
    ("POST", "/v1/tenants/red/subnets", {"cidr": "fd00::/130"}, 400, None),
    ("POST", "/v1/tenants/red/subnets", {"cidr": "10.9.0.0"}, 400, None),
    ("POST", "/v1/tenants/red/subnets", {"cidr": "10.9.0.0/24", "gateway": "10.8.0.1"}, 400, None),
    ("POST", "/v1/tenants/red/subnets", {"cidr": "10.9.0.0/24", "gateway": "10.9.0.255"}, 400, None),
    ("POST", "/v1/tenants/red/subnets", {"cidr": "10.0.0.0/16"}, 409, "overlap"),
    ("POST", "/v1/tenants/nope/subnets", {"cidr": "10.9.0.0/24"}, 404, None),
    ("POST", "/v1/tenants/red/ports", {"host": "h1", "port": "c1", "ip": "10.0.0.1"}, 400, None),
    ("POST", "/v1/tenants/red/ports", {"host": "h1", "port": "c1", "ip": "10.0.0.255"}, 400, None),
    ("POST", "/v1/tenants/red/ports", {"host": "h1", "port": "c1", "ip": "10.0.1.5"}, 400, None),
    ("POST", "/v1/tenants/red/ports", {"host": "h1", "port": "c1", "ip": "10.0.0.50"}, 409, "ip_in_use"),
    ("POST", "/v1/tenants/red/ports", {"host": "h1", "port": "c1", "mac": "01:00:5e:00:00:01"}, 400, None),
    ("POST", "/v1/tenants/red/ports", {"host": "h1", "port": "c1", "mac": "02:00:00:00:00"}, 400, None),
    ("POST", "/v1/tenants/red/ports", {"host": "h1", "port": "c1", "mac": "02:00:00:00:00:50"}, 409,
     "mac_in_use"),
    ("POST", "/v1/tenants/red/ports", {"host": "h1", "port": "used"}, 409, "in_use"),
    ("POST", "/v1/tenants/red/ports", {"host": "h1", "port": "patch-phy"}, 409, "in_use"),
    ("POST", "/v1/tenants/red/ports", {"host": "h1", "port": "much-too-long-name"}, 400, None),
    ("POST", "/v1/tenants/red/ports", {"host": "h7", "port": "c1"}, 404, "unknown_host"),
    ("POST", "/v1/tenants/nope/ports", {"host": "h1", "port": "c1"}, 404, None),
    ("POST", "/v1/tenants/empty/ports", {"host": "h1", "port": "c1"}, 409, "no_subnet"),
    ("DELETE", "/v1/tenants/red", None, 409, "in_use"),
    ("DELETE", "/v1/hosts/h1", None, 409, "in_use"),
    ("DELETE", "/v1/tenants/red/subnets/10.0.0.0_24", None, 409, "in_use"),
    ("DELETE", "/v1/tenants/red/subnets/10.7.0.0_24", None, 404, None),
    ("DELETE", "/v1/tenants/red/ports/nope", None, 404, None),
    ("GET", "/v1/tenants/nope", None, 404, None),
    ("GET", "/v1/nowhere", None, 404, None),
    ("PATCH", "/v1/tenants", {}, 405, None),
]


@pytest.mark.parametrize("method,path,body,status,code", BAD,
                         ids=[f"{m} {p} {status}" for m, p, _, status, _ in BAD])
def test_bad_requests_are_4xx_and_change_nothing(world, method, path, body, status, code):
    world.ok("POST", "/v1/tenants", {"name": "empty", "network": "gre"})
    world.ok("POST", "/v1/tenants/red/ports", {"host": "h1", "port": "used", "ip": "10.0.0.50",
                                               "mac": "02:00:00:00:00:50"})
    before_disk, before = world.disk(), world.state.to_collections()
    got, err = world.call(method, path, body)
    assert got == status, err
    assert set(err) == {"error"} and err["error"]["message"]
    if code:
        assert err["error"]["code"] == code
    assert world.disk() == before_disk
    assert world.state.to_collections() == before


@pytest.mark.parametrize("raw,ctype,status", [
    (b"{not json", "application/json", 400),
    (b"", "application/json", 400),
    (b"\xff\xfe", "application/json", 400),
    (b'{"name": "t", "network": "vlan"}', "text/plain", 415),
    (b"[" * 100 + b"]" * 100, "application/json", 400),
    (b'{"a": "' + b"x" * (1024 * 1024 + 10) + b'"}', "application/json", 413),
])
def test_malformed_bodies(api, raw, ctype, status):
    code, err = api.call("POST", "/v1/tenants", raw=raw, ctype=ctype)
    assert code == status and "error" in err
    assert api.state.tenants == {}


def test_state_survives_reopen(world, tmp_path):
    p = world.ok("POST", "/v1/tenants/red/ports", {"host": "h2", "port": "c5"})
    before = world.state.to_collections()
    world.store.close()
    again = MsgpackStore(tmp_path)
    assert State(again.load()).to_collections() == before
    again.close()
    world.store = MsgpackStore(tmp_path)   # let the fixture close something
    world.store.load()
    assert p["id"] in before["ports"]


def test_change_notifications_name_affected_hosts(world):
    world.changes.clear()
    world.ok("POST", "/v1/tenants/red/ports", {"host": "h1", "port": "a"})
    world.ok("POST", "/v1/tenants/red/ports", {"host": "h2", "port": "b"})
    assert world.changes == [["h1"], ["h2", "h1"]]     # the port's own host first


def test_parallel_attaches_never_share_an_address(world):
    results, errors = [], []

    def attach(i):
        code, data = world.call("POST", "/v1/tenants/red/ports", {"host": "h1", "port": f"p{i}"})
        (results if code == 201 else errors).append(data)

    threads = [threading.Thread(target=attach, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({r["ip"] for r in results}) == 50
    assert len({r["mac"] for r in results}) == 50


def test_the_ports_own_host_is_recompiled_first(world):
    """Its flows are what the caller waits for; the tenant's other hosts follow."""
    for h in ("h2", "h1", "h2"):
        world.ok("POST", "/v1/tenants/red/ports", {"host": h, "port": f"c{len(world.changes)}"})
        assert world.changes[-1][0] == h and sorted(world.changes[-1]) == \
            sorted(set(world.changes[-1])) and len(world.changes[-1]) <= 2
    p = world.ok("GET", "/v1/tenants/red/ports")[0]
    world.ok("DELETE", f"/v1/tenants/red/ports/{p['id']}")
    assert world.changes[-1][0] == p["host"]
