"""NetworkDriver.* against the real controller REST app (host side faked):
networks bound to tenants, endpoints, join/leave, published ports, restart."""
import pytest

from tests.unit.agent.conftest import (POOL, make_network, network_body, start_container,
                                       stop_container)


def test_create_network_creates_then_adopts(agent):
    make_network(agent, "n1", network="vlan")
    t = agent.api.get("/v1/tenants/blue")
    assert (t["network"], t["subnets"]) == ("vlan", [POOL])
    assert agent.api.get(f"/v1/tenants/blue/subnets/{POOL.replace('/', '_')}")["gateway"] == \
        "10.1.0.1"
    before = agent.snapshot()
    # the same `docker network create` on another host (or again): adopted
    agent.restart("h2")
    make_network(agent, "n2", network="vlan")
    make_network(agent, "n3", network=None)            # type left out: the tenant's
    assert agent.snapshot() == before


@pytest.mark.parametrize("change,words", [
    ({"network": "vxlan"}, "exists at the controller with network vlan, not vxlan"),
    ({"pool": "10.1.0.0/16", "gateway": "10.1.0.1/16"}, "overlaps"),
    ({"gateway": "10.1.0.254/24"}, "has gateway 10.1.0.1 at the controller"),
    ({"tenant": ""}, "-o vpc.tenant"),
    ({"network": "geneve"}, "vlan, vxlan or gre"),
    ({"pool": "nonsense"}, "not an IPv4 CIDR"),
])
def test_create_network_disagreeing_with_the_controller_is_refused(agent, change, words):
    make_network(agent, "n1", network="vlan")
    before = agent.snapshot()
    reply = agent.call("NetworkDriver.CreateNetwork", network_body("n2", **{
        "network": "vlan", **change}))
    assert list(reply) == ["Err"] and words in reply["Err"], reply
    assert agent.snapshot() == before


@pytest.mark.parametrize("mutate,words", [
    (lambda b: b.update(IPv6Data=[{"Pool": "fd00::/64"}] * 2), "at most one IPv6 subnet"),
    (lambda b: b.update(IPv6Data=[{"Pool": "10.2.0.0/24"}]), "not an IPv6 CIDR"),
    (lambda b: b.update(IPv4Data=b["IPv4Data"] * 2), "exactly one IPv4 subnet"),
    (lambda b: b.update(IPv4Data=[]), "exactly one IPv4 subnet"),
    (lambda b: b["Options"]["com.docker.network.generic"].update({"vpc.x": "1"}),
     "unknown option"),
    (lambda b: b.pop("NetworkID"), "NetworkID is missing"),
    (lambda b: b.update(Options="x"), "Options must be an object"),
])
def test_bad_create_network_changes_nothing(agent, mutate, words):
    before = agent.snapshot()
    body = network_body()
    mutate(body)
    reply = agent.call("NetworkDriver.CreateNetwork", body)
    assert words in reply.get("Err", ""), reply
    assert agent.snapshot() == before


def test_endpoint_lifecycle_plumbs_and_unplumbs(agent):
    pid = make_network(agent)
    addr, join = start_container(agent, pid, ip="10.1.0.5", mac="02:42:0a:01:00:05")
    port = agent.api.get("/v1/tenants/blue/ports")[0]
    name, peer = port["port"], "vc" + port["port"][2:]
    assert join == {"InterfaceName": {"SrcName": peer, "DstPrefix": "eth"},
                    "Gateway": "10.1.0.1", "DisableGatewayService": False}
    ids = agent.host.ovs.ifaces[name]
    assert (ids["vpc-port-id"], ids["vpc-tenant"], ids["vpc-owner"], ids["vpc-endpoint-id"]) \
        == (port["id"], "blue", "docker", "e1")
    assert agent.host.mtu[peer] == port["mtu"] == 1450
    info = agent.call("NetworkDriver.EndpointOperInfo", {"NetworkID": "n1", "EndpointID": "e1"})
    assert info["Value"]["port_id"] == port["id"]
    # stop: Leave deletes the pair (Docker moved eth0 back), DeleteEndpoint the OVS port
    assert agent.call("NetworkDriver.Leave", {"NetworkID": "n1", "EndpointID": "e1"}) == {}
    assert not agent.host.link_exists(name) and name in agent.host.ovs.ifaces
    assert agent.call("NetworkDriver.DeleteEndpoint",
                      {"NetworkID": "n1", "EndpointID": "e1"}) == {}
    assert not agent.host.ovs.ifaces
    # idempotent
    assert agent.call("NetworkDriver.DeleteEndpoint",
                      {"NetworkID": "n1", "EndpointID": "e1"}) == {}
    assert agent.call("NetworkDriver.Leave", {"NetworkID": "n1", "EndpointID": "e1"}) == {}
    assert agent.call("IpamDriver.ReleaseAddress", {"PoolID": pid, "Address": "10.1.0.5"}) == {}
    assert agent.api.get("/v1/tenants/blue/ports") == []


