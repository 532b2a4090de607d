"""Reliability on real OVS (the module's 3-host lab): the controller and a
host's ovs-vswitchd going away and coming back.

(a) kill -9 + restart of the controller during a ping flood across hosts:
    0 packets lost (fail-mode secure keeps the flows), and the warm restart
    changes no flow on the switches (same cookies, no flow younger than the
    kill) except the external-gateway egress flow of NAT hosts; the flow-mods
    counted from the controller's "reconciled in" lines are printed.
(a2) the warm restart sends no flow-mod at all (learned gateway MACs are persisted).
(b) a host's ovs-vswitchd restarted: its flows are gone, the controller
    reinstalls them when the bridge reconnects; printed: the time from the
    reconnect to the first echo reply, for a VLAN and a VXLAN tenant.
(c) controller down: existing traffic keeps flowing for 5 s; controller up:
    a port attached right after the restart works.

Numbers are printed (pytest -s), not asserted; correctness is asserted.
"""
import re
import secrets
import threading
import time
from datetime import datetime, timezone

import pytest

from vpclab.labfaults import PingStream, restart_vswitchd
from vpclab.labtraffic import ping, wait_until

RECONCILED = re.compile(r"dpid ([0-9a-f]{16}) reconciled in (\d+) ms: (\d+) added, (\d+) removed, "
                        r"(\d+) kept")


@pytest.fixture
def tenant(api, lab):
    made = []
    a = api(lab.api_url)

    def make(network, prefix):
        name = f"{prefix}{secrets.token_hex(2)}"
        status, body = a.post("/v1/tenants", {"name": name, "network": network})
        assert status == 201, body
        status, body = a.post(f"/v1/tenants/{name}/subnets", {"cidr": "10.0.0.0/24"})
        assert status == 201, body
        made.append(name)
        return name

    yield make
    for name in made:
        for p in a.get(f"/v1/tenants/{name}/ports")[1] or []:
            a.delete(f"/v1/tenants/{name}/ports/{p['id']}")
        a.delete(f"/v1/tenants/{name}")


@pytest.fixture
def ctl(lab, tenant, make_container):
    """The module's controller; whatever a test did to it, it is running
    again afterwards (and the hosts are connected) -- before the containers
    are detached and the tenants deleted through it (hence the dependencies:
    this fixture is torn down first)."""
    c = lab.controller
    yield c
    if not c.alive:
        c.start()
    lab.wait_connected(timeout=30, api_url=lab.api_url)


def log_mark(ctl):
    return ctl.log.stat().st_size


def log_since(ctl, mark):
    with open(ctl.log, errors="replace") as f:
        f.seek(mark)
        return f.read()


def wait_log(ctl, mark, pattern, count=1, timeout=30.0, interval=0.005):
    """Poll the controller log until ``pattern`` matched ``count`` times after
    ``mark``; returns (matches, time.time() when seen) or (matches, None)."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        found = rx.findall(log_since(ctl, mark))
        if len(found) >= count:
            return found, time.time()
        if time.monotonic() > deadline:
            return found, None
        time.sleep(interval)


def settled_flows(lab, i, quiet=0.5, timeout=20):
    """Host i's flows once they stopped changing for ``quiet`` seconds (the
    controller's reconciles after the last REST change are done)."""
    last, since = flows(lab, i), time.monotonic()
    deadline = since + timeout
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        time.sleep(0.1)
        now = flows(lab, i)
        if set(now) != set(last):
            last, since = now, time.monotonic()
    return last


def flows(lab, i):
    """{cookie: duration seconds} of host i's br-int."""
    out = lab.ovs_ofctl(i, "dump-flows")
    res = {}
    for line in out.splitlines():
        c = re.search(r"cookie=(0x[0-9a-f]+)", line)
        d = re.search(r"duration=([\d.]+)s", line)
        if c and d:
            res[int(c.group(1), 16)] = float(d.group(1))
    return res


