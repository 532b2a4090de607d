"""A bounded, Jepsen-style fault lab: 3 etcd members, 3 controllers, 2 hosts.

``FaultLab(workdir).up()`` builds it (all on loopback and in namespaces of its
own): an etcd cluster; per controller a relay to every etcd member (so one
controller can be cut off from etcd alone); three controllers; a lab of two
hosts connected to all three; a tenant with a container on each host that
ping each other for the whole run.

``run(seed, ...)`` then drives a client stream -- one client per REST API,
creating and deleting ports and creating tenants -- while it injects faults
in an order drawn from ``random.Random(seed)``, one at a time, each held a
little and healed:

  ctl_leader     kill -9 the controller leader, start it again
  etcd_leader    SIGKILL etcd's raft leader, start it again
  etcd_follower  SIGKILL another etcd member, start it again
  ovs            stop a host's ovs-vswitchd (flows gone), start it again
  partition      cut one controller off from etcd: its relays are SIGSTOPped,
                 so requests hang (time out) rather than fail fast -- the
                 unknown-outcome case -- and are delivered late on healing

then lets everything settle and returns the history: every client operation
(invoke/complete times, status, result), every fault (with the takeover time
after a leader kill), the pings, the final model as each controller sees it
and the switches' roles and flow counts.  vpclab/history.py checks it.

Processes are stopped by pid (process groups for the socat relays);
``down()`` removes everything, also after a failure.
"""
import json
import os
import random
import secrets
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from vpclab import lablib
from vpclab.labctl import Controller, free_port
from vpclab.labfaults import PingStream, start_vswitchd, stop_vswitchd
from vpclab.labmulti import EtcdCluster, ExtraRelays, leader_of

FAULTS = ("ctl_leader", "etcd_leader", "etcd_follower", "ovs", "partition")
PING_INTERVAL = 0.02


