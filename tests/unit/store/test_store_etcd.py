"""The etcd store with a real etcd on loopback: two services, one model.

Skipped when etcd (scripts/setup installs etcd-server) or etcd3gw is missing.
"""
import shutil
import threading
import time

import pytest

from controller.service.errors import ApiError
from controller.model.state import State
from controller.service.vpc import VpcService
from controller.store.base import StoreConflict

pytest.importorskip("etcd3gw")
if shutil.which("etcd") is None:
    pytest.skip("etcd not installed (scripts/setup)", allow_module_level=True)

from vpclab.labmulti import EtcdCluster  # noqa: E402

from controller.store.etcd_store import EtcdStore, diff  # noqa: E402


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = EtcdCluster(tmp_path_factory.mktemp("etcd"), members=1)
    c.start()
    yield c
    c.stop()


_n = [0]


def _fresh(cluster):
    """A store on an empty model (each test wipes the prefix)."""
    s = EtcdStore(cluster.endpoints.split(","))
    s.etcd.post("kv/deleterange", {"key": "L3ZwYy8=", "range_end": "L3ZwYzA="})  # /vpc/ .. /vpc0
    return s


def service(cluster, wipe=False):
    store = _fresh(cluster) if wipe else EtcdStore(cluster.endpoints.split(","))
    changes = []
    svc = VpcService(State(store.load()), store, on_change=changes.append)
    svc.changes = changes
    return svc


def world(svc):
    svc.create_host({"name": "h1", "dpid": "1", "tunnel_ip": "192.0.2.1"})
    svc.create_tenant({"name": "t", "network": "vxlan"})
    svc.create_subnet("t", {"cidr": "10.0.0.0/24"})


def test_diff():
    assert diff({"a": {"x": 1, "y": 2}}, {"a": {"x": 1, "y": 3, "z": 4}, "b": {}}) == \
        [["put", "a", "y", 3], ["put", "a", "z", 4]]
    assert diff({"a": {"x": 1}}, {}) == [["del", "a", "x"]]


def test_commit_on_stale_revision_conflicts(cluster):
    a = service(cluster, wipe=True)
    b = service(cluster)
    a.store.commit([("put", "gateway_macs", "h", "aa:bb:cc:dd:ee:ff")])
    with pytest.raises(StoreConflict):
        b.store.commit([("put", "gateway_macs", "h", "00:00:00:00:00:01")])
    assert b.store.refresh() == [["put", "gateway_macs", "h", "aa:bb:cc:dd:ee:ff"]]
    b.store.commit([("put", "gateway_macs", "h", "00:00:00:00:00:01")])
    assert EtcdStore(cluster.endpoints.split(",")).load()["gateway_macs"]["h"] == \
        "00:00:00:00:00:01"


def test_write_through_a_is_visible_in_b(cluster):
    a = service(cluster, wipe=True)
    b = service(cluster)
    hits = threading.Event()
    b.store.watch(lambda: b.refresh() and hits.set())
    world(a)
    assert hits.wait(5)
    deadline = time.monotonic() + 5
    while "t/10.0.0.0/24" not in b.state.subnets and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b.get_tenant("t")["segment"] == a.get_tenant("t")["segment"]
    assert b.get_subnet("t", "10.0.0.0_24")["gateway"] == "10.0.0.1"
    assert any("h1" in c for c in b.changes)     # b recompiles the hosts it touched
    b.store.close()


def test_stale_service_revalidates_and_refuses_a_duplicate(cluster):
    a = service(cluster, wipe=True)
    world(a)
    b = service(cluster)            # b has seen the world ...
    a.create_tenant({"name": "u", "network": "vxlan", "segment": 777})
    # ... but not tenant u: its create is retried after a refresh and refused
    with pytest.raises(ApiError) as e:
        b.create_tenant({"name": "u2", "network": "vxlan", "segment": 777})
    assert e.value.status == 409
    assert b.get_tenant("u")["segment"] == 777


def test_concurrent_creates_through_two_services_never_collide(cluster):
    a = service(cluster, wipe=True)
    world(a)
    b = service(cluster)
    ports, errors = [], []

    def attach(svc, i):
        try:
            ports.append(svc.create_port("t", {"host": "h1", "port": f"p{i}"}))
        except Exception as exc:   # pragma: no cover - reported below
            errors.append(exc)

    def tenant(svc, i):
        try:
            ports.append(("seg", svc.create_tenant({"name": f"x{i}",
                                                    "network": "vlan"})["segment"]))
        except Exception as exc:   # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=attach, args=((a, b)[i % 2], i)) for i in range(20)]
    threads += [threading.Thread(target=tenant, args=((a, b)[i % 2], i)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    port_list = [p for p in ports if isinstance(p, dict)]
    segs = [p[1] for p in ports if isinstance(p, tuple)]
    assert len(port_list) == 20 and len(segs) == 10
    assert len({p["ip"] for p in port_list}) == 20
    assert len({p["mac"] for p in port_list}) == 20
    assert len(set(segs)) == 10
    stored = EtcdStore(cluster.endpoints.split(",")).load()
    assert len(stored["ports"]) == 20
    assert a.store.stats["conflicts"] + b.store.stats["conflicts"] > 0


# --- leader election ------------------------------------------------------------------

def test_one_leader_generation_grows_and_takeover_after_ttl(cluster):
    from controller.ha.election import GEN_KEY, LEADER_KEY, Election
    from controller.store.etcd_store import Etcd
    etcd = Etcd(cluster.endpoints.split(","))
    etcd.post("kv/deleterange", {"key": "L3ZwYy8=", "range_end": "L3ZwYzA="})
    seen = []
    a = Election(etcd, "a", ttl=1, on_change=lambda x: seen.append(("a", x)))
    b = Election(etcd, "b", ttl=1, on_change=lambda x: seen.append(("b", x)))
    a.step()
    b.step()
    assert a.is_leader and not b.is_leader and b.leader == "a"
    assert a.generation == 1
    a.step()                        # keepalive
    assert a.is_leader
    # a dies without resigning: b takes over once the lease has run out
    start = time.monotonic()
    while not b.is_leader and time.monotonic() - start < 5:
        b.step()
        time.sleep(0.1)
    took = time.monotonic() - start
    assert b.is_leader and b.generation == 2, took
    assert 0.5 < took < 3.5
    # a comes back: its keepalive finds the lease gone and it steps down
    a.step()
    assert not a.is_leader and ("a", False) in seen
    a.step()
    assert not a.is_leader and a.leader == "b"
    assert etcd.get(GEN_KEY)[0] == b"2"
    b.stop()                        # resigns: revokes its lease
    assert etcd.get(LEADER_KEY)[0] is None
    a.step()
    assert a.is_leader and a.generation == 3
    a.stop()


def test_three_members_survive_losing_one(tmp_path):
    """No single point of failure in the store: with one of three etcd members
    gone (the one the client used), commits, reads and the election go on."""
    from controller.ha.election import Election
    with EtcdCluster(tmp_path / "etcd3", members=3) as c3:
        svc = service(c3)
        world(svc)
        el = Election(svc.store.etcd, "x", ttl=2)
        el.step()
        assert el.is_leader
        first = c3.members[0]["proc"]
        first.terminate()
        first.wait(10)
        svc.create_tenant({"name": "after", "network": "gre"})
        el.step()
        assert el.is_leader
        other = EtcdStore(c3.endpoints.split(","))
        assert "after" in other.load()["tenants"]
