#!/usr/bin/env python3
"""Convergence at scale: many datapaths, preloaded state, cold and warm start.

    .venv/bin/python bench/scale.py [--quick] [--hosts 100] [--ports 50]
        [--tenants 100] [--tenants-per-host 10] [--timeout 600]
        [--inactivity-probe MS] [--no-profile] [--out FILE]

Run as root.  Defaults: 100 datapaths x 50 ports (5,000 ports, 100 tenants,
VLAN/VXLAN/GRE by tenant index mod 3, 10 tenants per host, each tenant on
10 hosts); --quick: 10 x 20 (200 ports, 10 tenants, 5 per host).

1. State: bench/scenario.py builds the model (hosts/tenants/subnets through
   the real VpcService, ports as the records create_port writes) and writes
   it straight into the controller's MsgpackStore snapshot -- the state the
   service would have after the same REST calls, preloaded before start.
2. Datapaths: ONE ``ovs-vswitchd --enable-dummy=override`` in its own netns
   (bench/dummyovs.py) with H bridges (``datapath_type=dummy``, dpid = the
   host's), each with P dummy ports plus ``patch-phy``/``vxlan0``/``gre0``,
   created in one ovs-vsctl transaction; each bridge's controller is a
   socat relay to the controller on 127.0.0.1.  The controller runs
   bench/scale_app.py: apps/vpc.py unchanged except that it strips the
   ``bNNN-`` prefix the port names need in a shared OVS database.
3. Expected flows: ``compile_datapath`` on the same state and a topology view
   with the same port numbers, offline (timed, and profiled with cProfile).
4. Cold start: from spawning the controller until every bridge holds its
   expected number of flows, read FROM THE SWITCH (``memory/show`` rules
   total polled every second; when it matches, ``ovs-ofctl dump-aggregate``
   on every bridge).  The controller's log (timestamped) gives first/last
   switch connection and last reconcile; ``/metrics`` the flow-mods sent and
   reconcile runs; /proc VmHWM the peak RSS.  py-spy samples the controller
   during the cold start when available.
5. Warm restart over the same state and the same switches: flow-mods sent
   (expected 0) and time from spawn to the last switch's "reconciled" line.

Prints one JSON document; never a threshold.  Everything is removed on exit
(farm namespace, daemons, relay, controller, temp dir), also on Ctrl-C.
"""
import argparse
import os
import re
import secrets
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402
import dummyovs  # noqa: E402
import profiling  # noqa: E402
from scenario import Scenario  # noqa: E402

TAG = "scale"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="10 datapaths x 20 ports")
    p.add_argument("--hosts", type=int, default=None)
    p.add_argument("--ports", type=int, default=None, help="ports per datapath")
    p.add_argument("--tenants", type=int, default=None)
    p.add_argument("--tenants-per-host", type=int, default=None)
    p.add_argument("--timeout", type=float, default=600,
                   help="give up waiting for convergence after this many seconds")
    p.add_argument("--inactivity-probe", type=int, default=None,
                   help="Controller inactivity_probe (ms); default: OVS's (5 s)")
    p.add_argument("--no-profile", action="store_true", help="no py-spy, no cProfile")
    p.add_argument("--fallback", action="store_true",
                   help="when the cold start does not converge within --timeout, try the "
                        "next smaller size (100x50 -> 100x20 -> 50x20 -> 20x20)")
    p.add_argument("--out", help="also write the JSON here")
    a = p.parse_args(argv)
    q = dict(hosts=10, ports=20, tenants=10, tenants_per_host=5)
    full = dict(hosts=100, ports=50, tenants=100, tenants_per_host=10)
    for k, v in (q if a.quick else full).items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    return a


def expected_flows(sc, profile):
    from controller.compile.datapath import compile_datapath
    state, topo = sc.state(), sc.topo()
    out = {}
    t0 = time.perf_counter()
    for h in range(sc.hosts):
        out[sc.dpid(h)] = len(compile_datapath(state, topo, sc.dpid(h)))
    seconds = time.perf_counter() - t0
    prof = None
    if profile:
        n = min(sc.hosts, 5)
        _, _, prof = profiling.cprofile(
            lambda: [compile_datapath(state, topo, sc.dpid(h)) for h in range(n)])
        prof["what"] = f"cProfile of compile_datapath for {n} datapaths, offline"
    return out, seconds, prof


