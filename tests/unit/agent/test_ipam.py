"""IpamDriver.* against the real controller REST app: pools, gateway, addresses.
Every refused request leaves the controller exactly as it was."""
import pytest

from tests.unit.agent.conftest import POOL, make_network, start_container

GW = {"RequestAddressType": "com.docker.network.gateway"}


def pool(agent, **opts):
    body = {"AddressSpace": "vpc-local", "Pool": POOL, "Options": {"vpc.tenant": "blue"}}
    body.update(opts)
    return agent.call("IpamDriver.RequestPool", body)


def test_request_pool_is_the_subnet_and_changes_nothing(agent):
    before = agent.snapshot()
    assert pool(agent) == {"PoolID": f"blue/{POOL}", "Pool": POOL, "Data": {}}
    assert agent.snapshot() == before


@pytest.mark.parametrize("body,words", [
    ({"Options": {}}, "--ipam-opt vpc.tenant"),
    ({"Options": {"vpc.tenant": "no/slash"}}, "not a valid tenant name"),
    ({"Pool": ""}, "needs the subnet"),
    ({"Pool": "10.1.0.0/33"}, "not an IPv4 CIDR"),
    ({"Pool": "10.1.0.0/31"}, "too small"),
    ({"V6": True}, "not an IPv6 CIDR"),                 # --ipv6 with an IPv4 pool
    ({"V6": True, "Pool": "fd00::/48"}, "/64 to /120"),
    ({"SubPool": "10.1.0.128/25"}, "--ip-range"),
    ({"Options": {"vpc.tenant": "blue", "vpc.colour": "red"}}, "unknown IPAM option"),
    ({"Options": {"vpc.tenant": "blue", "vpc.network": "ethernet"}}, "vlan, vxlan or gre"),
    ({"Options": "blue"}, "Options must be an object"),
])
def test_bad_pool_requests(agent, body, words):
    before = agent.snapshot()
    reply = pool(agent, **body)
    assert list(reply) == ["Error"] and words in reply["Error"], reply
    assert agent.snapshot() == before


def test_pool_that_disagrees_with_the_controller_is_refused(agent):
    agent.api.post("/v1/tenants", {"name": "blue", "network": "vlan"})
    agent.api.post("/v1/tenants/blue/subnets", {"cidr": "10.1.0.0/16"})
    before = agent.snapshot()
    reply = pool(agent)
    assert "overlaps 10.1.0.0/24 without being equal" in reply["Error"]
    reply = pool(agent, Pool="10.1.0.0/16",
                 Options={"vpc.tenant": "blue", "vpc.network": "vxlan"})
    assert "exists at the controller with network vlan, not vxlan" in reply["Error"]
    assert agent.snapshot() == before
    assert pool(agent, Pool="10.1.0.0/16")["PoolID"] == "blue/10.1.0.0/16"


def test_gateway_request_answers_the_subnets_gateway(agent):
    pid = pool(agent)["PoolID"]
    # no subnet yet: Docker's --gateway, or the first address
    assert agent.call("IpamDriver.RequestAddress",
                      {"PoolID": pid, "Address": "", "Options": GW})["Address"] == "10.1.0.1/24"
    agent.api.post("/v1/tenants", {"name": "blue", "network": "vxlan"})
    agent.api.post("/v1/tenants/blue/subnets", {"cidr": POOL, "gateway": "10.1.0.254"})
    assert agent.call("IpamDriver.RequestAddress",
                      {"PoolID": pid, "Address": "", "Options": GW})["Address"] == \
        "10.1.0.254/24"
    reply = agent.call("IpamDriver.RequestAddress",
                       {"PoolID": pid, "Address": "10.1.0.1", "Options": GW})
    assert "has gateway 10.1.0.254 at the controller, not 10.1.0.1" in reply["Error"]


def test_address_is_a_controller_port_with_the_controllers_mac(agent):
    """No RequiresMACAddress: Docker sends no MAC (its would be random per
    start), the controller derives one from tenant and IP."""
    assert agent.call("IpamDriver.GetCapabilities")["RequiresMACAddress"] is False
    pid = make_network(agent)
    reply = agent.call("IpamDriver.RequestAddress", {"PoolID": pid, "Address": "",
                                                     "Options": {}})
    ports = agent.api.get("/v1/tenants/blue/ports")
    assert [(p["host"], f"{p['ip']}/24") for p in ports] == [("h1", reply["Address"])]
    assert ports[0]["port"].startswith("vd") and len(ports[0]["port"]) == 13
    # released and asked for again: the same IP comes back with the same MAC
    agent.call("IpamDriver.ReleaseAddress", {"PoolID": pid, "Address": reply["Address"]})
    assert agent.call("IpamDriver.RequestAddress", {"PoolID": pid, "Address": "",
                                                    "Options": {}}) == reply
    assert [p["mac"] for p in agent.api.get("/v1/tenants/blue/ports")] == [ports[0]["mac"]]


