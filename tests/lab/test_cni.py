"""The CNI plugin ``vpc`` against real namespaces, OVS and a controller.

There is no cnitool in Debian, so the test is the runtime: it execs the
plugin (through a symlink named ``vpc``, as /opt/cni/bin/vpc would be) with
the CNI_* variables and the network configuration on stdin.  Containers are
namespaces the test makes on the module's lab hosts; one vpc-agent per host
(h1, h2) serves the plugin's socket.  Every test removes its attachments,
namespaces and tenant, also on failure, and checks that nothing is left:
no vn*/vq* veth in the host namespace, no OVS port, no controller port.
"""
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.labhelp import serving, wait_for
from vpcagent import cni_config as cc
from vpclab import labdocker
from vpclab.labtraffic import ping, tcp_transfer

REPO = Path(__file__).resolve().parents[2]
HOSTS = (1, 2)
SUBNET = "10.1.0.0/24"
VXLAN_MTU = 1450


@pytest.fixture(scope="module")
def agents(lab, tmp_path_factory):
    """{i: vpc-agent of lab host i} with ``.cni_sock``; stopped by pid at the end."""
    made = {}
    try:
        labdocker.agents_without_dockerd(lab, HOSTS,
                                         lambda i: tmp_path_factory.mktemp(f"cni{i}"), made)
        for a in made.values():
            a.cni_sock = os.path.join(a.dockerd.base, "cni.sock")
            assert wait_for(lambda: os.path.exists(a.cni_sock), timeout=10), a.tail()
        yield made
    finally:
        for a in made.values():
            a.stop()


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """The plugin as a runtime finds it: an executable named ``vpc`` (a symlink to
    the venv's console script vpc-cni, falling back to ``python -m``)."""
    script = Path(sys.executable).parent / "vpc-cni"
    bindir = tmp_path_factory.mktemp("cnibin")
    if script.exists():
        (bindir / "vpc").symlink_to(script)
        return [str(bindir / "vpc")], str(bindir)
    return [sys.executable, "-m", "vpcagent.cni_plugin"], str(bindir)


class Cni:
    """One test's tenant, namespaces and attachments; ``cleanup()`` removes them."""

    def __init__(self, lab, api, agents, plugin):
        self.lab, self.api, self.agents = lab, api(lab.api_url), agents
        self.cmd, self.cni_path = plugin
        self.tenant = f"k{secrets.token_hex(3)}"
        self.attachments, self.containers, self.procs = [], [], []

    def conf(self, i, **over):
        c = {"cniVersion": "1.0.0", "name": self.tenant, "type": "vpc",
             "tenant": self.tenant, "subnet": SUBNET, "network": "vxlan",
             "agentSocket": self.agents[i].cni_sock}
        c.update(over)
        return {k: v for k, v in c.items() if v is not None}

    def run(self, command, conf, cid="", ifname="eth0", netns="", raw=None, **env):
        """Exec the plugin; (exit status, parsed stdout or None)."""
        environ = dict(os.environ, CNI_COMMAND=command, CNI_CONTAINERID=cid, CNI_NETNS=netns,
                       CNI_IFNAME=ifname, CNI_PATH=self.cni_path)
        environ.update(env)
        data = raw if raw is not None else json.dumps(conf).encode()
        p = subprocess.run(self.cmd, input=data, capture_output=True, env=environ,
                           timeout=90, cwd=str(REPO))
        out = p.stdout.decode().strip()
        return p.returncode, (json.loads(out) if out else None)

    def container(self, name, host, by_pid=False):
        """A namespace on lab host ``host``; its CNI_NETNS path (/run/netns/X, or
        /proc/PID/ns/net of a process kept in it)."""
        ns = self.lab.add_container(f"{name}{self.tenant}", host=host)
        self.containers.append(f"{name}{self.tenant}")
        if not by_pid:
            return ns, f"/run/netns/{ns}"
        proc = self.lab.spawn(ns, "sleep", "600")
        self.procs.append(proc)
        return ns, f"/proc/{proc.pid}/ns/net"

    def add(self, i, cid, netns, ifname="eth0", **over):
        self.attachments.append((i, cid, ifname))
        rc, out = self.run("ADD", self.conf(i, **over), cid, ifname, netns)
        assert rc == 0, out
        return out

    def ports(self):
        status, ports = self.api.get(f"/v1/tenants/{self.tenant}/ports")
        return ports if status == 200 else []

    def leftovers(self):
        left = {"controller": [(p["host"], p["port"]) for p in self.ports()]}
        for i in HOSTS:
            links = self.lab.exec(self.lab.host_ns(i), "ip", "-o", "link", "show").stdout
            left[f"h{i} veth"] = [ln.split(":")[1].strip().split("@")[0]
                                  for ln in links.splitlines()
                                  if ln.split(":")[1].strip().startswith(("vn", "vq"))]
            left[f"h{i} ovs"] = [p for p in self.lab.ovs_vsctl(i, "list-ports", "br-int").split()
                                 if p.startswith("vn")]
        return {k: v for k, v in left.items() if v}

    def cleanup(self):
        for i, cid, ifname in self.attachments:
            self.run("DEL", self.conf(i), cid, ifname)
        for proc in self.procs:
            proc.kill()
            proc.wait(5)
        for name in self.containers:
            self.lab.del_container(name)
        left = self.leftovers()
        for i in HOSTS:                       # whatever a failed test left: by name
            for name in left.get(f"h{i} ovs", []):
                self.lab.ovs_vsctl(i, "--if-exists", "del-port", "br-int", name)
            for name in left.get(f"h{i} veth", []):
                self.lab.exec(self.lab.host_ns(i), "ip", "link", "del", name, check=False)
        for p in self.ports():
            self.api.delete(f"/v1/tenants/{self.tenant}/ports/{p['id']}")
        self.api.delete(f"/v1/tenants/{self.tenant}")
        return left


