#!/usr/bin/env python3
"""Attach -> first packet: from the POST of a port to the first ping reply.

    .venv/bin/python bench/attach.py [--quick] [--hosts 10] [--attaches 100]
        [--interval 0.005] [--out FILE]

Run as root.  Builds its own lab (``bat<4 hex>``, --hosts emulated hosts on a
Linux-bridge fabric, no outside network) and its own controller
(bench/common.TimedController: labctl's, with timestamped log lines).
Three tenants, one per network type (vlan, vxlan, gre), each with a
"pinger" container on h1 (attached with scripts/attach, not timed).

Each attach (round robin over the tenants and over hosts h2..hN, so every
new port is on another host than its pinger):

  not timed  the container netns, its veth (eth0 with the MAC and IP the POST
             will ask for), the host end added to br-int -- plugged before
             the POST; the controller has seen the port (its "port X is
             ofport N" log line) before the clock starts.  Static neighbour
             entries both ways (pinger <-> new container), so that kernel ARP
             retry timers (1 s) do not hide the flows' arrival; the ARP
             responder flows arrive in the same bundles anyway.
             ``ping -D -i <interval>`` from the pinger to the new IP is
             started and running.
  t0         ``POST /v1/tenants/T/ports`` (host, port, ip, mac) is sent.
  measured   post_ms: the 201 arrives; ping_ms: the first echo reply's -D
             timestamp; host_flows_ms: the controller's "reconciled" log line
             for the new port's host (its bundle was committed and
             acknowledged); all_flows_ms: the last "reconciled" line any
             switch logged for this POST (every host of the tenant).

Ports stay attached, so the lab grows to --attaches ports; the first and last
quarters are reported apart.  Prints one JSON document; never a threshold.
Everything is removed on exit, also on Ctrl-C.
"""
import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402
from vpclab import lablib  # noqa: E402
import profiling  # noqa: E402

TAG = "attach"
TENANTS = (("avlan", "vlan"), ("avxlan", "vxlan"), ("agre", "gre"))
NETWORKS = ("vlan", "vxlan", "gre")       # bench/scenario.py: tenant i's is NETWORKS[i % 3]
PINGER_IP = "10.0.0.2"
REPLY = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="3 hosts, 15 attaches")
    p.add_argument("--hosts", type=int, default=None)
    p.add_argument("--attaches", type=int, default=None)
    p.add_argument("--interval", type=float, default=0.005, help="ping interval (s)")
    p.add_argument("--no-profile", action="store_true",
                   help="no py-spy on the controller during the attaches")
    p.add_argument("--bulk", type=int, default=0,
                   help="ports already in the lab before the attaches, on dummy datapaths "
                        "(bench/dummyovs.py, 50 ports each, 10 tenants each); the attach "
                        "tenants are three of theirs")
    p.add_argument("--out", help="also write the JSON here")
    a = p.parse_args(argv)
    if a.hosts is None:
        a.hosts = 3 if a.quick else 10
    if a.attaches is None:
        a.attaches = 15 if a.quick else 100
    if a.hosts < 2:
        p.error("--hosts must be at least 2")
    return a


class Pinger:
    """``ping -D`` in a namespace; ``first`` is the epoch of the first reply."""

    def __init__(self, ns, ip, interval):
        self.proc = subprocess.Popen(
            # -c, not -w: with a deadline, ping exits at the first error (an
            # unanswered ARP), and errors are expected before the flows exist.
            ["ip", "netns", "exec", ns, "ping", "-D", "-n", "-i", str(interval), "-W", "1",
             "-c", "100000", ip], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, bufsize=1, start_new_session=True)
        self.started = threading.Event()
        self.replied = threading.Event()
        self.first = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith("PING"):
                self.started.set()
            m = REPLY.match(line)
            if m and self.first is None:
                self.first = float(m.group(1))
                self.replied.set()
        self.started.set()

    def stop(self):
        lablib.kill_pid(self.proc.pid, timeout=1)
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        self.proc.stdout.close()


def wait_port_seen(ctl, offset, port, timeout=10):
    pat = re.compile(rf"dpid ([0-9a-f]{{16}}): port {re.escape(port)} is ofport (\d+)")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for _, _, _, msg in ctl.lines(offset):
            if pat.search(msg):
                return True
        time.sleep(0.02)
    return False