def test_bad_endpoint_requests(agent):
    pid = make_network(agent)
    agent.call("IpamDriver.RequestAddress", {"PoolID": pid, "Address": "10.1.0.5",
                                             "Options": {}})
    before = agent.snapshot()
    for body, words in (
            ({"NetworkID": "n1", "EndpointID": "e1", "Interface": {}}, "no IPv4 address"),
            ({"NetworkID": "n1", "EndpointID": "e1",
              "Interface": {"Address": "10.1.0.6/24"}}, "has no port with 10.1.0.6"),
            ({"NetworkID": "n1", "Interface": {"Address": "10.1.0.5/24"}}, "EndpointID"),
            ({"NetworkID": "unknown", "EndpointID": "e1",
              "Interface": {"Address": "10.1.0.7/24"}}, "dockerd does not know network"),
            ({"NetworkID": "n1", "EndpointID": "e1",
              "Interface": {"Address": "10.1.0.5/24", "AddressIPv6": "fd00::5/64"}},
             "has no IPv6 subnet holding fd00::5")):
        reply = agent.call("NetworkDriver.CreateEndpoint", body)
        assert words in reply.get("Err", ""), (body, reply)
    reply = agent.call("NetworkDriver.Join", {"NetworkID": "n1", "EndpointID": "zz",
                                              "SandboxKey": "/x"})
    assert "has no port on this host" in reply["Err"]
    assert "SandboxKey" in agent.call("NetworkDriver.Join",
                                      {"NetworkID": "n1", "EndpointID": "zz"})["Err"]
    assert agent.snapshot() == before and not agent.host.ovs.ifaces


def endpoint(agent, eid, addr, mac=""):
    return agent.call("NetworkDriver.CreateEndpoint",
                      {"NetworkID": "n1", "EndpointID": eid,
                       "Interface": {"Address": addr, "AddressIPv6": "", "MacAddress": mac},
                       "Options": {}})


def test_endpoint_without_mac_is_answered_with_the_ports_and_keeps_it(agent):
    """docker run without --mac-address: Docker sets the MAC we answer; after
    a restart (stop releases the IP, start asks again) IP and MAC are the
    same, so a peer's ARP cache stays right."""
    pid = make_network(agent)
    seen = []
    for n in range(2):
        addr = agent.call("IpamDriver.RequestAddress", {"PoolID": pid, "Options": {}})
        reply = endpoint(agent, f"e{n}", addr["Address"])
        port = agent.api.get("/v1/tenants/blue/ports")[0]
        assert reply == {"Interface": {"MacAddress": port["mac"]}}
        seen.append((addr["Address"], port["mac"]))
        stop_container(agent, pid, addr["Address"], eid=f"e{n}")
    assert seen[0] == seen[1]
    assert agent.api.get("/v1/tenants/blue/ports") == [] and not agent.host.ovs.ifaces


