"""A port's default MAC follows its tenant and IP: an address handed out again
gets its MAC back (peers' ARP caches stay right), other tenants reusing the IP
get other MACs, and a MAC someone chose is never handed out twice."""
from tests.support.rest_api import Api


def setup(tmp_path):
    api = Api(tmp_path)
    api.call("POST", "/v1/hosts", {"name": "h1", "dpid": 1, "tunnel_ip": "198.18.0.11"})
    for t in ("red", "blue"):
        api.call("POST", "/v1/tenants", {"name": t, "network": "vxlan"})
        api.call("POST", f"/v1/tenants/{t}/subnets", {"cidr": "10.0.0.0/24"})
    return api


def attach(api, tenant, name, **extra):
    status, body = api.call("POST", f"/v1/tenants/{tenant}/ports",
                            {"host": "h1", "port": name, **extra})
    assert status == 201, body
    return body


def test_the_same_ip_comes_back_with_the_same_mac(tmp_path):
    api = setup(tmp_path)
    first = attach(api, "red", "a1", ip="10.0.0.5")
    assert api.call("DELETE", f"/v1/tenants/red/ports/{first['id']}")[0] == 204
    again = attach(api, "red", "a2", ip="10.0.0.5")
    assert again["mac"] == first["mac"] and again["id"] != first["id"]
    assert int(again["mac"].split(":")[0], 16) & 0x03 == 0x02     # local, unicast


def test_other_tenants_and_other_ips_get_other_macs(tmp_path):
    api = setup(tmp_path)
    macs = {attach(api, "red", "r1", ip="10.0.0.5")["mac"],
            attach(api, "blue", "b1", ip="10.0.0.5")["mac"],
            attach(api, "red", "r2", ip="10.0.0.6")["mac"]}
    assert len(macs) == 3


def test_a_derived_mac_already_chosen_by_someone_else_is_not_reused(tmp_path):
    api = setup(tmp_path)
    derived = attach(api, "red", "r1", ip="10.0.0.5")["mac"]
    api.call("DELETE", f"/v1/tenants/red/ports/"
                       f"{api.call('GET', '/v1/tenants/red/ports')[1][0]['id']}")
    attach(api, "blue", "b1", mac=derived)              # a user takes that MAC meanwhile
    again = attach(api, "red", "r2", ip="10.0.0.5")
    assert again["mac"] != derived
