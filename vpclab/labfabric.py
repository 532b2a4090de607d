"""The lab's physical network: a Linux bridge, or a fabric of OpenFlow switches.

Split from lablib.py (which mixes this into ``Lab``).  Standard library only.

``fabric=None`` (the default): ``L-fab`` holds a Linux bridge ``br0`` and every
host's ``eth0`` peer ``h<i>`` is a port of it -- one dumb L2 segment.

``fabric="leafspine"`` (or ``"leafspine:LxS"``, default 2x2): every fabric
switch is an Open vSwitch in its own namespace ``L-leaf<n>`` / ``L-spine<n>``
with its own ovsdb-server and ovs-vswitchd (run directory
``/run/vpclab/L/leaf<n>/``), one bridge ``br-fab`` (netdev datapath, fail_mode
secure, OpenFlow13 only, out-of-band, a fixed datapath-id), connected to the
controller through its own socat relay like the hosts.  Every leaf is cabled
to every spine (a full mesh: loops), ``s<m>`` on leaf n <-> ``l<n>`` on spine
m; host i's ``eth0`` is cabled to leaf ``(i-1) % L + 1``, port ``h<i>``.
The controller sees the switches as datapaths that are not hosts' and runs
them as the fabric (LLDP, shortest paths, one flood tree).  No ``L-fab``.

``fabric_link_down(leaf, spine)`` / ``fabric_link_up`` cut and heal a cable
(``ip link set down`` on the leaf's end; the spine's end loses carrier).

``down()`` needs little extra: the namespaces carry the lab's prefix and the
run directories are recorded; ``down_fabric`` stops the switches' relays and
finds run directories by name when the state file is gone.
"""
import glob
import os
import re
import subprocess
import time
import zlib

from vpclab.labsys import LabError, kill_pid, read_pidfile, sh

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
FABRIC_RE = re.compile(r"^leafspine(?::(\d+)x(\d+))?$")
FABRIC_BRIDGE = "br-fab"
SWITCH_RE = re.compile(r"^(leaf|spine)(\d+)$")


