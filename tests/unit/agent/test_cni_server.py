"""The agent's CNI handlers against the real controller REST app, with the host
side faked (no root): ADD/CHECK/DEL/GC/STATUS, their error codes, and that a
refused request changes nothing at the controller.  The lab test
(tests/lab/test_cni.py) runs the same through real namespaces and OVS."""
import json
import socket

import pytest

from tests.unit.agent.conftest import AgentUnderTest
from tests.unit.agent.fakes import FakeHost
from vpcagent import cni_config as cc
from vpcagent import cni_server
from vpcagent.main import Agent


class CniFakeHost(FakeHost):
    """FakeHost plus the container side: interfaces moved into namespaces."""
    netns = None

    def __init__(self):
        super().__init__()
        self.inside = {}                  # (netns, ifname) -> {"peer", "mac", "cidr", "gw"}

    def move_into(self, peer, target, ifname):
        self.links.discard(peer)
        self.inside[(target, ifname)] = {"peer": peer}

    def delete_port(self, name):
        super().delete_port(name)
        peer = "vq" + name[2:]
        self.inside = {k: v for k, v in self.inside.items() if v["peer"] != peer}

    def check(self):
        pass

    def configure(self, target, ifname, mac, cidr, gateway, mtu=None, cidr6=None,
                  gateway6=None):
        self.inside[(target, ifname)].update(mac=mac, cidr=cidr, gw=gateway, mtu=mtu)
        if cidr6:
            self.inside[(target, ifname)].update(cidr6=cidr6, gw6=gateway6)

    def info(self, target, ifname):
        if target is None:
            return {"mac": "aa:00:00:00:00:01"} if ifname in self.links else None
        i = self.inside.get((target, ifname))
        if i is None:
            return None
        return {"mac": i.get("mac"), "up": True, "gateway": i.get("gw"), "mtu": i.get("mtu"),
                "addresses": [i[k] for k in ("cidr", "cidr6") if i.get(k)],
                "gateway6": i.get("gw6")}


@pytest.fixture
def cni(controller, monkeypatch, tmp_path):
    host = CniFakeHost()
    monkeypatch.setattr(cni_server, "link_info", host.info)
    monkeypatch.setattr(cni_server, "configure_container", host.configure)
    c = Cni(controller.url, host, str(tmp_path / "docker.sock"))
    c.nsdir = tmp_path
    return c


class Cni(AgentUnderTest):
    switch_sees_ports = True

    def restart(self, host_name="h1"):
        self.agent = Agent(host_name, self.url, docker_socket=self.docker_sock)
        self.agent.host = self.host
        ports = self.agent.controller.ports

        def ports_as_a_connected_switch_shows_them(tenant):
            # no switch in unit tests: the controller says "down" for every port
            return [dict(p, status="up" if self.switch_sees_ports else p["status"])
                    for p in ports(tenant)]
        self.agent.controller.ports = ports_as_a_connected_switch_shows_them
        self.router = self.agent.cni_router()
        return self

    def ns(self, name="pod1"):
        """A path that exists, standing for a namespace (link_info is faked)."""
        path = self.nsdir / name
        path.touch()
        return str(path)

    def req(self, command, cid="pod1", ifname="eth0", netns=None, version="1.0.0", **conf):
        netns = self.ns() if netns is None else netns
        config = {"cniVersion": version, "name": "blue", "type": "vpc", "tenant": "blue",
                  "subnet": "10.1.0.0/24", "network": "vxlan"}
        config.update(conf)
        config = {k: v for k, v in config.items() if v is not None}
        env = {"CNI_CONTAINERID": cid, "CNI_IFNAME": ifname, "CNI_NETNS": netns}
        status, reply = self.router.dispatch(f"/cni/{command}",
                                             json.dumps({"env": env, "config": config}).encode())
        assert status == 200, reply
        return reply

    def ok(self, command, **kw):
        reply = self.req(command, **kw)
        assert "error" not in reply, reply
        return reply["result"]

    def code(self, command, **kw):
        reply = self.req(command, **kw)
        assert "error" in reply, reply
        assert set(reply["error"]) == {"cniVersion", "code", "msg", "details"}
        return reply["error"]["code"]

    def ports(self, tenant="blue"):
        try:
            return self.api.get(f"/v1/tenants/{tenant}/ports")
        except Exception:                                      # noqa: BLE001
            return []


