#!/usr/bin/env python3
"""Fabric failover benchmark: how long do pings stop when a fabric link is cut?

    .venv/bin/python bench/failover.py [--cuts 10] [--interval 0.02] [--out FILE]

Run as root.  Builds its own lab (``bfo<4 hex>``: 3 hosts on a 2-leaf x
2-spine OpenFlow fabric, vpclab/labfabric.py) and its own controller
(vpclab/labctl.py, started exactly as the test fixtures start it), one VLAN
tenant with a container on h1 (leaf1) and one on h2 (leaf2).  Then, --cuts
times: find the spine leaf1 uses towards h2's container, ping h1 -> h2 every
--interval seconds, ``ip link set down`` leaf1's end of that cable, and count
the echo requests lost (outage = lost x interval; also the gap between the
last reply before and the first after the cut).  Then the cable comes back up
under the same ping (restoring it changes paths and the tree again: its cost
is measured too), and the next round waits until the controller's graph has
all four fabric links again.

The controller's own time from the event to new flows on every fabric switch
is read from its log ("fabric flows updated in N ms").  Detection is by
OFPPortStatus (the cut end goes admin-down, its peer loses carrier), not by
the LLDP timeout.

Prints one JSON document: every cut, and min/median/max.  Never a pass/fail
threshold.  Everything it made (lab, controller, temp dir) is removed on
exit, also after Ctrl-C, SIGTERM or an error.
"""
import argparse
import os
import re
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from vpclab import labctl  # noqa: E402
from common import emit  # noqa: E402
from vpclab import lablib  # noqa: E402
from vpclab.labfabric import active_port, ping_outage  # noqa: E402

LAB_RE = re.compile(r"^bfo[0-9a-f]{4}$")
UPDATE_RE = re.compile(r"fabric flows updated in (\d+) ms")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cuts", type=int, default=10, help="link cuts to measure")
    p.add_argument("--interval", type=float, default=0.02, help="ping interval (s)")
    p.add_argument("--out", help="also write the JSON here")
    return p.parse_args(argv)


def log(msg):
    print(f"[failover] {msg}", file=sys.stderr, flush=True)


def reap_stale_labs():
    if not os.path.isdir(lablib.BASE):
        return
    for name in os.listdir(lablib.BASE):
        if LAB_RE.match(name):
            pid = lablib.Lab.load(name)._read_state().get("up_pid")
            if not pid or not lablib.pid_alive(pid):
                log(f"removing stale lab {name}")
                lablib.Lab.load(name).down()


def fabric_links_up(ctl):
    status, topo = ctl.api.get("/v1/topology")
    return [e for e in topo["links"] if e.get("kind") == "link" and e["up"]
            and "attachment" not in e] if status == 200 else []


def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def updates_since(ctl, mark):
    text = ctl.log.read_text(errors="replace")[mark:]
    return [int(x) for x in UPDATE_RE.findall(text)]


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"min": min(values), "median": round(statistics.median(values), 3),
            "max": max(values), "n": len(values)}


def setup(lab, ctl):
    lab.up()
    lab.join_all(ctl.url)
    lab.wait_connected(timeout=30, api_url=ctl.url)
    if not wait_for(lambda: len(fabric_links_up(ctl)) == 4, 20):
        raise RuntimeError(f"fabric not discovered: {fabric_links_up(ctl)}")
    ctl.api.post("/v1/tenants", {"name": "red", "network": "vlan"})
    ctl.api.post("/v1/tenants/red/subnets", {"cidr": "10.0.0.0/24"})
    c = {}
    for name, host in (("a", 1), ("b", 2)):
        ns = lab.add_container(name, host=host)
        c[name] = dict(lab.attach("red", name, host, ctl.url), ns=ns)
    if not wait_for(lambda: lab.ping(c["a"]["ns"], c["b"]["ip"], count=1), 15):
        raise RuntimeError("no ping between the containers before any cut")
    return c


def one_cut(lab, ctl, c, interval):
    port = active_port(lab, "leaf1", c["b"]["mac"])
    if port is None:
        raise RuntimeError("leaf1 has no flow towards b")
    spine = int(port[1][1:])
    mark = ctl.log.stat().st_size
    cut = ping_outage(lab, c["a"]["ns"], c["b"]["ip"], lambda: lab.fabric_link_down(1, spine),
                      interval=interval, before=0.5, after=2.0)
    cut_updates = updates_since(ctl, mark)
    mark = ctl.log.stat().st_size
    restore = ping_outage(lab, c["a"]["ns"], c["b"]["ip"], lambda: lab.fabric_link_up(1, spine),
                          interval=interval, before=0.3, after=2.5)
    restore_updates = updates_since(ctl, mark)
    if not wait_for(lambda: len(fabric_links_up(ctl)) == 4, 15):
        raise RuntimeError("the cut link did not come back into the graph")
    return {"spine": spine, "cut": cut, "cut_update_ms": cut_updates[:1] or None,
            "restore": restore, "restore_update_ms": restore_updates[:1] or None}


def report(rounds, args, lab):
    get = lambda key, sub: [r[key].get(sub) for r in rounds]   # noqa: E731
    return {
        "what": "ping outage when a leaf-spine link on the active path goes down, "
                "and when it comes back",
        "lab": {"hosts": lab.hosts, "fabric": lab.fabric, "leaves": lab.leaves,
                "spines": lab.spines, "ping_interval_s": args.interval},
        "cuts": len(rounds),
        "outage_s": summary(get("cut", "outage_s")),
        "reply_gap_s": summary(get("cut", "reply_gap_s")),
        "lost": summary(get("cut", "lost")),
        "controller_update_ms": summary([r["cut_update_ms"][0] for r in rounds
                                         if r["cut_update_ms"]]),
        "never_recovered": sum(1 for r in rounds if not r["cut"]["replies_after"]),
        "restore_outage_s": summary(get("restore", "outage_s")),
        "restore_update_ms": summary([r["restore_update_ms"][0] for r in rounds
                                      if r["restore_update_ms"]]),
        "rounds": rounds,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None):
    args = parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("bench/failover.py needs root (namespaces, OVS daemons)")
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    reap_stale_labs()
    workdir = tempfile.mkdtemp(prefix="vpc-failover-")
    ctl = labctl.Controller(workdir)
    lab = lablib.Lab(name=f"bfo{secrets.token_hex(2)}", hosts=3, of_port=ctl.of_port,
                     fabric="leafspine", external=False)
    try:
        log(f"controller on {ctl.url}, lab {lab.name}")
        ctl.start()
        c = setup(lab, ctl)
        rounds = []
        for n in range(args.cuts):
            r = one_cut(lab, ctl, c, args.interval)
            log(f"cut {n + 1}/{args.cuts}: spine{r['spine']} lost {r['cut'].get('lost')} "
                f"({r['cut'].get('outage_s')} s), restore lost {r['restore'].get('lost')}")
            rounds.append(r)
        result = report(rounds, args, lab)
    except (KeyboardInterrupt, SystemExit):
        log("interrupted: cleaning up")
        raise
    except BaseException:
        log(f"failed; controller log tail:\n{ctl.tail(20)}")
        raise
    finally:
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
