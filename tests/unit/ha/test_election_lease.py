"""The election's lease discipline against a real etcd (loopback), with a
fake clock for the leader's own sense of time.

- a leader that has not renewed steps down *before* its lease can expire in
  etcd (its bound is the send time of its last renewal + TTL, minus TTL/4);
- if etcd was merely slow, the key is still its own on the same lease: it
  resumes with the same generation (no new term, nobody else elected);
- a campaign whose answer was lost is recognised by the lease on the key;
- the granted TTL (etcd's minimum may be larger) is the one used.
"""
import shutil

import pytest

pytest.importorskip("etcd3gw")
if shutil.which("etcd") is None:
    pytest.skip("etcd not installed (scripts/setup)", allow_module_level=True)

from controller.ha.election import GEN_KEY, Election  # noqa: E402
from controller.store.etcd_client import Etcd  # noqa: E402
from vpclab.labmulti import EtcdCluster  # noqa: E402


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    c = EtcdCluster(tmp_path_factory.mktemp("etcde"), members=1)
    c.start()
    yield Etcd(c.endpoints.split(","), timeout=1.0, budget=0)
    c.stop()


@pytest.fixture
def fresh(etcd):
    etcd.post("kv/deleterange", {"key": "L3ZwYy8=", "range_end": "L3ZwYzA="})
    return etcd


def test_steps_down_before_expiry_and_resumes_with_the_same_generation(fresh):
    clock, seen = Clock(), []
    a = Election(fresh, "a", ttl=2, clock=clock, on_change=seen.append)
    b = Election(fresh, "b", ttl=2)
    a.step()
    assert a.is_leader and a.generation == 1 and a.granted >= 2
    clock.now += a.granted * 0.5
    a.check_deadline()
    assert a.is_leader                              # well within the lease
    clock.now += a.granted * 0.3                    # 0.8 TTL without a renewal
    a.check_deadline()
    assert not a.is_leader and seen == [True, False]
    b.step()                                        # the key is still a's: b waits
    assert not b.is_leader and b.leader == "a"
    a.step()                                        # etcd answers again: a resumes
    assert a.is_leader and a.generation == 1 and a.terms == 1
    assert a.stats["resumed"] == 1 and seen == [True, False, True]
    assert fresh.get(GEN_KEY)[0] == b"1"
    a.stop()


def test_a_campaign_whose_answer_was_lost_is_won(fresh):
    a = Election(fresh, "a", ttl=2)
    real_txn = fresh.txn

    def lost(*args, **kw):
        real_txn(*args, **kw)
        raise OSError("answer lost")
    fresh.txn = lost
    try:
        with pytest.raises(OSError):
            a.step()
    finally:
        del fresh.txn
    assert not a.is_leader
    a.step()                                        # the key carries a's pending lease
    assert a.is_leader and a.generation == 1 and a.terms == 1
    a.stop()


def test_the_granted_ttl_is_used(fresh):
    a = Election(fresh, "a", ttl=1)
    a.step()
    # etcd's minimum lease TTL is 1.5 x its election timeout rounded up: the lab's
    # etcd (election timeout 1 s) grants 2 s for 1 s asked
    assert a.is_leader and a.granted >= a.ttl
    assert a.interval == a.granted / 4
    a.stop()
