"""The demo: a controller, a 3-host lab, tenants that reuse one CIDR, and proof.

Run through `scripts/demo` (which installs everything first).  Prints each
step, then a report of pings that must work and pings that must not, and
leaves the lab up for poking (or tears it down with --down).  With Docker
installed, also a Docker network across h1 and h2 (vpclab/demo_docker.py).
Exit status 0 only when every check came out as expected.
"""
import argparse
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
from vpclab import demo_docker, labdocker, lablib  # noqa: E402
from vpcctl.client import Client  # noqa: E402

CIDR = "10.0.0.0/24"
# tenant, network, [(container, host, ip)]
TENANTS = [
    ("red", "vlan", [("red1", 1, "10.0.0.2"), ("red2", 2, "10.0.0.3")]),
    ("blue", "vlan", [("blue1", 2, "10.0.0.2"), ("blue2", 3, "10.0.0.4")]),
    ("green", "vxlan", [("green1", 1, "10.0.0.2"), ("green2", 2, "10.0.0.3"),
                        ("green3", 3, "10.0.0.5")]),
    ("gold", "gre", [("gold1", 1, "10.0.0.2"), ("gold2", 3, "10.0.0.3")]),
]
# (from container, to ip, expected, why)
CHECKS = [
    ("red1", "10.0.0.3", True, "red h1 -> red h2 (VLAN)"),
    ("red2", "10.0.0.2", True, "red h2 -> red h1, not blue's 10.0.0.2"),
    ("blue1", "10.0.0.4", True, "blue h2 -> blue h3 (VLAN)"),
    ("green1", "10.0.0.3", True, "green h1 -> green h2 (VXLAN)"),
    ("green2", "10.0.0.5", True, "green h2 -> green h3 (VXLAN)"),
    ("gold1", "10.0.0.3", True, "gold h1 -> gold h3 (GRE)"),
    ("red1", "10.0.0.4", False, "red -> blue's 10.0.0.4"),
    ("blue2", "10.0.0.3", False, "blue -> red's 10.0.0.3"),
    ("green1", "10.0.0.4", False, "green -> blue's 10.0.0.4"),
    ("gold2", "10.0.0.5", False, "gold -> green's 10.0.0.5"),
]


def step(n, total, text):
    print(f"[{n}/{total}] {text}", flush=True)