def ovs_connected_at(lab, i, after):
    """Unix time of the last "connected" line of host i's br-int controller
    connection in its ovs-vswitchd.log at or after ``after``."""
    best = None
    with open(f"{lab.rundir(i)}/ovs-vswitchd.log", errors="replace") as f:
        for line in f:
            if "rconn" in line and "br-int<->" in line and line.rstrip().endswith("connected"):
                ts = datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f").replace(
                    tzinfo=timezone.utc).timestamp()
                if ts >= after:
                    best = ts
    return best


class ChunkedPing(threading.Thread):
    """Back-to-back ``ping -c 100 -i 0.01`` runs until stopped.  Every run
    waits for its last reply, so sent/received add up exactly: no echo is cut
    off by stopping a ping mid-flight."""

    def __init__(self, lab, ns, ip, chunk=100):
        super().__init__(daemon=True)
        self.lab, self.ns, self.ip, self.chunk = lab, ns, ip, chunk
        self.sent = self.received = 0
        self.runs = []
        self.spans = []         # (start, end) of each run, time.monotonic()
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            t0 = time.monotonic()
            r = ping(self.lab, self.ns, self.ip, count=self.chunk, interval=0.01, wait=1.0)
            self.spans.append((t0, time.monotonic()))
            self.runs.append(r)
            self.sent += r.sent
            self.received += r.received

    def stop(self):
        self.halt.set()
        self.join(60)


# --------------------------------------------------------------------------
EXT_GATEWAY_KIND = 0x08     # cookie kind of the host's external-port flows (pipeline.py)


def is_gateway_egress(lab, i, cookie):
    """The EXT_OUT flow that sets the external gateway's MAC: the one flow a
    restarted controller cannot compile until the gateway answers its ARP."""
    if cookie >> 56 != EXT_GATEWAY_KIND:
        return False
    return any(f"cookie={cookie:#x}," in line and "table=44" in line
               for line in lab.ovs_ofctl(i, "dump-flows").splitlines())


def warm_restart(lab, ctl, settle=1.0):
    """kill -9 and start the controller; wait until every switch reconnected
    and had its first reconcile, then ``settle`` seconds more.  Returns
    (timings, flow-mods counted from the log, per-dpid list of (added, removed))."""
    t_kill = time.monotonic()
    ctl.kill9()
    mark = log_mark(ctl)
    ctl.start()
    t_healthy = time.monotonic()
    dpids = {lab.dpid(i) for i in lab.hosts_range()}
    assert wait_until(lambda: dpids <= {m[0] for m in RECONCILED.findall(log_since(ctl, mark))},
                      timeout=30, interval=0.01), log_since(ctl, mark)[-3000:]
    t_reconciled = time.monotonic()
    time.sleep(settle)
    per_dpid = {}
    for dpid, _ms, added, removed, _kept in RECONCILED.findall(log_since(ctl, mark)):
        per_dpid.setdefault(dpid, []).append((int(added), int(removed)))
    flow_mods = sum(a + r for runs in per_dpid.values() for a, r in runs)
    return ({"kill": t_kill, "healthy": t_healthy, "reconciled": t_reconciled},
            flow_mods, per_dpid)


