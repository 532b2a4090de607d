"""Several controllers, one leader: an etcd lease and OpenFlow roles.

`Election` campaigns for /vpc/election/leader with a lease (VPC_LEASE_TTL).
Winning is ONE transaction that also increments /vpc/election/generation, so
every term has a larger generation id than any before it, whoever wins.  The
leader keeps its lease alive every TTL/4; when it cannot (etcd says the lease
is gone, or etcd has been unreachable for a whole TTL) it steps down.

What the winner does with its generation id (OpenFlow roles towards the
switches) is controller/ha/roles.py.
"""
import json
import logging
import os
import socket
import threading
import time

from controller.store.base import StoreError

LOG = logging.getLogger(__name__)
LEADER_KEY = "/vpc/election/leader"
GEN_KEY = "/vpc/election/generation"
CAMPAIGN_INTERVAL = 0.2


class Election:
    def __init__(self, etcd, ident, ttl=5, on_change=None, info=None):
        self.etcd = etcd
        self.ident = ident
        self.ttl = int(ttl)
        self.on_change = on_change or (lambda leader: None)
        self.info = dict(info or {}, id=ident)
        self.is_leader = False
        self.leader = None          # id of the leader as last seen
        self.generation = 0
        self.lease = None
        self.terms = 0
        self._last_ok = 0.0
        self._stop = threading.Event()

    # --- one step at a time (the loop, and tests) ------------------------------------
    def step(self):
        if self.is_leader:
            self._keepalive()
        else:
            self._campaign()

    def run(self, sleep=time.sleep):
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as exc:      # etcd away: keep trying
                LOG.debug("election step: %s", exc)
                if self.is_leader and time.monotonic() - self._last_ok >= self.ttl:
                    self._lost("etcd unreachable for a whole lease TTL")
            sleep(self.ttl / 4 if self.is_leader else CAMPAIGN_INTERVAL)

    def stop(self, resign=True):
        self._stop.set()
        if resign and self.is_leader and self.lease:
            try:
                self.etcd.post("lease/revoke", {"ID": str(self.lease)})
            except StoreError:
                pass
            self.is_leader = False

    def _campaign(self):
        e = self.etcd
        gen_val, gen_mod = e.get(GEN_KEY)
        current, _ = e.get(LEADER_KEY)
        if current is not None:          # someone leads: no lease churn while they do
            self.leader = _leader_id(current)
            return False
        gen = int(gen_val or 0)
        lease = int(e.post("lease/grant", {"TTL": self.ttl, "ID": 0})["ID"])
        result = e.txn(compare=[e.compare(LEADER_KEY, "CREATE", 0),
                                e.compare(GEN_KEY, "MOD", gen_mod)],
                       success=[e.put_op(LEADER_KEY, json.dumps(self.info), lease),
                                e.put_op(GEN_KEY, str(gen + 1))])
        if not result.get("succeeded"):
            e.post("lease/revoke", {"ID": str(lease)})
            return False
        self.lease, self.generation = lease, gen + 1
        self.is_leader, self.leader = True, self.ident
        self._last_ok = time.monotonic()
        self.terms += 1
        LOG.warning("elected leader (generation %d, lease %x, TTL %ds)", self.generation,
                    lease, self.ttl)
        self.on_change(True)
        return True

    def _keepalive(self):
        result = self.etcd.post("lease/keepalive", {"ID": str(self.lease)}).get("result") or {}
        if int(result.get("TTL", 0) or 0) <= 0:
            self._lost("the lease expired")
            return
        self._last_ok = time.monotonic()

    def _lost(self, why):
        if not self.is_leader:
            return
        LOG.warning("no longer leader: %s", why)
        self.is_leader = False
        self.leader = None
        self.lease = None
        self.on_change(False)

    def bump_generation(self, at_least):
        """The bridge knows a larger generation (e.g. left from an older etcd):
        move the counter past it, only while we still hold the leadership."""
        e = self.etcd
        gen_val, gen_mod = e.get(GEN_KEY)
        new = max(int(gen_val or 0), at_least) + 1
        _, leader_mod = e.get(LEADER_KEY)
        result = e.txn(compare=[e.compare(GEN_KEY, "MOD", gen_mod),
                                e.compare(LEADER_KEY, "VALUE", json.dumps(self.info)),
                                e.compare(LEADER_KEY, "MOD", leader_mod)],
                       success=[e.put_op(GEN_KEY, str(new))])
        if result.get("succeeded"):
            self.generation = new
            return True
        return False


def _leader_id(raw):
    try:
        return json.loads(raw).get("id")
    except (ValueError, AttributeError):
        return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


def controller_id(config):
    return os.environ.get("VPC_CONTROLLER_ID") or \
        f"{socket.gethostname()}:{config.rest_port}:{os.getpid()}"