def test_users_mac_remakes_the_port_with_it(agent):
    """--mac-address arrives in CreateEndpoint, after the IPAM made the port
    with the controller's MAC: the port is made again, same IP and name."""
    pid = make_network(agent)
    agent.call("IpamDriver.RequestAddress", {"PoolID": pid, "Address": "10.1.0.5"})
    made = agent.api.get("/v1/tenants/blue/ports")[0]
    assert endpoint(agent, "e1", "10.1.0.5/24", "02:42:0A:01:00:05") == {}
    [port] = agent.api.get("/v1/tenants/blue/ports")
    assert (port["ip"], port["port"], port["mac"]) == \
        ("10.1.0.5", made["port"], "02:42:0a:01:00:05")
    assert agent.host.ovs.ifaces[port["port"]]["vpc-port-id"] == port["id"]
    # the same MAC again (a retried CreateEndpoint): nothing to remake
    assert endpoint(agent, "e1", "10.1.0.5/24", "02:42:0a:01:00:05") == {}
    assert [p["id"] for p in agent.api.get("/v1/tenants/blue/ports")] == [port["id"]]


def test_users_mac_refused_keeps_the_port_as_it_was(agent):
    pid = make_network(agent)
    other = agent.api.post("/v1/tenants/blue/ports", {"host": "h2", "port": "vdother",
                                                      "mac": "02:42:0a:01:00:99"})
    agent.call("IpamDriver.RequestAddress", {"PoolID": pid, "Address": "10.1.0.5"})
    before = agent.snapshot()
    reply = endpoint(agent, "e1", "10.1.0.5/24", other["mac"])
    assert "already used" in reply["Err"], reply
    after = agent.snapshot()
    strip = [{k: v for k, v in p.items() if k != "id"} for p in after["blue/ports"]]
    assert strip == [{k: v for k, v in p.items() if k != "id"} for p in before["blue/ports"]]
    assert not agent.host.ovs.ifaces
    # Docker releases the address of a failed endpoint: nothing is left
    agent.call("IpamDriver.ReleaseAddress", {"PoolID": pid, "Address": "10.1.0.5"})
    assert [p["id"] for p in agent.api.get("/v1/tenants/blue/ports")] == [other["id"]]


def test_users_mac_never_takes_a_port_in_use(agent):
    pid = make_network(agent)
    start_container(agent, pid, eid="e1", ip="10.1.0.5")
    before = agent.snapshot()
    reply = endpoint(agent, "e2", "10.1.0.5/24", "02:42:0a:01:00:05")
    assert "is not this endpoint's" in reply["Err"], reply
    assert agent.snapshot() == before


def test_plumbing_failure_is_an_error_with_the_reason(agent):
    pid = make_network(agent)
    agent.host.fail_create = True
    agent.call("IpamDriver.RequestAddress", {"PoolID": pid, "Address": "10.1.0.5"})
    reply = agent.call("NetworkDriver.CreateEndpoint",
                       {"NetworkID": "n1", "EndpointID": "e1",
                        "Interface": {"Address": "10.1.0.5/24"}})
    assert "Operation not permitted" in reply["Err"]


def test_other_ipam_driver_endpoint_makes_and_removes_the_port(agent):
    agent.call("NetworkDriver.CreateNetwork", network_body(space="LocalDefault",
                                                           gateway="10.1.0.1/24"))
    reply = agent.call("NetworkDriver.CreateEndpoint",
                       {"NetworkID": "n1", "EndpointID": "e9",
                        "Interface": {"Address": "10.1.0.9/24",
                                      "MacAddress": "02:42:0a:01:00:09"}})
    assert reply == {}
    assert [p["ip"] for p in agent.api.get("/v1/tenants/blue/ports")] == ["10.1.0.9"]
    agent.call("NetworkDriver.DeleteEndpoint", {"NetworkID": "n1", "EndpointID": "e9"})
    assert agent.api.get("/v1/tenants/blue/ports") == []


def portmap(*maps):
    return {"com.docker.network.portmap": [
        {"Proto": proto, "IP": "", "Port": internal, "HostIP": host_ip, "HostPort": ext}
        for proto, ext, internal, host_ip in maps]}