def wait_quiet(ctl, offset, t0, quiet=0.5, timeout=15):
    """Reconcile lines after t0 until none came for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    last_n, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        rec = [r for r in ctl.reconciles(offset) if r[0] >= t0]
        if len(rec) != last_n:
            last_n, last_change = len(rec), time.monotonic()
        elif time.monotonic() - last_change >= quiet:
            return rec
        time.sleep(0.05)
    return [r for r in ctl.reconciles(offset) if r[0] >= t0]


def bulk_scenario(ports):
    """The model of `ports` bulk ports: 50 per dummy datapath, 10 tenants per
    datapath, at least 10 tenants (each tenant on 10 datapaths from 500
    ports on, 5 ports a datapath)."""
    from scenario import Scenario
    hosts = max(1, ports // 50)
    tenants = max(10, -(-hosts // 10) * 10)
    sc = Scenario(hosts, 50, tenants, 10)
    # the lab's own hosts have tunnel IPs in 198.18.0.0/24
    sc.tunnel_ip = lambda h: f"198.19.{h // 250}.{h % 250 + 1}"
    return sc


def wait_switches(ctl, n, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, health = ctl.api.get("/v1/health")
        if status == 200 and isinstance(health, dict) and health.get("switches", 0) >= n:
            return True
        time.sleep(0.5)
    return False


def plug(lab, name, host, port, ip, mac, peer_ip, peer_mac):
    """Container netns with eth0 (MAC, IP, static neighbour for the peer),
    host end ``port`` added to br-int.  Not timed."""
    ns = lab.add_container(name, host=host)
    hns = lab.host_ns(host)
    lablib.sh(["ip", "link", "add", port, "netns", hns, "type", "veth",
               "peer", "name", "eth0", "netns", ns])
    script = (f"ip link set eth0 address {mac} mtu 1400 && "
              f"ip addr add {ip}/16 dev eth0 && ip link set eth0 up && "
              f"ip neigh replace {peer_ip} lladdr {peer_mac} dev eth0 nud permanent")
    lab.exec(ns, "sh", "-c", script)
    lab.exec(hns, "ip", "link", "set", port, "up")
    lab.ovs_vsctl(host, "add-port", "br-int", port)
    return ns


def run(args):
    load = common.load_avg()
    common.reap_stale(r"^bat[0-9a-f]{4}$", TAG)
    workdir = tempfile.mkdtemp(prefix="vpc-bench-attach-")
    sc = bulk_scenario(args.bulk) if args.bulk else None
    ctl = common.TimedController(workdir, app=os.path.join(HERE, "scale_app.py") if sc else None)
    lab = lablib.Lab(name=f"bat{secrets.token_hex(2)}", hosts=args.hosts, of_port=ctl.of_port,
                     external=False)
    farm = None
    tenants, pinger_ip = TENANTS, PINGER_IP
    samples = []
    try:
        common.log(TAG, f"controller on {ctl.url}, lab {lab.name} ({args.hosts} hosts); "
                        f"load {load}")
        if sc is not None:
            # the bulk: preloaded, on dummy datapaths; three of its tenants are
            # the attach tenants (their other ports are on those datapaths)
            import dummyovs
            dummyovs.reap(lambda m: common.log(TAG, m))
            sc.write_store(str(ctl.state_dir))
            farm = dummyovs.DummyFarm(f"bsc{secrets.token_hex(2)}", ctl.of_port)
            farm.up()
            farm.add_bridges([(f"b{h:03d}", sc.dpid(h), sc.ofports()) for h in range(sc.hosts)])
            tenants = tuple((sc.tenant_name(t), NETWORKS[t % 3]) for t in range(3))
            pinger_ip = "10.0.200.2"       # the bulk's ports use 10.0.0.x
        ctl.start()
        lab.up()
        lab.join_all(ctl.url)
        lab.wait_connected(timeout=60, api_url=ctl.url)
        if sc is not None:
            if not wait_switches(ctl, args.hosts + sc.hosts):
                raise lablib.LabError("the dummy datapaths did not all connect")
            # the bulk's cold start: every datapath reconciled once, then quiet
            deadline = time.monotonic() + 600
            while len({r[1] for r in ctl.reconciles(0)}) < args.hosts + sc.hosts and \
                    time.monotonic() < deadline:
                time.sleep(0.5)
            wait_quiet(ctl, 0, 0, quiet=3.0, timeout=300)
        pingers = {}
        for tenant, kind in tenants:
            if sc is None:
                for path, body in (("/v1/tenants", {"name": tenant, "network": kind}),
                                   (f"/v1/tenants/{tenant}/subnets", {"cidr": "10.0.0.0/16"})):
                    status, resp = ctl.api.post(path, body)
                    if status != 201:
                        raise lablib.LabError(f"POST {path}: {status} {resp}")
            name = f"p{kind}"
            ns = lab.add_container(name, host=1)
            port = lab.attach(tenant, name, 1, ctl.url, ip=pinger_ip)
            pingers[tenant] = (ns, port["mac"])
            if sc is not None:
                # a resident container of the tenant on every other host, so
                # that the attaches measure a port joining a tenant its host
                # already has (the first one brings the whole tenant: 4 flows
                # per port of it), as in the lab without bulk
                for h in range(2, args.hosts + 1):
                    lab.add_container(f"r{kind}{h}", host=h)
                    lab.attach(tenant, f"r{kind}{h}", h, ctl.url, ip=f"10.0.201.{h}")
        time.sleep(1.0)
        dpids = {lab.host_name(i): int(lab.dpid(i), 16) for i in lab.hosts_range()}
        spy = None if args.no_profile else \
            profiling.PySpy(ctl.pid, os.path.join(workdir, "attach.pyspy.txt"))
        for i in range(args.attaches):
            tenant, kind = tenants[i % len(tenants)]
            host = 2 + (i // len(TENANTS)) % (args.hosts - 1)
            name, port = f"a{i}", f"at{i}"
            ip = f"10.0.{1 + i // 200}.{10 + i % 200}"
            mac = f"02:aa:00:00:{i >> 8:02x}:{i & 255:02x}"
            pns, pmac = pingers[tenant]
            offset = ctl.log_size()
            plug(lab, name, host, port, ip, mac, pinger_ip, pmac)
            lab.exec(pns, "ip", "neigh", "replace", ip, "lladdr", mac, "dev", "eth0",
                     "nud", "permanent")
            seen = wait_port_seen(ctl, offset, port)
            pinger = Pinger(pns, ip, args.interval)
            try:
                pinger.started.wait(5)
                time.sleep(0.05)
                offset = ctl.log_size()
                t0 = time.time()
                status, resp = ctl.api.post(f"/v1/tenants/{tenant}/ports",
                                            {"host": lab.host_name(host), "port": port,
                                             "ip": ip, "mac": mac})
                t_resp = time.time()
                if status != 201:
                    raise lablib.LabError(f"POST port: {status} {resp}")
                pinger.replied.wait(10)
            finally:
                pinger.stop()
            rec = wait_quiet(ctl, offset, t0)
            mine = [r[0] for r in rec if r[1] == dpids[lab.host_name(host)]]
            own = [r[2] for r in rec if r[1] == dpids[lab.host_name(host)]]
            sample = {"i": i, "tenant": kind, "host": host, "port_seen_before": seen,
                      "post_ms": round((t_resp - t0) * 1000, 1),
                      "ping_ms": round((pinger.first - t0) * 1000, 1) if pinger.first else None,
                      "host_flows_ms": round((min(mine) - t0) * 1000, 1) if mine else None,
                      "all_flows_ms": round((max(r[0] for r in rec) - t0) * 1000, 1)
                      if rec else None,
                      "host_reconcile_ms": own[0] if own else None,
                      "switches_reconciled": len({r[1] for r in rec}),
                      "flow_mods": sum(r[3] + r[4] for r in rec)}
            samples.append(sample)
            common.log(TAG, f"{i + 1}/{args.attaches} {kind} h{host}: ping {sample['ping_ms']} ms, "
                            f"host flows {sample['host_flows_ms']} ms, POST {sample['post_ms']} ms")
        out = report(samples, args, load, lab)
        if sc is not None:
            out["bulk"] = {"ports": sc.hosts * sc.ppp, "dummy_datapaths": sc.hosts,
                           "tenants": sc.tenants, "tenants_per_datapath": sc.tph,
                           "attach_tenants": [t for t, _ in tenants],
                           "lab_ports_at_end": sc.hosts * sc.ppp + len(samples) + 3}
        if spy:
            spy.stop()
            out["pyspy_profile"] = spy.top()
            out["pyspy_note"] = ("the controller process over all attaches; py-spy skips "
                                 "samples where it is idle (waiting in epoll)")
        return out
    except BaseException:
        common.log(TAG, f"failed; controller log tail:\n{ctl.tail(20)}")
        raise
    finally:
        with common.uninterruptible():
            problems = lab.down()
            ctl.stop()
            if farm is not None:
                problems = (problems or []) + farm.down()
            shutil.rmtree(workdir, ignore_errors=True)
            if problems:
                common.log(TAG, f"cleanup problems: {problems}")


def report(samples, args, load, lab):
    def stats(key, rows=samples):
        return common.percentiles([s[key] for s in rows])
    q = max(1, len(samples) // 4)
    out = {"hosts": args.hosts, "attaches": len(samples), "ping_interval_s": args.interval,
           "load_avg_at_start": load, "lab": lab.name,
           "ping_ms": stats("ping_ms"), "post_ms": stats("post_ms"),
           "host_flows_ms": stats("host_flows_ms"), "all_flows_ms": stats("all_flows_ms"),
           "host_reconcile_ms": common.percentiles([s["host_reconcile_ms"] for s in samples
                                                    if s.get("host_reconcile_ms") is not None]),
           "no_reply": sum(1 for s in samples if s["ping_ms"] is None),
           "switches_reconciled_per_post": common.percentiles(
               [s["switches_reconciled"] for s in samples], 0),
           "flow_mods_per_post": common.percentiles([s["flow_mods"] for s in samples], 0),
           "ping_ms_first_quarter": stats("ping_ms", samples[:q]),
           "ping_ms_last_quarter": stats("ping_ms", samples[-q:]),
           "by_network": {k: stats("ping_ms", [s for s in samples if s["tenant"] == k])
                          for k in NETWORKS},
           "clock": "t0 = just before the POST is sent; ping_ms from ping -D's reply "
                    "timestamp; *_flows_ms from the controller's timestamped "
                    "'reconciled' log lines (logged after the bundle commit is acknowledged)",
           "samples": samples}
    return out


def main(argv=None):
    return common.run_main("bench/attach.py", parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
