#!/usr/bin/env python3
"""Leader takeover benchmark: kill -9 the leader of three controllers, N times.

    .venv/bin/python bench/takeover.py [--kills 10] [--ttl 1] [--etcd-election-ms 500]
                                       [--interval 0.01] [--out FILE]

Run as root.  Starts a 3-member etcd cluster on loopback ports (election
timeout --etcd-election-ms: etcd's minimum lease TTL is 1.5 x that, rounded
up to whole seconds, so a 1 s lease needs <= 666 ms), three
controllers (VPC_STORE=etcd, VPC_LEASE_TTL=--ttl) and a lab ``bto<4 hex>`` of
two hosts connected to all three (vpclab/labmulti.py), one VXLAN tenant with
a container on each host.  Then --kills times, under a ping flood between the
containers: kill -9 the leader and measure
  election_s   kill -> another controller's /v1/health says master
  switches_s   kill -> the new leader has sent OFPRoleRequest MASTER to both
               switches (from its timestamped log)
  pings_lost   echo requests without reply during the round
then restart the killed controller (it comes back as slave) and go on.

One JSON document on stdout: every kill and min/median/max.  No thresholds.
Everything made is removed on exit, also on error or Ctrl-C.
"""
import argparse
import json
import os
import re
import secrets
import signal
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import TimedController, emit, machine  # noqa: E402
from vpclab import lablib  # noqa: E402
from vpclab.labfaults import PingStream  # noqa: E402
from vpclab.labmulti import EtcdCluster, ExtraRelays, leader_of  # noqa: E402

MASTER_RE = re.compile(r"^(\d+\.\d+) \w+ \S+ dpid ([0-9a-f]{16}): MASTER with generation (\d+)")


def log(msg):
    print(f"[takeover] {msg}", file=sys.stderr, flush=True)


def master_times(ctl, generation):
    out = {}
    try:
        text = ctl.log.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        m = MASTER_RE.match(line)
        if m and int(m.group(3)) == generation:
            out.setdefault(m.group(2), float(m.group(1)))
    return out


def stats(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"n": len(vals), "min": round(min(vals), 3), "median": round(statistics.median(vals), 3),
            "max": round(max(vals), 3)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--ttl", type=int, default=1)
    p.add_argument("--etcd-election-ms", type=int, default=500)
    p.add_argument("--interval", type=float, default=0.01)
    p.add_argument("--out")
    a = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix="takeover-")
    cluster = EtcdCluster(os.path.join(work, "etcd"), members=3,
                          election_ms=a.etcd_election_ms,
                          heartbeat_ms=max(10, a.etcd_election_ms // 10))
    ctls = []
    for i in range(3):
        env = {"VPC_STORE": "etcd", "VPC_ETCD_ENDPOINTS": "", "VPC_LEASE_TTL": str(a.ttl),
               "VPC_CONTROLLER_ID": f"c{i}"}
        ctls.append(TimedController(os.path.join(work, f"ctl{i}"), extra_env=env))
    lab = lablib.Lab(name=f"bto{secrets.token_hex(2)}", hosts=2, of_port=ctls[0].of_port)
    relays = ExtraRelays(lab, [c.of_port for c in ctls[1:]])
    rounds = []

    def _terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        cluster.start()
        for c in ctls:
            c.extra_env["VPC_ETCD_ENDPOINTS"] = cluster.endpoints
            c.start()
        leader_of(ctls)
        lab.up()
        relays.start()
        for i in lab.hosts_range():
            lab.join(i, ctls[0].url, extra=relays.join_args(i))
        for c in ctls:
            lab.wait_connected(timeout=30, api_url=c.url)
        api = leader_of(ctls).api
        t = "bt" + secrets.token_hex(2)
        assert api.post("/v1/tenants", {"name": t, "network": "vxlan"})[0] == 201
        assert api.post(f"/v1/tenants/{t}/subnets", {"cidr": "10.7.0.0/24"})[0] == 201
        lab.add_container("ba", host=1)
        lab.add_container("bb", host=2)
        leader = leader_of(ctls)
        lab.attach(t, "ba", 1, leader.url)
        b = lab.attach(t, "bb", 2, leader.url)
        assert lab.ping(lab.container_ns("ba"), b["ip"], count=3)
        for k in range(a.kills):
            leader = leader_of(ctls)
            gen = leader.api.get("/v1/health")[1]["generation"]
            with PingStream(lab, lab.container_ns("ba"), b["ip"], interval=a.interval) as ps:
                time.sleep(0.5)
                t_kill = time.time()
                t0 = time.monotonic()
                leader.kill9()
                new = leader_of(ctls, timeout=30, exclude=(leader,))
                election = time.monotonic() - t0
                new_gen = new.api.get("/v1/health")[1]["generation"]
                deadline = time.monotonic() + 10
                claims = {}
                while time.monotonic() < deadline and len(claims) < 2:
                    claims = master_times(new, new_gen)
                    time.sleep(0.05)
                time.sleep(0.5)
            switches = max(claims.values()) - t_kill if len(claims) == 2 else None
            r = {"round": k + 1, "election_s": round(election, 3),
                 "switches_s": None if switches is None else round(switches, 3),
                 "generation": [gen, new_gen], "pings_sent": ps.sent,
                 "pings_lost": None if ps.sent is None else ps.sent - ps.received}
            rounds.append(r)
            log(json.dumps(r))
            leader.start()
            lab.wait_connected(timeout=30, api_url=leader.url)
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        for c in ctls:
            c.stop()
        relays.stop()
        problems = lab.down()
        cluster.stop()
        if problems:
            log(f"cleanup problems: {problems}")
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    result = {"benchmark": "takeover", "ttl_s": a.ttl, "etcd_election_ms": a.etcd_election_ms,
              "kills": len(rounds),
              "ping_interval_s": a.interval, "machine": machine(), "rounds": rounds,
              "election_s": stats([r["election_s"] for r in rounds]),
              "switches_s": stats([r["switches_s"] for r in rounds]),
              "pings_lost": stats([r["pings_lost"] for r in rounds])}
    emit(result, a.out)
    return 0 if rounds else 1


if __name__ == "__main__":
    sys.exit(main())
