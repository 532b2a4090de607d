#!/usr/bin/env python3
"""Data-plane benchmark: our pipeline vs. plain OVS NORMAL on the same lab.

    .venv/bin/python bench/dataplane.py [--seconds 5] [--pings 20] [--repeat 3] [--out FILE]

Run as root.  Builds its own 2-host lab (``bdp<4 hex>``) and its own
controller (vpclab/labctl.py, started exactly as the test fixtures start
it), then for each network type (vlan, vxlan, gre):

  ours    a tenant of that type, a container on h1 and one on h2, attached
          with scripts/attach; iperf3 client on h1 -> server on h2 for
          --seconds, --repeat times (the median is the result: on a small
          shared machine single runs vary by 2x), and the average RTT of
          --pings pings.  Only the measured pair of containers exists at a
          time, in both set-ups.
  NORMAL  the same hosts, daemons and fabric with the controller stopped and
          br-int rebuilt as a standalone NORMAL bridge with no controller:
          the VLAN container is an access port (tag 10) and patch-phy a trunk
          for VLAN 10 only; VXLAN and GRE go through per-peer tunnel ports
          (``remote_ip=<peer> key=<k>``) that are access ports of VLANs 20 and
          30.  One path per VLAN between the two hosts: no broadcast loop.
          Containers get the same MTUs as ours (1500 - encapsulation).

Packet-ins during our iperf3 runs are counted three ways:
``packet_ins`` is the increase of n_packets of every br-int flow (both hosts)
whose actions output to CONTROLLER -- every table miss of the pipeline drops,
so these flows are where packet-ins come from; ``packet_in_flows`` names the
flows that counted (e.g. LLDP discovery, not the data).
``controller_packet_ins`` is the increase of the controller's own counter
(``GET /v1/health`` -> ``packet_ins`` by reason), null if it has none.
``of_msgs_to_controller`` is the increase of OVS's ``rconn_sent`` coverage
counter: every OpenFlow message the switches sent to a controller (echoes,
replies, packet-ins) -- an upper bound.

Prints one JSON document; never a pass/fail threshold.  Everything it made
(lab, controller, temp dir) is removed on exit, also after Ctrl-C, SIGTERM or
an error.
"""
import argparse
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from vpclab import labctl  # noqa: E402
from common import emit  # noqa: E402
from vpclab import lablib  # noqa: E402
from vpclab.labtraffic import iperf3, ping  # noqa: E402

KINDS = ("vlan", "vxlan", "gre")
ENCAP_OVERHEAD = {"vlan": 0, "vxlan": 50, "gre": 42}
BASELINE_TAG = {"vlan": 10, "vxlan": 20, "gre": 30}
BASELINE_KEY = {"vxlan": 5020, "gre": 5030}
IPS = ("10.0.0.11", "10.0.0.12")
LAB_RE = re.compile(r"^bdp[0-9a-f]{4}$")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=int, default=5, help="iperf3 duration per run")
    p.add_argument("--pings", type=int, default=20, help="pings per RTT average")
    p.add_argument("--repeat", type=int, default=3,
                   help="iperf3 runs per measurement; the median is reported")
    p.add_argument("--out", help="also write the JSON here")
    return p.parse_args(argv)


def log(msg):
    print(f"[dataplane] {msg}", file=sys.stderr, flush=True)


def reap_stale_labs():
    """Bench labs whose creating process is dead (a SIGKILLed run)."""
    if not os.path.isdir(lablib.BASE):
        return
    for name in os.listdir(lablib.BASE):
        if LAB_RE.match(name):
            pid = lablib.Lab.load(name)._read_state().get("up_pid")
            if not pid or not lablib.pid_alive(pid):
                log(f"removing stale lab {name}")
                lablib.Lab.load(name).down()


# --- counting what reaches the controller ----------------------------------------
def controller_flow_packets(lab):
    """{"h<i> table=<t> <match>": n_packets} of every br-int flow that
    outputs to CONTROLLER."""
    out = {}
    for i in lab.hosts_range():
        for line in lab.ovs_ofctl(i, "dump-flows").splitlines():
            if "CONTROLLER" not in line:
                continue
            n = re.search(r"n_packets=(\d+)", line)
            t = re.search(r"table=(\d+)", line)
            match = re.search(r"(priority=\S*)\s+actions=", line)
            key = f"h{i} table={t.group(1) if t else '?'} {match.group(1) if match else line}"
            out[key] = out.get(key, 0) + (int(n.group(1)) if n else 0)
    return out


def controller_packet_ins(ctl):
    """{reason: count} from the controller's own counter (GET /v1/health
    "packet_ins"), or None when this controller does not report it."""
    try:
        status, body = ctl.api.get("/v1/health")
    except OSError:
        return None
    pi = body.get("packet_ins") if status == 200 and isinstance(body, dict) else None
    return dict(pi) if isinstance(pi, dict) else None


def delta(after, before):
    """Per-key increase of two {key: count} dicts (keys that grew only)."""
    if after is None or before is None:
        return None
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def rconn_sent(lab):
    total = 0
    for i in lab.hosts_range():
        m = re.search(r"^rconn_sent\s.*total: (\d+)", lab.appctl(i, "coverage/show"), re.M)
        total += int(m.group(1)) if m else 0
    return total