def test_controller_kill9_during_ping_flood_loses_nothing_and_keeps_the_flows(
        lab, ctl, api, tenant, make_container):
    t = tenant("vlan", "kf")
    x = make_container("kfx", 1, t)
    y = make_container("kfy", 2, t)
    a = api(lab.api_url)
    # more ports, so "no flow-mod" is about a real table: REST-only ports on h3
    # (their veths never appear; h1 and h2 still hold flows towards them)
    for n in range(20):
        status, body = a.post(f"/v1/tenants/{t}/ports", {"host": "h3", "port": f"kfg{n}"})
        assert status == 201, body
    assert wait_until(lambda: ping(lab, x["ns"], y["ip"], count=1).received == 1, timeout=15)
    ports = len(a.get(f"/v1/tenants/{t}/ports")[1])
    before = {i: settled_flows(lab, i) for i in lab.hosts_range()}

    flood = ChunkedPing(lab, x["ns"], y["ip"])
    flood.start()
    try:
        time.sleep(0.5)
        times, flow_mods, per_dpid = warm_restart(lab, ctl, settle=0.5)
    finally:
        flood.stop()
    # a flow (re)installed by the restart is younger than the kill
    since_kill = time.monotonic() - times["kill"]
    after = {i: flows(lab, i) for i in lab.hosts_range()}
    changed = {i: sorted((set(before[i]) ^ set(after[i])) |
                         {c for c, d in after[i].items() if d < since_kill - 0.2})
               for i in lab.hosts_range()}
    gateway = {i: [c for c in changed[i] if is_gateway_egress(lab, i, c) or
                   (c in before[i] and c >> 56 == EXT_GATEWAY_KIND and c not in after[i])]
               for i in lab.hosts_range()}
    other = {i: [hex(c) for c in changed[i] if c not in gateway[i]] for i in lab.hosts_range()}
    lost = flood.sent - flood.received
    gaps = [b[0] - a[1] for a, b in zip(flood.spans, flood.spans[1:])]
    print(f"\n(a) kill -9 during a ping flood: {flood.sent} echoes in {len(flood.runs)} runs of "
          f"ping -c 100 -i 0.01 over {flood.spans[-1][1] - flood.spans[0][0]:.2f}s (at most "
          f"{max(gaps, default=0) * 1000:.0f} ms between runs), {lost} lost; controller healthy "
          f"{times['healthy'] - times['kill']:.2f}s after the kill, every switch reconciled "
          f"{times['reconciled'] - times['kill']:.2f}s after it; tenant with {ports} ports, "
          f"flows per host { {i: len(f) for i, f in after.items()} }; flow-mods sent by the "
          f"restarted controller: {flow_mods} (added/removed per reconcile {per_dpid}); flows "
          f"changed on the switches: external-gateway egress "
          f"{ {i: len(g) for i, g in gateway.items()} }, others {other}")
    assert flood.spans[0][0] < times["kill"] and flood.spans[-1][1] > times["reconciled"]
    assert lost == 0, [r.output for r in flood.runs if r.received < r.sent]
    assert not any(other.values()), other


def test_warm_restart_sends_no_flow_mod_at_all(lab, ctl):
    """On an idle lab: kill -9, start, count the flow-mods of every reconcile
    of the restarted controller within 1 s after the last switch's first."""
    lab.wait_connected(timeout=30, api_url=lab.api_url)
    _, flow_mods, per_dpid = warm_restart(lab, ctl, settle=1.0)
    print(f"\n(a2) warm restart: {flow_mods} flow-mods (added/removed per reconcile {per_dpid})")
    assert flow_mods == 0, per_dpid