def wait_converged(farm, expected, t0, deadline, bridges, hidden):
    """Poll the rules total (minus ``hidden``: the rules OVS counts for empty
    bridges); when it matches, check every bridge.  Returns (converged_at or
    None, series [(s, flows)], per-bridge mismatches)."""
    total = sum(expected.values())
    series = []
    mismatches = None
    while time.time() < deadline:
        try:
            rules = farm.total_rules() - hidden
        except Exception as exc:          # vswitchd busy: try again
            common.log(TAG, f"memory/show failed: {exc}")
            rules = None
        now = time.time()
        series.append((round(now - t0, 2), rules))
        if rules == total:
            counts = {d: farm.flow_count(br) for br, d in bridges}
            mismatches = {f"{d:016x}": [counts[d], expected[d]] for d in counts
                          if counts[d] != expected[d]}
            if not mismatches:
                return now, series, {}
        time.sleep(1.0)
    # Not converged: say which bridges are short, read from each of them.
    counts = {d: farm.flow_count(br) for br, d in bridges}
    mismatches = {f"{d:016x}": [counts[d], expected[d]] for d in counts
                  if counts[d] != expected[d]}
    series.append(("all bridges at the deadline", sum(v or 0 for v in counts.values())))
    return None, series, mismatches


LADDER = [(100, 50, 100, 10), (100, 20, 100, 10), (50, 20, 50, 10), (20, 20, 20, 10)]


def run(args):
    """One size, or with --fallback the largest size of the ladder (from the
    requested one down) whose cold start converges within --timeout."""
    sizes = [(args.hosts, args.ports, args.tenants, args.tenants_per_host)]
    if args.fallback:
        sizes += [s for s in LADDER if s[0] * s[1] < sizes[0][0] * sizes[0][1]]
    attempts = []
    for size in sizes:
        res = run_size(args, *size)
        attempts.append({k: res.get(k) for k in ("hosts", "ports_per_host", "ports")} |
                        {k: (res.get("cold") or {}).get(k) for k in (
                            "converged", "converge_s", "reconcile_failures",
                            "reconcile_failure_reasons", "ovs_bundle_timeouts",
                            "controller_peak_rss_mib", "switch_connections",
                            "last_reconcile_s", "flow_mods_metric", "bridges_short",
                            "flows_found_at_end")} |
                        {"expected_flows_total": res.get("expected_flows_total"),
                         "timeout_s": args.timeout})
        if (res.get("cold") or {}).get("converged"):
            break
    res["attempts"] = attempts
    res["requested_size"] = f"{sizes[0][0]}x{sizes[0][1]}"
    return res


