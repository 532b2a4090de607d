"""NAT on real OVS conntrack: SNAT for tenants sharing CIDRs and source ports,
port forwards (TCP, UDP), floating IPs, SNAT off, and nothing private leaking
to the outside.  The outside is the lab's <lab>-out namespace: gateway
203.0.113.1, an "internet" server at 198.51.100.10 behind it."""
import os
import re
import subprocess
import time

import pytest

from tests.support.labhelp import make_tenant, wait_for
from tests.support.labhelp import serving

HTTP_SERVER = ["python3", "-m", "http.server", "--bind", "{ip}", "{port}"]
UDP_ECHO = ("import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
            "s.bind(('0.0.0.0',{port}));\n"
            "while True:\n d,a=s.recvfrom(2048);s.sendto(b'echo:'+d,a)")


def http_server(lab, ns, ip, port, log=None):
    cmd = [c.format(ip=ip, port=port) for c in HTTP_SERVER]
    return serving(lab, ns, *cmd, log=log)


def curl(lab, ns, url, local_port=None, timeout=5):
    cmd = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", str(timeout)]
    if local_port:
        cmd += ["--local-port", str(local_port)]
    return lab.exec(ns, *cmd, url, check=False, timeout=timeout + 5).stdout.strip()


def allow_in(api, lab, tenant, protocol, ports=None):
    """Open the tenant's default group to the outside (it admits only members)."""
    rule = {"direction": "ingress", "protocol": protocol, "remote": "0.0.0.0/0"}
    if ports:
        rule["ports"] = ports
    status, body = api(lab.api_url).post(f"/v1/tenants/{tenant}/security-groups/default/rules",
                                         rule)
    assert status == 201, body


def egress_ready(lab, host):
    """SNAT needs the gateway's MAC, which the controller ARPs for."""
    return wait_for(lambda: "ct_state=+snat" in lab.ovs_ofctl(host, "dump-flows", "table=44")
                    and "output:" in lab.ovs_ofctl(host, "dump-flows", "table=44"), timeout=15)


@pytest.fixture(scope="module")
def outside_capture(lab):
    """tcpdump on the outside network for the whole module: nothing private may show."""
    with lab.tcpdump(lab.out_ns, "br0", "ip net 10.0.0.0/8") as cap:
        yield cap


def test_snat_two_tenants_same_cidr_same_source_port(api, lab, make_container, outside_capture,
                                                     tmp_path):
    a = api(lab.api_url)
    for t in ("sa", "sb"):
        make_tenant(api, lab, t, network="vxlan" if t == "sa" else "vlan")
        status, body = a.put(f"/v1/tenants/{t}/snat", {"enabled": True})
        assert status == 200 and body["snat"], body
    ca = make_container("sa1", 1, "sa", ip="10.0.0.2")
    cb = make_container("sb1", 1, "sb", ip="10.0.0.2")
    assert egress_ready(lab, 1)
    log = tmp_path / "server.log"
    with http_server(lab, lab.out_ns, lab.server_ip, 80, log=log):
        url = f"http://{lab.server_ip}/"
        procs = [lab.spawn(c["ns"], "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                           "--max-time", "5", "--local-port", "40000", url,
                           stdout=subprocess.PIPE, text=True) for c in (ca, cb)]
        codes = [p.communicate(timeout=15)[0].strip() for p in procs]
        assert codes == ["200", "200"]
        ct = lab.appctl(1, "dpctl/dump-conntrack")
        # stage 1: each tenant's zone took 10.0.0.2:40000 to its own transit IP;
        # stage 2: the host's shared zone took both transit IPs to the external IP
        lines = ct.splitlines()
        stage1 = {re.search(r"zone=(\d+)", line).group(1): re.search(
                  r"reply=\(src=\S+?,dst=([\d.]+)", line).group(1)
                  for line in lines if "sport=40000,dport=80" in line and "dst=100.64." in line}
        ids = [a.get(f"/v1/tenants/{t}")[1]["id"] for t in ("sa", "sb")]
        assert stage1 == {str(i): f"100.64.0.{i}" for i in ids}, ct
        stage2 = [line for line in lines if "orig=(src=100.64." in line and "dport=80" in line
                  and f"dst={lab.external_ip(1)}" in line and "zone=32768" in line]
        assert len(stage2) == 2, ct
    clients = re.findall(r"^(\S+) - -", log.read_text(), re.M)
    assert clients == [lab.external_ip(1)] * 2, log.read_text()
    # ping through SNAT works too (ICMP ids are not translated: the zone chain finds it)
    assert lab.ping(ca["ns"], lab.server_ip, count=3)
    assert lab.ping(cb["ns"], lab.server_ip, count=3)


