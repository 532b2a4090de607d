"""Several controllers on one etcd, for tests and benchmarks.  Standard library only.

``EtcdCluster(workdir, members=1|3)`` runs etcd member(s) on free loopback
ports, each with its own data dir under workdir; ``.endpoints`` is the
comma-separated client URL list for VPC_ETCD_ENDPOINTS.  Processes are stopped
by pid (``stop()``), never by name.

``controllers(workdir, cluster, n)`` makes n ``labctl.Controller`` objects
configured for VPC_STORE=etcd (not started).
"""
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from vpclab.labctl import Controller, free_port  # noqa: E402

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


class EtcdCluster:
    """election_ms / heartbeat_ms: etcd's --election-timeout and
    --heartbeat-interval.  etcd's minimum lease TTL is 1.5 x the election
    timeout rounded up to whole seconds: 1000 ms -> 2 s, 500 ms -> 1 s (what
    a 1 s controller lease, VPC_LEASE_TTL=1, needs to be granted as asked)."""

    def __init__(self, workdir, members=1, max_txn_ops=4096, election_ms=1000, heartbeat_ms=100):
        self.workdir = Path(workdir)
        self.members = []
        for i in range(members):
            self.members.append({"name": f"e{i}", "client": free_port(), "peer": free_port(),
                                 "proc": None})
        self.max_txn_ops = max_txn_ops
        self.election_ms, self.heartbeat_ms = election_ms, heartbeat_ms

    @property
    def endpoints(self):
        return ",".join(f"http://127.0.0.1:{m['client']}" for m in self.members)

    def _cmd(self, m):
        initial = ",".join(f"{x['name']}=http://127.0.0.1:{x['peer']}" for x in self.members)
        data = self.workdir / f"etcd-{m['name']}"
        return [ETCD, "--name", m["name"], "--data-dir", str(data),
                "--listen-client-urls", f"http://127.0.0.1:{m['client']}",
                "--advertise-client-urls", f"http://127.0.0.1:{m['client']}",
                "--listen-peer-urls", f"http://127.0.0.1:{m['peer']}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{m['peer']}",
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--initial-cluster-token", f"vpc-{os.getpid()}-{id(self)}",
                "--max-txn-ops", str(self.max_txn_ops),
                "--heartbeat-interval", str(self.heartbeat_ms),
                "--election-timeout", str(self.election_ms)]

    def _spawn(self, m):
        env = dict(os.environ, ETCD_UNSUPPORTED_ARCH=os.environ.get("ETCD_UNSUPPORTED_ARCH", ""))
        log = open(self.workdir / f"etcd-{m['name']}.log", "ab")
        m["proc"] = subprocess.Popen(self._cmd(m), stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()

    def _wait_healthy(self, m, deadline, timeout):
        while True:
            if m["proc"].poll() is not None:
                raise RuntimeError(f"etcd {m['name']} exited; see {self.workdir}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{m['client']}/health",
                                            timeout=1) as r:
                    if b"true" in r.read():
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"etcd {m['name']} not healthy after {timeout}s")
            time.sleep(0.1)

    def start(self, timeout=30):
        self.workdir.mkdir(parents=True, exist_ok=True)
        for m in self.members:
            self._spawn(m)
        deadline = time.monotonic() + timeout
        try:
            for m in self.members:
                self._wait_healthy(m, deadline, timeout)
        except RuntimeError:
            self.stop()
            raise
        return self

    # --- faults: one member at a time (vpclab/faultlab.py) -----------------------------
    def kill_member(self, k):
        """SIGKILL member k by its pid (a crash: no goodbye to its peers)."""
        p = self.members[k]["proc"]
        if p is not None and p.poll() is None:
            p.kill()
            p.wait(10)
        self.members[k]["proc"] = None

    def start_member(self, k, timeout=30):
        """Start member k again from its data dir and wait until it is healthy."""
        m = self.members[k]
        if m["proc"] is not None and m["proc"].poll() is None:
            return
        self._spawn(m)
        self._wait_healthy(m, time.monotonic() + timeout, timeout)

    def status(self, k, timeout=1.0):
        """(member id, leader id) as member k sees them, or None."""
        import json
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.members[k]['client']}/v3/maintenance/status",
            data=b"{}", method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                body = json.loads(r.read())
        except (OSError, ValueError):
            return None
        return body.get("header", {}).get("member_id"), body.get("leader")

    def leader_member(self):
        """Index of the member that is etcd's raft leader now, or None."""
        for k, m in enumerate(self.members):
            if m["proc"] is None or m["proc"].poll() is not None:
                continue
            st = self.status(k)
            if st and st[0] and st[0] == st[1]:
                return k
        return None

    def stop(self):
        for m in self.members:
            p = m["proc"]
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
            m["proc"] = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def controllers(workdir, cluster, n=3, lease_ttl=1, extra_env=None):
    out = []
    for i in range(n):
        env = {"VPC_STORE": "etcd", "VPC_ETCD_ENDPOINTS": cluster.endpoints,
               "VPC_LEASE_TTL": str(lease_ttl), "VPC_CONTROLLER_ID": f"c{i}"}
        env.update(extra_env or {})
        out.append(Controller(Path(workdir) / f"ctl{i}", extra_env=env))
    return out


# --- a lab whose hosts connect to several controllers ------------------------------------

class ExtraRelays:
    """Per host and per extra controller k>=1 a relay
    ``UNIX-LISTEN:<rundir>/of<k>.sock -> TCP:127.0.0.1:<of_port_k>`` (the lab's
    own relay, of.sock, goes to controller 0).  Stopped by pid (process group:
    socat forks per connection)."""

    def __init__(self, lab, of_ports):
        self.lab = lab
        self.of_ports = list(of_ports)       # controllers 1.. (0 is the lab's)
        self.procs = {}

    def sock(self, i, k):
        return os.path.join(self.lab.rundir(i), f"of{k}.sock")

    def targets(self, i):
        return [self.lab.controller_target(i)] + \
            [f"unix:{self.sock(i, k)}" for k in range(1, len(self.of_ports) + 1)]

    def start(self):
        for i in self.lab.hosts_range():
            for k, port in enumerate(self.of_ports, start=1):
                sock = self.sock(i, k)
                log = open(os.path.join(self.lab.rundir(i), f"relay{k}.log"), "a")
                self.procs[(i, k)] = subprocess.Popen(
                    ["socat", "-d", f"UNIX-LISTEN:{sock},fork,reuseaddr,unlink-early,mode=600",
                     f"TCP:127.0.0.1:{port},nodelay"], stdin=subprocess.DEVNULL, stdout=log,
                    stderr=log, start_new_session=True)
                log.close()
                deadline = time.monotonic() + 5
                while not os.path.exists(sock):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"relay {sock} did not start")
                    time.sleep(0.05)
        return self

    def join_args(self, i):
        args = []
        for t in self.targets(i)[1:]:
            args += ["--controller", t]
        return args

    def stop(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(5)
        self.procs = {}


def leader_of(ctls, timeout=15, exclude=()):
    """The controller whose /v1/health says role master (polls)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in ctls:
            if c in exclude or not c.alive:
                continue
            try:
                status, body = c.api.get("/v1/health")
            except OSError:
                continue
            if status == 200 and body.get("role") == "master":
                return c
        time.sleep(0.05)
    raise RuntimeError(f"no leader after {timeout}s")
