"""Fixtures of the agent's unit tests: the real controller REST app on loopback,
two registered hosts, and the agent's Docker router over a FakeHost.

``agent`` (function): an object with
    .call(method, body)  -> reply dict via Router.dispatch (body: dict, str or bytes)
    .status(method, body) -> (HTTP status, reply)
    .api                 vpcctl Client on the controller
    .host                the FakeHost
    .snapshot()          everything the controller holds, to assert "nothing changed"
    .restart()           a fresh agent (no memory) on the same controller/host/dockerd
"""
import json

import pytest

from tests.support.rest_server import Server
from tests.unit.agent.fakes import FakeDockerd, FakeHost
from vpcagent.main import Agent
from vpcctl.client import Client


class AgentUnderTest:
    def __init__(self, url, host, docker_sock):
        self.url, self.host, self.docker_sock = url, host, docker_sock
        self.api = Client(url)
        self.restart()

    def restart(self, host_name="h1"):
        a = Agent(host_name, self.url, docker_socket=self.docker_sock)
        a.host = self.host                      # the fake host side
        self.agent = a
        self.router = a.docker_router()
        return self

    def status(self, method, body=None):
        if isinstance(body, (dict, list)):
            raw = json.dumps(body).encode()
        elif isinstance(body, str):
            raw = body.encode()
        else:
            raw = body or b""
        return self.router.dispatch(f"/{method}", raw)

    def call(self, method, body=None):
        status, reply = self.status(method, body)
        assert status == 200, reply
        return reply

    def snapshot(self):
        snap = {"tenants": self.api.get("/v1/tenants")}
        for t in snap["tenants"]:
            n = t["name"]
            for what in ("subnets", "ports", "port-forwards", "security-groups"):
                snap[f"{n}/{what}"] = self.api.get(f"/v1/tenants/{n}/{what}")
        return snap


@pytest.fixture
def controller(tmp_path):
    s = Server(tmp_path / "ctl")
    c = Client(s.url)
    c.post("/v1/hosts", {"name": "h1", "dpid": "1", "tunnel_ip": "198.18.0.11",
                         "external_port": "ext0", "external_ip": "203.0.113.11",
                         "external_gateway": "203.0.113.1"})
    c.post("/v1/hosts", {"name": "h2", "dpid": "2", "tunnel_ip": "198.18.0.12"})
    yield s
    s.stop()


@pytest.fixture
def dockerd(tmp_path):
    d = FakeDockerd(str(tmp_path / "docker.sock"))
    yield d
    d.stop()


@pytest.fixture
def agent(controller, dockerd):
    return AgentUnderTest(controller.url, FakeHost(), dockerd.path)


POOL = "10.1.0.0/24"


def network_body(nid="n1", tenant="blue", network="vxlan", pool=POOL, gateway="10.1.0.1/24",
                 space="vpc-local"):
    generic = {"vpc.tenant": tenant}
    if network:
        generic["vpc.network"] = network
    v4 = {"AddressSpace": space, "Pool": pool}
    if gateway:
        v4["Gateway"] = gateway
    return {"NetworkID": nid, "Options": {"com.docker.network.generic": generic,
                                          "com.docker.network.enable_ipv6": False},
            "IPv4Data": [v4], "IPv6Data": []}


def make_network(agent, nid="n1", tenant="blue", network="vxlan", pool=POOL):
    """RequestPool, gateway RequestAddress, CreateNetwork -- as dockerd does."""
    pool_id = agent.call("IpamDriver.RequestPool",
                         {"AddressSpace": "vpc-local", "Pool": pool,
                          "Options": {"vpc.tenant": tenant}})["PoolID"]
    gw = agent.call("IpamDriver.RequestAddress",
                    {"PoolID": pool_id, "Address": "",
                     "Options": {"RequestAddressType": "com.docker.network.gateway"}})
    assert "Error" not in gw, gw
    reply = agent.call("NetworkDriver.CreateNetwork",
                       network_body(nid, tenant, network, pool, gw["Address"]))
    assert reply == {}, reply
    return pool_id


def start_container(agent, pool_id, nid="n1", eid="e1", ip=None, mac=None):
    """RequestAddress, CreateEndpoint, Join -- as docker run does (``mac``:
    its --mac-address, which Docker sends in CreateEndpoint only).  Returns
    (address reply, join reply)."""
    addr = agent.call("IpamDriver.RequestAddress",
                      {"PoolID": pool_id, "Address": ip or "", "Options": {}})
    assert "Error" not in addr, addr
    reply = agent.call("NetworkDriver.CreateEndpoint",
                       {"NetworkID": nid, "EndpointID": eid,
                        "Interface": {"Address": addr["Address"], "AddressIPv6": "",
                                      "MacAddress": mac or ""}, "Options": {}})
    assert "Err" not in reply, reply
    assert ("Interface" in reply) == (not mac), reply     # a given MAC is never answered
    join = agent.call("NetworkDriver.Join", {"NetworkID": nid, "EndpointID": eid,
                                             "SandboxKey": "/var/run/docker/netns/x",
                                             "Options": {}})
    assert "Err" not in join, join
    return addr, join


def stop_container(agent, pool_id, addr, nid="n1", eid="e1"):
    for m in ("NetworkDriver.RevokeExternalConnectivity", "NetworkDriver.Leave",
              "NetworkDriver.DeleteEndpoint"):
        assert agent.call(m, {"NetworkID": nid, "EndpointID": eid}) == {}
    assert agent.call("IpamDriver.ReleaseAddress",
                      {"PoolID": pool_id, "Address": addr.split("/")[0]}) == {}