def test_snat_disabled_stops_new_outbound_connections(api, lab, make_container, outside_capture):
    a = api(lab.api_url)
    make_tenant(api, lab, "so", network="gre")
    assert a.put("/v1/tenants/so/snat", {"enabled": True})[0] == 200
    c = make_container("so1", 2, "so")
    assert egress_ready(lab, 2)
    with http_server(lab, lab.out_ns, lab.server_ip, 8081):
        url = f"http://{lab.server_ip}:8081/"
        assert wait_for(lambda: curl(lab, c["ns"], url) == "200", timeout=10)
        assert a.put("/v1/tenants/so/snat", {"enabled": False})[0] == 200
        assert wait_for(lambda: curl(lab, c["ns"], url, timeout=2) != "200", timeout=10)
        assert not lab.ping(c["ns"], lab.server_ip, count=2)


def test_port_forward_tcp_and_udp(api, lab, make_container, outside_capture):
    a = api(lab.api_url)
    make_tenant(api, lab, "pf", network="vxlan")
    c = make_container("pf1", 3, "pf")
    allow_in(api, lab, "pf", "tcp", "22")
    allow_in(api, lab, "pf", "udp", "53")
    for proto, ext, internal in (("tcp", 5000, 22), ("udp", 5353, 53)):
        status, body = a.post("/v1/tenants/pf/port-forwards",
                              {"port_id": c["id"], "protocol": proto, "external_port": ext,
                               "internal_port": internal})
        assert status == 201 and body["external_ip"] == lab.external_ip(3), body
    assert egress_ready(lab, 3)
    with http_server(lab, c["ns"], "0.0.0.0", 22), \
            serving(lab, c["ns"], "python3", "-c", UDP_ECHO.format(port=53)):
        assert wait_for(lambda: curl(lab, lab.out_ns, f"http://{lab.external_ip(3)}:5000/") ==
                        "200", timeout=10)
        out = lab.exec(lab.out_ns, "sh", "-c",
                       f"echo ping | nc -u -w 2 {lab.external_ip(3)} 5353", check=False)
        assert "echo:ping" in out.stdout
        # the container's own address is not reachable from outside
        assert curl(lab, lab.out_ns, f"http://{c['ip']}:22/", timeout=2) != "200"


def test_floating_ip_both_ways(api, lab, make_container, outside_capture, tmp_path):
    a = api(lab.api_url)
    make_tenant(api, lab, "fi", network="vlan")
    c = make_container("fi1", 2, "fi")
    allow_in(api, lab, "fi", "tcp", "8080")
    allow_in(api, lab, "fi", "icmp")
    fip = lab.floating_ip(1)
    status, body = a.post("/v1/tenants/fi/floating-ips", {"port_id": c["id"], "external_ip": fip})
    assert status == 201 and body["host"] == "h2", body
    assert egress_ready(lab, 2)
    assert wait_for(lambda: lab.ping(lab.out_ns, fip, count=1), timeout=10)     # in
    log = tmp_path / "server.log"
    with http_server(lab, c["ns"], "0.0.0.0", 8080), \
            http_server(lab, lab.out_ns, lab.server_ip, 8082, log=log):
        assert curl(lab, lab.out_ns, f"http://{fip}:8080/") == "200"
        assert curl(lab, c["ns"], f"http://{lab.server_ip}:8082/") == "200"           # out
    assert re.findall(r"^(\S+) - -", log.read_text(), re.M) == [fip]


def test_nothing_private_reached_the_outside(lab, outside_capture):
    """Runs last in this module: the capture spans every NAT test above."""
    time.sleep(0.5)
    assert outside_capture.count == 0, outside_capture.lines[:10]


def test_outside_namespace_is_not_the_root_namespace(lab):
    assert lab.out_ns in os.listdir("/run/netns")
