"""REST for NAT: SNAT slots, port forwards, floating IPs; conflicts and cascades."""
import pytest

from controller.compile.pipeline import SNAT_PORTS
from tests.support.rest_api import Api


@pytest.fixture
def nat(tmp_path):
    a = Api(tmp_path)
    a.ok("POST", "/v1/hosts", {"name": "h1", "dpid": 1, "tunnel_ip": "198.18.0.11",
                               "external_port": "ext0", "external_ip": "203.0.113.11",
                               "external_gateway": "203.0.113.1"})
    a.ok("POST", "/v1/hosts", {"name": "h2", "dpid": 2, "tunnel_ip": "198.18.0.12",
                               "external_port": "ext0", "external_ip": "203.0.113.12",
                               "external_gateway": "203.0.113.1"})
    a.ok("POST", "/v1/hosts", {"name": "h3", "dpid": 3, "tunnel_ip": "198.18.0.13"})
    for t in ("red", "blue"):
        a.ok("POST", "/v1/tenants", {"name": t, "network": "vxlan"})
        a.ok("POST", f"/v1/tenants/{t}/subnets", {"cidr": "10.0.0.0/24"})
    a.p1 = a.ok("POST", "/v1/tenants/red/ports", {"host": "h1", "port": "c1"})
    a.p3 = a.ok("POST", "/v1/tenants/red/ports", {"host": "h3", "port": "c3"})
    a.b1 = a.ok("POST", "/v1/tenants/blue/ports", {"host": "h1", "port": "c2"})
    yield a
    a.store.close()


def test_snat_on_and_off(nat):
    red = nat.ok("PUT", "/v1/tenants/red/snat", {"enabled": True})
    assert red["snat"] and red["snat_ports"] == list(SNAT_PORTS)
    assert nat.ok("PUT", "/v1/tenants/red/snat", {"enabled": True}) == red     # idempotent
    off = nat.ok("PUT", "/v1/tenants/red/snat", {"enabled": False})
    assert (off["snat"], off["snat_ports"]) == (False, None)


def test_port_forward_round_trip_and_cascade(nat):
    f = nat.ok("POST", "/v1/tenants/red/port-forwards",
               {"port_id": nat.p1["id"], "protocol": "tcp", "external_port": 5000,
                "internal_port": 22})
    assert f["external_ip"] == "203.0.113.11" and f["internal_ip"] == nat.p1["ip"]
    assert nat.ok("GET", f"/v1/tenants/red/port-forwards/{f['id']}") == f
    # same external port, other protocol or other host: fine
    nat.ok("POST", "/v1/tenants/red/port-forwards",
           {"port_id": nat.p1["id"], "protocol": "udp", "external_port": 5000, "internal_port": 53})
    code, err = nat.call("POST", "/v1/tenants/blue/port-forwards",
                         {"port_id": nat.b1["id"], "protocol": "tcp", "external_port": 5000,
                          "internal_port": 80})
    assert code == 409 and "203.0.113.11 tcp/5000" in err["error"]["message"]
    nat.ok("DELETE", f"/v1/tenants/red/ports/{nat.p1['id']}")
    assert nat.ok("GET", "/v1/tenants/red/port-forwards") == []


def test_floating_ip_follows_the_private_ip(nat):
    fip = nat.ok("POST", "/v1/tenants/red/floating-ips",
                 {"port_id": nat.p1["id"], "external_ip": "203.0.113.100"})
    assert (fip["host"], fip["ip"]) == ("h1", nat.p1["ip"])
    nat.ok("DELETE", f"/v1/tenants/red/ports/{nat.p1['id']}")
    dormant = nat.ok("GET", f"/v1/tenants/red/floating-ips/{fip['id']}")
    assert dormant["port_id"] is None and dormant["host"] is None
    moved = nat.ok("POST", "/v1/tenants/red/ports", {"host": "h2", "port": "c9", "ip": nat.p1["ip"]})
    again = nat.ok("GET", f"/v1/tenants/red/floating-ips/{fip['id']}")
    assert (again["port_id"], again["host"]) == (moved["id"], "h2")


NAT_BAD = [
    ("PUT", "/v1/tenants/red/snat", {"enabled": "yes"}, 400),
    ("PUT", "/v1/tenants/red/snat", {}, 400),
    ("PUT", "/v1/tenants/nope/snat", {"enabled": True}, 404),
    ("POST", "/v1/tenants/red/port-forwards", {"port_id": "P1", "protocol": "icmp",
                                               "external_port": 80, "internal_port": 80}, 400),
    ("POST", "/v1/tenants/red/port-forwards", {"port_id": "P1", "protocol": "tcp",
                                               "external_port": 40000, "internal_port": 80}, 400),
    ("POST", "/v1/tenants/red/port-forwards", {"port_id": "P1", "protocol": "tcp",
                                               "external_port": 0, "internal_port": 80}, 400),
    ("POST", "/v1/tenants/red/port-forwards", {"port_id": "P1", "protocol": "tcp",
                                               "external_port": 80, "internal_port": 70000}, 400),
    ("POST", "/v1/tenants/red/port-forwards", {"port_id": "P3", "protocol": "tcp",
                                               "external_port": 80, "internal_port": 80}, 409),
    ("POST", "/v1/tenants/red/port-forwards", {"port_id": "B1", "protocol": "tcp",
                                               "external_port": 80, "internal_port": 80}, 404),
    ("POST", "/v1/tenants/red/port-forwards", {"port_id": "P1", "protocol": "tcp",
                                               "external_port": 80}, 400),
    ("POST", "/v1/tenants/red/floating-ips", {"port_id": "P1", "external_ip": "203.0.113.12"}, 409),
    ("POST", "/v1/tenants/red/floating-ips", {"port_id": "P1", "external_ip": "203.0.113.1"}, 409),
    ("POST", "/v1/tenants/red/floating-ips", {"port_id": "P1", "external_ip": "203.0.113.999"}, 400),
    ("POST", "/v1/tenants/red/floating-ips", {"port_id": "P3", "external_ip": "203.0.113.101"}, 409),
    ("POST", "/v1/tenants/blue/floating-ips", {"port_id": "B1", "external_ip": "203.0.113.150"}, 409),
    ("POST", "/v1/hosts", {"name": "h4", "dpid": 4, "tunnel_ip": "198.18.0.14",
                           "external_port": "e", "external_ip": "203.0.113.150"}, 409),
    ("POST", "/v1/hosts", {"name": "h4", "dpid": 4, "tunnel_ip": "198.18.0.14",
                           "external_gateway": "203.0.113.1"}, 400),
    ("DELETE", "/v1/tenants/red/port-forwards/nope", None, 404),
    ("DELETE", "/v1/tenants/red/floating-ips/nope", None, 404),
]


@pytest.mark.parametrize("method,path,body,status", NAT_BAD,
                         ids=[f"{m} {p} {b}" for m, p, b, _ in NAT_BAD])
def test_bad_nat_requests_change_nothing(nat, method, path, body, status):
    nat.ok("POST", "/v1/tenants/blue/floating-ips", {"port_id": nat.b1["id"],
                                                     "external_ip": "203.0.113.150"})
    ids = {"P1": nat.p1["id"], "P3": nat.p3["id"], "B1": nat.b1["id"]}
    if body and body.get("port_id") in ids:
        body = dict(body, port_id=ids[body["port_id"]])
    before_disk, before = nat.disk(), nat.state.to_collections()
    code, err = nat.call(method, path, body)
    assert code == status, err
    assert nat.disk() == before_disk and nat.state.to_collections() == before