@pytest.fixture
def cni(lab, api, agents, plugin):
    c = Cni(lab, api, agents, plugin)
    yield c
    left = c.cleanup()
    assert not left, f"left behind: {left}"


def snapshot(api):
    snap = {"tenants": api.get("/v1/tenants")[1]}
    for t in snap["tenants"]:
        for what in ("subnets", "ports", "port-forwards", "security-groups"):
            snap[f"{t['name']}/{what}"] = api.get(f"/v1/tenants/{t['name']}/{what}")[1]
    return snap


def addresses(lab, ns, ifname="eth0"):
    return lab.exec(ns, "ip", "-o", "-4", "addr", "show", "dev", ifname, check=False).stdout


# --------------------------------------------------------------------------
def test_add_on_two_hosts_then_check_second_add_and_del(cni, lab):
    ns1, path1 = cni.container("a", 1)
    ns2, path2 = cni.container("b", 2, by_pid=True)
    r1 = cni.add(1, "cid-a" + cni.tenant, path1)
    r2 = cni.add(2, "cid-b" + cni.tenant, path2)

    # the result, as the spec shapes it
    host_if, _ = cc.port_names("cid-a" + cni.tenant, "eth0")
    assert r1["cniVersion"] == "1.0.0"
    assert [i["name"] for i in r1["interfaces"]] == [host_if, "eth0"]
    assert r1["interfaces"][1]["sandbox"] == path1
    assert r1["ips"][0]["interface"] == 1 and r1["ips"][0]["gateway"] == "10.1.0.1"
    assert r1["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}]
    ip1, ip2 = (r["ips"][0]["address"].split("/")[0] for r in (r1, r2))
    assert r1["ips"][0]["address"].endswith("/24") and ip1 != ip2
    # ... and what the container got
    assert f"inet {ip1}/24" in addresses(lab, ns1)
    link = lab.exec(ns1, "ip", "-o", "link", "show", "dev", "eth0").stdout
    assert f"mtu {VXLAN_MTU}" in link and r1["interfaces"][1]["mac"] in link
    assert "tx-checksumming: off" in lab.exec(ns1, "ethtool", "-k", "eth0").stdout
    assert "default via 10.1.0.1" in lab.exec(ns2, "ip", "route").stdout
    ports = {p["port"]: p for p in cni.ports()}
    assert ports[host_if]["host"] == lab.host_name(1) and ports[host_if]["ip"] == ip1

    # cross-host traffic
    assert wait_for(lambda: ping(lab, ns1, ip2, count=2).received >= 1, timeout=10)
    xfer = tcp_transfer(lab, ns2, ns1, ip2, 2 * 1000 * 1000)
    assert xfer.identical, xfer.detail

    # CHECK: fine with the ADD's result as prevResult
    rc, out = cni.run("CHECK", cni.conf(1, prevResult=r1), "cid-a" + cni.tenant, "eth0", path1)
    assert (rc, out) == (0, None)

    # a second ADD for the same container+ifname: refused, nothing changes
    before = cni.ports()
    rc, out = cni.run("ADD", cni.conf(1), "cid-a" + cni.tenant, "eth0", path1)
    assert rc == 1 and out["code"] == cc.E_EXISTS, out
    assert "already has an interface eth0" in out["msg"]
    assert cni.ports() == before and f"inet {ip1}/24" in addresses(lab, ns1)

    # DEL twice; CHECK afterwards reports the difference
    for _ in range(2):
        rc, out = cni.run("DEL", cni.conf(1), "cid-a" + cni.tenant, "eth0", path1)
        assert (rc, out) == (0, None)
    assert "eth0" not in lab.exec(ns1, "ip", "-o", "link").stdout
    rc, out = cni.run("CHECK", cni.conf(1, prevResult=r1), "cid-a" + cni.tenant, "eth0", path1)
    assert rc == 1 and out["code"] == cc.E_CHECK, out

    # DEL after the namespace is gone, with CNI_NETNS empty (kubelet after a reboot)
    for proc in cni.procs:
        proc.kill()
        proc.wait(5)
    cni.procs.clear()
    lab.del_container(cni.containers.pop())
    rc, out = cni.run("DEL", cni.conf(2), "cid-b" + cni.tenant, "eth0", "")
    assert (rc, out) == (0, None)
    assert cni.leftovers() == {}


def test_a_dual_stack_network(cni, lab):
    """subnet6 in the configuration: pods on two hosts get an address of each
    family, reach each other over IPv6 (and IPv4), and CHECK is content."""
    six = "fd00:99::/64"
    ns1, path1 = cni.container("s", 1)
    ns2, path2 = cni.container("t", 2)
    r1 = cni.add(1, "cid-s" + cni.tenant, path1, subnet6=six)
    r2 = cni.add(2, "cid-t" + cni.tenant, path2, subnet6=six)
    v6 = [next(ip["address"].split("/")[0] for ip in r["ips"] if ":" in ip["address"])
          for r in (r1, r2)]
    assert all(a.startswith("fd00:99::") for a in v6) and v6[0] != v6[1]
    assert {"dst": "::/0", "gw": "fd00:99::1"} in r1["routes"]
    assert v6[0] in lab.exec(ns1, "ip", "-o", "-6", "addr", "show", "dev", "eth0").stdout
    assert wait_for(lambda: ping(lab, ns1, v6[1], count=2).received >= 1, timeout=10)
    ip2 = r2["ips"][0]["address"].split("/")[0]
    assert ping(lab, ns1, ip2, count=1).received == 1
    rc, out = cni.run("CHECK", cni.conf(1, subnet6=six, prevResult=r1), "cid-s" + cni.tenant,
                      "eth0", path1)
    assert (rc, out) == (0, None)


def test_gc_status_and_version(cni, lab):
    keep_ns, keep = cni.container("k", 1)
    _, drop = cni.container("d", 1)
    r = cni.add(1, "keep" + cni.tenant, keep)
    cni.add(1, "drop" + cni.tenant, drop, ifname="net1")
    assert len(cni.ports()) == 2
    conf = cni.conf(1, cniVersion="1.1.0")
    conf["cni.dev/valid-attachments"] = [{"containerID": "keep" + cni.tenant, "ifname": "eth0"}]
    rc, out = cni.run("GC", conf)
    assert (rc, out) == (0, None)
    assert [p["port"] for p in cni.ports()] == [cc.port_names("keep" + cni.tenant, "eth0")[0]]
    dropped = cc.port_names("drop" + cni.tenant, "net1")[0]
    assert dropped not in lab.ovs_vsctl(1, "list-ports", "br-int").split()
    rc, out = cni.run("CHECK", cni.conf(1, prevResult=r), "keep" + cni.tenant, "eth0", keep)
    assert (rc, out) == (0, None)

    assert cni.run("STATUS", cni.conf(1, cniVersion="1.1.0")) == (0, None)
    rc, out = cni.run("STATUS", cni.conf(1, cniVersion="1.1.0", agentSocket="/run/vpc/none"))
    assert rc == 1 and out["code"] == cc.E_UNAVAILABLE
    rc, out = cni.run("VERSION", {"cniVersion": "1.0.0"})
    assert rc == 0 and "1.1.0" in out["supportedVersions"]


def test_port_mappings_reached_from_outside_and_removed_on_del(cni, lab, api):
    ns, path = cni.container("w", 1)
    mapping = {"hostPort": 5088, "containerPort": 8080, "protocol": "tcp"}
    cni.add(1, "web" + cni.tenant, path, runtimeConfig={"portMappings": [mapping]})
    fwd = cni.api.get(f"/v1/tenants/{cni.tenant}/port-forwards")[1]
    assert [(f["external_ip"], f["external_port"], f["internal_port"]) for f in fwd] == \
        [(lab.external_ip(1), 5088, 8080)]
    url = f"http://{lab.external_ip(1)}:5088/"

    def code():
        return lab.exec(lab.out_ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                        "--max-time", "3", url, check=False, timeout=10).stdout.strip()

    with serving(lab, ns, "python3", "-m", "http.server", "--bind", "0.0.0.0", "8080"):
        assert wait_for(lambda: code() == "200", timeout=20)
        rc, out = cni.run("DEL", cni.conf(1), "web" + cni.tenant, "eth0", path)
        assert (rc, out) == (0, None)
        assert code() != "200"
    assert cni.api.get(f"/v1/tenants/{cni.tenant}/port-forwards")[1] == []
    groups = [g["name"] for g in cni.api.get(f"/v1/tenants/{cni.tenant}/security-groups")[1]]
    assert groups == ["default"]


def test_bad_input_is_refused_with_spec_codes_and_changes_nothing(cni, lab, api):
    _, path = cni.container("x", 1)
    cni.add(1, "ok" + cni.tenant, path)           # the tenant exists with 10.1.0.0/24
    fresh_ns, fresh = cni.container("y", 1)
    before = snapshot(cni.api)
    cases = [
        (dict(subnet="10.9.0.0/24", network=None), {}, cc.E_CONFIG),
        (dict(tenant="nosuch" + cni.tenant, network=None), {}, cc.E_CONFIG),
        (dict(network="vlan"), {}, cc.E_CONTROLLER),              # tenant is vxlan
        (dict(subnet="10.1.0.0/16"), {}, cc.E_CONTROLLER),        # overlaps, not equal
        (dict(cniVersion="9.9.9"), {}, cc.E_VERSION),
        (dict(ipam={"type": "host-local"}), {}, cc.E_FIELD),
        (dict(runtimeConfig={"ips": ["10.2.0.5/24"]}), {}, cc.E_CONFIG),
        (dict(mtu=9000), {}, cc.E_CONFIG),                        # larger than the tenant's
        ({}, {"CNI_IFNAME": ""}, cc.E_ENV),
        ({}, {"CNI_NETNS": "/run/netns/no-such-ns"}, cc.E_UNKNOWN_CONTAINER),
    ]
    for over, env, code in cases:
        rc, out = cni.run("ADD", cni.conf(1, **over), "bad" + cni.tenant, "eth0", fresh, **env)
        assert rc == 1 and out["code"] == code, (over, env, out)
        assert out["msg"] and set(out) == {"cniVersion", "code", "msg", "details"}
        assert snapshot(cni.api) == before, (over, env)
    rc, out = cni.run("ADD", None, "bad" + cni.tenant, "eth0", fresh, raw=b"{not json")
    assert rc == 1 and out["code"] == cc.E_DECODE
    assert snapshot(cni.api) == before
    assert "eth0" not in lab.exec(fresh_ns, "ip", "-o", "link").stdout
    assert [p["port"] for p in cni.ports()] == [cc.port_names("ok" + cni.tenant, "eth0")[0]]


def test_add_result_has_the_ports_dns_and_the_pod_resolves_by_name(cni, lab):
    """CNI_ARGS K8S_POD_NAME names the port, the configuration's aliases add
    names; the ADD result's dns is the port's (its gateway, the tenant's domain);
    a pod on the other host resolves the name at that gateway."""
    ns1, path1 = cni.container("n", 1)
    ns2, path2 = cni.container("m", 2)
    args = f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-{cni.tenant}"
    cni.attachments.append((1, "cid-n" + cni.tenant, "eth0"))
    rc, r1 = cni.run("ADD", cni.conf(1, aliases=["web"]), "cid-n" + cni.tenant, "eth0", path1,
                     CNI_ARGS=args)
    assert rc == 0, r1
    domain = f"{cni.tenant}.internal"
    assert r1["dns"] == {"nameservers": ["10.1.0.1"], "domain": domain, "search": [domain]}
    r2 = cni.add(2, "cid-m" + cni.tenant, path2,
                 dns={"search": ["svc.cluster.local"], "options": ["ndots:5"]})
    assert r2["dns"] == {"nameservers": ["10.1.0.1"], "domain": domain,
                         "search": ["svc.cluster.local"], "options": ["ndots:5"]}
    ip1 = r1["ips"][0]["address"].split("/")[0]
    port = next(p for p in cni.ports() if p["ip"] == ip1)
    assert (port["name"], port["aliases"]) == (f"web-{cni.tenant}", ["web"])

    def resolves(name):
        p = lab.exec(ns2, "busybox", "nslookup", "-type=a", name, "10.1.0.1", check=False,
                     timeout=20)
        return ip1 in p.stdout.split("Name:", 1)[-1]
    assert wait_for(lambda: resolves(f"web-{cni.tenant}"), timeout=15)
    assert resolves("web") and resolves(f"web.{domain}")
