"""NAT cost: TCP connections per second through SNAT and a port forward,
next to the same tenant's direct cross-host path, measured in one run.

    .venv/bin/python bench/nat.py [--seconds 5] [--out FILE]     (root)

Builds its own 2-host lab (with the outside network) and controller.  One
short TCP connection = connect, 1 byte each way, close, from a Python loop in
the client's namespace against a threaded echo server:
  local    container on h1 -> container on h1 (no NAT, one datapath: SNAT's baseline)
  direct   container on h1 -> container on h2 (VXLAN tenant, no NAT)
  snat     container on h1 -> the outside server, through h1's SNAT (two stages)
  forward  the outside -> h1's external IP:5000 -> the container on h1
Each connection also passes the ports' security groups (conntrack in the
port's zone), so "local" is the fair baseline: one datapath, no NAT.
Prints JSON.  Never used as a threshold anywhere.
"""
import argparse
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from vpclab import labctl  # noqa: E402
from common import emit  # noqa: E402
from vpclab import lablib  # noqa: E402

SERVER = """
import socket, threading
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("{ip}", {port})); l.listen(512)
def serve(c):
    try:
        c.sendall(c.recv(1))
    finally:
        c.close()
while True:
    c, _ = l.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""
CLIENT = """
import socket, time, json
end = time.monotonic() + {seconds}; ok = err = 0
while time.monotonic() < end:
    try:
        s = socket.create_connection(("{ip}", {port}), timeout=2)
        s.sendall(b"x"); assert s.recv(1) == b"x"; s.close(); ok += 1
    except Exception:
        err += 1
print(json.dumps({{"ok": ok, "errors": err, "seconds": {seconds}}}))
"""


def log(msg):
    print(f"[nat] {msg}", file=sys.stderr, flush=True)


def rate(lab, ns, ip, port, seconds):
    out = lab.exec(ns, "python3", "-c", CLIENT.format(ip=ip, port=port, seconds=seconds),
                   timeout=seconds + 30).stdout
    r = json.loads(out.strip().splitlines()[-1])
    r["per_second"] = round(r["ok"] / seconds, 1)
    return r


def run(lab, ctl, seconds):
    api = labctl.Api(ctl.url)
    assert api.post("/v1/tenants", {"name": "bn", "network": "vxlan"})[0] == 201
    assert api.post("/v1/tenants/bn/subnets", {"cidr": "10.0.0.0/24"})[0] == 201
    assert api.put("/v1/tenants/bn/snat", {"enabled": True})[0] == 200
    assert api.post("/v1/tenants/bn/security-groups/default/rules",
                    {"direction": "ingress", "protocol": "tcp", "ports": "9000"})[0] == 201
    ports = {}
    for name, host in (("n1", 1), ("n2", 2), ("n3", 1)):
        lab.add_container(name, host=host)
        ports[name] = lab.attach("bn", name, host, ctl.url)
    status, fwd = api.post("/v1/tenants/bn/port-forwards",
                           {"port_id": ports["n1"]["id"], "protocol": "tcp",
                            "external_port": 5000, "internal_port": 9000})
    assert status == 201, fwd
    servers = [lab.spawn(lab.out_ns, "python3", "-c", SERVER.format(ip=lab.server_ip, port=9000)),
               lab.spawn(lab.container_ns("n1"), "python3", "-c",
                         SERVER.format(ip="0.0.0.0", port=9000)),
               lab.spawn(lab.container_ns("n2"), "python3", "-c",
                         SERVER.format(ip="0.0.0.0", port=9000)),
               lab.spawn(lab.container_ns("n3"), "python3", "-c",
                         SERVER.format(ip="0.0.0.0", port=9000))]
    try:
        time.sleep(1.0)
        deadline = time.monotonic() + 20      # the gateway's MAC is ARPed for at connect
        while time.monotonic() < deadline and \
                rate(lab, lab.container_ns("n1"), lab.server_ip, 9000, 1)["ok"] == 0:
            time.sleep(0.5)
        results = {}
        for mode, ns, ip, port in (
                ("local", lab.container_ns("n1"), ports["n3"]["ip"], 9000),
                ("direct", lab.container_ns("n1"), ports["n2"]["ip"], 9000),
                ("snat", lab.container_ns("n1"), lab.server_ip, 9000),
                ("forward", lab.out_ns, fwd["external_ip"], 5000)):
            log(f"{mode}: {seconds} s of connections to {ip}:{port}")
            results[mode] = rate(lab, ns, ip, port, seconds)
        ct = lab.appctl(1, "dpctl/dump-conntrack").count("\n")
        return results, ct
    finally:
        for p in servers:
            p.terminate()
            p.wait(5)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("bench/nat.py needs root (namespaces, OVS daemons)")
    signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(SystemExit(143)))
    load = os.getloadavg()[0]
    workdir = tempfile.mkdtemp(prefix="vpc-bench-nat-")
    ctl = labctl.Controller(workdir)
    lab = lablib.Lab(name=f"bnt{secrets.token_hex(2)}", hosts=2, of_port=ctl.of_port)
    try:
        ctl.start()
        lab.up()
        lab.join_all(ctl.url)
        lab.wait_connected(timeout=30, api_url=ctl.url)
        results, ct_entries = run(lab, ctl, args.seconds)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        problems = lab.down()
        ctl.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if problems:
            log(f"cleanup problems: {problems}")
    local = results["local"]["per_second"] or 1
    out = {"bench": "nat", "cpus": os.cpu_count(), "load_avg_1m_at_start": round(load, 2),
           "seconds": args.seconds, "connections": results,
           "ratio_snat_to_local": round(results["snat"]["per_second"] / local, 3),
           "ratio_forward_to_local": round(results["forward"]["per_second"] / local, 3),
           "ratio_cross_host_to_local": round(results["direct"]["per_second"] / local, 3),
           "conntrack_entries_h1_after": ct_entries,
           "method": "sequential short TCP connections (connect, 1 byte each way, close) "
                     "from one Python client; every path also passes security groups"}
    emit(out, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