def test_add_plumbs_and_answers_the_result(cni):
    r = cni.ok("ADD")
    host_if, peer = cc.port_names("pod1", "eth0")
    [port] = cni.ports()
    assert (port["host"], port["port"]) == ("h1", host_if)
    assert r["interfaces"] == [{"name": host_if, "mac": "aa:00:00:00:00:01"},
                               {"name": "eth0", "mac": port["mac"], "sandbox": cni.ns()}]
    assert r["ips"] == [{"address": f"{port['ip']}/24", "gateway": "10.1.0.1", "interface": 1}]
    inside = cni.host.inside[(cni.ns(), "eth0")]
    assert inside == {"peer": peer, "mac": port["mac"], "cidr": f"{port['ip']}/24",
                      "gw": "10.1.0.1", "mtu": port["mtu"]}
    ids = cni.host.ovs.ifaces[host_if]
    assert ids["vpc-owner"] == "cni" and ids["vpc-port-id"] == port["id"]
    assert ids["vpc-container-id"] == "pod1" and ids["vpc-cni-network"] == "blue"
    assert cni.api.get("/v1/tenants/blue")["network"] == "vxlan"


def test_a_dual_stack_network_gives_both_families(cni):
    """subnet6 in the configuration: the tenant's IPv6 subnet is made too, the pod
    gets an address of each family (runtimeConfig.ips may ask for both), and
    CHECK compares both."""
    r = cni.ok("ADD", subnet6="fd00:1::/64",
               runtimeConfig={"ips": ["10.1.0.50/24", "fd00:1::50/64"]})
    [port] = cni.ports()
    assert (port["ip"], port["ip6"], port["subnet6"]) == ("10.1.0.50", "fd00:1::50",
                                                          "fd00:1::/64")
    assert r["ips"] == [{"address": "10.1.0.50/24", "gateway": "10.1.0.1", "interface": 1},
                        {"address": "fd00:1::50/64", "gateway": "fd00:1::1", "interface": 1}]
    assert {"dst": "::/0", "gw": "fd00:1::1"} in r["routes"]
    inside = cni.host.inside[(cni.ns(), "eth0")]
    assert (inside["cidr6"], inside["gw6"]) == ("fd00:1::50/64", "fd00:1::1")
    prev = dict(r, cniVersion="1.0.0")
    assert "error" not in cni.req("CHECK", subnet6="fd00:1::/64", prevResult=prev)
    inside["cidr6"] = None                                    # the address went away
    assert cni.code("CHECK", subnet6="fd00:1::/64", prevResult=prev) == cc.E_CHECK
    # a single-stack network of the same tenant leaves IPv6 alone
    r2 = cni.ok("ADD", cid="pod2", netns=cni.ns("pod2"))
    assert [ip["address"].split("/")[0] for ip in r2["ips"]] == \
        [p["ip"] for p in cni.ports() if p["port"] == cc.port_names("pod2", "eth0")[0]]


def test_second_add_is_refused_and_changes_nothing(cni):
    cni.ok("ADD")
    before = cni.snapshot()
    assert cni.code("ADD") == cc.E_EXISTS
    assert cni.snapshot() == before


def test_check_then_del_twice_and_without_netns(cni):
    r = cni.ok("ADD")
    assert cni.ok("CHECK", prevResult=r) is None
    other = dict(r, ips=[{"address": "10.1.0.99/24", "interface": 1}])
    assert cni.code("CHECK", prevResult=other) == cc.E_CHECK
    cni.switch_sees_ports = False
    assert cni.code("CHECK", prevResult=r) == cc.E_CHECK
    cni.host.inside[(cni.ns(), "eth0")]["gw"] = None
    cni.switch_sees_ports = True
    assert cni.code("CHECK", prevResult=r) == cc.E_CHECK
    cni.restart()                                   # no memory needed
    assert cni.ok("DEL") is None and cni.ok("DEL") is None
    assert cni.ports() == [] and cni.host.links == set() and cni.host.ovs.ifaces == {}
    assert cni.code("CHECK", prevResult=r) == cc.E_CHECK
    cni.ok("ADD", cid="pod2", netns=cni.ns("pod2"))
    assert cni.ok("DEL", cid="pod2", netns="") is None
    assert cni.ports() == []


def test_gc_removes_what_is_not_listed(cni):
    cni.ok("ADD", cid="keep")
    cni.ok("ADD", cid="drop", ifname="net1")
    valid = [{"containerID": "keep", "ifname": "eth0"}]
    assert cni.ok("GC", version="1.1.0", **{"cni.dev/valid-attachments": valid}) is None
    assert [p["port"] for p in cni.ports()] == [cc.port_names("keep", "eth0")[0]]
    assert list(cni.host.ovs.ifaces) == [cc.port_names("keep", "eth0")[0]]


def test_port_mappings_become_forwards_and_go_with_del(cni):
    pm = [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]
    cni.ok("ADD", runtimeConfig={"portMappings": pm})
    [f] = cni.api.get("/v1/tenants/blue/port-forwards")
    assert (f["external_ip"], f["external_port"], f["internal_port"]) == \
        ("203.0.113.11", 8080, 80)
    cni.ok("DEL")
    assert cni.api.get("/v1/tenants/blue/port-forwards") == []
    assert [g["name"] for g in cni.api.get("/v1/tenants/blue/security-groups")] == ["default"]