def run_size(args, hosts, ports, tenants, tph):
    load = common.load_avg()
    dummyovs.reap(lambda m: common.log(TAG, m))
    args.hosts, args.ports, args.tenants, args.tenants_per_host = hosts, ports, tenants, tph
    sc = Scenario(args.hosts, args.ports, args.tenants, args.tenants_per_host)
    common.log(TAG, f"{args.hosts} datapaths x {args.ports} ports, {args.tenants} tenants; "
                    f"load {load}")
    t = time.perf_counter()
    sc.state()
    build_s = time.perf_counter() - t
    expected, compile_s, compile_prof = expected_flows(sc, not args.no_profile)
    total = sum(expected.values())
    common.log(TAG, f"expected {total} flows (offline compile of all {args.hosts} datapaths: "
                    f"{compile_s:.1f} s)")
    workdir = tempfile.mkdtemp(prefix="vpc-bench-scale-")
    ctl = common.TimedController(workdir, app=os.path.join(HERE, "scale_app.py"))
    farm = dummyovs.DummyFarm(f"bsc{secrets.token_hex(2)}", ctl.of_port)
    bridges = [(f"b{h:03d}", sc.dpid(h)) for h in range(args.hosts)]
    result = {"hosts": args.hosts, "ports_per_host": args.ports, "ports": args.hosts * args.ports,
              "tenants": args.tenants, "tenants_per_host": args.tenants_per_host,
              "load_avg_at_start": load, "state_build_s": round(build_s, 2),
              "expected_flows_total": total,
              "expected_flows_per_switch": sorted(set(expected.values())),
              "offline_compile_all_s": round(compile_s, 2),
              "offline_compile_profile": compile_prof,
              "state_preload": "controller.store.msgpack_store.MsgpackStore snapshot written before start "
                               "(bench/scenario.py; hosts/tenants/subnets via VpcService)",
              "inactivity_probe_ms": args.inactivity_probe or "OVS default (5000)",
              "controller_settings": controller_settings()}
    spy = None
    try:
        t = time.perf_counter()
        sc.write_store(str(ctl.state_dir))
        result["store_write_s"] = round(time.perf_counter() - t, 2)
        result["store_bytes"] = os.path.getsize(os.path.join(ctl.state_dir, "state.snapshot"))
        farm.up()
        t = time.perf_counter()
        farm.add_bridges([(br, d, sc.ofports()) for br, d in bridges],
                         inactivity_probe=args.inactivity_probe)
        result["bridges_create_s"] = round(time.perf_counter() - t, 2)
        hidden = farm.total_rules()       # hidden rules of empty bridges
        common.log(TAG, f"{args.hosts} bridges made in {result['bridges_create_s']} s")

        # --- cold start ----------------------------------------------------------------
        ctl.start(timeout=120)
        t0 = ctl.started_at
        health_s = time.time() - t0
        if not args.no_profile:
            spy = profiling.PySpy(ctl.pid, os.path.join(workdir, "cold.pyspy.txt"))
        done, series, mismatches = wait_converged(farm, expected, t0, t0 + args.timeout,
                                                  bridges, hidden)
        if spy:
            spy.stop()
        cold = {"converged": done is not None,
                "converge_s": None if done is None else round(done - t0, 2),
                "health_s": round(health_s, 2),
                "rules_series": series if len(series) <= 40 else series[::len(series) // 40 + 1],
                "bridge_mismatches": mismatches if len(mismatches or {}) <= 10 else
                dict(list(mismatches.items())[:10]),
                "bridges_short": len(mismatches or {}),
                "flows_found_at_end": None if done else series[-1][1]}
        cold.update(log_summary(ctl, 0, t0, args.hosts))
        cold["flow_mods_metric"] = ctl.metric_sum("vpc_flow_mods_total")
        cold["reconcile_runs_metric"] = ctl.metric_sum("vpc_reconcile_runs_total")
        cold["controller_peak_rss_mib"] = common.proc_status(ctl.pid, "VmHWM")
        cold["vswitchd_rss_mib"] = common.proc_status(farm.vswitchd_pid(), "VmRSS")
        cold["ovs_bundle_timeouts"] = farm.log_count("OFPBFC_TIMEOUT")
        cold["ovs_coverage"] = farm.coverage("ofproto_recv_openflow", "rconn_sent",
                                             "rconn_queued", "rconn_overflow")
        if spy:
            cold["pyspy_profile"] = spy.top()
        result["cold"] = cold
        common.log(TAG, f"cold: converged={cold['converged']} in {cold['converge_s']} s, "
                        f"{cold.get('flow_mods_log')} flow-mods")
        if done is None:
            return result

        # --- warm restart ----------------------------------------------------------------
        # Done when every switch has been reconciled at least once, the switches
        # hold the expected flows again, and no reconcile was logged for 3 s.
        # The lowest flow total seen meanwhile shows flows removed and re-added.
        ctl.stop()
        offset = ctl.log_size()
        ctl.start(timeout=120)
        t0 = ctl.started_at
        spy = None
        if not args.no_profile:
            spy = profiling.PySpy(ctl.pid, os.path.join(workdir, "warm.pyspy.txt"))
        deadline = t0 + args.timeout
        lowest, done, series = None, None, []
        while time.time() < deadline:
            try:
                flows = farm.total_rules() - hidden
            except Exception:
                flows = None
            now = time.time()
            series.append((round(now - t0, 2), flows))
            if flows is not None:
                lowest = flows if lowest is None else min(lowest, flows)
            rec = ctl.reconciles(offset)
            if len({r[1] for r in rec}) >= args.hosts and flows == total and \
                    now - max(r[0] for r in rec) >= 3.0:
                done = now
                break
            time.sleep(1.0)
        if spy:
            spy.stop()
        warm = log_summary(ctl, offset, t0, args.hosts)
        if spy:
            warm["pyspy_profile"] = spy.top()
        warm["converged"] = done is not None
        warm["converge_s"] = None if done is None else round(max(
            r[0] for r in ctl.reconciles(offset)) - t0, 2)
        warm["lowest_flows_during_restart"] = lowest
        grace = result["controller_settings"]["startup_grace_s"]
        warm["connected_after_grace"] = sum(1 for t, _ in ctl.connects(offset) if t - t0 > grace)
        warm["flows_series"] = series if len(series) <= 40 else series[::len(series) // 40 + 1]
        ht = ctl_health_time(ctl, offset, t0)
        warm["health_s"] = round(ht, 2) if ht else None
        warm["flow_mods_metric"] = ctl.metric_sum("vpc_flow_mods_total")
        warm["reconcile_runs_metric"] = ctl.metric_sum("vpc_reconcile_runs_total")
        warm["controller_peak_rss_mib"] = common.proc_status(ctl.pid, "VmHWM")
        warm["flows_after"] = farm.total_rules() - hidden
        result["warm"] = warm
        common.log(TAG, f"warm: all reconciled in {warm.get('last_reconcile_s')} s, "
                        f"{warm.get('flow_mods_log')} flow-mods")

        # --- the floor: the same flows, installed by ovs-ofctl ---------------------------
        ctl.stop()
        result["raw_install"] = raw_install(farm, bridges, expected, workdir)
        raw_s = result["raw_install"].get("seconds")
        if raw_s:
            result["cold_vs_raw"] = round(cold["converge_s"] / raw_s, 1)
            first = cold.get("first_connect_s") or 0
            result["cold_from_first_connect_vs_raw"] = round(
                (cold["converge_s"] - first) / raw_s, 1)
        common.log(TAG, f"raw install: {raw_s} s; cold start / raw = "
                        f"{result.get('cold_vs_raw')}")
        return result
    except BaseException:
        common.log(TAG, f"failed; controller log tail:\n{ctl.tail(20)}")
        raise
    finally:
        with common.uninterruptible():
            if spy and spy.proc and spy.proc.poll() is None:
                spy.proc.kill()
            ctl.stop()
            problems = farm.down()
            shutil.rmtree(workdir, ignore_errors=True)
            if problems:
                common.log(TAG, f"cleanup problems: {problems}")


def raw_install(farm, bridges, expected, workdir):
    """The very flows our controller installed, read back from its bridges
    (``dump-flows --no-stats --no-names``), then installed again with
    ``ovs-ofctl --bundle add-flows`` into the same bridges emptied (same
    ovs-vswitchd, same bridges and ports as during our cold start), one
    ovs-ofctl per bridge, ALL BRIDGES AT ONCE: the floor our cold start is
    compared with.  The meters those flows use are put back first and not
    timed (ovs-ofctl adds one meter per call; our cold start sends them too, a
    few dozen per bridge).  Afterwards every bridge is dumped again and
    compared with what the controller had installed.

    Why at once: ovs-vswitchd's single-threaded main loop takes at most 50
    OpenFlow messages per connection per iteration, and each iteration visits
    every bridge and port of the daemon (here 100 x 53).  One bridge after the
    other, a 3,210-flow bundle took ~65 iterations alone, and the per-bridge
    install time grew with the ports in the daemon (measured with this very
    flow file: 0.09 s per bridge in a 3-bridge daemon, 0.33 s with 30 x 50
    ports, ~1.75 s with 100 x 50 and the flows in place): that serial method
    measured 175 s for 100 bridges, slower than our own cold start, which
    keeps all switches connected and several reconciles in flight.  With all
    connections busy together each iteration serves all of them (30 x 50:
    13-15 s one after the other, 3.3-4 s at once).
    Why detached: the controller is stopped, and a bridge whose controller
    target is still set retries it every second (max_backoff 1 s) through the
    relay, each retry a socat fork that fails -- load the cold start, with
    its controller up, did not have (~10-15 % of the serial install)."""
    from concurrent.futures import ThreadPoolExecutor
    files, dumped, meters, lines = {}, {}, [], 0
    for br, _ in bridges:
        dumped[br] = _flow_lines(farm.dump_flows_text(br))
        lines += len(dumped[br])
        files[br] = os.path.join(workdir, f"{br}.flows")
        with open(files[br], "w") as f:
            f.write("\n".join(dumped[br]) + "\n")
        meters += [(br, m) for m in parse_meters(farm.dump_meters_text(br))]
    detach = []
    for br, _ in bridges:
        detach += ["--", "del-controller", br]
    farm.vsctl(*detach[1:])
    for br, _ in bridges:
        farm.ofctl("del-flows", br, timeout=600)
        farm.ofctl("del-meters", br)
    emptied = sum(farm.flow_count(br) or 0 for br, _ in bridges)
    t = time.perf_counter()
    with ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda bm: farm.ofctl("add-meter", bm[0], bm[1]), meters))
    meters_s = time.perf_counter() - t
    time.sleep(1.0)                   # let the daemon settle after the untimed part
    t = time.perf_counter()
    with ThreadPoolExecutor(len(bridges)) as ex:
        list(ex.map(lambda br: farm.ofctl("add-flows", br, "--bundle", files[br],
                                          timeout=600), files))
    seconds = time.perf_counter() - t
    counts = {d: farm.flow_count(br) for br, d in bridges}
    short = {f"{d:016x}": [counts[d], expected[d]] for d in counts if counts[d] != expected[d]}
    differ = [br for br, _ in bridges if _flow_lines(farm.dump_flows_text(br)) != dumped[br]]
    return {"seconds": round(seconds, 3), "flows": lines,
            "flows_per_s": round(lines / seconds) if seconds else None,
            "bridges": len(bridges), "bridges_short": short, "flows_left_after_emptying": emptied,
            "bridges_differing_from_the_controllers_flows": differ,
            "meters": len(meters), "meters_s_untimed": round(meters_s, 2),
            "how": "ovs-ofctl -O OpenFlow13 add-flows --bundle, one process per bridge, "
                   "all bridges at once, into the controller's own bridges emptied "
                   "(del-flows, del-meters) and detached from the stopped controller, in the "
                   "same ovs-vswitchd"}


