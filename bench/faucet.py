#!/usr/bin/env python3
"""Side by side with Faucet: the same VLAN scenario, the same lab, both controllers.

    .venv/bin/python bench/faucet.py [--quick] [--repeat 5] [--seconds 5] [--out FILE]

Run as root.  Faucet lives in its own virtualenv, bench/.faucet-venv (made on
first use: ``python3 -m venv`` + ``pip install faucet py-spy``; Faucet pins
os_ken 3.1.0, ours 3.1.1).

Topology (identical for both controllers, built by this script):
  2 emulated hosts (lab ``bfa<4 hex>``: namespaces with their own
  ovsdb-server + ovs-vswitchd, userspace datapath), each with ONE bridge
  br-int (netdev, fail_mode secure, OpenFlow 1.3, out-of-band, dpid fixed)
  holding the host's NIC eth0 directly (ofport 1; a trunk into the Linux
  bridge that is the physical network) and one container per VLAN tenant
  (blue = VLAN 100 on ofport 10, red = VLAN 200 on ofport 11; both use
  10.0.0.0/24: h1 .11, h2 .12).  No br-phy, no tunnels.  The switches reach
  the controller through the lab's per-host socat relay to 127.0.0.1.
  ours:   hosts registered with uplink_port eth0, two VLAN tenants, ports
          with fixed IP/MAC -- all by REST before any switch connects.
  Faucet: faucet.yaml with one dp per bridge (``hardware: Open vSwitch``),
          eth0 ``tagged_vlans: [blue, red]``, containers ``native_vlan``.

Measured for each controller:
  connect_to_ping_ms  the bridges are emptied (del-controller, del-flows),
        ``ping -D -i 0.01`` runs from blue@h1 to blue@h2 (kernel ARP with
        10 ms retransmit in the containers), then t0 = both bridges get
        their controller (two ovs-vsctl calls in parallel); the first echo
        reply's timestamp - t0.  --repeat times.
  flows_per_switch    ``ovs-ofctl dump-aggregate`` on each br-int after the
        pings (Faucet's count includes the MACs it learned).
  iperf3              blue@h1 -> blue@h2, median of --repeat runs.
  config change       a third container (blue@h1, ofport 12) is plugged,
        then ours: POST the port; Faucet: add it to faucet.yaml + SIGHUP.
        During the change ``ping -i 0.01`` blue@h1 -> blue@h2 runs for 3 s:
        lost pings; flow-mods sent (ours: vpc_flow_mods_total, Faucet:
        of_flowmsgs_sent_total, both from the controllers' own metrics);
        ms until the new container answers a ping.

Prints one JSON document; never a threshold.  Everything is removed on exit.
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
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402
from vpclab import lablib  # noqa: E402
from attach import Pinger  # noqa: E402
from vpclab.labctl import free_port  # noqa: E402
from vpclab.labtraffic import iperf3  # noqa: E402

TAG = "faucet"
VENV = os.path.join(HERE, ".faucet-venv")
VLANS = {"blue": 100, "red": 200}
OFPORT = {"blue": 10, "red": 11}
NEW_OFPORT = 12
IP = {1: "10.0.0.11", 2: "10.0.0.12"}
NEW_IP = "10.0.0.13"
# ping interval while switches connect: short, so that it adds little to the figure
CONNECT_PING_INTERVAL = 0.002


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="repeat 2, iperf3 3 s")
    p.add_argument("--repeat", type=int, default=None)
    p.add_argument("--seconds", type=int, default=None, help="iperf3 duration")
    p.add_argument("--out", help="also write the JSON here")
    a = p.parse_args(argv)
    a.repeat = a.repeat or (2 if a.quick else 5)
    a.seconds = a.seconds or (3 if a.quick else 5)
    return a


def ensure_faucet():
    """bench/.faucet-venv with faucet (and py-spy); made once."""
    exe = os.path.join(VENV, "bin", "osken-manager")
    if os.access(exe, os.X_OK) and os.path.exists(os.path.join(VENV, "bin", "faucet")):
        return exe
    common.log(TAG, "installing Faucet into bench/.faucet-venv (once)")
    subprocess.run(["python3", "-m", "venv", VENV], check=True)
    subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "-q", "faucet", "py-spy"],
                   check=True)
    return exe


def mac_of(tenant, host):
    return f"02:fa:00:00:{VLANS[tenant] // 100:02x}:{host:02x}"


# --- the lab -----------------------------------------------------------------------
def build(lab):
    """br-int with eth0 and one container per tenant on each host; no controller."""
    for i in lab.hosts_range():
        lab.ovs_vsctl(i, "--may-exist", "add-br", "br-int",
                      "--", "set", "bridge", "br-int", "datapath_type=netdev",
                      "fail_mode=secure", "protocols=OpenFlow13",
                      f"other-config:datapath-id={lab.dpid(i)}",
                      "other-config:disable-in-band=true",
                      "--", "add-port", "br-int", "eth0",
                      "--", "set", "interface", "eth0", "ofport_request=1")
        for tenant in VLANS:
            plug(lab, f"{tenant}{i}", i, f"v{tenant[0]}{i}", OFPORT[tenant], IP[i],
                 mac_of(tenant, i))


def plug(lab, name, host, port, ofport, ip, mac):
    ns = lab.add_container(name, host=host)
    hns = lab.host_ns(host)
    lablib.sh(["ip", "link", "add", port, "netns", hns, "type", "veth",
               "peer", "name", "eth0", "netns", ns])
    lab.exec(ns, "sh", "-c",
             f"ip link set eth0 address {mac} && ip addr add {ip}/24 dev eth0 && "
             f"ip link set eth0 up && ethtool -K eth0 tx off >/dev/null && "
             f"sysctl -qw net.ipv4.neigh.eth0.retrans_time_ms=10")
    lab.exec(hns, "ip", "link", "set", port, "up")
    lab.ovs_vsctl(host, "add-port", "br-int", port, "--", "set", "interface", port,
                  f"ofport_request={ofport}")
    return ns


def set_controller(lab, i):
    lab.ovs_vsctl(i, "--", "--id=@c", "create", "Controller",
                  f'target="{lab.controller_target(i)}"', "connection_mode=out-of-band",
                  "max_backoff=1000", "--", "set", "bridge", "br-int", "controller=@c")


def empty_bridges(lab):
    for i in lab.hosts_range():
        lab.ovs_vsctl(i, "del-controller", "br-int")
        lab.ovs_ofctl(i, "del-flows")
    for name in [f"{t}{i}" for t in VLANS for i in lab.hosts_range()]:
        lab.exec(lab.container_ns(name), "ip", "neigh", "flush", "dev", "eth0", check=False)


def point_relays(lab, of_port):
    lab.of_port = of_port
    for i in lab.hosts_range():
        lab.stop_relay(i)
        lab.start_relay(i)


class SynClock:
    """When each switch's OpenFlow connection reached the controller: the
    relays' TCP SYNs to the controller's port on the root namespace's loopback
    (socat connects as the switch connects to it), read by tcpdump -tt (epoch,
    the clock ping -D uses).  Passive: it sends nothing."""

    def __init__(self, port):
        self.times = []
        self.proc = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-n", "-tt", "-l", "-p",
             f"tcp dst port {int(port)} and tcp[tcpflags] & tcp-syn != 0 "
             f"and tcp[tcpflags] & tcp-ack == 0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, bufsize=1, start_new_session=True)
        self.ready = threading.Event()
        threading.Thread(target=self._err, daemon=True).start()
        threading.Thread(target=self._out, daemon=True).start()
        self.ready.wait(5)

    def _err(self):
        for line in self.proc.stderr:
            if "listening on" in line:
                self.ready.set()
        self.ready.set()

    def _out(self):
        for line in self.proc.stdout:
            try:
                self.times.append(float(line.split()[0]))
            except (ValueError, IndexError):
                pass

    def stop(self):
        time.sleep(0.2)          # tcpdump's last lines
        lablib.kill_pid(self.proc.pid, timeout=1)
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass


def connect_to_ping(lab, interval=CONNECT_PING_INTERVAL):
    """ms from set-controller (both bridges at once) to blue@h1's first reply
    from blue@h2, and from the later switch's TCP connection (its SYN at the
    controller's port) to that reply: the goal's "switch connect -> first
    ping", without OVS's reconfiguration and reconnect timers."""
    empty_bridges(lab)
    time.sleep(0.5)
    pinger = Pinger(lab.container_ns("blue1"), IP[2], interval)
    syns = SynClock(lab.of_port)
    try:
        pinger.started.wait(5)
        time.sleep(0.1)
        t0 = time.time()
        threads = [threading.Thread(target=set_controller, args=(lab, i))
                   for i in lab.hosts_range()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        pinger.replied.wait(15)
    finally:
        pinger.stop()
        syns.stop()
    if pinger.first is None:
        return None, t0, None
    after = sorted(t for t in syns.times if t >= t0)
    from_syn = round((pinger.first - after[1]) * 1000, 1) if len(after) >= 2 else None
    return round((pinger.first - t0) * 1000, 1), t0, from_syn


def flows_per_switch(lab):
    out = {}
    for i in lab.hosts_range():
        m = re.search(r"flow_count=(\d+)", lab.ovs_ofctl(i, "dump-aggregate"))
        out[f"h{i}"] = int(m.group(1)) if m else None
    return out


def throughput(lab, repeat, seconds):
    """iperf3 `repeat` times: the median and the spread (runs vary by up to
    2x on a shared 2-core machine: one run says little)."""
    runs = [iperf3(lab, lab.container_ns("blue2"), lab.container_ns("blue1"), IP[2],
                   seconds=seconds)["mbit_s"] for _ in range(repeat)]
    return {"mbit_s": round(statistics.median(runs), 1), "runs": runs, "min": min(runs),
            "max": max(runs),
            "stdev": round(statistics.stdev(runs), 1) if len(runs) > 1 else None}


def config_change(lab, apply_change, flow_mods):
    """Plug blue@h1 #2 (ofport 12), then apply_change(); returns lost pings of
    a 3 s ping -i 0.01 h1 -> h2 around it, flow-mods, time to the new port."""
    plug(lab, "blue3", 1, "vb3", NEW_OFPORT, NEW_IP, mac_of("blue", 3))
    time.sleep(1.0)
    before = flow_mods()
    ping = subprocess.Popen(["ip", "netns", "exec", lab.container_ns("blue1"), "ping", "-n", "-q",
                             "-i", "0.01", "-c", "300", "-W", "1", IP[2]],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    newping = Pinger(lab.container_ns("blue2"), NEW_IP, 0.01)
    try:
        time.sleep(1.0)
        t0 = time.time()
        apply_change()
        newping.replied.wait(15)
        out, _ = ping.communicate(timeout=30)
    finally:
        newping.stop()
        if ping.poll() is None:
            lablib.kill_pid(ping.pid, timeout=1)
    m = re.search(r"(\d+) packets transmitted, (\d+) (?:packets )?received", out)
    time.sleep(1.5)
    after = flow_mods()
    return {"pings_sent": int(m.group(1)) if m else None,
            "pings_lost": int(m.group(1)) - int(m.group(2)) if m else None,
            "flow_mods": None if before is None or after is None else int(after - before),
            "new_port_first_ping_ms": None if newping.first is None
            else round((newping.first - t0) * 1000, 1)}


# --- ours ----------------------------------------------------------------------------
def configure_ours(lab, ctl):
    """The lab's hosts (uplink eth0), the two VLAN tenants and their four ports,
    by REST; returns the blue ports' ids.  Also used by faucet_interleaved.py
    and handshake_timeline.py."""
    blue_ids = []
    for i in lab.hosts_range():
        status, body = ctl.api.post("/v1/hosts", {"name": lab.host_name(i), "dpid": lab.dpid(i),
                                                  "tunnel_ip": lab.tunnel_ip(i),
                                                  "uplink_port": "eth0"})
        if status != 201:
            raise lablib.LabError(f"POST host: {status} {body}")
    for tenant, vid in VLANS.items():
        for path, body in (("/v1/tenants", {"name": tenant, "network": "vlan", "segment": vid}),
                           (f"/v1/tenants/{tenant}/subnets", {"cidr": "10.0.0.0/24"})):
            status, resp = ctl.api.post(path, body)
            if status != 201:
                raise lablib.LabError(f"POST {path}: {status} {resp}")
        for i in lab.hosts_range():
            status, resp = ctl.api.post(f"/v1/tenants/{tenant}/ports", {
                "host": lab.host_name(i), "port": f"v{tenant[0]}{i}", "ip": IP[i],
                "mac": mac_of(tenant, i)})
            if status != 201:
                raise lablib.LabError(f"POST port: {status} {resp}")
            if tenant == "blue":
                blue_ids.append(resp["id"])
    return blue_ids


def run_ours(lab, workdir, args):
    ctl = common.TimedController(os.path.join(workdir, "ours"))
    try:
        ctl.start()
        point_relays(lab, ctl.of_port)
        blue_ids = configure_ours(lab, ctl)
        res = measure(lab, args, lambda: ctl.metric_sum("vpc_flow_mods_total"), lambda: (
            ctl.api.post("/v1/tenants/blue/ports", {"host": "h1", "port": "vb3", "ip": NEW_IP,
                                                    "mac": mac_of("blue", 3)})), ctl=ctl)
        # How much of the gap to Faucet is our pipeline's security: the same
        # iperf3 runs with the two blue ports' port security (anti-spoofing,
        # conntrack per packet for the security groups) turned off.
        for pid in blue_ids:
            status, resp = ctl.api.request("PATCH", f"/v1/tenants/blue/ports/{pid}",
                                           {"port_security": False, "security_groups": []})
            if status != 200:
                raise lablib.LabError(f"PATCH port: {status} {resp}")
        time.sleep(1.5)
        res["iperf3_port_security_off"] = throughput(lab, args.repeat, args.seconds)
        res["controller_rss_mib"] = common.proc_status(ctl.pid, "VmHWM")
        status, health = ctl.api.get("/v1/health")
        pis = health.get("packet_ins") if status == 200 and isinstance(health, dict) else None
        res["packet_ins"] = sum(pis.values()) if isinstance(pis, dict) else None
        res["packet_in_reasons"] = pis
        return res
    finally:
        ctl.stop()


# --- Faucet --------------------------------------------------------------------------
def faucet_yaml(lab, with_new=False):
    lines = ["vlans:"] + [f"  {t}:\n    vid: {v}" for t, v in VLANS.items()] + ["dps:"]
    for i in lab.hosts_range():
        lines += [f"  h{i}:", f"    dp_id: 0x{lab.dpid(i)}", '    hardware: "Open vSwitch"',
                  "    interfaces:", "      1:", "        name: eth0",
                  f"        tagged_vlans: [{', '.join(VLANS)}]"]
        ports = [(OFPORT[t], f"v{t[0]}{i}", t) for t in VLANS]
        if with_new and i == 1:
            ports.append((NEW_OFPORT, "vb3", "blue"))
        for n, name, t in ports:
            lines += [f"      {n}:", f"        name: {name}", f"        native_vlan: {t}"]
    return "\n".join(lines) + "\n"


class Faucet:
    def __init__(self, workdir):
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.config = os.path.join(workdir, "faucet.yaml")
        self.log = os.path.join(workdir, "faucet.log")
        self.of_port = free_port()
        self.prom_port = free_port()
        self.proc = None

    def start(self, exe, text):
        with open(self.config, "w") as f:
            f.write(text)
        env = dict(os.environ, FAUCET_CONFIG=self.config, FAUCET_LOG=self.log,
                   FAUCET_EXCEPTION_LOG=os.path.join(self.dir, "faucet_exception.log"),
                   FAUCET_PROMETHEUS_ADDR="127.0.0.1",
                   FAUCET_PROMETHEUS_PORT=str(self.prom_port),
                   PATH=os.path.join(VENV, "bin") + ":" + os.environ.get("PATH", ""))
        out = open(os.path.join(self.dir, "stdout.log"), "a")
        self.proc = subprocess.Popen([exe, f"--ofp-tcp-listen-port={self.of_port}",
                                      "--ofp-listen-host=127.0.0.1", "faucet.faucet"],
                                     env=env, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise lablib.LabError(f"faucet exited {self.proc.returncode}: "
                                      f"{self.tail()}")
            if self.metric_sum("faucet_config_reload_requests_total") is not None:
                return
            time.sleep(0.3)
        raise lablib.LabError(f"faucet did not come up: {self.tail()}")

    def reload(self, text):
        with open(self.config, "w") as f:
            f.write(text)
        self.proc.send_signal(signal.SIGHUP)

    def metric_sum(self, name):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.prom_port}/", timeout=10) as r:
                body = r.read().decode()
        except OSError:
            return None
        total, seen = 0.0, False
        for line in body.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
                seen = True
        return total if seen else (0.0 if f"# TYPE {name.removesuffix('_total')}" in body
                                   else None)

    def tail(self, n=20):
        out = []
        for p in (self.log, os.path.join(self.dir, "stdout.log")):
            try:
                out += open(p).read().splitlines()[-n:]
            except OSError:
                pass
        return "\n".join(out)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            lablib.kill_pid(self.proc.pid, timeout=5)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def run_faucet(lab, workdir, args):
    exe = ensure_faucet()
    fc = Faucet(os.path.join(workdir, "faucet"))
    try:
        fc.start(exe, faucet_yaml(lab))
        point_relays(lab, fc.of_port)
        res = measure(lab, args, lambda: fc.metric_sum("of_flowmsgs_sent_total"),
                      lambda: fc.reload(faucet_yaml(lab, with_new=True)))
        res["controller_rss_mib"] = common.proc_status(fc.proc.pid, "VmHWM")
        res["packet_ins"] = fc.metric_sum("of_packet_ins_total")
        res["version"] = _faucet_version()
        return res
    except BaseException:
        common.log(TAG, f"faucet log tail:\n{fc.tail()}")
        raise
    finally:
        fc.stop()


def _faucet_version():
    try:
        out = subprocess.run([os.path.join(VENV, "bin", "pip"), "show", "faucet"],
                             capture_output=True, text=True, timeout=60).stdout
        m = re.search(r"^Version: (\S+)", out, re.M)
        return m.group(1) if m else None
    except (OSError, subprocess.SubprocessError):
        return None


def measure(lab, args, flow_mods, change, ctl=None):
    times, parts, from_syn = [], [], []
    for r in range(args.repeat):
        offset = ctl.log_size() if ctl else None
        ms, t0, syn_ms = connect_to_ping(lab)
        times.append(ms)
        if syn_ms is not None:
            from_syn.append(syn_ms)
        if ctl is not None and ms is not None:
            parts.append(breakdown(ctl, offset, t0, ms))
        common.log(TAG, f"  connect -> first ping: {ms} ms {parts[-1] if parts else ''}")
    time.sleep(1.0)
    res = {"connect_to_ping_ms": common.percentiles(times), "connect_to_ping_runs": times,
           "tcp_connect_to_ping_ms": common.percentiles(from_syn),
           "tcp_connect_to_ping_runs": from_syn, "ping_interval_s": CONNECT_PING_INTERVAL,
           "flows_per_switch": flows_per_switch(lab)}
    if parts:
        res["connect_breakdown_runs"] = parts
        res["connect_breakdown_ms"] = {k: common.percentiles([p[k] for p in parts
                                                              if p[k] is not None])
                                       for k in parts[0]}
    res["iperf3"] = throughput(lab, args.repeat, args.seconds)
    res["config_change"] = config_change(lab, change, flow_mods)
    res["flows_per_switch_after_change"] = flows_per_switch(lab)
    return res


def breakdown(ctl, offset, t0, ping_ms):
    """Where connect -> first ping went, from our controller's timestamped log:
    set-controller -> the later of the two switches' "switch connected" lines
    (OVS reconfiguring the bridge, connecting through the relay, the OpenFlow
    handshake), -> its "reconciled" line (our first reconcile: ports, flow
    and meter dump, compile, meters, bundle), -> the first echo reply (the
    ping's interval, ARP, the datapath)."""
    con = {d: t for t, d in ctl.connects(offset)}
    rec = {}
    for t, d, *_ in ctl.reconciles(offset):
        rec.setdefault(d, t)
    if len(con) < 2 or len(rec) < 2:
        return {"to_connected": None, "first_reconcile": None, "reconcile_own_ms": None,
                "to_reply": None}
    connected = max(con.values())
    reconciled = max(rec.values())
    return {"to_connected": round((connected - t0) * 1000, 1),
            "first_reconcile": round((reconciled - connected) * 1000, 1),
            "reconcile_own_ms": max(r[2] for r in ctl.reconciles(offset)),
            "to_reply": round(ping_ms - (reconciled - t0) * 1000, 1)}


def reset_new_port(lab):
    lab.ovs_vsctl(1, "--if-exists", "del-port", "br-int", "vb3")
    lab.del_container("blue3")


def run(args):
    load = common.load_avg()
    common.reap_stale(r"^bfa[0-9a-f]{4}$", TAG)
    workdir = tempfile.mkdtemp(prefix="vpc-bench-faucet-")
    lab = lablib.Lab(name=f"bfa{secrets.token_hex(2)}", hosts=2, of_port=free_port(),
                     external=False)
    try:
        common.log(TAG, f"lab {lab.name}; load {load}")
        lab.up()
        build(lab)
        common.log(TAG, "ours")
        ours = run_ours(lab, workdir, args)
        reset_new_port(lab)
        common.log(TAG, "faucet")
        faucet = run_faucet(lab, workdir, args)
        return {"load_avg_at_start": load, "repeat": args.repeat, "iperf3_seconds": args.seconds,
                "topology": "2 hosts, br-int (netdev) with eth0 as trunk uplink into a Linux "
                            "bridge, VLAN 100 + 200, one container per VLAN per host; same "
                            "bridges, containers and relays for both controllers",
                "ours": ours, "faucet": faucet}
    finally:
        with common.uninterruptible():
            problems = lab.down()
            shutil.rmtree(workdir, ignore_errors=True)
            if problems:
                common.log(TAG, f"cleanup problems: {problems}")


def main(argv=None):
    return common.run_main("bench/faucet.py", parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
