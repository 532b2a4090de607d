#!/usr/bin/env python3
"""Fault lab, the long run: seeded faults under a client stream (vpclab/faultlab.py),
checked by vpclab/history.py.

    .venv/bin/python bench/faults.py [--seeds 1-5] [--faults 10] [--ttl 1]
                                     [--history-dir DIR] [--out FILE]

Run as root.  One lab (3 etcd members, 3 controllers, 2 hosts) serves every
seed in turn; per seed a fresh tenant, a client stream through all three
REST APIs and --faults faults drawn from the seed (controller leader kill,
etcd leader / follower kill, a host's OVS restart, one controller cut off
from etcd).  One JSON document on stdout: per seed the summary (operations
acknowledged / refused / unknown, 503s, takeover times, pings lost, store
retries, re-sent and recognised commits) and the problems the check found
(none expected); the full histories go to --history-dir.  The exit status
is 1 when any check found a problem.  Everything made is removed on exit,
also on error or Ctrl-C.
"""
import argparse
import json
import os
import signal
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import emit, machine  # noqa: E402
from vpclab.faultlab import FAULTS, FaultLab  # noqa: E402
from vpclab.history import check, summary  # noqa: E402


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def seeds(text):
    out = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b or a) + 1))
    return out


def stats(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"n": len(vals), "min": round(min(vals), 3),
            "median": round(statistics.median(vals), 3), "max": round(max(vals), 3)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=seeds, default=seeds("1-5"))
    p.add_argument("--faults", type=int, default=10)
    p.add_argument("--ttl", type=int, default=1)
    p.add_argument("--etcd-election-ms", type=int, default=500)
    p.add_argument("--kinds", default=",".join(FAULTS))
    p.add_argument("--history-dir")
    p.add_argument("--out")
    a = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix="faults-")
    hist_dir = a.history_dir or os.path.join(work, "histories")
    os.makedirs(hist_dir, exist_ok=True)
    lab = FaultLab(os.path.join(work, "lab"), lease_ttl=a.ttl, election_ms=a.etcd_election_ms,
                   heartbeat_ms=max(10, a.etcd_election_ms // 10), log=log, prefix="bfl")
    runs = []

    def _terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        lab.up()
        for seed in a.seeds:
            history = lab.run(seed, faults=a.faults, kinds=tuple(a.kinds.split(",")))
            path = os.path.join(hist_dir, f"history-{seed}.json")
            with open(path, "w") as f:
                json.dump(history, f)
            s = summary(history)
            s["problems"] = check(history)
            s["history"] = path
            runs.append(s)
            log(json.dumps(s))
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        problems = lab.down()
        if problems:
            log(f"cleanup problems: {problems}")
        if not a.history_dir:
            import shutil
            shutil.rmtree(work, ignore_errors=True)
    result = {"benchmark": "faults", "ttl_s": a.ttl, "etcd_election_ms": a.etcd_election_ms,
              "faults_per_seed": a.faults, "machine": machine(), "runs": runs,
              "takeover_s": stats([t for r in runs for t in r["takeover_s"]]),
              "totals": {k: sum(r[k] or 0 for r in runs) for k in
                         ("ops", "ok", "refused", "unknown", "bad_5xx", "answered_503",
                          "pings_sent", "pings_lost", "pings_lost_outside_ovs",
                          "store_retries", "resent_commits", "recognised_commits",
                          "conflict_retries")},
              "problems": sum(len(r["problems"]) for r in runs)}
    emit(result, a.out)
    return 0 if runs and not result["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())