def test_vswitchd_restart_wipes_flows_and_the_controller_reinstalls_them(
        lab, ctl, api, tenant, make_container):
    pairs = {}
    for network in ("vlan", "vxlan"):
        t = tenant(network, f"ov{network[:2]}")
        pairs[network] = (make_container(f"o{network[:2]}1", 1, t),
                          make_container(f"o{network[:2]}2", 2, t))
    for src, dst in pairs.values():
        assert wait_until(lambda: ping(lab, src["ns"], dst["ip"], count=1).received == 1,
                          timeout=15)
    dpid = lab.dpid(2)
    flows_before = set(settled_flows(lab, 2))
    streams = {n: PingStream(lab, src["ns"], dst["ip"], interval=0.01)
               for n, (src, dst) in pairs.items()}
    try:
        for s in streams.values():
            s.__enter__()
        time.sleep(0.3)
        mark = log_mark(ctl)
        t_stop = time.time()
        old_pid, new_pid = restart_vswitchd(lab, 2)
        t_up = time.time()
        _, t_seen = wait_log(ctl, mark, rf"switch connected: dpid {dpid}")
        assert t_seen, log_since(ctl, mark)[-3000:]
        rec, t_rec = wait_log(ctl, mark, rf"dpid {dpid} reconciled in \d+ ms: [1-9]\d* added")
        assert t_rec, log_since(ctl, mark)[-3000:]
        firsts = {}
        for n, s in streams.items():
            assert wait_until(lambda: s.first_reply_after(t_seen), timeout=20), \
                f"{n}: no echo reply after the switch reconnected\n" + "\n".join(s.lines[-20:])
            firsts[n] = s.first_reply_after(t_seen)
    finally:
        for s in streams.values():
            s.stop()
    t_ovs = ovs_connected_at(lab, 2, t_stop)
    added = re.search(rf"dpid {dpid} reconciled in (\d+) ms: (\d+) added", log_since(ctl, mark))
    # the external-gateway egress flow waits for the gateway's ARP reply
    restored = wait_until(lambda: set(flows(lab, 2)) == flows_before, timeout=15, interval=0.05)
    t_all = time.time()
    now = flows(lab, 2)
    flows_now = set(now)
    # every flow on h2 is younger than the restart: the old ones were wiped,
    # these were installed by the controller after the reconnect
    older = [hex(c) for c, d in now.items() if d > time.time() - t_stop]
    print(f"\n(b) ovs-vswitchd of h2 restarted (pid {old_pid} -> {new_pid}): up "
          f"{t_up - t_stop:.2f}s after the stop; OVS says connected "
          f"{(t_ovs - t_stop) if t_ovs else float('nan'):.2f}s, the controller logged "
          f"'switch connected' {t_seen - t_stop:.2f}s and reinstalled {added.group(2)} flows in "
          f"{added.group(1)} ms ({t_rec - t_stop:.2f}s) after the stop; all {len(flows_before)} "
          f"flows back {t_all - t_stop:.2f}s after the stop")
    for n, s in streams.items():
        stamps = [ts for ts, _ in s.replies if ts >= t_stop - 1]
        gap = max((b - a for a, b in zip(stamps, stamps[1:])), default=float("nan"))
        print(f"    {n}: first echo reply {(firsts[n] - t_seen) * 1000:.0f} ms after "
              f"'switch connected' (controller log), "
              f"{(firsts[n] - t_ovs) * 1000 if t_ovs else float('nan'):.0f} ms after OVS's "
              f"'connected'; longest gap between replies {gap * 1000:.0f} ms; "
              f"{s.sent} sent, {s.received} received")
    assert not older, older
    assert restored, sorted(hex(c) for c in flows_before ^ flows_now)


def test_controller_down_keeps_traffic_and_a_port_attached_right_after_restart_works(
        lab, ctl, api, tenant, make_container):
    t = tenant("vlan", "cd")
    x = make_container("cdx", 1, t)
    y = make_container("cdy", 2, t)
    assert wait_until(lambda: ping(lab, x["ns"], y["ip"], count=1).received == 1, timeout=15)
    ctl.kill9()
    down = ping(lab, x["ns"], y["ip"], count=50, interval=0.1)        # 5 s
    t0 = time.monotonic()
    ctl.start()
    t_healthy = time.monotonic()
    z = make_container("cdz", 3, t)                 # REST + veth right after the restart
    t_attached = time.monotonic()
    assert wait_until(lambda: ping(lab, z["ns"], x["ip"], count=1, wait=0.5).received == 1,
                      timeout=30, interval=0.05)
    t_works = time.monotonic()
    back = ping(lab, x["ns"], z["ip"], count=3)
    print(f"\n(c) controller down: {down.received}/{down.sent} echoes over 5 s; after the restart "
          f"(healthy in {t_healthy - t0:.2f}s) a new port was attached in "
          f"{t_attached - t_healthy:.2f}s and answered pings {t_works - t_attached:.2f}s later")
    assert down.sent == 50 and down.received == 50, down.output
    assert back.received == 3, back.output