def test_published_ports_become_forwards_and_a_group(agent):
    pid = make_network(agent)
    start_container(agent, pid, ip="10.1.0.5")
    port = agent.api.get("/v1/tenants/blue/ports")[0]
    body = {"NetworkID": "n1", "EndpointID": "e1",
            "Options": portmap((6, 8080, 80, ""), (17, 5353, 53, "203.0.113.11"))}
    assert agent.call("NetworkDriver.ProgramExternalConnectivity", body) == {}
    assert agent.call("NetworkDriver.ProgramExternalConnectivity", body) == {}   # idempotent
    fwd = sorted((f["protocol"], f["external_ip"], f["external_port"], f["internal_port"])
                 for f in agent.api.get("/v1/tenants/blue/port-forwards"))
    assert fwd == [("tcp", "203.0.113.11", 8080, 80), ("udp", "203.0.113.11", 5353, 53)]
    group = f"pub-{port['port']}"
    rules = agent.api.get(f"/v1/tenants/blue/security-groups/{group}")["rules"]
    assert sorted((r["direction"], r["protocol"], r["ports"], r["remote"]) for r in rules) == \
        [("ingress", "tcp", "80", "0.0.0.0/0"), ("ingress", "udp", "53", "0.0.0.0/0")]
    assert agent.api.get(f"/v1/tenants/blue/ports/{port['id']}")["security_groups"] == \
        ["default", group]
    # restart of the agent in between: revoke still finds everything
    agent.restart()
    assert agent.call("NetworkDriver.RevokeExternalConnectivity",
                      {"NetworkID": "n1", "EndpointID": "e1"}) == {}
    assert agent.api.get("/v1/tenants/blue/port-forwards") == []
    assert [g["name"] for g in agent.api.get("/v1/tenants/blue/security-groups")] == ["default"]
    assert agent.api.get(f"/v1/tenants/blue/ports/{port['id']}")["security_groups"] == \
        ["default"]


@pytest.mark.parametrize("maps,words", [
    ([(6, 0, 80, "")], "name the host port"),
    ([(6, 40000, 80, "")], "must be one port in 1-32767"),
    ([(132, 8080, 80, "")], "protocol 132 is not supported"),
    ([(6, 8080, 80, "198.51.100.1")], "publishes on its external IP 203.0.113.11 only"),
    ([(6, 8080, 80, ""), (6, 8080, 81, "")], "already forwards"),
])
def test_bad_published_ports_change_nothing(agent, maps, words):
    pid = make_network(agent)
    start_container(agent, pid, ip="10.1.0.5")
    before = agent.snapshot()
    reply = agent.call("NetworkDriver.ProgramExternalConnectivity",
                       {"NetworkID": "n1", "EndpointID": "e1", "Options": portmap(*maps)})
    assert words in reply.get("Err", ""), reply
    assert agent.snapshot() == before


def test_publishing_needs_an_external_network(agent):
    agent.restart("h2")                              # h2 has no external IP
    pid = make_network(agent)
    start_container(agent, pid, ip="10.1.0.5")
    before = agent.snapshot()
    reply = agent.call("NetworkDriver.ProgramExternalConnectivity",
                       {"NetworkID": "n1", "EndpointID": "e1",
                        "Options": portmap((6, 8080, 80, ""))})
    assert "has no external network" in reply["Err"]
    assert agent.snapshot() == before


def test_agent_restart_reads_network_options_from_dockerd(agent, dockerd):
    pid = make_network(agent)
    dockerd.networks["n1"] = {"Id": "n1", "Name": "blue",
                              "Options": {"vpc.tenant": "blue", "vpc.network": "vxlan"},
                              "IPAM": {"Driver": "vpc", "Config": [{"Subnet": POOL}]}}
    agent.restart()                                  # no memory of CreateNetwork
    addr, join = start_container(agent, pid, ip="10.1.0.5")
    assert join["Gateway"] == "10.1.0.1"
    stop_container(agent, pid, addr["Address"])
    assert agent.api.get("/v1/tenants/blue/ports") == [] and not agent.host.ovs.ifaces


