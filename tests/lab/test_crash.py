"""Crash-safe state, with a real controller process and no lab.

* A burst of REST writes from 8 threads (tenants, subnets, ports, some port
  deletes) while the controller is `kill -9`ed at a random moment (after a
  random number of acknowledged writes, 150-600), three rounds.  After each
  restart every write that got a 2xx is there (and every
  acknowledged delete is gone), the only extra objects are requests that were
  in flight at the kill, nothing is half-applied (no subnet without its tenant,
  no port without its subnet, IPs unique per tenant and inside their subnet,
  MACs, tenant ids and segments unique), and the journal is replayed on top of
  a snapshot: the controller runs tests/lab/compacting_app.py, the real app
  with a 16 KiB compaction threshold, so the burst compacts many times and a
  kill can land in the middle of a compaction.
* 50 parallel port attaches through the live REST API hand out 50 distinct IPs
  and MACs, and keep them over a restart.

The controller needs no switches here; the module still lives with the lab
tests because it runs the real osken-manager (conftest's controller_factory).
"""
import random
import re
import threading
import time

import msgpack
import pytest

from vpclab.labctl import Api

COMPACT_BYTES = 16 * 1024
THREADS = 8
ROUNDS = 3
PORTS_PER_TENANT = 12


@pytest.fixture
def crash_ctl(controller_factory):
    ctl = controller_factory("crash", start=False,
                             extra_env={"VPC_TEST_COMPACT_BYTES": str(COMPACT_BYTES)})
    ctl.app = "tests/lab/compacting_app.py"
    ctl.start()
    try:
        yield ctl
    finally:
        ctl.stop()


class Ledger:
    """What the clients were told: acknowledged objects, acknowledged deletes,
    and the one request per thread whose outcome is unknown (in flight at the
    kill)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tenants = {}       # name -> view
        self.subnets = {}       # (tenant, cidr) -> view
        self.ports = {}         # (tenant, port name) -> view
        # ("tenant", name) / ("subnet", (t, cidr)) / ("port" | "delete", (t, port name))
        self.inflight = set()
        self.acked = 0
        self.refused = []       # unexpected 4xx/5xx: (method, path, status, body)


def writer(api, ledger, prefix, stop):
    """Tenant, subnet, then ports on h1/h2; every 4th port deletes the one
    before it.  A new tenant every PORTS_PER_TENANT ports.  Ends at the first
    transport error (the controller died): that request's outcome is unknown."""
    m = 0
    while not stop.is_set():
        t = f"{prefix}t{m}"
        cidr = "10.0.0.0/24"
        steps = [("tenant", t, "POST", "/v1/tenants", {"name": t, "network": "vxlan"}),
                 ("subnet", (t, cidr), "POST", f"/v1/tenants/{t}/subnets", {"cidr": cidr})]
        steps += [("port", (t, f"{t}p{n}"), "POST", f"/v1/tenants/{t}/ports",
                   {"host": f"h{1 + n % 2}", "port": f"{t}p{n}"}) for n in range(PORTS_PER_TENANT)]
        for i, (kind, key, method, path, body) in enumerate(steps):
            if stop.is_set():
                return
            if not _do(api, ledger, kind, key, method, path, body):
                return
            n = i - 2
            if kind == "port" and n % 4 == 3:
                prev = (t, f"{t}p{n - 1}")
                pid = ledger.ports[prev]["id"]
                if not _do(api, ledger, "delete", prev, "DELETE", f"/v1/tenants/{t}/ports/{pid}",
                           None):
                    return
        m += 1


def _do(api, ledger, kind, key, method, path, body):
    with ledger.lock:
        ledger.inflight.add((kind, key))
    try:
        status, data = api.request(method, path, body)
    except OSError:
        return False            # stays in flight: unknown outcome
    with ledger.lock:
        ledger.inflight.discard((kind, key))
        if status >= 300:
            ledger.refused.append((method, path, status, data))
            return False
        ledger.acked += 1
        if kind == "tenant":
            ledger.tenants[key] = data
        elif kind == "subnet":
            ledger.subnets[key] = data
        elif kind == "port":
            ledger.ports[key] = data
        elif kind == "delete":
            del ledger.ports[key]
    return True


def read_state(api):
    """Everything the controller holds, through REST."""
    status, tenants = api.get("/v1/tenants")
    assert status == 200, tenants
    subnets, ports = {}, {}
    for t in tenants:
        for s in api.get(f"/v1/tenants/{t['name']}/subnets")[1]:
            subnets[(t["name"], s["cidr"])] = s
        for p in api.get(f"/v1/tenants/{t['name']}/ports")[1]:
            ports[(t["name"], p["port"])] = p
    return {t["name"]: t for t in tenants}, subnets, ports