def port_free(port):
    """Nothing listens there.  SO_REUSEADDR as the controller's own listeners
    set it: connections of an earlier demo still in TIME_WAIT do not count."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def call(url, method, path, body=None):
    """(status, body) of one request to the controller; errors returned, not raised."""
    return Client(url, timeout=10).call(method, path, body)


def start_controller(lab, rest_port, of_port):
    state = os.path.join(lab.statedir, "controller-state")
    log = os.path.join(lab.statedir, "controller.log")
    env = dict(os.environ, VPC_REST_HOST="127.0.0.1", VPC_REST_PORT=str(rest_port),
               VPC_STATE=state, PYTHONUNBUFFERED="1")
    cmd = [os.path.join(REPO, ".venv", "bin", "osken-manager"), "--ofp-tcp-listen-port",
           str(of_port), "--ofp-listen-host", "127.0.0.1", "apps/vpc.py"]
    with open(log, "a") as f:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    with open(os.path.join(lab.statedir, "controller.pid"), "w") as f:
        f.write(f"{proc.pid}\n")
    url = f"http://127.0.0.1:{rest_port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the controller exited ({proc.returncode}); see {log}")
        try:
            if call(url, "GET", "/v1/health")[0] == 200:
                return url, proc.pid, log
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"the controller did not answer on {url} within 30 s; see {log}")


def nat_demo(lab, url, where):
    """red gets SNAT (masquerade through h1's external IP); the outside reaches
    red1's web server through h1's external IP port 5000."""
    assert call(url, "PUT", "/v1/tenants/red/snat", {"enabled": True})[0] == 200
    # security groups: red's default group admits only its members; open port 80
    assert call(url, "POST", "/v1/tenants/red/security-groups/default/rules",
                {"direction": "ingress", "protocol": "tcp", "ports": "80",
                 "remote": "0.0.0.0/0"})[0] == 201
    red1 = where["red1"][2]
    status, fwd = call(url, "POST", "/v1/tenants/red/port-forwards",
                       {"port_id": red1["id"], "protocol": "tcp", "external_port": 5000,
                        "internal_port": 80})
    assert status == 201, fwd
    servers = [lab.spawn(lab.out_ns, "python3", "-m", "http.server", "--bind", lab.server_ip, "80"),
               lab.spawn(lab.container_ns("red1"), "python3", "-m", "http.server", "80")]
    time.sleep(1.0)
    good = 0
    try:
        checks = [
            (lab.container_ns("red1"), f"http://{lab.server_ip}/",
             f"red1 -> outside server {lab.server_ip} via SNAT ({lab.external_ip(1)})"),
            (lab.out_ns, f"http://{fwd['external_ip']}:5000/",
             f"outside -> {fwd['external_ip']}:5000 -> red1:80 (port forward)"),
        ]
        for ns, target, why in checks:
            code = "000"
            for _ in range(10):      # the gateway's MAC may still be being ARPed for
                code = lab.exec(ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                "--max-time", "3", target, check=False).stdout.strip()
                if code == "200":
                    break
                time.sleep(0.5)
            ok = code == "200"
            good += ok
            print(f"      {'reaches ' if ok else 'FAILED  '} {why:62} "
                  f"{'as expected' if ok else 'UNEXPECTED'}")
        blue = lab.exec(lab.container_ns("blue1"), "curl", "-s", "-o", "/dev/null", "-w",
                        "%{http_code}", "--max-time", "2", f"http://{lab.server_ip}/",
                        check=False).stdout.strip()
        ok = blue != "200"
        good += ok
        print(f"      {'blocked ' if ok else 'reaches '} {'blue1 -> outside (blue has no SNAT)':62} "
              f"{'as expected' if ok else 'UNEXPECTED'}")
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait(5)
    return good, 3


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", default="vpclab", help="lab name (default vpclab)")
    ap.add_argument("--rest-port", type=int, default=8080)
    ap.add_argument("--of-port", type=int, default=6653)
    ap.add_argument("--down", action="store_true", help="tear the demo down and exit")
    ap.add_argument("--teardown", action="store_true",
                    help="run the demo, then tear everything down")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("the demo builds network namespaces and OVS daemons: run it as root")
    lab = lablib.Lab(name=args.name, hosts=3, of_port=args.of_port)
    if args.down or lab.exists():
        print(f"tearing down lab {args.name} (controller included)", flush=True)
        problems = lab.down()
        if problems:
            print("  problems: " + "; ".join(problems))
        if args.down:
            return 0
    for port in (args.rest_port, args.of_port):
        if not port_free(port):
            sys.exit(f"port {port} on 127.0.0.1 is in use; stop what uses it or pass "
                     f"--rest-port/--of-port")
    docker_missing = labdocker.docker_missing()
    total = 7 if docker_missing else 8
    step(1, total, f"lab {args.name}: 3 hosts (own netns + ovsdb-server + ovs-vswitchd each), "
                   "a Linux-bridge fabric")
    lab.up()
    step(2, total, "controller: osken-manager apps/vpc.py")
    url, pid, log = start_controller(lab, args.rest_port, args.of_port)
    print(f"      pid {pid}, REST {url}/v1, log {log}")
    step(3, total, "hosts join (scripts/host-join): br-int, br-phy, vxlan0, gre0, controller")
    lab.join_all(url)
    lab.wait_connected(timeout=30, api_url=url)
    step(4, total, f"tenants, all on {CIDR}: " +
         ", ".join(f"{t} ({net})" for t, net, _ in TENANTS))
    where = {}
    for tenant, network, containers in TENANTS:
        status, t = call(url, "POST", "/v1/tenants", {"name": tenant, "network": network})
        assert status == 201, t
        assert call(url, "POST", f"/v1/tenants/{tenant}/subnets", {"cidr": CIDR})[0] == 201
        for name, host, ip in containers:
            lab.add_container(name, host=host)
            port = lab.attach(tenant, name, host, url, ip=ip)
            where[name] = (tenant, host, port)
        print(f"      {tenant:6} {network:5} segment {t['segment']:<3} " +
              "  ".join(f"{n}@h{h}={ip}" for n, h, ip in containers))
    step(5, total, "containers attached (scripts/attach): veth, MAC, IP, route, MTU")
    step(6, total, "checks")
    good = 0
    for src, dst, expected, why in CHECKS:
        ok = lab.ping(lab.container_ns(src), dst, count=3, interval=0.2, wait=1.0)
        verdict = "as expected" if ok == expected else "UNEXPECTED"
        good += ok == expected
        print(f"      {'reaches ' if ok else 'blocked '} {src:7} -> {dst:9} {why:42} {verdict}")
    step(7, total, "NAT: SNAT for red, a port forward to red1, the outside at "
                   f"{lab.server_ip} (gateway {lab.external_gateway})")
    nat_good, nat_total = nat_demo(lab, url, where)
    good += nat_good
    total_checks = len(CHECKS) + nat_total
    docker_hints = []
    if docker_missing:
        print(f"      (no Docker network demo: {docker_missing})")
    else:
        step(8, total, "Docker on h1 and h2: a dockerd and a vpc-agent each, one network "
                       "across both")
        d_good, d_total, docker_hints = demo_docker.run(lab, url, CIDR, "10.0.0.4")
        good += d_good
        total_checks += d_total
    print(f"\n{good}/{total_checks} checks as expected.")
    if args.teardown:
        lab.down()
        print("lab torn down.")
    else:
        print(f"""
The lab is up.  Poke at it:
  curl -s {url}/v1/tenants | python3 -m json.tool
  curl -s {url}/v1/topology
  {url}/ui                 (the live topology picture, in a browser)
  curl -s {url}/metrics    (Prometheus metrics)
  ip netns exec {lab.container_ns('red1')} ping 10.0.0.3
  ovs-ofctl -O OpenFlow13 dump-flows unix:{lab.rundir(1)}/br-int.mgmt
  scripts/lab --name {args.name} status""" + "".join(f"\n  {h}" for h in docker_hints) + f"""
Tear it down:  scripts/demo --down   (or scripts/lab down --name {args.name})""")
    return 0 if good == total_checks else 1


if __name__ == "__main__":
    sys.exit(main())