def _flow_lines(text):
    """The flows of a ``dump-flows --no-stats --no-names``, sorted."""
    return sorted(ln.strip() for ln in text.splitlines() if "actions=" in ln)


def parse_meters(text):
    """`ovs-ofctl dump-meters` output -> the add-meter argument of each meter."""
    out, cur = [], None
    for ln in text.splitlines():
        ln = ln.strip()
        if ln.startswith("meter="):
            if cur:
                out.append(cur)
            cur = ln
        elif cur and ln.startswith("type="):
            cur += ln
    if cur:
        out.append(cur)
    return out


def controller_settings():
    """The settings the controller under test reads from this environment."""
    from controller.config import Config
    cfg = Config.from_env()
    return {"startup_grace_s": cfg.startup_grace, "reconcile_parallel": cfg.reconcile_parallel}


def ctl_health_time(ctl, offset, t0):
    for t, _, _, msg in ctl.lines(offset):
        if msg.startswith("REST API on"):
            return t - t0
    return None


def log_summary(ctl, offset, t0, hosts):
    """What the controller's log says since ``offset``."""
    rec = ctl.reconciles(offset)
    con = ctl.connects(offset)
    out = {"switch_connections": len(con),
           "first_connect_s": round(min(t for t, _ in con) - t0, 2) if con else None,
           "last_connect_s": round(max(t for t, _ in con) - t0, 2) if con else None,
           "connect_s": common.percentiles([t - t0 for t, _ in con], 2),
           "reconcile_log_lines": len(rec),
           "switches_reconciled": len({d for _, d, *_ in rec}),
           "last_reconcile_s": round(max(r[0] for r in rec) - t0, 2) if rec else None,
           "flow_mods_log": sum(r[3] + r[4] for r in rec),
           "flows_added_log": sum(r[3] for r in rec),
           "flows_removed_log": sum(r[4] for r in rec),
           "reconcile_ms": common.percentiles([r[2] for r in rec], 0)}
    out["reconcile_failures"] = sum(1 for _, _, _, msg in ctl.lines(offset)
                                    if "reconcile failed" in msg)
    reasons = {}
    for _, _, _, msg in ctl.lines(offset):
        if "reconcile failed" in msg:
            why = re.sub(r"dpid [0-9a-f]{16}:? ?", "", msg.split("(", 1)[-1]).split(";")[0]
            reasons[why.rstrip(")")] = reasons.get(why.rstrip(")"), 0) + 1
    out["reconcile_failure_reasons"] = reasons
    adds = [r[0] for r in rec if r[3] or r[4]]
    out["last_flow_change_s"] = round(max(adds) - t0, 2) if adds else None
    return out


def main(argv=None):
    return common.run_main("bench/scale.py", parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