def check_consistent(tenants, subnets, ports):
    """Nothing half-applied, nothing handed out twice."""
    import ipaddress
    for (t, cidr), s in subnets.items():
        assert t in tenants, f"subnet {cidr} of missing tenant {t}"
    for (t, name), p in ports.items():
        assert t in tenants, f"port {name} of missing tenant {t}"
        assert (t, p["subnet"]) in subnets, f"port {name} of missing subnet {t}/{p['subnet']}"
        assert ipaddress.ip_address(p["ip"]) in ipaddress.ip_network(p["subnet"])
    for t in tenants.values():
        assert t["ports"] == sum(1 for (tn, _) in ports if tn == t["name"]), t
        assert sorted(t["subnets"]) == sorted(c for (tn, c) in subnets if tn == t["name"]), t
    by_tenant_ip = [(t, p["ip"]) for (t, _), p in ports.items()]
    assert len(by_tenant_ip) == len(set(by_tenant_ip)), "an IP handed out twice in a tenant"
    macs = [p["mac"] for p in ports.values()]
    assert len(macs) == len(set(macs)), "a MAC handed out twice"
    ids = [p["id"] for p in ports.values()]
    assert len(ids) == len(set(ids))
    tids = [t["id"] for t in tenants.values()]
    segs = [(t["network"], t["segment"]) for t in tenants.values()]
    assert len(tids) == len(set(tids)) and len(segs) == len(set(segs))


def check_ledger(ledger, tenants, subnets, ports):
    """Every acknowledged write is there, as acknowledged; the only extras
    are requests in flight at the kill."""
    for name, view in ledger.tenants.items():
        assert name in tenants, f"acknowledged tenant {name} lost"
        got = tenants[name]
        assert (got["network"], got["segment"], got["id"]) == \
            (view["network"], view["segment"], view["id"]), name
    for key in ledger.subnets:
        assert key in subnets, f"acknowledged subnet {key} lost"
    deleting = {k for kind, k in ledger.inflight if kind == "delete"}
    for key, view in ledger.ports.items():
        if key in deleting and key not in ports:
            continue            # its delete was in flight and made it
        assert key in ports, f"acknowledged port {key} lost"
        got = ports[key]
        assert {k: got[k] for k in ("id", "ip", "mac", "host")} == \
            {k: view[k] for k in ("id", "ip", "mac", "host")}, key
    extra_tenants = set(tenants) - set(ledger.tenants)
    assert extra_tenants <= {k for kind, k in ledger.inflight if kind == "tenant"}, extra_tenants
    extra_subnets = set(subnets) - set(ledger.subnets)
    assert extra_subnets <= {k for kind, k in ledger.inflight if kind == "subnet"}, extra_subnets
    extra_ports = set(ports) - set(ledger.ports)
    unknown = {k for kind, k in ledger.inflight if kind in ("port", "delete")}
    assert extra_ports <= unknown, f"ports nobody was told about: {extra_ports - unknown}"
    return len(extra_tenants) + len(extra_subnets) + len(extra_ports)


def adopt_inflight(ledger, tenants, subnets, ports):
    """After a check, what survived of the in-flight requests becomes part of
    the expected state for the next round (and what did not, is forgotten)."""
    for kind, key in ledger.inflight:
        if kind == "tenant" and key in tenants:
            ledger.tenants[key] = tenants[key]
        elif kind == "subnet" and key in subnets:
            ledger.subnets[key] = subnets[key]
        elif kind == "port" and key in ports:
            ledger.ports[key] = ports[key]
        elif kind == "delete":
            if key in ports:
                ledger.ports[key] = ports[key]
            else:
                ledger.ports.pop(key, None)
    ledger.inflight.clear()


def _log_since(ctl, mark):
    return ctl.log.read_text(errors="replace")[mark:]


