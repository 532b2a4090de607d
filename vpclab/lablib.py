"""The test lab: emulated hosts, a physical network and containers in netns.

Standard library only, importable by tests, bench/ and scripts/demo (``vpclab.lablib``)
and driven by ``scripts/lab`` for humans.

Layout of a lab called L (all names derive from L, so ``down`` can find
everything even without its state file):

* ``L-fab``: the physical network, a Linux bridge ``br0`` (or, with
  ``fabric="leafspine"``, OpenFlow switches ``L-leaf<n>``/``L-spine<n>``:
  labfabric.py).
* ``L-h<i>``: emulated host i.  ``eth0`` is a veth whose peer ``h<i>`` is a
  port of br0.  Its own ovsdb-server and ovs-vswitchd run inside the
  namespace with run directory ``/run/vpclab/L/h<i>/`` -- one userspace
  datapath per namespace, because every netdev datapath in a namespace shares
  the ``ovs-netdev`` tap and hosts must be as independent as real machines.
* ``L-c-<name>``: a container (a bare netns; attached by scripts/attach).
* ``L-out``: the outside network, unless ``external=False``: see laboutside.py.
* Per host an OpenFlow relay ``socat UNIX-LISTEN:/run/vpclab/L/h<i>/of.sock
  -> TCP:127.0.0.1:<of_port>``: the hosts' switches reach a controller that
  listens on loopback in the root namespace without any interface or address
  being added to the root namespace.  One relay per host because OVS accepts
  ``unix:`` controller targets only inside its own run directory; it also
  lets a test cut one host's control channel (``stop_relay(i)``).

Every namespace, run directory and pid is written to ``state.json`` *before*
or right after it is made, so ``down`` after a crash mid-``up`` still cleans.
``down`` also works from names alone (globs the run dirs, lists namespaces
by prefix) when the state file is missing or corrupt.

Processes are stopped by pid only (pid files, ``ip netns pids``), and a pid
from a file is killed only if its command line still names the program we
started, so a stale pid file can never kill an unrelated process.
"""
import contextlib
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import zlib

from vpclab.labsys import (Capture, LabError, LabExists, capture, kill_pid,  # noqa: E402,F401
                    list_netns, netns_pids, pid_alive, pid_cmdline, read_pidfile, sh)
from vpclab import labdocker  # noqa: E402
from vpclab.labfabric import FabricMixin  # noqa: E402
from vpclab.laboutside import OutsideMixin  # noqa: E402

BASE = "/run/vpclab"
SCRIPTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts")
LAB_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,9}$")      # no '-': prefix matching is exact
CONTAINER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.]{0,23}$")
UNDERLAY = "198.18.0"


