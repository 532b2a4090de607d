"""Many cheap datapaths: one ovs-vswitchd --enable-dummy=override, many bridges.

``DummyFarm(name, of_port)`` runs, inside its own network namespace
``<name>-ovs`` and run directory ``/run/vpclab/<name>/``, one ovsdb-server
and one ``ovs-vswitchd --enable-dummy=override`` (every bridge
``datapath_type=dummy``, every port ``type=dummy``: no kernel device, no
packet I/O thread).  Its bridges reach the controller on 127.0.0.1 through
one socat relay (``UNIX-LISTEN:<rundir>/of.sock,fork -> TCP:127.0.0.1:port``,
the lablib pattern): nothing is added to the root namespace and no traffic
leaves loopback.

``add_bridges(specs)`` creates all bridges and ports in ONE ovs-vsctl
transaction; port names carry a ``bNNN-`` prefix (names are unique per OVS
database; bench/scale_app.py strips it again).

Cleanup: ``down()`` stops the relay and both daemons by pid (checking the
command line), deletes the namespace and the run directory.  Every pid is
recorded in ``state.json`` as it starts, so ``reap()`` can clean up after a
SIGKILLed run.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from vpclab.labsys import LabError, kill_pid, list_netns, netns_pids, pid_alive, read_pidfile, sh  # noqa: E402

BASE = "/run/vpclab"
SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
NAME_RE = re.compile(r"^bsc[0-9a-f]{4}$")


class DummyFarm:
    def __init__(self, name, of_port, base=BASE):
        if not NAME_RE.match(name):
            raise LabError(f"bad farm name {name!r}")
        self.name, self.of_port = name, int(of_port)
        self.dir = os.path.join(base, name)
        self.ns = f"{name}-ovs"
        self.state_path = os.path.join(self.dir, "state.json")
        self.state = {}
        self.relay = None

    # --- state ---------------------------------------------------------------------
    def _save(self):
        os.makedirs(self.dir, exist_ok=True)
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.state, f)
        os.replace(tmp, self.state_path)

    @property
    def env(self):
        return dict(os.environ, OVS_RUNDIR=self.dir, OVS_LOGDIR=self.dir, OVS_DBDIR=self.dir)

    @property
    def sock(self):
        return os.path.join(self.dir, "of.sock")

    @property
    def target(self):
        return f"unix:{self.sock}"

    def vswitchd_pid(self):
        return read_pidfile(os.path.join(self.dir, "ovs-vswitchd.pid"))

    def ctl(self):
        return os.path.join(self.dir, f"ovs-vswitchd.{self.vswitchd_pid()}.ctl")

    # --- up ----------------------------------------------------------------------------
    def up(self):
        self.state = {"name": self.name, "up_pid": os.getpid(), "ns": self.ns}
        self._save()
        try:
            sh(["ip", "netns", "add", self.ns])
            sh(["ip", "-n", self.ns, "link", "set", "lo", "up"])
            sh(["ovsdb-tool", "create", os.path.join(self.dir, "conf.db"), SCHEMA])
            self._daemon(["ovsdb-server", os.path.join(self.dir, "conf.db"),
                          f"--remote=punix:{self.dir}/db.sock",
                          f"--pidfile={self.dir}/ovsdb-server.pid", "--detach",
                          f"--log-file={self.dir}/ovsdb-server.log"])
            self.vsctl("--no-wait", "init")
            self._daemon(["ovs-vswitchd", f"unix:{self.dir}/db.sock", "--enable-dummy=override",
                          f"--pidfile={self.dir}/ovs-vswitchd.pid", "--detach",
                          f"--log-file={self.dir}/ovs-vswitchd.log"])
            self._start_relay()
        except BaseException:
            self.down()
            raise
        return self

    def _daemon(self, cmd):
        err = os.path.join(self.dir, "start.err")
        with open(err, "a") as f:
            rc = subprocess.run(["ip", "netns", "exec", self.ns] + cmd, env=self.env,
                                stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                                timeout=60).returncode
        if rc != 0:
            raise LabError(f"{cmd[0]} failed: {open(err).read()[-500:]}")

    def _start_relay(self):
        log = open(os.path.join(self.dir, "relay.log"), "a")
        self.relay = subprocess.Popen(
            # backlog: socat listens with 5 by default; a hundred bridges
            # connecting at once overflowed it, OVS took the refused connect
            # for a protocol error and backed off 2, 4, 8 s (connects spread
            # over 20-40 s after every controller start).
            ["socat", f"UNIX-LISTEN:{self.sock},fork,reuseaddr,unlink-early,mode=600,"
                      f"backlog=1024",
             f"TCP:127.0.0.1:{self.of_port},nodelay"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        self.state["relay"] = self.relay.pid
        self._save()
        deadline = time.monotonic() + 5
        while not os.path.exists(self.sock):
            if self.relay.poll() is not None or time.monotonic() > deadline:
                raise LabError("relay did not start")
            time.sleep(0.05)

    # --- OVS -------------------------------------------------------------------------------
    def vsctl(self, *args, timeout=600):
        return sh(["ovs-vsctl", f"--db=unix:{self.dir}/db.sock", f"--timeout={timeout}"]
                  + list(args), timeout=timeout + 10, env=self.env).stdout

    def appctl(self, *args, timeout=60):
        return sh(["ovs-appctl", "-t", self.ctl()] + list(args), timeout=timeout).stdout

    def ofctl(self, cmd, bridge, *args, timeout=120):
        return sh(["ovs-ofctl", "-O", "OpenFlow13", cmd, f"unix:{self.dir}/{bridge}.mgmt"]
                  + list(args), timeout=timeout).stdout

    def add_bridges(self, specs, inactivity_probe=None):
        """specs: [(bridge, dpid, {port name: ofport})] -> one transaction.
        Each bridge: fail_mode secure, OpenFlow 1.3 only, out-of-band, its
        controller the relay (max_backoff 1 s, as host-join sets it)."""
        args = []
        for br, dpid, ports in specs:
            cid = f"@c{br}"
            ctl = ["--", f"--id={cid}", "create", "Controller", f'target="{self.target}"',
                   "connection_mode=out-of-band", "max_backoff=1000"]
            if inactivity_probe is not None:
                ctl.append(f"inactivity_probe={int(inactivity_probe)}")
            args += ["--", "add-br", br,
                     "--", "set", "bridge", br, "datapath_type=dummy", "fail_mode=secure",
                     "protocols=OpenFlow13", f"other-config:datapath-id={dpid:016x}",
                     "other-config:disable-in-band=true"] + ctl + \
                    ["--", "set", "bridge", br, f"controller={cid}"]
            for name, ofport in ports.items():
                pn = f"{br}-{name}"
                args += ["--", "add-port", br, pn, "--", "set", "interface", pn,
                         "type=dummy", f"ofport_request={ofport}"]
        self.vsctl(*args[1:])

    def dump_flows_text(self, bridge):
        """The bridge's flows as ovs-ofctl add-flows reads them back (port
        numbers, no statistics)."""
        return self.ofctl("dump-flows", bridge, "--no-stats", "--no-names")

    def dump_meters_text(self, bridge):
        return self.ofctl("dump-meters", bridge)

    def total_rules(self):
        """Flows in all bridges (``memory/show`` "rules:"), one cheap call."""
        m = re.search(r"\brules:(\d+)", self.appctl("memory/show"))
        return int(m.group(1)) if m else None

    def flow_count(self, bridge):
        m = re.search(r"flow_count=(\d+)", self.ofctl("dump-aggregate", bridge))
        return int(m.group(1)) if m else None

    def coverage(self, *names):
        out = self.appctl("coverage/show")
        res = {}
        for n in names:
            m = re.search(rf"^{re.escape(n)}\s.*total: (\d+)", out, re.M)
            res[n] = int(m.group(1)) if m else 0
        return res

    def log_count(self, pattern):
        """Lines of ovs-vswitchd.log matching ``pattern``, plus the messages
        OVS's rate limiter dropped right after them (a lower bound)."""
        n = 0
        try:
            with open(os.path.join(self.dir, "ovs-vswitchd.log"), errors="replace") as f:
                prev = False
                for line in f:
                    if re.search(pattern, line):
                        n += 1
                        prev = True
                        continue
                    m = re.search(r"Dropped (\d+) log messages", line)
                    if m and prev:
                        n += int(m.group(1))
                    prev = prev and bool(m)
        except OSError:
            pass
        return n

    # --- down ------------------------------------------------------------------------------
    def down(self):
        problems = []
        try:
            with open(self.state_path) as f:
                st = json.load(f)
        except (OSError, ValueError):
            st = self.state or {}
        relay = st.get("relay") or (self.relay.pid if self.relay else None)
        if relay and pid_alive(relay) and not kill_pid(relay, expect=self.sock, group=True):
            problems.append(f"relay {relay} survived")
        if self.relay is not None:
            try:
                self.relay.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        for prog in ("ovs-vswitchd", "ovsdb-server"):
            pid = read_pidfile(os.path.join(self.dir, f"{prog}.pid"))
            if pid and not kill_pid(pid, expect=prog):
                problems.append(f"{prog} {pid} survived")
        if self.ns in list_netns():
            for pid in netns_pids(self.ns):
                kill_pid(pid)
            sh(["ip", "netns", "del", self.ns], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        return problems


def reap(log=print):
    """Farms whose creating process is gone (a SIGKILLed benchmark)."""
    if not os.path.isdir(BASE):
        return
    for name in os.listdir(BASE):
        if NAME_RE.match(name):
            try:
                with open(os.path.join(BASE, name, "state.json")) as f:
                    pid = json.load(f).get("up_pid")
            except (OSError, ValueError):
                pid = None
            if not pid or not pid_alive(pid):
                log(f"removing stale dummy farm {name}")
                DummyFarm(name, 1).down()