def test_kill9_during_a_write_burst_loses_no_acknowledged_write(crash_ctl):
    ctl = crash_ctl
    api = Api(ctl.url)
    for i in (1, 2):
        status, body = api.post("/v1/hosts", {"name": f"h{i}", "dpid": 0xc0 + i,
                                              "tunnel_ip": f"198.18.0.{10 + i}"})
        assert status == 201, body
    ledger = Ledger()
    rng = random.Random()
    for rnd in range(ROUNDS):
        stop = threading.Event()
        before = ledger.acked
        threads = [threading.Thread(target=writer, args=(Api(ctl.url), ledger, f"r{rnd}w{k}", stop),
                                    daemon=True) for k in range(THREADS)]
        mark = ctl.log.stat().st_size
        start = time.monotonic()
        for th in threads:
            th.start()
        # kill at a random point of the burst: after a random number of
        # acknowledged writes (>= 150: at least one compaction, whatever the
        # machine's speed), plus a random fraction of a write
        target = before + rng.randint(150, 600)
        while ledger.acked < target and all(th.is_alive() for th in threads):
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.005))
        ctl.kill9()
        killed_at = time.monotonic()
        stop.set()
        for th in threads:
            th.join(15)
        assert not any(th.is_alive() for th in threads)
        assert not ledger.refused, ledger.refused[:5]
        acked = ledger.acked - before
        compactions = len(re.findall(r"store compacted at seq", _log_since(ctl, mark)))
        files = {p.name: p.stat().st_size for p in ctl.state_dir.iterdir()}
        inflight = len(ledger.inflight)

        mark = ctl.log.stat().st_size
        t0 = time.monotonic()
        ctl.start()
        restart_s = time.monotonic() - t0
        log = _log_since(ctl, mark)
        replayed = re.search(r"\((\d+) journal records replayed\)", log)
        torn = re.search(r"torn or corrupt tail of (\d+) bytes", log)
        tenants, subnets, ports = read_state(api)
        check_consistent(tenants, subnets, ports)
        extras = check_ledger(ledger, tenants, subnets, ports)
        print(f"\nround {rnd}: kill -9 after {killed_at - start:.2f}s; {acked} writes acknowledged "
              f"({acked / (killed_at - start):.0f}/s, {THREADS} threads), {inflight} in flight, "
              f"{extras} of them applied; {compactions} compactions before the kill; state dir "
              f"{files}; restart {restart_s:.2f}s, "
              f"{replayed.group(1) if replayed else '?'} journal records replayed"
              f"{f', torn tail of {torn.group(1)} bytes cut' if torn else ''}; now "
              f"{len(tenants)} tenants, {len(subnets)} subnets, {len(ports)} ports")
        assert replayed, log[-2000:]
        assert compactions >= 1, "the burst never compacted: raise it or lower COMPACT_BYTES"
        assert "state.snapshot" in files
        adopt_inflight(ledger, tenants, subnets, ports)

    # the journal alone and a snapshot + journal give the same state as the
    # live controller: a clean restart, then the store read offline
    before = read_state(api)
    ctl.restart()
    assert read_state(api) == before
    ctl.stop()
    snap = msgpack.unpackb((ctl.state_dir / "state.snapshot").read_bytes(), raw=False,
                           strict_map_key=False)
    journal = (ctl.state_dir / "state.journal").stat().st_size
    print(f"\nfinal: snapshot at seq {snap['seq']} with {len(snap['collections'].get('ports', {}))}"
          f" ports, journal {journal} bytes (< {COMPACT_BYTES} + one record)")
    assert journal < COMPACT_BYTES + 4096
    from controller.model.state import State
    from controller.store.msgpack_store import MsgpackStore
    store = MsgpackStore(ctl.state_dir)
    try:
        offline = State(store.load())
    finally:
        store.close()
    assert {(p.tenant, p.port) for p in offline.ports.values()} == set(before[2])
    assert {p.mac for p in offline.ports.values()} == {p["mac"] for p in before[2].values()}


def test_fifty_parallel_attaches_get_distinct_addresses(controller_factory):
    ctl = controller_factory("attach50")
    try:
        api = Api(ctl.url)
        status, doc = api.get("/v1/openapi.json")          # the live app serves its document
        assert status == 200 and doc["openapi"].startswith("3.1") and "/v1/hosts" in doc["paths"]
        assert api.post("/v1/hosts", {"name": "h1", "dpid": 0xd1,
                                      "tunnel_ip": "198.18.0.11"})[0] == 201
        for t in ("par", "par2"):
            assert api.post("/v1/tenants", {"name": t, "network": "vlan"})[0] == 201
            assert api.post(f"/v1/tenants/{t}/subnets", {"cidr": "10.0.0.0/24"})[0] == 201
        barrier = threading.Barrier(50)
        results = [None] * 50

        def attach(i):
            tenant = "par" if i < 40 else "par2"      # MACs are unique across tenants too
            barrier.wait()
            results[i] = Api(ctl.url, timeout=30).post(f"/v1/tenants/{tenant}/ports",
                                                       {"host": "h1", "port": f"v{i}"})

        t0 = time.monotonic()
        threads = [threading.Thread(target=attach, args=(i,)) for i in range(50)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        took = time.monotonic() - t0
        assert all(r is not None and r[0] == 201 for r in results), \
            [r for r in results if r is None or r[0] != 201][:3]
        ports = [r[1] for r in results]
        ips = [(p["tenant"], p["ip"]) for p in ports]
        macs = [p["mac"] for p in ports]
        print(f"\n50 parallel attaches in {took:.2f}s: {len(set(ips))} distinct tenant IPs, "
              f"{len(set(macs))} distinct MACs")
        assert len(set(ips)) == 50 and len(set(macs)) == 50
        ctl.restart()
        again = {p["id"]: (p["ip"], p["mac"]) for t in ("par", "par2")
                 for p in api.get(f"/v1/tenants/{t}/ports")[1]}
        assert again == {p["id"]: (p["ip"], p["mac"]) for p in ports}
    finally:
        ctl.stop()