class FabricMixin:
    """Names and plumbing of the physical network; ``Lab`` inherits these."""

    def _init_fabric(self, fabric):
        self.fabric = fabric or None
        self.leaves = self.spines = 0
        if self.fabric is None:
            return
        m = FABRIC_RE.match(str(self.fabric))
        if not m:
            raise LabError(f"unknown fabric {fabric!r}: None, 'leafspine' or 'leafspine:LxS'")
        self.leaves, self.spines = (int(m.group(1)), int(m.group(2))) if m.group(1) else (2, 2)
        if not (1 <= self.leaves <= 16 and 1 <= self.spines <= 16):
            raise LabError("leafspine: 1..16 leaves and 1..16 spines")

    # ---- names ---------------------------------------------------------------
    def fabric_switches(self):
        return [f"leaf{n}" for n in range(1, self.leaves + 1)] + \
               [f"spine{n}" for n in range(1, self.spines + 1)]

    def switch_ns(self, sw):
        return f"{self.name}-{sw}"

    def switch_rundir(self, sw):
        return os.path.join(self.statedir, sw)

    def switch_dpid(self, sw):
        """16 hex digits, deterministic per lab and switch, apart from hosts'."""
        kind, n = SWITCH_RE.match(sw).groups()
        return f"{zlib.crc32((self.name + '-fabric').encode()):08x}" \
               f"{(0x100 if kind == 'leaf' else 0x200) + int(n):08x}"

    def leaf_of(self, i):
        return (int(i) - 1) % self.leaves + 1

    def switch_relay_sock(self, sw):
        return os.path.join(self.switch_rundir(sw), "of.sock")

    # ---- building -------------------------------------------------------------
    def make_fabric(self):
        """The physical network, before any host."""
        if not self.fabric:
            self._make_ns(self.fab_ns)
            self.nsexec(self.fab_ns, "ip", "link", "add", "br0", "type", "bridge")
            self.nsexec(self.fab_ns, "ip", "link", "set", "br0", "up")
            return
        for sw in self.fabric_switches():
            self._make_switch(sw)
        for leaf in range(1, self.leaves + 1):
            for spine in range(1, self.spines + 1):
                self._cable(f"leaf{leaf}", f"s{spine}", f"spine{spine}", f"l{leaf}")
        for sw in self.fabric_switches():
            self.start_switch_relay(sw)

    def _make_switch(self, sw):
        ns, d = self.switch_ns(sw), self.switch_rundir(sw)
        self._make_ns(ns)
        self._start_ovs(ns, d, sw)
        sock = self.switch_relay_sock(sw)
        self.fabric_vsctl(sw, "add-br", FABRIC_BRIDGE, "--", "set", "bridge", FABRIC_BRIDGE,
                          "datapath_type=netdev", "fail_mode=secure", "protocols=OpenFlow13",
                          "other-config:disable-in-band=true",
                          f"other-config:datapath-id={self.switch_dpid(sw)}",
                          "--", "--id=@c", "create", "Controller", f'target="unix:{sock}"',
                          "connection_mode=out-of-band", "max_backoff=1000",
                          "--", "set", "bridge", FABRIC_BRIDGE, "controller=@c")

    def _start_ovs(self, ns, d, label):
        """ovsdb-server + ovs-vswitchd of one emulated machine, in ``ns``."""
        self._record("rundirs", d)
        os.makedirs(d, exist_ok=True)
        env = {"OVS_RUNDIR": d, "OVS_LOGDIR": d, "OVS_DBDIR": d}
        sh(["ovsdb-tool", "create", f"{d}/conf.db", SCHEMA], env=env)
        self._daemon(ns, env, ["ovsdb-server", f"{d}/conf.db",
                               f"--remote=punix:{d}/db.sock",
                               "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
                               f"--pidfile={d}/ovsdb-server.pid", "--detach",
                               "--no-chdir", f"--log-file={d}/ovsdb-server.log"])
        sh(["ovs-vsctl", f"--db=unix:{d}/db.sock", "--no-wait", "--timeout=10",
            "init", "--", "set", "Open_vSwitch", ".",
            f"external_ids:system-id={ns}", f"external_ids:hostname={ns}"], env=env)
        self._daemon(ns, env, ["ovs-vswitchd", f"unix:{d}/db.sock",
                               f"--pidfile={d}/ovs-vswitchd.pid", "--detach",
                               "--no-chdir", f"--log-file={d}/ovs-vswitchd.log"])
        deadline = time.monotonic() + 15
        while sh(["ovs-appctl", "-t", self._ctl_in(d), "version"], check=False,
                 timeout=5).returncode != 0:
            if time.monotonic() > deadline:
                raise LabError(f"ovs-vswitchd of {label} did not come up; see {d}/ovs-vswitchd.log")
            time.sleep(0.1)

    def _cable(self, sw_a, if_a, sw_b, if_b):
        """A veth between two fabric switches, each end a port of its br-fab."""
        ns_a, ns_b = self.switch_ns(sw_a), self.switch_ns(sw_b)
        sh(["ip", "link", "add", if_a, "netns", ns_a, "type", "veth",
            "peer", "name", if_b, "netns", ns_b])
        for sw, ns, ifname in ((sw_a, ns_a, if_a), (sw_b, ns_b, if_b)):
            self.nsexec(ns, "ip", "link", "set", ifname, "up")
            self.fabric_vsctl(sw, "add-port", FABRIC_BRIDGE, ifname)

    def plug_host_nic(self, i):
        """Host i's eth0, cabled to the Linux bridge or to its leaf."""
        ns = self.host_ns(i)
        if not self.fabric:
            sh(["ip", "link", "add", "eth0", "netns", ns, "type", "veth",
                "peer", "name", f"h{i}", "netns", self.fab_ns])
            self.nsexec(self.fab_ns, "ip", "link", "set", f"h{i}", "master", "br0", "up")
        else:
            leaf = f"leaf{self.leaf_of(i)}"
            sh(["ip", "link", "add", "eth0", "netns", ns, "type", "veth",
                "peer", "name", f"h{i}", "netns", self.switch_ns(leaf)])
            self.nsexec(self.switch_ns(leaf), "ip", "link", "set", f"h{i}", "up")
            self.fabric_vsctl(leaf, "add-port", FABRIC_BRIDGE, f"h{i}")
        self.nsexec(ns, "ip", "link", "set", "eth0", "up")

    def start_switch_relay(self, sw):
        d, sock = self.switch_rundir(sw), self.switch_relay_sock(sw)
        with open(os.path.join(d, "relay.log"), "a") as log:
            proc = subprocess.Popen(
                ["socat", "-d", f"UNIX-LISTEN:{sock},fork,reuseaddr,unlink-early,mode=600",
                 f"TCP:127.0.0.1:{self.of_port},nodelay"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        self.state.setdefault("fabric_relays", {})[sw] = proc.pid
        self._save()
        with open(os.path.join(d, "relay.pid"), "w") as f:
            f.write(f"{proc.pid}\n")
        deadline = time.monotonic() + 5
        while not os.path.exists(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"OpenFlow relay of {sw} did not start; see {d}/relay.log")
            time.sleep(0.05)
        self._relay_procs[sw] = proc
        return proc.pid

    # ---- using ------------------------------------------------------------------------
    def fabric_vsctl(self, sw, *args, check=True, timeout=15):
        d = self.switch_rundir(sw)
        return sh(["ovs-vsctl", f"--db=unix:{d}/db.sock", f"--timeout={timeout}"] + list(args),
                  check=check, timeout=timeout + 5, env={"OVS_RUNDIR": d}).stdout.strip()

    def fabric_ofctl(self, sw, *args, check=True, timeout=15):
        mgmt = f"unix:{self.switch_rundir(sw)}/{FABRIC_BRIDGE}.mgmt"
        args = list(args)
        return sh(["ovs-ofctl", "-O", "OpenFlow13", args[0], mgmt] + args[1:], check=check,
                  timeout=timeout).stdout

    def fabric_link(self, leaf, spine):
        """(namespace, interface) of the leaf's end of the leaf-spine cable."""
        return self.switch_ns(f"leaf{int(leaf)}"), f"s{int(spine)}"

    def fabric_link_down(self, leaf, spine):
        ns, ifname = self.fabric_link(leaf, spine)
        self.nsexec(ns, "ip", "link", "set", ifname, "down")

    def fabric_link_up(self, leaf, spine):
        ns, ifname = self.fabric_link(leaf, spine)
        self.nsexec(ns, "ip", "link", "set", ifname, "up")

    def fabric_link_silence(self, leaf, spine, silent=True):
        """Make the leaf drop what arrives from the spine (OFPPC_NO_RECV) while
        both ends stay up: a link broken one way, that no port event reports."""
        self.fabric_ofctl(f"leaf{int(leaf)}", "mod-port", f"s{int(spine)}",
                          "no-receive" if silent else "receive")

    # ---- removing -------------------------------------------------------------------------
    def down_fabric(self, st):
        """Stop the fabric switches' relays, and their OVS when only the run
        directories are left to find them by.  Returns problems."""
        problems = []
        dirs = {d.rstrip("/") for pat in ("leaf*/", "spine*/")
                for d in glob.glob(os.path.join(self.statedir, pat))}
        relays = dict(st.get("fabric_relays") or {})
        for d in sorted(dirs):
            sw = os.path.basename(d)
            pid = read_pidfile(os.path.join(d, "relay.pid"))
            if pid:
                relays.setdefault(sw, pid)
            if d not in set(st.get("rundirs") or []):
                problems += self._stop_ovs(d)
        for sw, pid in sorted(relays.items()):
            if not kill_pid(pid, expect=self.switch_relay_sock(sw), group=True):
                problems.append(f"relay pid {pid} of {sw} survived")
        return problems


# ---- measuring the fabric (tests/lab/test_fabric.py, bench/failover.py) ------------
_ARP_BURST = r"""
import socket, sys, time
iface, mac, ip, target, count, gap = sys.argv[1:7]
m = bytes(int(x, 16) for x in mac.split(":"))
a = lambda s: bytes(int(x) for x in s.split("."))
frame = (b"\xff" * 6 + m + b"\x08\x06" + b"\x00\x01\x08\x00\x06\x04\x00\x01" + m + a(ip)
         + b"\x00" * 6 + a(target)).ljust(60, b"\x00")
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
for _ in range(int(count)):
    s.send(frame)
    time.sleep(float(gap))
"""


def arp_burst(lab, ns, mac, ip, target, count=10, gap=0.01, iface="eth0"):
    """Send ``count`` broadcast ARP requests (who-has ``target``, from
    ``mac``/``ip``) out of ``iface`` in ``ns``, ``gap`` seconds apart."""
    import sys
    lab.exec(ns, sys.executable, "-c", _ARP_BURST, iface, mac, ip, target, str(count),
             str(gap), timeout=30 + count * gap)


def active_port(lab, sw, mac):
    """(port number, port name) a fabric switch forwards ``mac`` to, or None."""
    flows = lab.fabric_ofctl(sw, "dump-flows")
    m = re.search(rf"dl_dst={re.escape(mac)} actions=output:(\d+)", flows)
    if not m:
        return None
    names = dict(re.findall(r"^\s*(\d+)\(([^)]+)\):", lab.fabric_ofctl(sw, "dump-ports-desc"),
                            re.M))
    return int(m.group(1)), names.get(m.group(1))


def fabric_rx_packets(lab):
    """Packets received on every fabric switch port, summed (a storm shows)."""
    total = 0
    for sw in lab.fabric_switches():
        out = lab.fabric_ofctl(sw, "dump-ports")
        total += sum(int(x) for x in re.findall(r"rx pkts=(\d+)", out))
    return total


def ping_outage(lab, ns, ip, action, interval=0.02, before=1.0, after=3.0):
    """Ping ``ip`` from ``ns`` every ``interval`` s, run ``action()`` in the
    middle, and measure what the action cost.  Returns a dict:
      lost         echo requests without reply between the last reply before
                   the action and the first after it
      outage_s     lost * interval: the time without connectivity (resolution:
                   one interval)
      reply_gap_s  time between those two replies (>= interval)
      replies_after  replies after the action (0: never recovered)
    """
    import threading
    proc = subprocess.Popen(["ip", "netns", "exec", ns, "ping", "-D", "-n", "-i", str(interval),
                             "-W", "1", ip], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    replies = []
    rx = re.compile(r"^\[(\d+\.\d+)\].*icmp_seq=(\d+)")

    def read():
        for line in proc.stdout:
            m = rx.match(line)
            if m:
                replies.append((float(m.group(1)), int(m.group(2))))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 10
        while len(replies) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(before)
        t_cut = time.time()
        action()
        time.sleep(after)
    finally:
        kill_pid(proc.pid, timeout=3, group=True)
        reader.join(timeout=3)
    got = sorted(replies)
    pre = [r for r in got if r[0] <= t_cut]
    post = [r for r in got if r[0] > t_cut]
    if not pre:
        raise LabError(f"no ping reply from {ns} to {ip} before the action")
    result = {"replies_before": len(pre), "replies_after": len(post), "interval_s": interval}
    if post:
        lost = post[0][1] - pre[-1][1] - 1
        result.update(lost=lost, outage_s=round(lost * interval, 3),
                      reply_gap_s=round(post[0][0] - pre[-1][0], 3))
    return result
