"""Distributed L3 on real OVS: a tenant's subnets route to each other on the
host where a packet starts, across hosts over the tenant's network, and
never into another tenant that uses the same CIDRs."""
import re

import pytest

from tests.support.labhelp import make_tenant, pings


def ping_ttl(lab, ns, ip):
    out = lab.exec(ns, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", ip, check=False).stdout
    m = re.search(r"ttl=(\d+)", out)
    return int(m.group(1)) if m else None


@pytest.mark.parametrize("network", ["vlan", "vxlan", "gre"])
def test_subnets_of_a_tenant_route_across_hosts(api, lab, make_container, network):
    t, other = f"rt{network}", f"ro{network}"
    for name in (t, other):
        make_tenant(api, lab, name, network=network, cidr="10.1.0.0/24")
        status, body = api(lab.api_url).post(f"/v1/tenants/{name}/subnets",
                                             {"cidr": "10.2.0.0/24"})
        assert status == 201, body
    a = make_container(f"a{network[:2]}", 1, t, ip="10.1.0.5")
    b = make_container(f"b{network[:2]}", 2, t, ip="10.2.0.5")
    c = make_container(f"c{network[:2]}", 3, t, ip="10.2.0.6")
    x = make_container(f"x{network[:2]}", 2, other, ip="10.2.0.7")
    assert a["gateway"] == "10.1.0.1" and b["gateway"] == "10.2.0.1"
    assert pings(lab, a["ns"], "10.1.0.1")              # the gateway answers ping
    assert ping_ttl(lab, a["ns"], "10.2.0.5") == 63     # routed once, on h1
    assert ping_ttl(lab, b["ns"], "10.1.0.5") == 63     # and back, routed on h2
    assert pings(lab, c["ns"], "10.1.0.5")              # h3 -> h1
    # the other tenant has the same CIDRs; its 10.2.0.7 is not ours to reach
    assert not pings(lab, a["ns"], "10.2.0.7", count=2)
    assert not pings(lab, x["ns"], "10.1.0.5", count=2)
    # an address of the subnet that nobody has is dropped by the router
    assert not pings(lab, a["ns"], "10.2.0.99", count=2)
