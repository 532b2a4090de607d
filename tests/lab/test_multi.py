"""Three controllers on a 3-member etcd cluster (all on loopback), two hosts
connected to all three (one relay socket per host and controller).

(a) a port attached through a follower works: the leader installs the flows.
(b) kill -9 of the leader during a ping flood: a new leader (the takeover
    time is printed, not asserted), nothing lost from the model, pings lost
    only within the takeover window (with fail-mode secure the flows stay, so
    normally none).
(c) concurrent attaches through all three REST APIs never collide.
(d) a frozen ex-leader (SIGSTOP past its lease) that comes back cannot change
    the flows: the switches demoted it when the new leader claimed MASTER with
    a larger generation id; it steps down to slave.
"""
import os
import secrets
import shutil
import signal
import threading
import time
import warnings

import pytest

from vpclab import lablib  # noqa: E402
from vpclab.labfaults import PingStream  # noqa: E402
from vpclab.labmulti import EtcdCluster, ExtraRelays, controllers, leader_of  # noqa: E402

TTL = 1         # asked; etcd (election timeout 1 s) grants 2

if shutil.which("etcd") is None:
    pytest.skip("etcd not installed (scripts/setup)", allow_module_level=True)


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    work = tmp_path_factory.mktemp("multi")
    cluster = EtcdCluster(work / "etcd", members=3)
    ctls = controllers(work, cluster, n=3, lease_ttl=TTL)
    lab = lablib.Lab(name=f"vt{secrets.token_hex(2)}", hosts=3, of_port=ctls[0].of_port)
    relays = ExtraRelays(lab, [c.of_port for c in ctls[1:]])
    try:
        cluster.start()
        for c in ctls:
            c.start()
        leader_of(ctls)
        lab.up()
        relays.start()
        for i in lab.hosts_range():
            lab.join(i, ctls[1].url, extra=relays.join_args(i))
        for c in ctls:
            lab.wait_connected(timeout=30, api_url=c.url)
        lab.ctls, lab.cluster = ctls, cluster
        yield lab
    finally:
        for c in ctls:
            if c.proc is not None and c.alive:
                try:
                    os.kill(c.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
            c.stop()
        relays.stop()
        problems = lab.down()
        cluster.stop()
        if problems:
            warnings.warn(f"lab {lab.name} teardown: {problems}")


def _follower(lab):
    leader = leader_of(lab.ctls)
    return leader, next(c for c in lab.ctls if c is not leader and c.alive)


def _tenant(ctl, network="vxlan"):
    name = f"m{secrets.token_hex(2)}"
    assert ctl.api.post("/v1/tenants", {"name": name, "network": network})[0] == 201
    assert ctl.api.post(f"/v1/tenants/{name}/subnets", {"cidr": "10.9.0.0/24"})[0] == 201
    return name


def _roles(lab, i):
    """{relay socket file name: role} of host i's Controller records."""
    out = lab.ovs_vsctl(i, "--format=csv", "--no-headings", "--columns=target,role",
                        "list", "Controller")
    roles = {}
    for line in out.splitlines():
        target, _, role = line.rpartition(",")
        roles[os.path.basename(target.strip('"'))] = role.strip('"')
    return roles


def _flows(lab, i):
    out = lab.ovs_ofctl(i, "dump-flows", "--no-stats", "-O", "OpenFlow13")
    return sorted(line.strip() for line in out.splitlines() if "cookie=" in line)


@pytest.fixture(scope="module")
def pair(multi):
    """Containers on h1 and h2 (and a third on h3), attached through a follower."""
    _, follower = _follower(multi)
    t = _tenant(follower)
    multi.add_container("ma", host=1)
    multi.add_container("mb", host=2)
    multi.add_container("mx", host=3)
    a = multi.attach(t, "ma", 1, follower.url)
    b = multi.attach(t, "mb", 2, follower.url)
    multi.third = multi.attach(t, "mx", 3, follower.url)
    return t, a, b


def test_attach_through_follower_works(multi, pair):
    t, a, b = pair
    leader, follower = _follower(multi)
    assert follower.api.get("/v1/health")[1]["role"] == "slave"
    assert multi.ping(multi.container_ns("ma"), b["ip"], count=3)
    assert multi.ping(multi.container_ns("mb"), multi.third["ip"], count=3)
    # the flows came from the leader: no follower ever reconciled
    assert "reconciled in" in leader.log.read_text()
    for c in multi.ctls:
        if c is not leader:
            assert "reconciled in" not in c.log.read_text(), c.tail(20)
    # every controller sees the same ports
    for c in multi.ctls:
        ids = sorted(p["id"] for p in c.api.get(f"/v1/tenants/{t}/ports")[1])
        assert ids == sorted([a["id"], b["id"], multi.third["id"]])


def _restart(c):
    if not c.alive:
        c.start()


def test_kill_leader_during_ping_flood(multi, pair):
    t, a, b = pair
    leader = leader_of(multi.ctls)
    before = {k: leader.api.get("/v1/health")[1][k] for k in ("hosts", "tenants", "ports")}
    gen = leader.api.get("/v1/health")[1]["generation"]
    with PingStream(multi, multi.container_ns("ma"), b["ip"], interval=0.01) as ps:
        time.sleep(1)
        t0 = time.monotonic()
        leader.kill9()
        new = leader_of(multi.ctls, timeout=30, exclude=(leader,))
        takeover = time.monotonic() - t0
        time.sleep(2)
    health = new.api.get("/v1/health")[1]
    lost = ps.sent - ps.received
    print(f"\n[multi] takeover {takeover:.2f}s (TTL {TTL}s), generation {gen} -> "
          f"{health['generation']}, pings sent {ps.sent} lost {lost} "
          f"(= {lost * 0.01:.2f}s of traffic)")
    assert health["generation"] > gen
    assert {k: health[k] for k in before} == before          # 0 state lost
    assert lost * 0.01 <= takeover + 0.5
    # the new leader reconciles: a new port through it works
    multi.add_container("mc", host=2)
    c = multi.attach(t, "mc", 2, new.url)
    assert multi.ping(multi.container_ns("ma"), c["ip"], count=3)
    _restart(leader)
    multi.wait_connected(timeout=30, api_url=leader.url)
    assert leader.api.get("/v1/health")[1]["role"] == "slave"


def test_concurrent_attaches_through_three_apis(multi, pair):
    t = _tenant(multi.ctls[0])
    for c in multi.ctls:
        _restart(c)
    results, lock = [], threading.Lock()

    def attach(c, i):
        r = c.api.post(f"/v1/tenants/{t}/ports", {"host": multi.host_name(1 + i % 2),
                                                  "port": f"cc{i}"})
        with lock:
            results.append(r)

    threads = [threading.Thread(target=attach, args=(multi.ctls[i % 3], i)) for i in range(30)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert [s for s, _ in results] == [201] * 30, results
    ports = [body for _, body in results]
    assert len({p["ip"] for p in ports}) == 30
    assert len({p["mac"] for p in ports}) == 30
    time.sleep(1.5)
    for c in multi.ctls:
        assert len(c.api.get(f"/v1/tenants/{t}/ports")[1]) == 30
    for p in ports:
        assert multi.ctls[0].api.delete(f"/v1/tenants/{t}/ports/{p['id']}")[0] == 204


def test_stale_ex_leader_cannot_overwrite_flows(multi, pair):
    t, a, b = pair
    for c in multi.ctls:
        _restart(c)
    old = leader_of(multi.ctls)
    os.kill(old.pid, signal.SIGSTOP)
    try:
        new = leader_of(multi.ctls, timeout=30, exclude=(old,))
        # change the model through the new leader while the old one sleeps
        multi.add_container("md", host=1)
        d = multi.attach(t, "md", 1, new.url)
        assert multi.ping(multi.container_ns("md"), b["ip"], count=3)
        time.sleep(1)
        flows = {i: _flows(multi, i) for i in multi.hosts_range()}
    finally:
        os.kill(old.pid, signal.SIGCONT)
    # the ex-leader wakes up believing it leads, with a stale model
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        h = old.api.get("/v1/health")[1]
        if h["role"] == "slave":
            break
        time.sleep(0.1)
    assert h["role"] == "slave", h
    time.sleep(2)
    for i in multi.hosts_range():
        assert _flows(multi, i) == flows[i], f"h{i} flows changed after the ex-leader woke"
    # and each switch holds exactly one master connection: the new leader's
    k = multi.ctls.index(new)
    sock = "of.sock" if k == 0 else f"of{k}.sock"
    deadline = time.monotonic() + 10
    while True:
        roles = {i: _roles(multi, i) for i in multi.hosts_range()}
        if all(r.get(sock) == "master" and list(r.values()).count("master") == 1
               for r in roles.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for i, r in roles.items():
        assert r.get(sock) == "master" and list(r.values()).count("master") == 1, (i, r)
    assert multi.ping(multi.container_ns("md"), b["ip"], count=3)
    print(f"\n[multi] ex-leader {old.pid} woke up as {h['role']}; flows unchanged; "
          f"leader {new.api.get('/v1/health')[1]['leader']}")
    multi.detach(t, d["id"], 1, new.url, check=False)


def test_losing_an_etcd_member_changes_nothing(multi, pair):
    """The etcd member every controller talks to first goes away: requests
    fail over to the others, the leader keeps its lease, followers still see
    writes (their watch stream died with the member: the poll takes over)."""
    t, a, b = pair
    for c in multi.ctls:
        _restart(c)
    leader = leader_of(multi.ctls)
    gen = leader.api.get("/v1/health")[1]["generation"]
    first = multi.cluster.members[0]["proc"]
    first.terminate()
    first.wait(10)
    follower = next(c for c in multi.ctls if c is not leader)
    status, port = follower.api.post(f"/v1/tenants/{t}/ports", {"host": multi.host_name(1),
                                                                "port": "etcdloss"})
    assert status == 201, port
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        seen = [any(p["id"] == port["id"] for p in c.api.get(f"/v1/tenants/{t}/ports")[1])
                for c in multi.ctls]
        if all(seen):
            break
        time.sleep(0.1)
    assert all(seen), seen
    time.sleep(2 * TTL)
    h = leader.api.get("/v1/health")[1]
    assert h["role"] == "master" and h["generation"] == gen, h
    assert leader.api.delete(f"/v1/tenants/{t}/ports/{port['id']}")[0] == 204