@pytest.mark.parametrize("conf, code", [
    (dict(tenant="green", network=None), cc.E_CONFIG),    # missing, and may not create it
    (dict(subnet="10.2.0.0/24", network=None), cc.E_CONFIG),
    (dict(subnet="10.1.0.0/16"), cc.E_CONTROLLER),         # overlaps without being equal
    (dict(runtimeConfig={"ips": ["10.1.0.0"]}), cc.E_CONTROLLER),
    (dict(runtimeConfig={"portMappings": [{"hostPort": 80, "containerPort": 80}]},
          cid="first", netns=None), cc.E_EXISTS),
    (dict(mtu=9000), cc.E_CONFIG),                         # more than the tenant's 1450
    (dict(version="0.1.0"), cc.E_VERSION),
])
def test_refusals_change_nothing(cni, conf, code):
    cni.ok("ADD", cid="first")
    before = cni.snapshot()
    kw = dict(dict(cid="second", netns=cni.ns("pod2")), **conf)
    assert cni.code("ADD", **kw) == code
    assert cni.snapshot() == before
    assert [p["port"] for p in cni.ports()] == [cc.port_names("first", "eth0")[0]]
    assert list(cni.host.ovs.ifaces) == [cc.port_names("first", "eth0")[0]]


def test_network_type_disagreement_is_the_controllers_sentence(cni):
    cni.api.post("/v1/tenants", {"name": "blue", "network": "vlan"})
    before = cni.snapshot()
    reply = cni.req("ADD")
    assert reply["error"]["code"] == cc.E_CONTROLLER and "vlan" in reply["error"]["msg"]
    assert cni.snapshot() == before


def test_plumbing_failure_rolls_back(cni):
    cni.ok("ADD", cid="first")
    before = cni.snapshot()
    cni.host.fail_create = True
    assert cni.code("ADD", cid="second", netns=cni.ns("pod2")) == cc.E_PLUMBING
    assert cni.snapshot() == before


def test_unreachable_controller_is_try_again_and_status_unavailable(cni):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        cni.url = f"http://127.0.0.1:{s.getsockname()[1]}"
    cni.restart()
    assert cni.code("ADD") == cc.E_TRY_AGAIN
    assert cni.code("DEL") == cc.E_TRY_AGAIN
    assert cni.code("STATUS", version="1.1.0") == cc.E_UNAVAILABLE


def test_status(cni):
    assert cni.ok("STATUS", version="1.1.0") is None
    assert cni.code("STATUS", version="1.1.0", network=None) == cc.E_UNAVAILABLE
    cni.ok("ADD")
    assert cni.ok("STATUS", version="1.1.0", network=None) is None


# --- DNS names (issue 19) -------------------------------------------------------------
def add_with_args(cni, cni_args, cid="pod1", **conf):
    config = {"cniVersion": "1.0.0", "name": "blue", "type": "vpc", "tenant": "blue",
              "subnet": "10.1.0.0/24", "network": "vxlan", **conf}
    env = {"CNI_CONTAINERID": cid, "CNI_IFNAME": "eth0", "CNI_NETNS": cni.ns(cid),
           "CNI_ARGS": cni_args}
    status, reply = cni.router.dispatch("/cni/ADD", json.dumps({"env": env,
                                                                "config": config}).encode())
    assert status == 200, reply
    return reply


def test_add_names_the_port_after_the_pod_and_answers_the_ports_dns(cni):
    reply = add_with_args(cni, "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0",
                          aliases=["web"])
    assert "error" not in reply, reply
    [port] = cni.ports()
    assert (port["name"], port["aliases"]) == ("web-0", ["web"])
    assert reply["result"]["dns"] == {"nameservers": ["10.1.0.1"], "domain": "blue.internal",
                                      "search": ["blue.internal"]}


def test_add_without_a_pod_name_leaves_the_port_unnamed(cni):
    r = cni.ok("ADD")
    [port] = cni.ports()
    assert port["name"] is None and port["aliases"] == []
    assert r["dns"]["nameservers"] == ["10.1.0.1"]
    # a pod name that is no DNS name: no name, the pod still comes up
    reply = add_with_args(cni, "K8S_POD_NAME=bad-", cid="pod2")
    assert "error" not in reply, reply
    assert {p["name"] for p in cni.ports()} == {None}


def test_a_refused_name_rolls_the_add_back(cni, monkeypatch):
    from vpcagent.server import ProtocolError

    call = cni.agent.controller.call

    def refuse_patch(method, *a, **kw):
        if method == "PATCH":
            raise ProtocolError("controller: name must be a DNS name")
        return call(method, *a, **kw)
    monkeypatch.setattr(cni.agent.controller, "call", refuse_patch)
    reply = add_with_args(cni, "K8S_POD_NAME=web-0")
    assert reply["error"]["code"] == cc.E_CONTROLLER, reply
    assert "name must be a DNS name" in reply["error"]["msg"]
    assert cni.ports() == [] and not cni.host.ovs.ifaces and not cni.host.links