def test_retried_request_for_an_ip_adopts_the_port(agent):
    """The reply was lost and Docker asks again: the port of the first
    attempt (same name: tenant and IP; no endpoint yet) is the answer."""
    pid = make_network(agent)
    body = {"PoolID": pid, "Address": "10.1.0.9", "Options": {}}
    reply = agent.call("IpamDriver.RequestAddress", body)
    assert agent.call("IpamDriver.RequestAddress", body) == reply
    assert len(agent.api.get("/v1/tenants/blue/ports")) == 1


def test_requested_ip_is_honoured_and_bad_ones_refused(agent):
    pid = make_network(agent)
    assert agent.call("IpamDriver.RequestAddress",
                      {"PoolID": pid, "Address": "10.1.0.77", "Options": {}})["Address"] == \
        "10.1.0.77/24"
    agent.api.post("/v1/tenants/blue/ports", {"host": "h2", "port": "vdother",
                                              "ip": "10.1.0.78"})
    before = agent.snapshot()
    for addr, words in (("10.2.0.5", "not inside the network's subnet"),
                        ("10.1.0.x", "not an IP address"),
                        ("10.1.0.78", "already used")):
        reply = agent.call("IpamDriver.RequestAddress",
                           {"PoolID": pid, "Address": addr, "Options": {}})
        assert words in reply["Error"], reply
    reply = agent.call("IpamDriver.RequestAddress", {"PoolID": "nonsense", "Options": {}})
    assert "not one of the vpc driver's" in reply["Error"]
    reply = agent.call("IpamDriver.RequestAddress", {"PoolID": "red/10.9.0.0/24"})
    assert "has no subnet 10.9.0.0/24" in reply["Error"]
    assert agent.snapshot() == before


def test_release_address_removes_port_plumbing_and_publish_group(agent):
    pid = make_network(agent)
    addr, _ = start_container(agent, pid, ip="10.1.0.5")
    port = agent.api.get("/v1/tenants/blue/ports")[0]
    assert agent.host.link_exists(port["port"])
    assert agent.call("IpamDriver.ReleaseAddress", {"PoolID": pid, "Address": "10.1.0.5"}) == {}
    assert agent.api.get("/v1/tenants/blue/ports") == []
    assert not agent.host.link_exists(port["port"]) and not agent.host.ovs.ifaces
    # idempotent, and the gateway is nobody's port
    assert agent.call("IpamDriver.ReleaseAddress", {"PoolID": pid, "Address": "10.1.0.5"}) == {}
    assert agent.call("IpamDriver.ReleaseAddress", {"PoolID": pid, "Address": "10.1.0.1"}) == {}
    assert "Error" in agent.call("IpamDriver.ReleaseAddress", {"PoolID": pid, "Address": "x"})


def test_release_leaves_other_hosts_ports_alone(agent):
    pid = make_network(agent)
    other = agent.api.post("/v1/tenants/blue/ports", {"host": "h2", "port": "vdother",
                                                      "ip": "10.1.0.9"})
    assert agent.call("IpamDriver.ReleaseAddress", {"PoolID": pid, "Address": "10.1.0.9"}) == {}
    assert [p["id"] for p in agent.api.get("/v1/tenants/blue/ports")] == [other["id"]]


def test_stale_port_of_a_dead_container_is_freed_for_its_ip(agent, dockerd):
    """The container stopped while the agent was down: its port (this host,
    OVS record naming an endpoint dockerd no longer has) holds the IP Docker
    asks for again."""
    pid = make_network(agent)
    dockerd.networks["n1"] = {"Id": "n1", "Containers": {}}
    start_container(agent, pid, eid="gone", ip="10.1.0.5", mac="02:42:0a:01:00:05")
    stale = agent.api.get("/v1/tenants/blue/ports")[0]
    reply = agent.call("IpamDriver.RequestAddress",
                       {"PoolID": pid, "Address": "10.1.0.5", "Options": {}})
    assert reply["Address"] == "10.1.0.5/24"
    ports = agent.api.get("/v1/tenants/blue/ports")
    assert [p["ip"] for p in ports] == ["10.1.0.5"] and stale["id"] != ports[0]["id"]
    assert ports[0]["mac"] != stale["mac"]          # the controller's again, not the user's
    assert not agent.host.ovs.ifaces                # the stale plumbing went with it
    # ... but a port whose endpoint dockerd still lists is never taken away
    start_container(agent, pid, eid="live", ip="10.1.0.7")
    dockerd.networks["n1"]["Containers"] = {"c1": {"EndpointID": "live"}}
    before = agent.snapshot()
    reply = agent.call("IpamDriver.RequestAddress",
                       {"PoolID": pid, "Address": "10.1.0.7", "Options": {}})
    assert "already used" in reply["Error"] and "endpoint live" in reply["Error"], reply
    assert agent.snapshot() == before


def test_release_pool_keeps_the_vpc(agent):
    pid = make_network(agent)
    assert agent.call("IpamDriver.ReleasePool", {"PoolID": pid}) == {}
    assert agent.api.get("/v1/tenants/blue/subnets")[0]["cidr"] == POOL
    assert "Error" in agent.call("IpamDriver.ReleasePool", {"PoolID": 5})