class Lab(OutsideMixin, FabricMixin):
    """One lab.  ``with Lab("vt1a2b", hosts=3, of_port=p) as lab:`` brings it
    up and guarantees ``down()`` however the block ends."""

    def __init__(self, name="vpclab", hosts=3, of_port=6653, base=BASE, ipv6=False,
                 external=True, fabric=None):
        if not LAB_NAME_RE.match(name or ""):
            raise LabError(f"invalid lab name {name!r}: 1-10 of [a-z0-9], "
                           f"starting with a letter (no '-')")
        if not 1 <= int(hosts) <= 200:
            raise LabError("hosts must be 1..200")
        self.name, self.hosts, self.of_port = name, int(hosts), int(of_port)
        self.base, self.ipv6, self.external = base, ipv6, bool(external)
        self._init_fabric(fabric)       # labfabric.py: None = a Linux bridge
        self.statedir = os.path.join(base, name)
        self.state_path = os.path.join(self.statedir, "state.json")
        self.state = {}
        self._relay_procs = {}

    @classmethod
    def load(cls, name="vpclab", base=BASE):
        """A Lab object for an existing lab, sized from its state file."""
        lab = cls(name, base=base)
        st = lab._read_state()
        if st:
            lab.hosts, lab.of_port = st.get("hosts", 1), st.get("of_port", 6653)
            lab.ipv6 = st.get("ipv6", False)
            lab.external = st.get("external", False)
            lab._init_fabric(st.get("fabric"))
            lab.state = st
        return lab

    # ---- names -----------------------------------------------------------
    @property
    def prefix(self):
        return f"{self.name}-"

    @property
    def fab_ns(self):
        return f"{self.name}-fab"

    def host_ns(self, i):
        return f"{self.name}-h{int(i)}"

    def host_name(self, i):
        """The host's name at the controller (what --host takes)."""
        return f"h{int(i)}"

    def container_ns(self, name):
        return f"{self.name}-c-{name}"

    def rundir(self, i):
        return os.path.join(self.statedir, f"h{int(i)}")

    def tunnel_ip(self, i, prefix=False):
        return f"{UNDERLAY}.{10 + int(i)}" + ("/24" if prefix else "")

    def dpid(self, i):
        """Deterministic per lab and host, so a re-join is 'already joined'
        and two labs sharing one controller do not collide."""
        return f"{zlib.crc32(self.name.encode()):08x}{int(i):08x}"

    def hosts_range(self):
        return range(1, self.hosts + 1)

    def resolve_ns(self, what):
        """'h2' / 'fab' / a container name / a full namespace -> namespace."""
        if what in list_netns():
            return what
        if what in ("fab", "out"):
            return self.fab_ns if what == "fab" else self.out_ns
        if re.match(r"^(h|leaf|spine)\d+$", what):
            return f"{self.name}-{what}"
        return self.container_ns(what)

    # ---- state -----------------------------------------------------------
    def _read_state(self):
        try:
            with open(self.state_path) as f:
                st = json.load(f)
            return st if isinstance(st, dict) else {}
        except (OSError, ValueError):
            return {}

    def _save(self):
        os.makedirs(self.statedir, exist_ok=True)
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.state, f, indent=2, sort_keys=True)
        os.replace(tmp, self.state_path)

    def _record(self, key, value):
        lst = self.state.setdefault(key, [])
        if value not in lst:
            lst.append(value)
        self._save()

    def exists(self):
        return os.path.exists(self.statedir) or \
            any(n.startswith(self.prefix) for n in list_netns())

    # ---- lifecycle -------------------------------------------------------
    def __enter__(self):
        self.up()
        return self

    def __exit__(self, *exc):
        self.down()
        return False

    def up(self, recreate=False, keep_on_error=False):
        """Create namespaces, fabric, per-host OVS and the relay.

        On an exception everything made so far is removed again (unless
        ``keep_on_error``); a killed ``up`` leaves state.json for ``down``.
        """
        for tool in ("ip", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd",
                     "ovs-vsctl", "socat"):
            if not shutil.which(tool):
                raise LabError(f"{tool} not found: run scripts/setup")
        self.check_outside()
        if self.exists():
            if not recreate:
                raise LabExists(f"lab {self.name} already exists "
                                f"(down it, or up with --recreate)")
            self.down()
        os.makedirs(self.statedir, exist_ok=True)
        self.state = {"name": self.name, "hosts": self.hosts,
                      "of_port": self.of_port, "ipv6": self.ipv6, "external": self.external,
                      "fabric": self.fabric,
                      "created": time.time(), "up_pid": os.getpid(),
                      "complete": False, "namespaces": [], "rundirs": [],
                      "containers": {}, "relays": {}}
        self._save()
        try:
            self.make_fabric()
            self.make_outside()
            for i in self.hosts_range():
                self._make_host(i)
                self.link_outside(i)
                self.start_relay(i)
            self.state["complete"] = True
            self._save()
        except BaseException:
            if not keep_on_error:
                self.down()
            raise
        return self

    def _make_ns(self, ns):
        self._record("namespaces", ns)
        sh(["ip", "netns", "add", ns])
        self.nsexec(ns, "ip", "link", "set", "lo", "up")
        if not self.ipv6 and os.path.exists("/proc/sys/net/ipv6"):
            # Quiet captures: no router solicitations, MLD or DAD traffic.
            self.nsexec(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                        "net.ipv6.conf.default.disable_ipv6=1")
        return ns

    def _make_host(self, i):
        ns, d = self.host_ns(i), self.rundir(i)
        self._make_ns(ns)
        self.plug_host_nic(i)
        self._start_ovs(ns, d, f"h{i}")

    def _daemon(self, ns, env, cmd):
        # stdout/stderr to a file, not a pipe: a detached daemon may keep an
        # inherited pipe open and make subprocess wait forever.
        errfile = os.path.join(env["OVS_RUNDIR"], "start.err")
        full = dict(os.environ, **env)
        with open(errfile, "a") as err:
            rc = subprocess.run(["ip", "netns", "exec", ns] + cmd, env=full,
                                stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                timeout=30).returncode
        if rc != 0:
            with open(errfile) as f:
                raise LabError(f"{cmd[0]} in {ns} failed: {f.read().strip()[-500:]}")

    def relay_sock(self, i):
        """Host i's OpenFlow relay socket.  It must live in that host's OVS
        run directory: ovs-vswitchd refuses ``unix:`` controller targets
        anywhere else ("possibility for remote exploit")."""
        return os.path.join(self.rundir(i), "of.sock")

    def controller_target(self, i):
        return f"unix:{self.relay_sock(i)}"

    def start_relay(self, i):
        """Start host i's relay (socat, own session, pid recorded) and wait
        for its socket.  Also used by tests to heal a cut control channel."""
        d = self.rundir(i)
        sock = self.relay_sock(i)
        if self.relay_alive(i):
            return self.state["relays"][str(i)]
        with open(os.path.join(d, "relay.log"), "a") as log:
            proc = subprocess.Popen(
                ["socat", "-d", f"UNIX-LISTEN:{sock},fork,reuseaddr,"
                 f"unlink-early,mode=600", f"TCP:127.0.0.1:{self.of_port},nodelay"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        self._relay_procs[i] = proc
        self.state.setdefault("relays", {})[str(i)] = proc.pid
        self._save()
        with open(os.path.join(d, "relay.pid"), "w") as f:
            f.write(f"{proc.pid}\n")
        deadline = time.monotonic() + 5
        while not os.path.exists(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"OpenFlow relay of h{i} did not start; see {d}/relay.log")
            time.sleep(0.05)
        return proc.pid

    def relay_alive(self, i):
        pid = (self.state.get("relays") or {}).get(str(i)) or \
            read_pidfile(os.path.join(self.rundir(i), "relay.pid"))
        return bool(pid) and pid_alive(pid) and self.relay_sock(i) in pid_cmdline(pid)

    def stop_relay(self, i):
        """Kill host i's relay and the connections it carries: the switch
        loses its controller as if the management network broke."""
        pid = (self.state.get("relays") or {}).get(str(i)) or \
            read_pidfile(os.path.join(self.rundir(i), "relay.pid"))
        ok = kill_pid(pid, expect=self.relay_sock(i), group=True) if pid else True
        proc = self._relay_procs.pop(i, None)
        if proc is not None:
            with contextlib.suppress(Exception):
                proc.wait(timeout=1)
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(self.rundir(i), "relay.pid"))
        if (self.state.get("relays") or {}).pop(str(i), None) is not None:
            self._save()
        return ok

    def down(self):
        """Remove everything of this lab.  Idempotent; never fails on
        'already gone'.  Returns a list of problems (normally empty)."""
        st = self._read_state() or self.state or {}
        problems = []
        rundirs = set(st.get("rundirs") or []) | set(
            d.rstrip("/") for d in glob.glob(os.path.join(self.statedir, "h*/")))
        # dockerds and agents (scripts/demo), then a controller started for
        # this lab, go first.
        problems += labdocker.down_lab(self)
        ctl_pid = read_pidfile(os.path.join(self.statedir, "controller.pid"))
        if ctl_pid and not kill_pid(ctl_pid, expect="osken-manager"):
            problems.append(f"controller pid {ctl_pid} survived")
        for d in sorted(rundirs):
            problems += self._stop_ovs(d)
        problems += self.down_fabric(st)
        namespaces = set(st.get("namespaces") or []) | \
            {n for n in list_netns() if n.startswith(self.prefix)}
        for ns in namespaces:
            for pid in netns_pids(ns):
                if not kill_pid(pid):
                    problems.append(f"pid {pid} in {ns} survived SIGKILL")
        relays = {int(k): v for k, v in (st.get("relays") or {}).items()}
        for d in rundirs:
            m = re.search(r"/h(\d+)$", d)
            pid = read_pidfile(os.path.join(d, "relay.pid"))
            if m and pid:
                relays.setdefault(int(m.group(1)), pid)
        for i, pid in sorted(relays.items()):
            if not kill_pid(pid, expect=self.relay_sock(i), group=True):
                problems.append(f"relay pid {pid} of h{i} survived")
        for proc in self._relay_procs.values():
            with contextlib.suppress(Exception):
                proc.wait(timeout=1)
        self._relay_procs = {}
        for ns in sorted(namespaces):
            # Delete every link first: a device left in a dying namespace
            # without a netns-local flag could be pushed to the root ns.
            p = sh(["ip", "-n", ns, "-o", "link", "show"], check=False)
            for m in re.finditer(r"^\d+: ([^:@ ]+)", p.stdout, re.M):
                if m.group(1) != "lo":
                    sh(["ip", "-n", ns, "link", "del", m.group(1)], check=False)
            p = sh(["ip", "netns", "del", ns], check=False)
            if p.returncode != 0 and ns in list_netns():
                problems.append(f"ip netns del {ns}: {p.stderr.strip()}")
        shutil.rmtree(self.statedir, ignore_errors=True)
        self.state = {}
        return problems

    def _stop_ovs(self, d):
        """Delete bridges while both daemons live (a netdev bridge leaves
        its tap behind otherwise), then stop vswitchd and ovsdb-server."""
        problems = []
        vs_pid = read_pidfile(f"{d}/ovs-vswitchd.pid") or read_pidfile(f"{d}/vswitchd.pid")
        db_pid = read_pidfile(f"{d}/ovsdb-server.pid") or read_pidfile(f"{d}/ovsdb.pid")
        vs_up = bool(vs_pid) and pid_alive(vs_pid) and "ovs-vswitchd" in pid_cmdline(vs_pid)
        db_up = bool(db_pid) and pid_alive(db_pid) and "ovsdb-server" in pid_cmdline(db_pid)
        if db_up and os.path.exists(f"{d}/db.sock"):
            base = ["ovs-vsctl", f"--db=unix:{d}/db.sock", "--timeout=5"]
            if not vs_up:
                base.append("--no-wait")
            brs = sh(base + ["list-br"], check=False, timeout=10).stdout.split()
            if brs:
                args = []
                for br in brs:
                    args += ["--", "--if-exists", "del-br", br]
                p = sh(base + args[1:], check=False, timeout=10,
                       env={"OVS_RUNDIR": d})
                if p.returncode != 0:
                    problems.append(f"del-br in {d}: {p.stderr.strip()}")
        if vs_pid and not kill_pid(vs_pid, expect="ovs-vswitchd"):
            problems.append(f"ovs-vswitchd {vs_pid} survived")
        if db_pid and not kill_pid(db_pid, expect="ovsdb-server"):
            problems.append(f"ovsdb-server {db_pid} survived")
        return problems

    # ---- OVS access ------------------------------------------------------
    def _ctl(self, i):
        return self._ctl_in(self.rundir(i))

    def _ctl_in(self, d):
        return f"{d}/ovs-vswitchd.{read_pidfile(f'{d}/ovs-vswitchd.pid')}.ctl"

    def ovs_vsctl(self, i, *args, check=True, timeout=15):
        """ovs-vsctl against host i's database; returns stdout (stripped)."""
        d = self.rundir(i)
        return sh(["ovs-vsctl", f"--db=unix:{d}/db.sock", f"--timeout={timeout}"]
                  + list(args), check=check, timeout=timeout + 5,
                  env={"OVS_RUNDIR": d}).stdout.strip()

    def ovs_ofctl(self, i, *args, bridge="br-int", check=True, timeout=15):
        """``ovs-ofctl -O OpenFlow13 [opts] CMD unix:<rundir>/<bridge>.mgmt ARGS``.

        Leading args starting with '-' are options; the first other arg is
        the command, the management socket is inserted after it.  Returns
        stdout.
        """
        args = list(args)
        opts = []
        while args and args[0].startswith("-"):
            opts.append(args.pop(0))
        if not args:
            raise LabError("ovs_ofctl needs a command")
        if not any(o.startswith(("-O", "--protocols")) for o in opts):
            opts = ["-O", "OpenFlow13"] + opts
        mgmt = f"unix:{self.rundir(i)}/{bridge}.mgmt"
        return sh(["ovs-ofctl"] + opts + [args[0], mgmt] + args[1:], check=check,
                  timeout=timeout).stdout

    def appctl(self, i, *args, check=True, timeout=15):
        """ovs-appctl to host i's ovs-vswitchd; returns stdout."""
        return sh(["ovs-appctl", "-t", self._ctl(i)] + list(args), check=check,
                  timeout=timeout).stdout

    def is_connected(self, i):
        """True when every Controller record of host i reports is_connected.

        OVSDB's is_connected lags the real connection by up to ~5 s in both
        directions (seen: true 4.5 s after connecting, still true 2.4 s
        after the peer closed).  After killing or restarting a controller
        use ``controller_sees()`` / ``wait_connected(api_url=...)``.
        """
        out = self.ovs_vsctl(i, "--format=csv", "--no-headings",
                             "--columns=is_connected", "list", "Controller",
                             check=False)
        vals = out.split()
        return bool(vals) and all(v == "true" for v in vals)

    def controller_sees(self, i, api_url):
        """The controller's own view: ``GET /v1/hosts/h<i>`` says connected."""
        try:
            with urllib.request.urlopen(f"{api_url.rstrip('/')}/v1/hosts/"
                                        f"{self.host_name(i)}", timeout=5) as r:
                return bool(json.loads(r.read() or b"{}").get("connected"))
        except (OSError, ValueError):
            return False

    def wait_connected(self, timeout=20, hosts=None, api_url=None):
        """Wait until the hosts' bridges are connected (OVSDB is_connected,
        and with ``api_url`` also the controller's ``connected`` flag);
        LabError naming the laggards."""
        hosts = list(hosts or self.hosts_range())
        deadline = time.monotonic() + timeout
        while True:
            waiting = [i for i in hosts if not self.is_connected(i) or
                       (api_url and not self.controller_sees(i, api_url))]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise LabError(f"hosts {waiting} not connected to the controller "
                               f"after {timeout}s")
            time.sleep(0.2)

    def reconnect(self, i):
        """Make host i's bridges drop and retry their controller connection
        now, skipping OVS's reconnect backoff."""
        return self.appctl(i, "bridge/reconnect")

    # ---- namespaces, containers, traffic --------------------------------
    def nsexec(self, ns, *cmd, check=True, timeout=30, input=None, env=None):
        return sh(["ip", "netns", "exec", ns] + list(cmd), check=check,
                  timeout=timeout, input=input, env=env)

    def exec(self, ns, *cmd, check=True, timeout=30, input=None, env=None):
        """Run ``cmd`` inside namespace ``ns``; a CompletedProcess (text)."""
        return self.nsexec(ns, *cmd, check=check, timeout=timeout, input=input, env=env)

    def spawn(self, ns, *cmd, **popen_kw):
        """Start a background process in ``ns`` (its own session); down()
        kills it through ``ip netns pids`` if the caller does not."""
        popen_kw.setdefault("stdin", subprocess.DEVNULL)
        popen_kw.setdefault("stdout", subprocess.DEVNULL)
        popen_kw.setdefault("stderr", subprocess.DEVNULL)
        return subprocess.Popen(["ip", "netns", "exec", ns] + list(cmd),
                                start_new_session=True, **popen_kw)

    def add_container(self, name, host=None):
        """Create a container namespace (lo up, IPv6 off unless ipv6) and
        return its name.  ``host`` is remembered for attach()."""
        if not CONTAINER_RE.match(name or ""):
            raise LabError(f"invalid container name {name!r}")
        if not self.state:
            self.state = self._read_state()
        ns = self.container_ns(name)
        if ns in list_netns():
            raise LabError(f"container {name} already exists ({ns})")
        self.state.setdefault("containers", {})[name] = {"ns": ns, "host": host}
        self._make_ns(ns)
        return ns

    def del_container(self, name):
        """Remove a container namespace (its veth, hence its eth0, goes too)."""
        if not self.state:
            self.state = self._read_state()
        ns = self.container_ns(name)
        for pid in netns_pids(ns):
            kill_pid(pid)
        sh(["ip", "netns", "del", ns], check=False)
        self.state.get("containers", {}).pop(name, None)
        if ns in self.state.get("namespaces", []):
            self.state["namespaces"].remove(ns)
        self._save()

    def ping(self, src_ns, ip, count=3, interval=0.2, wait=1.0, timeout=None):
        """True when at least one echo reply came back."""
        cmd = ["ping", "-n", "-q", "-c", str(count), "-i", str(interval),
               "-W", str(wait), ip]
        t = timeout or (count * (interval + wait) + 5)
        try:
            return self.nsexec(src_ns, *cmd, check=False, timeout=t).returncode == 0
        except LabError:
            return False

    def tcpdump(self, ns, iface, filter="", direction=None, settle=0.3, timeout=10,
                verbose=False):
        """Capture in ``ns`` on ``iface`` while a ``with`` block runs; yields
        a ``Capture`` (``.lines``, ``.count``, ``.wait_for()``,
        ``.matching()``).  See ``labsys.capture``."""
        return capture(ns, iface, filter, direction, settle, timeout, verbose)

    # ---- controller helpers ---------------------------------------------
    def join(self, i, api_url, extra=(), controller=None):
        """Run scripts/host-join for host i (netdev, br-phy on eth0, relay;
        ``controller``: another OpenFlow target, e.g. labtls's ssl: one)."""
        cmd = [sys.executable, os.path.join(SCRIPTS, "host-join"),
               "--name", self.host_name(i), "--api", api_url,
               "--controller", controller or self.controller_target(i),
               "--tunnel-ip", self.tunnel_ip(i, prefix=True), "--nic", "eth0",
               "--datapath-type", "netdev", "--dpid", self.dpid(i),
               "--netns", self.host_ns(i), "--ovs-rundir", self.rundir(i)] \
            + self.external_join_args(i) + list(extra)
        p = sh(cmd, check=False, timeout=60)
        if p.returncode != 0:
            raise LabError(f"host-join h{i} failed ({p.returncode}): {p.stderr.strip()}")
        return p.stdout.strip()

    def join_all(self, api_url):
        return [self.join(i, api_url) for i in self.hosts_range()]

    def attach(self, tenant, container, host, api_url, ip=None, mac=None,
               port=None, check=True, extra=()):
        """scripts/attach for container (name or namespace) on host i.
        Returns the port dict from the API (or the CompletedProcess when
        ``check=False``).  ``extra``: more flags, e.g. ``--token-file F``."""
        ns = container if container in list_netns() else self.container_ns(container)
        cmd = [sys.executable, os.path.join(SCRIPTS, "attach"), tenant, ns,
               "--host", self.host_name(host), "--api", api_url, "--json",
               "--host-netns", self.host_ns(host), "--ovs-rundir", self.rundir(host)]
        for flag, val in (("--ip", ip), ("--mac", mac), ("--port", port)):
            if val is not None:
                cmd += [flag, val]
        p = sh(cmd + list(extra), check=False, timeout=60)
        if not check:
            return p
        if p.returncode != 0:
            raise LabError(f"attach {container} failed ({p.returncode}): {p.stderr.strip()}")
        return json.loads(p.stdout.strip().splitlines()[-1])

    def detach(self, tenant, port_id, host, api_url, check=True, extra=()):
        cmd = [sys.executable, os.path.join(SCRIPTS, "detach"), tenant, port_id,
               "--api", api_url, "--host-netns", self.host_ns(host),
               "--ovs-rundir", self.rundir(host), *extra]
        p = sh(cmd, check=False, timeout=60)
        if check and p.returncode != 0:
            raise LabError(f"detach {port_id} failed ({p.returncode}): {p.stderr.strip()}")
        return p

    def status(self):
        """A dict describing what exists and what runs (for `lab status`)."""
        st = self._read_state()
        present = set(list_netns())
        out = {"name": self.name, "exists": self.exists(),
               "complete": st.get("complete", False), "hosts": {},
               "containers": st.get("containers", {}),
               "namespaces": sorted(n for n in present if n.startswith(self.prefix))}
        for d in sorted(glob.glob(os.path.join(self.statedir, "h*/"))):
            i = int(os.path.basename(d.rstrip("/"))[1:])
            h = {"ns": self.host_ns(i) in present, "relay": self.relay_alive(i)}
            for prog in ("ovsdb-server", "ovs-vswitchd"):
                pid = read_pidfile(f"{d}/{prog}.pid")
                h[prog] = bool(pid) and pid_alive(pid)
            if h["ovsdb-server"]:
                h["bridges"] = self.ovs_vsctl(i, "list-br", check=False,
                                              timeout=5).split()
                h["connected"] = self.is_connected(i)
            out["hosts"][f"h{i}"] = h
        return out


def join_all(lab, api_url):
    """Join every host of ``lab`` (a Lab or a lab name) to the controller."""
    if isinstance(lab, str):
        lab = Lab.load(lab)
    return lab.join_all(api_url)
