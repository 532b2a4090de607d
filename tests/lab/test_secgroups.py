"""Security groups and port security on real OVS conntrack: allowed and denied
TCP/ICMP, stateful replies, a removed rule cutting a live connection, group
membership changes, and spoofed frames delivering nothing."""
import subprocess
import time

import pytest

from tests.support.labhelp import serving
from tests.support.labhelp import make_tenant, pings, wait_for

HOLD_OPEN = ("import socket,time\n"
             "s=socket.create_connection(('{ip}',{port}),timeout=3)\n"
             "for i in range(200):\n"
             "    s.sendall(b'x'); d=s.recv(1)\n"
             "    assert d==b'x', d\n"
             "    print(i, flush=True); time.sleep(0.05)\n")
ECHO = ("import socket\n"
        "l=socket.socket(); l.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        "l.bind(('0.0.0.0',{port})); l.listen(5)\n"
        "while True:\n"
        "    c,_=l.accept()\n"
        "    while True:\n"
        "        d=c.recv(64)\n"
        "        if not d: break\n"
        "        c.sendall(d)\n")


def tcp_ok(lab, ns, ip, port, timeout=2):
    return lab.exec(ns, "nc", "-z", "-w", str(timeout), ip, str(port), check=False,
                    timeout=timeout + 5).returncode == 0


@pytest.fixture
def web(api, lab, make_container, request):
    """Tenant with a 'web' group admitting tcp/80 from the default group; the
    server s (h2) is in web only, the client c (h1) in default."""
    t = "sg" + request.node.name[5:9].replace("_", "")
    make_tenant(api, lab, t, network="vxlan")
    a = api(lab.api_url)
    status, g = a.post(f"/v1/tenants/{t}/security-groups", {"name": "web", "rules": [
        {"direction": "ingress", "protocol": "tcp", "ports": "80", "remote": "sg:default"}]})
    assert status == 201, g
    c = make_container(f"{t}c", 1, t)
    s = make_container(f"{t}s", 2, t)
    status, body = a.request("PATCH", f"/v1/tenants/{t}/ports/{s['id']}",
                             {"security_groups": ["web"]})
    assert status == 200, body
    with serving(lab, s["ns"], "python3", "-c", ECHO.format(port=80)), \
            serving(lab, s["ns"], "python3", "-c", ECHO.format(port=22)):
        yield t, c, s, g


def test_allowed_and_denied_tcp_and_icmp(lab, web):
    t, c, s, _ = web
    assert wait_for(lambda: tcp_ok(lab, c["ns"], s["ip"], 80), timeout=10)
    assert not tcp_ok(lab, c["ns"], s["ip"], 22)            # no rule for 22
    assert not pings(lab, c["ns"], s["ip"], count=2)        # nor ICMP
    assert pings(lab, s["ns"], c["ip"], count=2) is False   # web may not start anything


def test_removed_rule_cuts_the_live_connection(api, lab, web):
    t, c, s, g = web
    assert wait_for(lambda: tcp_ok(lab, c["ns"], s["ip"], 80), timeout=10)
    proc = lab.spawn(c["ns"], "python3", "-c", HOLD_OPEN.format(ip=s["ip"], port=80),
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)                                      # it is exchanging bytes
        # adding a rule keeps it alive
        a = api(lab.api_url)
        status, rule = a.post(f"/v1/tenants/{t}/security-groups/web/rules",
                              {"direction": "ingress", "protocol": "icmp"})
        assert status == 201
        time.sleep(1.0)
        assert proc.poll() is None, proc.communicate()
        assert pings(lab, c["ns"], s["ip"], count=2)         # the new rule works
        # removing the rule that admitted it cuts it
        rid = g["rules"][0]["id"]
        assert a.delete(f"/v1/tenants/{t}/security-groups/web/rules/{rid}")[0] == 204
        out, err = proc.communicate(timeout=15)
        assert proc.returncode != 0, "the connection survived the removal of its rule"
        exchanged = len(out.split())
        assert 10 < exchanged < 200, (exchanged, err)
        assert not tcp_ok(lab, c["ns"], s["ip"], 80)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_group_membership_change(api, lab, web):
    t, c, s, _ = web
    a = api(lab.api_url)
    # admin admits ssh from members of ops; c joins ops, then leaves it
    status, _ = a.post(f"/v1/tenants/{t}/security-groups", {"name": "ops"})
    assert status == 201
    status, _ = a.post(f"/v1/tenants/{t}/security-groups/web/rules",
                       {"direction": "ingress", "protocol": "tcp", "ports": "22",
                        "remote": "sg:ops"})
    assert status == 201
    assert not tcp_ok(lab, c["ns"], s["ip"], 22)
    assert a.request("PATCH", f"/v1/tenants/{t}/ports/{c['id']}",
                     {"security_groups": ["default", "ops"]})[0] == 200
    assert wait_for(lambda: tcp_ok(lab, c["ns"], s["ip"], 22), timeout=10)
    assert a.request("PATCH", f"/v1/tenants/{t}/ports/{c['id']}",
                     {"security_groups": ["default"]})[0] == 200
    assert wait_for(lambda: not tcp_ok(lab, c["ns"], s["ip"], 22), timeout=10)


def test_spoofed_frames_deliver_nothing(api, lab, make_container):
    make_tenant(api, lab, "spoof", network="vlan")
    x = make_container("spx", 1, "spoof")
    y = make_container("spy", 3, "spoof")
    z = make_container("spz", 3, "spoof")
    assert pings(lab, x["ns"], y["ip"])
    # x pretends to be z: z's IP on x's interface, then z's MAC too
    lab.exec(x["ns"], "ip", "addr", "add", f"{z['ip']}/32", "dev", "eth0")
    with lab.tcpdump(y["ns"], "eth0", f"icmp or arp and not ether src {y['mac']}") as cap:
        lab.exec(x["ns"], "ping", "-c", "3", "-i", "0.2", "-W", "1", "-I", z["ip"], y["ip"],
                 check=False)
        lab.exec(x["ns"], "ip", "link", "set", "eth0", "address", z["mac"])
        lab.exec(x["ns"], "ping", "-c", "3", "-i", "0.2", "-W", "1", "-I", z["ip"], y["ip"],
                 check=False)
        lab.exec(x["ns"], "arping", "-c", "2", "-w", "2", "-U", "-I", "eth0", z["ip"],
                 check=False)
        time.sleep(0.5)
    assert cap.count == 0, cap.lines
