"""The check of a fault-lab history (vpclab/faultlab.py): what a client was
told against what the controllers hold at the end.

Each operation's outcome (faultlab.outcome): ok (acknowledged), fail
(certainly not applied: 4xx, 503 store_unavailable/busy, connection refused),
info (may or may not have been applied: 503 outcome_unknown, no answer),
bad (any other 5xx).  Every operation names a unique key (a port or tenant
name used once), so "exactly once" is a count.

``check(history)`` returns a list of problems (empty: the run is correct):
  - no operation was answered with a 5xx other than 503;
  - the three controllers hold the same model at the end;
  - an acknowledged create is there exactly once, unless its delete was
    acknowledged (then it is gone) or is unknown (then at most once);
  - a refused create is absent; an unknown one is there at most once;
  - an acknowledged delete's port is gone; a port whose deletes were all
    refused is still there;
  - no IP or MAC is held by two ports at the end, no segment by two tenants,
    and no two acknowledged ports held the same IP or MAC at the same time;
  - every switch holds exactly the flows the leader wants and has exactly one
    master connection, and no generation id was claimed MASTER by two
    controllers (OVS demotes the old master when a claim with a newer
    generation comes and refuses older ones, so one owner per generation
    means a switch never had two masters);
  - pings lost outside the windows where a host's OVS was down (+ grace)
    stay within ``ping_bound_s`` of traffic.

``summary(history)`` gives the figures a report wants.
"""
from collections import Counter, defaultdict

from vpclab.faultlab import outcome

OVS_GRACE_S = 10.0      # after ovs-vswitchd is back: reconnect, reconcile


def check(history, ping_bound_s=1.0):
    problems = []
    ops = history["ops"]
    final = history["final"]
    views = final["views"]
    bad = [op for op in ops if outcome(op) == "bad"]
    if bad:
        problems.append(f"{len(bad)} answers were a 5xx other than 503, e.g. {bad[0]}")
    first = next(iter(views.values()))
    for name, v in views.items():
        if sorted(map(repr, v["ports"])) != sorted(map(repr, first["ports"])) or \
                sorted(map(repr, v["tenants"])) != sorted(map(repr, first["tenants"])):
            problems.append(f"controller {name} holds another model than the others")
    ports = Counter(p["port"] for p in first["ports"])
    tenants = Counter(t["name"] for t in first["tenants"])
    deletes = defaultdict(list)
    for op in ops:
        if op["op"] == "delete_port":
            deletes[op["key"]].append(outcome(op))
    for op in ops:
        kind, key, out = op["op"], op["key"], outcome(op)
        if kind == "delete_port":
            continue
        have = (ports if kind == "create_port" else tenants)[key]
        dels = deletes.get(key, [])
        if out == "ok":
            if "ok" in dels:
                want = (0, 0)
            elif "info" in dels:
                want = (0, 1)
            else:
                want = (1, 1)
        elif out == "fail":
            want = (0, 0)
        else:
            want = (0, 1)
        if not want[0] <= have <= want[1]:
            problems.append(f"{kind} {key} ({out}, deletes {dels}) is there {have} times")
    for key, dels in deletes.items():
        if dels and all(d == "fail" for d in dels) and ports[key] != 1:
            problems.append(f"port {key}: every delete was refused but it is gone")
    for field in ("ip", "mac"):
        dup = [v for v, n in Counter(p[field] for p in first["ports"]).items() if n > 1]
        if dup:
            problems.append(f"{field} held by two ports at the end: {dup}")
    segs = [v for v, n in Counter(t["segment"] for t in first["tenants"]).items() if n > 1]
    if segs:
        problems.append(f"segments held by two tenants: {segs}")
    problems += _overlaps(ops)
    for host, (want, held) in final["flows"].items():
        if want is None or want != held:
            problems.append(f"{host}: the leader wants {want} flows, the switch holds {held}")
    owner = {}
    for ctl, claims in final.get("claims", {}).items():
        for _dpid, gen in claims:
            if owner.setdefault(gen, ctl) != ctl:
                problems.append(f"generation {gen} claimed MASTER by {owner[gen]} and {ctl}")
    for host, roles in final["roles"].items():
        if list(roles.values()).count("master") != 1:
            problems.append(f"{host}: controller roles {roles}")
    lost = lost_outside_ovs(history)
    bound = ping_bound_s / history["pings"]["interval"]
    if lost > bound:
        problems.append(f"{lost} pings lost outside OVS restarts (bound {bound:.0f})")
    return problems


def _overlaps(ops):
    """Two acknowledged ports with one IP (or MAC) whose lives certainly
    overlapped: B's create was acknowledged before A's delete was even sent."""
    problems = []
    created = {op["key"]: op for op in ops if op["op"] == "create_port" and outcome(op) == "ok"}
    deleted = {}
    for op in ops:
        if op["op"] == "delete_port" and outcome(op) in ("ok", "info"):
            deleted.setdefault(op["key"], op["t0"])
    for field in ("ip", "mac"):
        by = defaultdict(list)
        for key, op in created.items():
            by[op["result"][field]].append(key)
        for value, keys in by.items():
            for a in keys:
                for b in keys:
                    if a == b:
                        continue
                    end_a = deleted.get(a, float("inf"))
                    if created[a]["t1"] <= created[b]["t1"] < end_a and \
                            created[b]["t1"] < end_a:
                        problems.append(f"{field} {value} held by {a} and {b} at once")
    return problems


def ovs_windows(history):
    return [(f["t0"], f["t1"] + OVS_GRACE_S) for f in history["faults"] if f["kind"] == "ovs"]


def lost_seqs(history):
    """[(approximate send time, icmp_seq)] of echo requests without a reply."""
    p = history["pings"]
    replies = sorted(p["replies"], key=lambda r: r[1])
    if not p.get("sent") or not replies:
        return []
    got = {seq for _, seq in replies}
    out = []
    j = 0
    for seq in range(1, p["sent"] + 1):
        if seq in got:
            continue
        while j + 1 < len(replies) and replies[j + 1][1] < seq:
            j += 1
        ts, rseq = replies[j]
        out.append((ts + (seq - rseq) * p["interval"], seq))
    return out


def lost_outside_ovs(history):
    windows = ovs_windows(history)
    return sum(1 for t, _ in lost_seqs(history)
               if not any(a <= t <= b for a, b in windows))


def summary(history):
    ops = history["ops"]
    outs = Counter(outcome(op) for op in ops)
    codes = Counter(op.get("code") for op in ops if op.get("status") == 503)
    metrics = history["final"].get("metrics", {})
    total = Counter()
    for vals in metrics.values():
        for k, v in vals.items():
            total[k] += v
    p = history["pings"]
    return {
        "seed": history["seed"], "plan": history["plan"],
        "ops": len(ops), "ok": outs["ok"], "refused": outs["fail"], "unknown": outs["info"],
        "bad_5xx": outs["bad"], "answered_503": sum(codes.values()), "codes_503": dict(codes),
        "takeover_s": [f["takeover_s"] for f in history["faults"] if "takeover_s" in f],
        "pings_sent": p.get("sent"), "pings_lost": (p["sent"] - p["received"])
        if p.get("sent") is not None else None,
        "pings_lost_outside_ovs": lost_outside_ovs(history),
        "store_retries": total.get("vpc_store_retries_total", 0),
        "resent_commits": total.get("vpc_store_resent_commits_total", 0),
        "recognised_commits": total.get("vpc_store_recognised_commits_total", 0),
        "conflict_retries": total.get("vpc_store_conflict_retries_total", 0),
        "settle_s": history.get("settle", {}).get("seconds"),
    }