class EtcdRelays:
    """Controller i reaches etcd member k only through its own socat relay
    127.0.0.1:ports[i][k] -> member k.  cut(i) SIGSTOPs controller i's relays
    (a black hole: connections hang), heal(i) SIGCONTs them."""

    def __init__(self, cluster, n, workdir):
        self.cluster, self.workdir = cluster, Path(workdir)
        self.ports = [[free_port() for _ in cluster.members] for _ in range(n)]
        self.procs = {}
        self.cut_now = set()

    def endpoints(self, i):
        return ",".join(f"http://127.0.0.1:{p}" for p in self.ports[i])

    def start(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        for i, ports in enumerate(self.ports):
            for k, port in enumerate(ports):
                log = open(self.workdir / f"etcd-relay-{i}-{k}.log", "a")
                self.procs[(i, k)] = subprocess.Popen(
                    ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr",
                     f"TCP:127.0.0.1:{self.cluster.members[k]['client']},nodelay"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
                log.close()
        return self

    def _signal(self, i, sig):
        for (ci, _), p in self.procs.items():
            if ci == i and p.poll() is None:
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    pass

    def cut(self, i):
        self._signal(i, signal.SIGSTOP)
        self.cut_now.add(i)

    def heal(self, i):
        self._signal(i, signal.SIGCONT)
        self.cut_now.discard(i)

    def stop(self):
        for i in list(self.cut_now):
            self.heal(i)
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(5)
        self.procs = {}


def call(url, method, path, body=None, timeout=10):
    """One REST call: (status or None, body, headers, error kind or None).
    error kind "refused": the request never reached the controller;
    "lost": no answer (timeout, reset) -- it may have been applied."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            if "json" not in (r.headers.get("Content-Type") or ""):
                return r.status, raw.decode(errors="replace"), dict(r.headers), None
            return r.status, json.loads(raw) if raw.strip() else None, dict(r.headers), None
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            parsed = json.loads(raw) if raw.strip() else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return e.code, parsed, dict(e.headers), None
    except urllib.error.URLError as e:
        kind = "refused" if isinstance(e.reason, ConnectionRefusedError) else "lost"
        return None, str(e.reason), {}, kind
    except ConnectionRefusedError as e:
        return None, str(e), {}, "refused"
    except (OSError, ValueError) as e:          # timeout, reset, cut-off reply
        return None, f"{type(e).__name__}: {e}", {}, "lost"


class FaultLab:
    def __init__(self, workdir, hosts=2, lease_ttl=1, election_ms=500, heartbeat_ms=50,
                 retry_budget=2.0, log=print, prefix="vt"):
        """prefix: of the lab's name; "vt" (the tests') lets tests/lab/conftest.py
        reap the lab of a killed test run."""
        self.workdir = Path(workdir)
        self.log = log
        self.lease_ttl = lease_ttl
        self.cluster = EtcdCluster(self.workdir / "etcd", members=3, election_ms=election_ms,
                                   heartbeat_ms=heartbeat_ms)
        self.etcd_relays = EtcdRelays(self.cluster, 3, self.workdir / "relays")
        self.ctls = []
        for i in range(3):
            env = {"VPC_STORE": "etcd", "VPC_ETCD_ENDPOINTS": self.etcd_relays.endpoints(i),
                   "VPC_LEASE_TTL": str(lease_ttl), "VPC_CONTROLLER_ID": f"c{i}"}
            if retry_budget:
                env["VPC_STORE_RETRY_BUDGET"] = str(retry_budget)
            self.ctls.append(Controller(self.workdir / f"ctl{i}", extra_env=env))
        self.lab = lablib.Lab(name=f"{prefix}{secrets.token_hex(2)}", hosts=hosts,
                              of_port=self.ctls[0].of_port)
        self.of_relays = ExtraRelays(self.lab, [c.of_port for c in self.ctls[1:]])
        self.ping_tenant = None
        self.pair = None

    # --- building and removing -------------------------------------------------------
    def up(self):
        self.cluster.start()
        self.etcd_relays.start()
        for c in self.ctls:
            c.start()
        leader_of(self.ctls, timeout=30)
        self.lab.up()
        self.of_relays.start()
        for i in self.lab.hosts_range():
            self.lab.join(i, self.ctls[0].url, extra=self.of_relays.join_args(i))
        for c in self.ctls:
            self.lab.wait_connected(timeout=60, api_url=c.url)
        api = leader_of(self.ctls, timeout=30)
        t = self.ping_tenant = "fping"
        for path, body in (("/v1/tenants", {"name": t, "network": "vxlan"}),
                           (f"/v1/tenants/{t}/subnets", {"cidr": "10.77.0.0/24"})):
            status, reply = api.api.post(path, body)
            if status != 201:
                raise RuntimeError(f"POST {path}: {status} {reply}")
        self.lab.add_container("fa", host=1)
        self.lab.add_container("fb", host=2)
        self.lab.attach(t, "fa", 1, api.url)
        b = self.lab.attach(t, "fb", 2, api.url)
        self.pair = ("fa", b["ip"])
        if not self.lab.ping(self.lab.container_ns("fa"), b["ip"], count=5):
            raise RuntimeError("no ping between the containers before any fault")
        return self

    def down(self):
        problems = []
        for c in self.ctls:
            try:
                c.stop()
            except Exception as exc:          # noqa: BLE001 -- keep removing the rest
                problems.append(f"controller: {exc}")
        for step in (self.of_relays.stop, self.etcd_relays.stop):
            try:
                step()
            except Exception as exc:          # noqa: BLE001
                problems.append(f"relays: {exc}")
        try:
            problems += self.lab.down() or []
        except Exception as exc:              # noqa: BLE001
            problems.append(f"lab: {exc}")
        self.cluster.stop()
        return problems

    # --- faults ----------------------------------------------------------------------
    def leader(self, timeout=30, exclude=()):
        return leader_of(self.ctls, timeout=timeout, exclude=exclude)

    def inject(self, kind, rng):
        """Start a fault; returns (description dict, heal callable)."""
        if kind == "ctl_leader":
            old = self.leader()
            t0 = time.monotonic()
            old.kill9()
            new = self.leader(timeout=30, exclude=(old,))
            took = time.monotonic() - t0
            return ({"victim": f"c{self.ctls.index(old)}", "new_leader":
                     f"c{self.ctls.index(new)}", "takeover_s": round(took, 3)},
                    lambda: old.start(timeout=60))
        if kind in ("etcd_leader", "etcd_follower"):
            lead = self._etcd_leader()
            live = [k for k, m in enumerate(self.cluster.members) if m["proc"] is not None]
            k = lead if kind == "etcd_leader" else rng.choice([x for x in live if x != lead])
            self.cluster.kill_member(k)
            return {"victim": f"e{k}", "etcd_leader_was": f"e{lead}"}, \
                lambda: self.cluster.start_member(k)
        if kind == "ovs":
            i = rng.choice(list(self.lab.hosts_range()))
            stop_vswitchd(self.lab, i)
            return {"victim": f"h{i}"}, lambda: start_vswitchd(self.lab, i)
        if kind == "partition":
            leader = self.leader()
            i = self.ctls.index(leader) if rng.random() < 0.5 else rng.randrange(3)
            self.etcd_relays.cut(i)
            return {"victim": f"c{i}", "was_leader": self.ctls[i] is leader}, \
                lambda: self.etcd_relays.heal(i)
        raise ValueError(f"unknown fault {kind!r}")

    def _etcd_leader(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            k = self.cluster.leader_member()
            if k is not None:
                return k
            time.sleep(0.1)
        raise RuntimeError("etcd has no leader")

    # --- one run ---------------------------------------------------------------------
    def run(self, seed, faults=5, hold=(1.0, 3.0), gap=(0.5, 1.5), kinds=FAULTS):
        """Client stream + seeded faults; returns the history (JSON-able)."""
        rng = random.Random(seed)
        order = list(kinds)
        rng.shuffle(order)          # every kind once before any twice
        plan = [order[i % len(order)] for i in range(faults)]
        tenant = f"fz{seed}"
        api = self.leader()
        for path, body in (("/v1/tenants", {"name": tenant, "network": "vxlan"}),
                           (f"/v1/tenants/{tenant}/subnets", {"cidr": "10.80.0.0/22"})):
            status, reply, _, err = call(api.url, "POST", path, body)
            if status != 201:
                raise RuntimeError(f"POST {path}: {status} {reply} {err}")
        history = {"seed": seed, "plan": plan, "tenant": tenant, "lease_ttl": self.lease_ttl,
                   "ops": [], "faults": []}
        stop, lock = threading.Event(), threading.Lock()
        t_start = time.time()
        clients = [threading.Thread(target=self._client,
                                    args=(c, seed, tenant, stop, lock, history["ops"]),
                                    daemon=True) for c in range(3)]
        fa, ip = self.pair
        with PingStream(self.lab, self.lab.container_ns(fa), ip, interval=PING_INTERVAL) as ps:
            for th in clients:
                th.start()
            try:
                time.sleep(rng.uniform(*gap))
                for kind in plan:
                    f = {"kind": kind, "t0": time.time()}
                    self.log(f"[faults] seed {seed}: {kind}")
                    desc, heal = self.inject(kind, rng)
                    f.update(desc)
                    time.sleep(rng.uniform(*hold))
                    f["healing"] = time.time()
                    heal()
                    f["t1"] = time.time()
                    history["faults"].append(f)
                    self.log(f"[faults]   {json.dumps(desc)}")
                    time.sleep(rng.uniform(*gap))
            finally:
                stop.set()
                for th in clients:
                    th.join(30)
            history["settle"] = self.settle(tenant)
            time.sleep(1)
        history["pings"] = {"interval": PING_INTERVAL, "t_start": t_start, "sent": ps.sent,
                            "received": ps.received, "replies": ps.replies}
        history["final"] = self.final(tenant)
        return history

    def _client(self, c, seed, tenant, stop, lock, ops):
        """Client c through controller c: creates ports (60 %), deletes one of
        its acknowledged ports (30 %), creates a tenant (10 %)."""
        rng = random.Random(f"{seed}-{c}")
        url = self.ctls[c].url
        live, n = [], 0
        while not stop.is_set():
            n += 1
            r = rng.random()
            if r < 0.1:
                name = f"s{seed}c{c}n{n}"
                op = {"op": "create_tenant", "key": name}
                req = ("POST", "/v1/tenants", {"name": name, "network": "vxlan"})
            elif r < 0.4 and live:
                pid, name = live.pop(rng.randrange(len(live)))
                op = {"op": "delete_port", "key": name, "id": pid}
                req = ("DELETE", f"/v1/tenants/{tenant}/ports/{pid}", None)
            else:
                name = f"q{seed % 100}c{c}n{n}"
                op = {"op": "create_port", "key": name}
                req = ("POST", f"/v1/tenants/{tenant}/ports",
                       {"host": self.lab.host_name(1 + n % 2), "port": name})
            op.update(client=c, api=f"c{c}", t0=time.time())
            status, body, headers, err = call(url, *req)
            op.update(t1=time.time(), status=status, error=err)
            if isinstance(body, dict) and "error" in body:
                op["code"] = body["error"].get("code")
                op["message"] = body["error"].get("message")
            if headers.get("Retry-After"):
                op["retry_after"] = headers["Retry-After"]
            if status in (200, 201) and isinstance(body, dict):
                op["result"] = {k: body.get(k) for k in ("id", "ip", "mac", "segment")}
                if op["op"] == "create_port":
                    live.append((body["id"], name))
            elif op["op"] == "delete_port" and outcome(op) == "fail":
                live.append((op["id"], op["key"]))          # still there: may go later
            with lock:
                ops.append(op)
            stop.wait(rng.uniform(0.05, 0.2))

    # --- after the faults -----------------------------------------------------------
    def settle(self, tenant, timeout=90):
        """Wait until one leader leads, all three agree on the model, and the
        leader has every switch reconciled; returns how long it took."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        for c in self.ctls:
            if not c.alive:
                c.start(timeout=60)
        leader = self.leader(timeout=timeout)
        last = None
        while time.monotonic() < deadline:
            views = [self._view(c, tenant) for c in self.ctls]
            flows = self.flow_counts(leader)
            roles = self.roles()
            ok_roles = all(list(r.values()).count("master") == 1 for r in roles.values())
            if None not in views and all(v == views[0] for v in views) and ok_roles \
                    and all(d == inst for d, inst in flows.values()):
                return {"seconds": round(time.monotonic() - t0, 2), "leader":
                        f"c{self.ctls.index(leader)}"}
            last = {"views_equal": None not in views and all(v == views[0] for v in views),
                    "flows": flows, "roles": roles}
            time.sleep(0.5)
            leader = self.leader(timeout=timeout)
        raise RuntimeError(f"the lab did not settle in {timeout}s: {last}")

    def _view(self, c, tenant):
        status, tenants, _, _ = call(c.url, "GET", "/v1/tenants")
        status2, ports, _, _ = call(c.url, "GET", f"/v1/tenants/{tenant}/ports")
        if status != 200 or status2 != 200:
            return None
        return (sorted((t["name"], t.get("segment")) for t in tenants),
                sorted((p["id"], p["port"], p["ip"], p["mac"]) for p in ports))

    def dpid_label(self, i):
        return self.lab.dpid(i).lower().removeprefix("0x").rjust(16, "0")

    def flow_counts(self, leader):
        """{host: (flows the leader wants, flows the switch holds)}."""
        from prometheus_client.parser import text_string_to_metric_families
        status, text, _, _ = call(leader.url, "GET", "/metrics")
        want = {}
        if status == 200 and isinstance(text, str):
            for fam in text_string_to_metric_families(text):
                for s in fam.samples:
                    if s.name == "vpc_flows_desired":
                        want[s.labels.get("dpid")] = int(s.value)
        out = {}
        for i in self.lab.hosts_range():
            held = self.lab.ovs_ofctl(i, "dump-flows", "--no-stats", "-O", "OpenFlow13",
                                      check=False)
            n = sum(1 for line in (held or "").splitlines()
                    if line.strip() and not line.lstrip().startswith(("OFPST_", "NXST_")))
            out[f"h{i}"] = (want.get(self.dpid_label(i)), n)
        return out

    def roles(self):
        """{host: {controller target: role}} as OVS records them."""
        out = {}
        for i in self.lab.hosts_range():
            text = self.lab.ovs_vsctl(i, "--format=csv", "--no-headings",
                                      "--columns=target,role", "list", "Controller",
                                      check=False) or ""
            roles = {}
            for line in text.splitlines():
                target, _, role = line.rpartition(",")
                roles[os.path.basename(target.strip('"'))] = role.strip('"')
            out[f"h{i}"] = roles
        return out

    def final(self, tenant):
        views = {}
        for k, c in enumerate(self.ctls):
            _, tenants, _, _ = call(c.url, "GET", "/v1/tenants")
            _, ports, _, _ = call(c.url, "GET", f"/v1/tenants/{tenant}/ports")
            _, health, _, _ = call(c.url, "GET", "/v1/health")
            views[f"c{k}"] = {"tenants": [{"name": t["name"], "segment": t.get("segment")}
                                          for t in tenants],
                              "ports": [{k2: p.get(k2) for k2 in ("id", "port", "ip", "mac")}
                                        for p in ports],
                              "health": health}
        leader = self.leader()
        return {"views": views, "roles": self.roles(), "flows": self.flow_counts(leader),
                "metrics": self.ha_metrics(), "claims": self.master_claims()}

    def master_claims(self):
        """{controller: [[dpid, generation], ...]}: every MASTER role request
        each controller made (from its log, all its lives)."""
        import re
        pat = re.compile(r"dpid ([0-9a-f]{16}): MASTER with generation (\d+)")
        out = {}
        for k, c in enumerate(self.ctls):
            try:
                text = c.log.read_text(errors="replace")
            except OSError:
                text = ""
            out[f"c{k}"] = sorted({(m.group(1), int(m.group(2))) for m in pat.finditer(text)})
        return out

    def ha_metrics(self):
        """The store/election counters of every controller (since its start)."""
        from prometheus_client.parser import text_string_to_metric_families
        out = {}
        for k, c in enumerate(self.ctls):
            status, text, _, _ = call(c.url, "GET", "/metrics")
            vals = {}
            if status == 200 and isinstance(text, str):
                for fam in text_string_to_metric_families(text):
                    for s in fam.samples:
                        if s.name.startswith(("vpc_store_", "vpc_leader", "vpc_rest_unavail")):
                            vals[s.name] = s.value
            out[f"c{k}"] = vals
        return out


def outcome(op):
    """ok (acknowledged), fail (certainly not applied), info (may or may not
    have been), bad (a 5xx other than 503: a bug)."""
    status = op.get("status")
    if status is not None and 200 <= status < 300:
        return "ok"
    if status is not None and 400 <= status < 500:
        return "fail"
    if status == 503:
        return "info" if op.get("code") == "outcome_unknown" else "fail"
    if status is not None:
        return "bad"
    return "fail" if op.get("error") == "refused" else "info"