# --- one measurement -------------------------------------------------------------
def measure(lab, c1, c2, dst_ip, args, ctl=None):
    """RTT and iperf3 from c1 to c2; with ``ctl`` (our set-up) also what
    reached the controller during the iperf3 runs."""
    warm = ping(lab, c1, dst_ip, count=3)          # first packet of a host pair may
    if warm.received == 0:                         # be lost (tunnel neighbour ARP)
        raise lablib.LabError(f"no connectivity {c1} -> {dst_ip}:\n{warm.output}")
    rtt = ping(lab, c1, dst_ip, count=args.pings, interval=0.2)
    out = {"rtt_ms": rtt.avg_ms, "rtt_replies": f"{rtt.received}/{rtt.sent}"}
    if ctl:
        time.sleep(1.1)         # OVS folds per-thread coverage counts about once a second
        before = controller_flow_packets(lab), rconn_sent(lab), controller_packet_ins(ctl)
    runs = [iperf3(lab, c2, c1, dst_ip, seconds=args.seconds) for _ in range(args.repeat)]
    out["mbit_s_runs"] = [r["mbit_s"] for r in runs]
    out["mbit_s"] = statistics.median(out["mbit_s_runs"])
    out["retransmits"] = sum(r["retransmits"] or 0 for r in runs)
    if ctl:
        time.sleep(1.1)
        after = controller_flow_packets(lab), rconn_sent(lab), controller_packet_ins(ctl)
        flows = delta(after[0], before[0])
        out["packet_ins"] = sum(flows.values())
        out["packet_in_flows"] = flows
        out["of_msgs_to_controller"] = after[1] - before[1]
        reasons = delta(after[2], before[2])
        out["controller_packet_ins"] = None if reasons is None else sum(reasons.values())
        out["controller_packet_in_reasons"] = reasons
    return out


# --- ours ------------------------------------------------------------------------
def run_ours(lab, ctl, args):
    results = {}
    for kind in KINDS:
        made = []
        t = f"bench{kind}"
        status, body = ctl.api.post("/v1/tenants", {"name": t, "network": kind})
        if status != 201:
            raise lablib.LabError(f"POST tenant: {status} {body}")
        status, body = ctl.api.post(f"/v1/tenants/{t}/subnets", {"cidr": "10.0.0.0/24"})
        if status != 201:
            raise lablib.LabError(f"POST subnet: {status} {body}")
        ns = []
        for host, ip in zip((1, 2), IPS):
            name = f"{kind}{host}"
            ns.append(lab.add_container(name, host=host))
            port = lab.attach(t, name, host, ctl.url, ip=ip)
            made.append((t, port["id"], host, name))
        log(f"ours {kind}: measuring")
        results[kind] = dict(measure(lab, ns[0], ns[1], IPS[1], args, ctl=ctl),
                             mtu=port["mtu"])
        # Only the measured pair may exist: the userspace datapath polls every
        # veth from one thread, so idle ports elsewhere would slow the next run.
        for t, port_id, host, name in made:
            lab.detach(t, port_id, host, ctl.url, check=False)
            lab.del_container(name)
    return results


# --- NORMAL ----------------------------------------------------------------------
def build_normal(lab):
    """br-int as a standalone NORMAL bridge without a controller, on the
    hosts host-join built (br-phy with eth0 and the tunnel IP stays)."""
    for i in lab.hosts_range():
        peer = lab.tunnel_ip(3 - i)
        args = ["--if-exists", "del-br", "br-int",
                "--", "add-br", "br-int",
                "--", "set", "bridge", "br-int", "datapath_type=netdev",
                "fail_mode=standalone",
                "--", "add-port", "br-int", "patch-phy",
                "--", "set", "interface", "patch-phy", "type=patch",
                "options:peer=patch-int",
                "--", "set", "port", "patch-phy", f"trunks={BASELINE_TAG['vlan']}"]
        for kind in ("vxlan", "gre"):
            port = f"{kind}-peer"
            args += ["--", "add-port", "br-int", port,
                     "--", "set", "interface", port, f"type={kind}",
                     f"options:remote_ip={peer}", f"options:key={BASELINE_KEY[kind]}",
                     f"options:local_ip={lab.tunnel_ip(i)}",
                     "--", "set", "port", port, f"tag={BASELINE_TAG[kind]}"]
        lab.ovs_vsctl(i, *args)
        flows = lab.ovs_ofctl(i, "dump-flows")
        if "NORMAL" not in flows:
            raise lablib.LabError(f"h{i}: standalone br-int has no NORMAL flow:\n{flows}")


