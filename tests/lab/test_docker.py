"""Docker networks through vpc-agent, with a real dockerd on each emulated host.

The module's 3-host lab gets one dockerd per host (vpclab.labdocker: the
host's network namespace, a private mount namespace in which the host's
plugin directory is /run/docker/plugins) and one vpc-agent per host serving
it.  Containers are busybox from a locally imported image.  Every test
removes its containers, Docker networks and tenants, also on failure; the
module fixture stops agents and dockerds by pid and removes their files.
"""
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.labhelp import wait_for
from vpclab import labdocker, labfaults
from vpclab.labsys import pid_alive

HOSTS = (1, 2, 3)
SCRIPTS = str(Path(__file__).resolve().parents[2] / "scripts")
CYCLES = int(os.environ.get("VPC_DOCKER_CYCLES", "20"))


@pytest.fixture(scope="module")
def docker_hosts(lab):
    """{i: (Dockerd, Agent)} for every host of the module's lab."""
    reason = labdocker.docker_missing()
    if reason:
        pytest.skip(reason)
    made = {}
    rootfs = labdocker.busybox_rootfs()
    try:
        for i in HOSTS:
            d = labdocker.Dockerd(lab, i)
            made[i] = (d, None)
            d.start()
            labdocker.import_busybox(d, rootfs=rootfs)
            a = labdocker.Agent(lab, i, d, lab.api_url)
            made[i] = (d, a)
            a.start()
        yield made
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
        problems = []
        for d, a in made.values():
            with contextlib.suppress(Exception):
                d.remove_containers()      # while the agent answers: ports released
            if a is not None and not a.stop():
                problems.append(f"vpc-agent of h{a.i} survived")
            problems += d.destroy()
        assert not problems, problems