def test_agent_restart_finds_the_tenant_at_the_controller_while_dockerd_boots(agent):
    """At boot dockerd restores --restart containers (RequestAddress,
    CreateEndpoint) before its API answers, so a restarted agent cannot ask it
    for the network's options: the port RequestAddress just made on this host,
    not yet plumbed, names the tenant.  The fake dockerd knows no network."""
    pid = make_network(agent)
    agent.restart()
    addr, join = start_container(agent, pid)
    assert join["Gateway"] == "10.1.0.1"
    port = agent.api.get("/v1/tenants/blue/ports")[0]
    assert f"{port['ip']}/24" == addr["Address"] and port["port"] in agent.host.ovs.ifaces
    stop_container(agent, pid, addr["Address"])
    assert agent.api.get("/v1/tenants/blue/ports") == [] and not agent.host.ovs.ifaces


def test_create_delete_cycles_leave_nothing(agent):
    pid = make_network(agent)
    for n in range(20):
        addr, _ = start_container(agent, pid, eid=f"e{n}",
                                  mac=f"02:42:0a:01:01:{n:02x}" if n % 2 else None)
        stop_container(agent, pid, addr["Address"], eid=f"e{n}")
    assert agent.api.get("/v1/tenants/blue/ports") == []
    assert not agent.host.ovs.ifaces and not agent.host.links


def test_discover_and_delete_network_are_harmless(agent):
    make_network(agent)
    before = agent.snapshot()
    assert agent.call("NetworkDriver.DiscoverNew", {"DiscoveryType": 1}) == {}
    assert agent.call("NetworkDriver.DiscoverDelete", b"") == {}
    assert agent.call("NetworkDriver.DeleteNetwork", {"NetworkID": "n1"}) == {}
    assert agent.snapshot() == before


def test_a_dual_stack_network_folds_the_ipv6_address_into_the_endpoints_port(agent):
    """docker network create --ipv6 --subnet 10.1.0.0/24 --subnet fd00:1::/64: Docker
    asks for the two addresses separately; the IPv6 one is held by a placeholder
    port until CreateEndpoint folds it into the endpoint's port; Join answers the
    IPv6 gateway; releasing both addresses leaves nothing behind."""
    ipam = {"AddressSpace": "vpc-local", "Options": {"vpc.tenant": "blue"}}
    pid4 = agent.call("IpamDriver.RequestPool", dict(ipam, Pool=POOL))["PoolID"]
    pid6 = agent.call("IpamDriver.RequestPool", dict(ipam, Pool="fd00:1::/64", V6=True))["PoolID"]
    gw = {"Options": {"RequestAddressType": "com.docker.network.gateway"}, "Address": ""}
    gw4 = agent.call("IpamDriver.RequestAddress", dict(gw, PoolID=pid4))["Address"]
    gw6 = agent.call("IpamDriver.RequestAddress", dict(gw, PoolID=pid6))["Address"]
    assert gw6 == "fd00:1::1/64"
    body = network_body("n1", pool=POOL, gateway=gw4)
    body["IPv6Data"] = [{"AddressSpace": "vpc-local", "Pool": "fd00:1::/64", "Gateway": gw6}]
    assert agent.call("NetworkDriver.CreateNetwork", body) == {}
    assert agent.api.get("/v1/tenants/blue")["subnets"] == [POOL, "fd00:1::/64"]

    a4 = agent.call("IpamDriver.RequestAddress", {"PoolID": pid4, "Address": ""})["Address"]
    a6 = agent.call("IpamDriver.RequestAddress", {"PoolID": pid6, "Address": ""})["Address"]
    assert a6 == "fd00:1::2/64"
    assert len(agent.api.get("/v1/tenants/blue/ports")) == 2           # port + placeholder
    reply = agent.call("NetworkDriver.CreateEndpoint", {
        "NetworkID": "n1", "EndpointID": "e1", "Options": {},
        "Interface": {"Address": a4, "AddressIPv6": a6, "MacAddress": ""}})
    assert "Err" not in reply, reply
    [port] = agent.api.get("/v1/tenants/blue/ports")
    assert (port["ip"], port["ip6"]) == (a4.split("/")[0], "fd00:1::2")
    assert reply["Interface"]["MacAddress"] == port["mac"]
    join = agent.call("NetworkDriver.Join", {"NetworkID": "n1", "EndpointID": "e1",
                                             "SandboxKey": "/var/run/docker/netns/x"})
    assert (join["Gateway"], join["GatewayIPv6"]) == ("10.1.0.1", "fd00:1::1")

    for r in ({"PoolID": pid6, "Address": a6}, {"PoolID": pid4, "Address": a4}):
        agent.call("NetworkDriver.Leave", {"NetworkID": "n1", "EndpointID": "e1"})
        agent.call("NetworkDriver.DeleteEndpoint", {"NetworkID": "n1", "EndpointID": "e1"})
        assert agent.call("IpamDriver.ReleaseAddress", r) == {}
    assert agent.api.get("/v1/tenants/blue/ports") == []
    # an IPv6 address the endpoint never took is released on its own
    agent.call("IpamDriver.RequestAddress", {"PoolID": pid6, "Address": "fd00:1::9"})
    assert agent.call("IpamDriver.ReleaseAddress", {"PoolID": pid6, "Address": "fd00:1::9"}) == {}
    assert agent.api.get("/v1/tenants/blue/ports") == []