def plug(lab, name, host, kind, ip, mtu, mac):
    """A container on the NORMAL br-int: veth, access port of the kind's VLAN."""
    ns = lab.add_container(name, host=host)
    port = f"n{kind[:2]}{host}"
    hns = lab.host_ns(host)
    lablib.sh(["ip", "link", "add", port, "netns", hns, "type", "veth",
               "peer", "name", "eth0", "netns", ns])
    lab.exec(ns, "ip", "link", "set", "eth0", "address", mac, "mtu", str(mtu))
    lab.exec(ns, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
    lab.exec(ns, "ip", "link", "set", "eth0", "up")
    lab.exec(ns, "ethtool", "-K", "eth0", "tx", "off")
    lab.exec(hns, "ip", "link", "set", port, "mtu", str(mtu), "up")
    lab.ovs_vsctl(host, "add-port", "br-int", port, "--", "set", "port", port,
                  f"tag={BASELINE_TAG[kind]}")
    return ns


def run_normal(lab, args):
    build_normal(lab)
    results = {}
    for n, kind in enumerate(KINDS):
        mtu = 1500 - ENCAP_OVERHEAD[kind]
        ns = [plug(lab, f"n{kind}{host}", host, kind, ip, mtu, f"02:00:00:00:{n:02x}:{host:02x}")
              for host, ip in zip((1, 2), IPS)]
        log(f"NORMAL {kind}: measuring")
        results[kind] = dict(measure(lab, ns[0], ns[1], IPS[1], args), mtu=mtu)
        for host in (1, 2):
            lab.ovs_vsctl(host, "--if-exists", "del-port", "br-int", f"n{kind[:2]}{host}")
            lab.del_container(f"n{kind}{host}")
    return results


def ratio(a, b):
    return round(a / b, 3) if a and b else None


def report(ours, normal, args, lab):
    out = {"lab": lab.name, "hosts": 2, "seconds": args.seconds, "pings": args.pings,
           "repeat": args.repeat,
           "cpus": os.cpu_count(), "load_avg_1m_at_start": args.load_at_start,
           "ovs": subprocess.run(["ovs-vswitchd", "--version"], capture_output=True,
                                 text=True).stdout.split("\n")[0],
           "packet_ins_counted_as": "n_packets increase of br-int flows with a CONTROLLER "
                                    "action (both hosts), over the iperf3 runs; "
                                    "packet_in_flows names those flows",
           "controller_packet_ins_counted_as": "increase of the controller's own counter "
                                               "(GET /v1/health packet_ins, by reason) over "
                                               "the iperf3 runs; null if not reported",
           "mbit_s": "iperf3 receiver side, median of the runs",
           "of_msgs_to_controller_counted_as": "rconn_sent coverage increase (all OpenFlow "
                                               "messages to the controller, incl. echoes; "
                                               "upper bound)",
           "baseline": "same lab, controller stopped, br-int standalone NORMAL without "
                       "controller; per-peer vxlan/gre ports (remote_ip=peer, key=k) as "
                       "access ports; VLAN via patch-phy trunk",
           "results": {}}
    for kind in KINDS:
        o, n = ours[kind], normal[kind]
        out["results"][kind] = {
            "mtu": o["mtu"],
            "ours_mbit_s": o["mbit_s"], "normal_mbit_s": n["mbit_s"],
            "ours_mbit_s_runs": o["mbit_s_runs"], "normal_mbit_s_runs": n["mbit_s_runs"],
            "ratio": ratio(o["mbit_s"], n["mbit_s"]),
            "ours_rtt_ms": o["rtt_ms"], "normal_rtt_ms": n["rtt_ms"],
            "rtt_ratio": ratio(o["rtt_ms"], n["rtt_ms"]),
            "ours_retransmits_total": o["retransmits"],
            "normal_retransmits_total": n["retransmits"],
            "ours_rtt_replies": o["rtt_replies"], "normal_rtt_replies": n["rtt_replies"],
            "packet_ins": o["packet_ins"],
            "packet_in_flows": o["packet_in_flows"],
            "controller_packet_ins": o["controller_packet_ins"],
            "controller_packet_in_reasons": o["controller_packet_in_reasons"],
            "of_msgs_to_controller": o["of_msgs_to_controller"],
        }
    return out


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None):
    args = parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("bench/dataplane.py needs root (namespaces, OVS daemons)")
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    args.load_at_start = os.getloadavg()[0]
    reap_stale_labs()
    workdir = tempfile.mkdtemp(prefix="vpc-bench-")
    ctl = labctl.Controller(workdir)
    lab = lablib.Lab(name=f"bdp{secrets.token_hex(2)}", hosts=2, of_port=ctl.of_port)
    try:
        log(f"controller on {ctl.url}, lab {lab.name}")
        ctl.start()
        lab.up()
        lab.join_all(ctl.url)
        lab.wait_connected(timeout=30, api_url=ctl.url)
        ours = run_ours(lab, ctl, args)
        ctl.stop()
        normal = run_normal(lab, args)
        result = report(ours, normal, args, lab)
    except (KeyboardInterrupt, SystemExit):
        log("interrupted: cleaning up")
        raise
    except BaseException:
        log(f"failed; controller log tail:\n{ctl.tail(20)}")
        raise
    finally:
        # A second Ctrl-C must not interrupt the cleanup.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        problems = lab.down()
        ctl.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        if problems:
            log(f"cleanup problems: {problems}")
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