class Docker:
    """Networks and containers one test makes; ``cleanup()`` removes them."""

    def __init__(self, lab, api, hosts):
        self.lab, self.api, self.hosts = lab, api(lab.api_url), hosts
        self.containers, self.networks, self.tenants = [], [], []

    def d(self, i):
        return self.hosts[i][0]

    def network(self, kind, subnet="10.1.0.0/24", hosts=HOSTS, tenant=None, subnet6=None):
        """The same `docker network create` on each host; returns (name, tenant)."""
        tenant = tenant or f"d{kind[:2]}{secrets.token_hex(3)}"
        name = f"n{tenant}"
        self.tenants.append(tenant)
        six = ["--ipv6", "--subnet", subnet6] if subnet6 else []
        for i in hosts:
            self.d(i).cli("network", "create", "-d", "vpc", "--ipam-driver", "vpc",
                          "--subnet", subnet, *six, "-o", f"vpc.tenant={tenant}",
                          "-o", f"vpc.network={kind}", "--ipam-opt", f"vpc.tenant={tenant}",
                          name)
            self.networks.append((i, name))
        return name, tenant

    def run(self, i, name, network, *args, cmd=("sleep", "3600")):
        self.containers.append((i, name))
        self.d(i).cli("run", "-d", "--name", name, "--network", network, *args,
                      labdocker.IMAGE, *cmd)
        return self.ip(i, name)

    def ip(self, i, name):
        return self.d(i).cli("inspect", "-f",
                             "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                             name).stdout.strip()

    def mac(self, i, name):
        return self.d(i).cli("inspect", "-f",
                             "{{range .NetworkSettings.Networks}}{{.MacAddress}}{{end}}",
                             name).stdout.strip()

    def exec(self, i, name, *cmd, check=False, timeout=30):
        return self.d(i).cli("exec", name, *cmd, check=check, timeout=timeout)

    def pings(self, i, name, ip, count=3):
        p = self.exec(i, name, "ping", "-c", str(count), "-W", "1", ip)
        return p.returncode == 0

    def cleanup(self):
        for i, name in reversed(self.containers):
            self.d(i).cli("rm", "-f", name, check=False, timeout=60)
        for i, name in self.networks:
            self.d(i).cli("network", "rm", name, check=False)
        left = {}
        for t in self.tenants:
            status, ports = self.api.get(f"/v1/tenants/{t}/ports")
            if status == 200 and ports:
                left[t] = [(p["host"], p["ip"], p["port"]) for p in ports]
            self.api.delete(f"/v1/tenants/{t}")
        return left


@pytest.fixture
def docker(lab, api, docker_hosts):
    dk = Docker(lab, api, docker_hosts)
    yield dk
    left = dk.cleanup()
    assert not left, f"controller ports left behind: {left}"


def vd_links(lab, i):
    out = lab.exec(lab.host_ns(i), "ip", "-o", "link", "show").stdout
    return sorted(ln.split(":")[1].strip().split("@")[0] for ln in out.splitlines()
                  if ln.split(":")[1].strip().startswith(("vd", "vc")))


def vd_ports(lab, i):
    return sorted(p for p in lab.ovs_vsctl(i, "list-ports", "br-int").split()
                  if p.startswith("vd"))


HTTPD = ("sh", "-c", "mkdir -p /www && echo hello-vpc > /www/index.html && "
         "exec httpd -f -p 80 -h /www")


def fetch(docker, i, name, url):
    p = docker.exec(i, name, "timeout", "5", "wget", "-q", "-O", "-", url, timeout=15)
    return p.stdout.strip()


# --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["vxlan", "vlan"])
def test_network_across_hosts_ping_and_tcp(kind, docker, lab):
    net, tenant = docker.network(kind)
    ips = {i: docker.run(i, f"c{i}{tenant}", net, *(["--ip", "10.1.0.50"] if i == 2 else []),
                         cmd=HTTPD) for i in HOSTS}
    assert ips[2] == "10.1.0.50"
    assert len(set(ips.values())) == 3
    t = docker.api.get(f"/v1/tenants/{tenant}")[1]
    assert t["network"] == kind and t["subnets"] == ["10.1.0.0/24"]
    mtu = docker.exec(1, f"c1{tenant}", "cat", "/sys/class/net/eth0/mtu").stdout.strip()
    assert mtu == str(1500 - {"vxlan": 50, "vlan": 0}[kind])
    for a in HOSTS:
        for b in HOSTS:
            if a != b:
                assert wait_for(lambda: docker.pings(a, f"c{a}{tenant}", ips[b], count=2),
                                timeout=10), (a, b)
    # TCP across hosts (tx off made it through Docker's move of the veth)
    assert fetch(docker, 1, f"c1{tenant}", f"http://{ips[3]}/") == "hello-vpc"
    assert fetch(docker, 3, f"c3{tenant}", f"http://{ips[2]}/") == "hello-vpc"
    gw = docker.exec(2, f"c2{tenant}", "ip", "route").stdout
    assert "default via 10.1.0.1 dev eth0" in gw


def test_a_dual_stack_network_across_hosts(docker):
    """docker network create --ipv6: each container gets the controller's IPv4
    and IPv6 address (one port), the IPv6 default route, and reaches the other
    host's container over IPv6; removing them leaves no port behind."""
    net, tenant = docker.network("vxlan", hosts=(1, 2), subnet6="fd00:d6::/64")
    for i in (1, 2):
        docker.run(i, f"s{i}{tenant}", net)
    v6 = {i: docker.d(i).cli("inspect", "-f",
                             "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}",
                             f"s{i}{tenant}").stdout.strip() for i in (1, 2)}
    ports = docker.api.get(f"/v1/tenants/{tenant}/ports")[1]
    assert sorted(p["ip6"] for p in ports) == sorted(v6.values()), ports
    assert all(p["ip"] for p in ports) and len(ports) == 2          # no placeholder left
    assert "default via fd00:d6::1" in docker.exec(1, f"s1{tenant}", "ip", "-6", "route").stdout
    assert wait_for(lambda: docker.pings(1, f"s1{tenant}", v6[2], count=2), timeout=15)
    assert docker.pings(2, f"s2{tenant}", v6[1], count=1)


def test_same_subnet_other_network_is_isolated(docker):
    net_a, ta = docker.network("vxlan", hosts=(1, 2))
    net_b, tb = docker.network("vxlan", hosts=(1, 2))
    a1 = docker.run(1, f"a1{ta}", net_a, "--ip", "10.1.0.11")
    a2 = docker.run(2, f"a2{ta}", net_a, "--ip", "10.1.0.12")
    b2 = docker.run(2, f"b2{tb}", net_b, "--ip", "10.1.0.13")
    assert wait_for(lambda: docker.pings(1, f"a1{ta}", a2), timeout=10)
    assert not docker.pings(1, f"a1{ta}", b2)
    assert not docker.pings(2, f"b2{tb}", a1)
    assert not docker.pings(2, f"b2{tb}", a2)


def test_published_port_reached_from_outside_and_revoked_on_stop(docker, lab):
    net, tenant = docker.network("gre", hosts=(1,))
    name = f"web{tenant}"
    docker.run(1, name, net, "-p", "8080:80", cmd=HTTPD)
    url = f"http://{lab.external_ip(1)}:8080/"

    def curl():
        return lab.exec(lab.out_ns, "curl", "-s", "--max-time", "3", url, check=False,
                        timeout=10).stdout.strip()
    assert wait_for(lambda: curl() == "hello-vpc", timeout=15)
    fwd = docker.api.get(f"/v1/tenants/{tenant}/port-forwards")[1]
    assert [(f["external_ip"], f["external_port"], f["internal_port"]) for f in fwd] == \
        [(lab.external_ip(1), 8080, 80)]
    docker.d(1).cli("stop", "-t", "1", name)
    assert docker.api.get(f"/v1/tenants/{tenant}/port-forwards")[1] == []
    groups = [g["name"] for g in docker.api.get(f"/v1/tenants/{tenant}/security-groups")[1]]
    assert groups == ["default"]
    assert curl() != "hello-vpc"
    docker.d(1).cli("start", name)
    assert wait_for(lambda: curl() == "hello-vpc", timeout=15)


def test_restart_agent_kill9_and_dockerd_restart_keep_the_container(docker, docker_hosts,
                                                                    lab):
    net, tenant = docker.network("vxlan", hosts=(1, 2))
    peer = f"p1{tenant}"
    docker.run(1, peer, net, "--ip", "10.1.0.21")
    name = f"s2{tenant}"
    fixed = ("--ip", "10.1.0.22", "--mac-address", "02:42:0a:01:00:16", "--restart", "always")
    docker.run(2, name, net, *fixed)
    assert wait_for(lambda: docker.pings(1, peer, "10.1.0.22"), timeout=10)

    docker.d(2).cli("restart", "-t", "1", name)
    assert docker.ip(2, name) == "10.1.0.22"
    assert wait_for(lambda: docker.pings(1, peer, "10.1.0.22"), timeout=15)

    agent = docker_hosts[2][1]
    agent.kill9()
    assert os.path.exists(agent.sock)             # a crash leaves its socket behind
    agent.start()
    assert docker.pings(1, peer, "10.1.0.22")     # the data path never needed the agent
    # the restarted agent knows the network from dockerd, the port from the controller
    docker.d(2).cli("stop", "-t", "1", name)
    assert vd_links(lab, 2) == [] and vd_ports(lab, 2) == []
    docker.d(2).cli("start", name)
    assert wait_for(lambda: docker.pings(1, peer, "10.1.0.22"), timeout=15)
    other = docker.run(2, f"o2{tenant}", net)
    assert wait_for(lambda: docker.pings(1, peer, other), timeout=15)

    # dockerd restart: it stops the containers (through the agent) and brings
    # the --restart=always one back
    dockerd = docker_hosts[2][0]
    assert dockerd.stop()
    dockerd.start()
    assert wait_for(lambda: docker.ip(2, name) == "10.1.0.22", timeout=30)
    assert wait_for(lambda: docker.pings(1, peer, "10.1.0.22"), timeout=20)
    ports = docker.api.get(f"/v1/tenants/{tenant}/ports")[1]
    assert sorted(p["ip"] for p in ports) == ["10.1.0.21", "10.1.0.22"]


def test_restart_without_mac_address_keeps_the_mac_and_peers_reach_it_at_once(docker):
    """No --mac-address and no --ip: Docker would pick a new random MAC per
    start; the driver answers CreateEndpoint with the controller's MAC, derived
    from tenant and IP, so the restarted container comes back with the MAC the
    peer's ARP cache holds and answers within a couple of seconds."""
    net, tenant = docker.network("vxlan", hosts=(1, 2))
    peer = f"q1{tenant}"
    docker.run(1, peer, net)
    name = f"m2{tenant}"
    ip = docker.run(2, name, net)
    mac = docker.mac(2, name)
    ports = docker.api.get(f"/v1/tenants/{tenant}/ports")[1]
    assert [p["mac"] for p in ports if p["ip"] == ip] == [mac]
    assert docker.exec(2, name, "cat", "/sys/class/net/eth0/address").stdout.strip() == mac
    assert wait_for(lambda: docker.pings(1, peer, ip), timeout=10)
    assert mac in docker.exec(1, peer, "ip", "neigh", "show", ip).stdout   # cached

    docker.d(2).cli("restart", "-t", "1", name)
    assert (docker.ip(2, name), docker.mac(2, name)) == (ip, mac)
    assert docker.exec(2, name, "cat", "/sys/class/net/eth0/address").stdout.strip() == mac
    assert wait_for(lambda: docker.pings(1, peer, ip, count=1), timeout=3, interval=0.2)
    assert mac in docker.exec(1, peer, "ip", "neigh", "show", ip).stdout


def test_create_remove_cycles_leave_nothing_behind(docker, lab):
    net, tenant = docker.network("vxlan", hosts=(1,))
    before_links, before_ports = vd_links(lab, 1), vd_ports(lab, 1)
    for n in range(CYCLES):
        name = f"cy{n}{tenant}"
        docker.d(1).cli("run", "-d", "--name", name, "--network", net, labdocker.IMAGE,
                        "sleep", "600")
        docker.d(1).cli("rm", "-f", name)
    assert vd_links(lab, 1) == before_links
    assert vd_ports(lab, 1) == before_ports
    assert docker.api.get(f"/v1/tenants/{tenant}/ports")[1] == []


def test_refusals_reach_the_user_as_sentences(docker):
    net, tenant = docker.network("vlan", hosts=(1,))
    d = docker.d(1)
    # the same tenant with another network type
    p = d.cli("network", "create", "-d", "vpc", "--ipam-driver", "vpc", "--subnet",
              "10.1.0.0/24", "-o", f"vpc.tenant={tenant}", "-o", "vpc.network=vxlan",
              "--ipam-opt", f"vpc.tenant={tenant}", f"x{tenant}", check=False)
    assert p.returncode != 0
    assert "exists at the controller with network vlan, not vxlan" in p.stderr
    # no subnet: the IPAM driver's own words
    p = d.cli("network", "create", "-d", "vpc", "--ipam-driver", "vpc",
              "-o", f"vpc.tenant={tenant}", "--ipam-opt", f"vpc.tenant={tenant}",
              f"y{tenant}", check=False)
    assert p.returncode != 0 and "needs the subnet" in p.stderr
    # -p without a host port
    p = d.cli("run", "-d", "--name", f"np{tenant}", "--network", net, "-p", "80",
              labdocker.IMAGE, "sleep", "60", check=False)
    docker.containers.append((1, f"np{tenant}"))
    assert p.returncode != 0 and "name the host port" in p.stderr


def test_host_reboot_brings_the_container_back_with_its_ip_and_mac(docker, docker_hosts, lab):
    """A reboot of h2, simulated: the agent is killed -9, dockerd and every
    process under it (containerd, shims, the container) die at once by
    SIGKILL, what a real host keeps on tmpfs goes (Dockerd.power_off), the
    kernel's veths go, and ovs-vswitchd restarts from the same OVSDB (which,
    as on disk, still holds the container's old OVS port).
    Then dockerd boots *before* the agent -- the order nothing guarantees
    without the systemd unit's Before=docker.service -- and the agent comes
    up while dockerd restores.  A container started with --restart always,
    without --ip or --mac-address, must come back with the same IP and MAC
    (peers' ARP caches and anyone holding its address stay right), be
    reachable from h1, be "up" at the controller, and leave nothing of its
    previous life behind: the agent rebuilds everything from the controller
    and dockerd, it remembers nothing."""
    dockerd, agent = docker_hosts[2]
    net, tenant = docker.network("vxlan", hosts=(1, 2))
    peer = f"r1{tenant}"
    docker.run(1, peer, net)
    name = f"rb2{tenant}"
    ip = docker.run(2, name, net, "--restart", "always")
    mac = docker.mac(2, name)
    assert wait_for(lambda: docker.pings(1, peer, ip), timeout=10)
    try:
        agent.kill9()
        dockerd.power_off()
        for link in vd_links(lab, 2):   # a reboot leaves no veth; a crash can
            lab.exec(lab.host_ns(2), "ip", "link", "del", link, check=False)
        labfaults.restart_vswitchd(lab, 2)

        booted = time.monotonic()
        dockerd.spawn()
        agent.start()
        dockerd.wait_ready()
        assert wait_for(lambda: docker.pings(1, peer, ip, count=1), timeout=60), \
            (docker.d(2).cli("ps", "-a", check=False).stdout, dockerd.tail(), agent.tail())
        print(f"\nh2 reboot: dockerd start -> first ping from h1: "
              f"{time.monotonic() - booted:.1f} s")
    finally:                            # whatever failed, h2 is whole again for the module
        if not labfaults.vswitchd_pid(lab, 2) or \
                not pid_alive(labfaults.vswitchd_pid(lab, 2)):
            labfaults.start_vswitchd(lab, 2)
        if not dockerd.alive():
            dockerd.start()
        agent.start()

    assert name in docker.d(2).cli("ps", "--format", "{{.Names}}").stdout.split()
    assert (docker.ip(2, name), docker.mac(2, name)) == (ip, mac)
    assert docker.exec(2, name, "cat", "/sys/class/net/eth0/address").stdout.strip() == mac
    ports = docker.api.get(f"/v1/tenants/{tenant}/ports")[1]
    mine = [p for p in ports if p["host"] == lab.host_name(2)]
    assert [(p["ip"], p["mac"]) for p in mine] == [(ip, mac)], ports
    assert len(ports) == 2                           # the peer's and this one
    status, port = docker.api.get(f"/v1/tenants/{tenant}/ports/{mine[0]['id']}")
    assert status == 200 and port["status"] == "up", port
    # one veth pair's host end and one OVS port, both the controller port's
    assert vd_ports(lab, 2) == [mine[0]["port"]]
    assert vd_links(lab, 2) == [mine[0]["port"]]


# --- DNS names (issue 19) --------------------------------------------------------------
def lookup(docker, i, name, query, qtype="a"):
    """(addresses busybox nslookup answers for ``query`` in container ``name``,
    its output).  The container's /etc/resolv.conf picks the server."""
    p = docker.exec(i, name, "nslookup", f"-type={qtype}", query, timeout=20)
    addrs, answered = [], False
    for ln in p.stdout.splitlines():
        if ln.startswith("Name:"):
            answered = True
        elif answered and ln.startswith("Address"):
            addrs.append(ln.split(":", 1)[1].split()[0])
    return addrs, p.stdout + p.stderr


def named(docker, tenant, n):
    ports = docker.api.get(f"/v1/tenants/{tenant}/ports")[1] or []
    return len([p for p in ports if p.get("name")]) >= n


def test_names_resolve_across_hosts_round_robin_and_only_in_their_tenant(docker):
    """Two containers with --network-alias web on h1 and h2; a third on h3
    resolves web to both (the order turning between queries), its own name, a
    peer's NAME.<tenant>.internal; a container of another Docker network (another
    tenant, same subnet) on h3 gets NXDOMAIN for web.  Each container's
    resolv.conf points at the subnet's gateway, where the host's agent answers."""
    net, tenant = docker.network("vxlan", hosts=(1, 2, 3))
    other_net, other = docker.network("vxlan", hosts=(3,))
    w1 = docker.run(1, f"w1{tenant}", net, "--network-alias", "web")
    w2 = docker.run(2, f"w2{tenant}", net, "--network-alias", "web")
    q = f"q3{tenant}"
    q_ip = docker.run(3, q, net)
    x = f"x3{other}"
    docker.run(3, x, other_net)
    assert wait_for(lambda: named(docker, tenant, 3), timeout=20), \
        docker.api.get(f"/v1/tenants/{tenant}/ports")[1]
    ports = {p["ip"]: p for p in docker.api.get(f"/v1/tenants/{tenant}/ports")[1]}
    assert ports[w1]["name"] == f"w1{tenant}" and "web" in ports[w1]["aliases"]
    assert ports[w2]["name"] == f"w2{tenant}" and "web" in ports[w2]["aliases"]
    records = {r["name"]: r for r in docker.api.get(f"/v1/tenants/{tenant}/dns-records")[1]}
    assert sorted(records["web"]["ip"]) == sorted([w1, w2])

    rc = docker.exec(3, q, "cat", "/etc/resolv.conf").stdout
    assert "nameserver 10.1.0.1" in rc and f"search {tenant}.internal" in rc, rc
    assert "127.0.0.11" not in rc

    def web_answers():
        addrs, out = lookup(docker, 3, q, "web")
        return addrs if set(addrs) <= {w1, w2} and addrs else None
    assert wait_for(lambda: web_answers() is not None, timeout=15), lookup(docker, 3, q, "web")
    firsts, seen = set(), set()
    for _ in range(8):
        addrs = web_answers()
        assert addrs, lookup(docker, 3, q, "web")
        firsts.add(addrs[0])
        seen |= set(addrs)
    assert seen == {w1, w2}
    assert firsts == {w1, w2}, "round robin: each address comes first now and then"

    assert lookup(docker, 3, q, q)[0] == [q_ip]                       # its own name
    assert lookup(docker, 3, q, f"w1{tenant}.{tenant}.internal")[0] == [w1]
    # another tenant's container, same subnet and gateway address: not its names
    addrs, out = lookup(docker, 3, x, "web")
    assert addrs == [] and "NXDOMAIN" in out, out
    addrs, out = lookup(docker, 3, x, f"w1{tenant}")
    assert addrs == [], out


def test_dns_docker_option_keeps_dockers_resolver(docker):
    """-o vpc.dns=docker: the port still gets its names, resolv.conf stays Docker's."""
    tenant = f"dd{secrets.token_hex(3)}"
    name = f"n{tenant}"
    docker.tenants.append(tenant)
    docker.d(1).cli("network", "create", "-d", "vpc", "--ipam-driver", "vpc", "--subnet",
                    "10.1.0.0/24", "-o", f"vpc.tenant={tenant}", "-o", "vpc.dns=docker",
                    "--ipam-opt", f"vpc.tenant={tenant}", name)
    docker.networks.append((1, name))
    c = f"k1{tenant}"
    docker.run(1, c, name)
    assert wait_for(lambda: named(docker, tenant, 1), timeout=20)
    rc = docker.exec(1, c, "cat", "/etc/resolv.conf").stdout
    assert "vpc-agent" not in rc and "nameserver 10.1.0.1" not in rc, rc


def test_attach_dhcp_gets_address_route_and_dns_by_dhcp(docker, lab, tmp_path):
    """scripts/attach --dhcp --name: the container has only its MAC and MTU; busybox
    udhcpc gets the port's address, the default route and the DNS settings from
    the host's agent; a container on another host resolves its name and pings it."""
    net, tenant = docker.network("vxlan", hosts=(1, 2))
    peer = f"pd{tenant}"
    docker.run(1, peer, net)
    c = f"dh{tenant}"
    docker.containers.append((2, c))
    docker.d(2).cli("run", "-d", "--name", c, "--net=none", "--cap-add", "NET_ADMIN",
                    labdocker.IMAGE, "sleep", "3600")
    env = dict(os.environ, DOCKER_HOST=f"unix://{docker.d(2).sock}")
    cmd = [sys.executable, os.path.join(SCRIPTS, "attach"), tenant, c,
           "--host", lab.host_name(2), "--api", lab.api_url, "--json",
           "--host-netns", lab.host_ns(2), "--ovs-rundir", lab.rundir(2),
           "--dhcp", "--name", "dhcp-box", "--alias", "box"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    port = json.loads(p.stdout.strip().splitlines()[-1])
    try:
        assert (port["name"], port["aliases"]) == ("dhcp-box", ["box"])
        addr = docker.exec(2, c, "ip", "-4", "addr", "show", "eth0").stdout
        assert "inet " not in addr, addr                     # nothing until DHCP
        script = ("#!/bin/sh\n"
                  "case \"$1\" in bound|renew) ;; *) exit 0 ;; esac\n"
                  "ip addr add \"$ip/$mask\" dev \"$interface\"\n"
                  "for r in $router; do ip route add default via \"$r\" dev \"$interface\"; "
                  "break; done\n"
                  "echo \"dns=$dns domain=$domain lease=$lease\" > /dhcp.lease\n")
        docker.exec(2, c, "sh", "-c", f"printf '%s' '{script}' > /dhcp.sh && "
                    f"chmod +x /dhcp.sh", check=True)
        p = docker.exec(2, c, "udhcpc", "-i", "eth0", "-n", "-q", "-t", "5", "-T", "2",
                        "-s", "/dhcp.sh", timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        addr = docker.exec(2, c, "ip", "-4", "addr", "show", "eth0").stdout
        assert f"inet {port['ip']}/{port['prefixlen']}" in addr, addr
        assert f"default via {port['gateway']}" in docker.exec(2, c, "ip", "route").stdout
        lease = docker.exec(2, c, "cat", "/dhcp.lease").stdout
        assert f"dns={port['gateway']}" in lease and f"domain={tenant}.internal" in lease, \
            lease
        assert wait_for(lambda: docker.pings(1, peer, port["ip"], count=1), timeout=15)
        assert lookup(docker, 1, peer, "dhcp-box")[0] == [port["ip"]]
        assert lookup(docker, 1, peer, "box")[0] == [port["ip"]]
    finally:
        subprocess.run([sys.executable, os.path.join(SCRIPTS, "detach"), tenant, port["id"],
                        "--api", lab.api_url, "--host-netns", lab.host_ns(2),
                        "--ovs-rundir", lab.rundir(2)], capture_output=True, timeout=60)