# --- DNS: -o vpc.dns, and the port's names after Join (vpcagent/docker_names.py) ----------
@pytest.mark.parametrize("mode", ["vpc", "docker"])
def test_dns_option_is_kept_with_the_network(agent, mode):
    body = network_body()
    body["Options"]["com.docker.network.generic"]["vpc.dns"] = mode
    assert agent.call("NetworkDriver.CreateNetwork", body) == {}
    assert agent.agent.networks.cached("n1")["dns"] == mode


def test_bad_dns_option_is_refused(agent):
    before = agent.snapshot()
    body = network_body()
    body["Options"]["com.docker.network.generic"]["vpc.dns"] = "google"
    reply = agent.call("NetworkDriver.CreateNetwork", body)
    assert "-o vpc.dns must be vpc" in reply["Err"] and "'google'" in reply["Err"], reply
    assert agent.snapshot() == before


def test_dns_option_read_back_from_dockerd_after_a_restart(agent, dockerd):
    dockerd.networks["n9"] = {"Id": "n9", "Name": "blue",
                              "Options": {"vpc.tenant": "blue", "vpc.dns": "docker"},
                              "IPAM": {"Driver": "vpc", "Config": [{"Subnet": POOL}]}}
    assert agent.agent.networks.get("n9")["dns"] == "docker"


def test_join_names_the_port_at_the_controller(agent, tmp_path):
    """The whole path with the real controller: Join, then in the background
    the container found by its sandbox (a fake dockerd client), the port
    PATCHed with its names, resolv.conf pointed at the gateway."""
    from tests.unit.agent.test_docker_names import FakeDocker, container
    from vpcagent.docker_names import ContainerNames
    from vpcagent.docker_driver import NetworkDriver
    from vpcagent.docker_ipam import IpamDriver
    from vpcagent.server import Router

    a = agent.agent
    pid = make_network(agent)
    info = container(tmp_path, name="/Web1", aliases=("web", "3f2a1b0c9d8e"))
    info["NetworkSettings"]["Networks"]["blue"]["NetworkID"] = "n1"
    info["NetworkSettings"]["SandboxKey"] = "/var/run/docker/netns/x"   # start_container's
    threads = []
    names = ContainerNames(a.controller, a.networks, client_factory=lambda: FakeDocker(info),
                           poll=0.01)
    joined = names.joined
    names.joined = lambda *args: threads.append(joined(*args))
    router = Router()
    NetworkDriver(a.controller, a.host, a.networks, names=names).register(router)
    IpamDriver(a.controller, a.host, a.networks).register(router)
    agent.router = router
    start_container(agent, pid, ip="10.1.0.5")
    threads[0].join(10)
    port = agent.api.get("/v1/tenants/blue/ports")[0]
    assert (port["name"], port["aliases"]) == ("web1", ["3f2a1b0c9d8e", "web"])
    rc = open(info["ResolvConfPath"]).read()
    assert "nameserver 10.1.0.1\n" in rc and "search blue.internal\n" in rc, rc
