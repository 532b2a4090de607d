"""Several controllers, one leader: an etcd lease and OpenFlow roles.

`Election` campaigns for /vpc/election/leader with a lease (VPC_LEASE_TTL,
default 1 s; etcd may grant more: its minimum is 1.5 x its election timeout,
rounded up to whole seconds, so 2 s with etcd's defaults -- the granted TTL is
the one used below).  Winning is ONE transaction that also increments
/vpc/election/generation, so every term has a larger generation id than any
before it, whoever wins.

Takeover time is the lease: a leader killed with -9 stops renewing, etcd
drops the lease (and the key) TTL after the last renewal (checked every
0.5 s), and a follower, polling every 0.1 s, wins the next transaction.  So
the leader renews every TTL/4 and followers poll often.

Stepping down before the lease can expire.  A renewal sent at time s keeps
the lease alive at least until s + TTL (etcd counts from when it got it,
which is later).  The leader remembers that bound; when it has not renewed
by bound - TTL/4 it stops acting as leader ("soft" step-down: syncs stopped,
switches told SLAVE) -- before anyone else can possibly win.  If etcd was
merely slow (or electing its own leader, which extends every lease) the
lease is still there: the next campaign step finds the key still ours on the
same lease, renews it and *resumes* with the same generation -- leadership
does not move, no new term, no flapping.  Only when the lease is really gone
does the key vanish and a new election (a larger generation) happen.

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
CAMPAIGN_INTERVAL = 0.1


class Election:
    def __init__(self, etcd, ident, ttl=1, on_change=None, info=None, clock=time.monotonic):
        self.etcd = etcd
        self.ident = ident
        self.ttl = max(1, int(ttl))         # requested; etcd may grant more
        self.granted = self.ttl
        self.on_change = on_change or (lambda leader: None)
        self.info = dict(info or {}, id=ident)
        self.clock = clock
        self.is_leader = False
        self.leader = None          # id of the leader as last seen
        self.generation = 0
        self.lease = None
        self.terms = 0
        self.stats = {"elected": 0, "resumed": 0, "stepped_down": 0, "leader_changes": 0,
                      "leaderless_s": 0.0}
        self._valid_until = 0.0     # the lease lives at least until then (our clock)
        self._kept = None           # (lease, generation) after a soft step-down
        self._pending = None        # lease of a campaign txn whose answer was lost
        self._leaderless_since = None
        self._stop = threading.Event()

    @property
    def interval(self):
        """Between renewals (leader) or campaign steps (follower)."""
        return self.granted / 4 if self.is_leader else CAMPAIGN_INTERVAL

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
            self.check_deadline()
            sleep(self.interval)

    def check_deadline(self):
        """Step down before the lease can have expired in etcd."""
        if self.is_leader and self.clock() >= self._valid_until - self.granted / 4:
            self._lost("could not renew the lease in time", keep=True)

    def stop(self, resign=True):
        self._stop.set()
        if resign and self.is_leader and self.lease:
            try:
                self.etcd.post("lease/revoke", {"ID": str(self.lease)}, budget=0)
            except StoreError:
                pass
            self.is_leader = False

    def leaderless_seconds(self):
        """Seconds this controller has seen no leader, in total (now included)."""
        extra = 0.0 if self._leaderless_since is None else self.clock() - self._leaderless_since
        return self.stats["leaderless_s"] + extra

    def _saw(self, leader):
        if leader != self.leader and leader is not None:
            self.stats["leader_changes"] += 1
        if leader is None and self._leaderless_since is None:
            self._leaderless_since = self.clock()
        elif leader is not None and self._leaderless_since is not None:
            self.stats["leaderless_s"] += self.clock() - self._leaderless_since
            self._leaderless_since = None
        self.leader = leader

    def _campaign(self):
        e = self.etcd
        gen_val, gen_mod = e.get(GEN_KEY, budget=0)
        r = e.post("kv/range", {"key": _b64(LEADER_KEY)}, budget=0)
        kvs = r.get("kvs") or []
        if kvs:                          # someone leads: no lease churn while they do
            current = _unb64(kvs[0].get("value"))
            lease = int(kvs[0].get("lease", 0) or 0)
            ours = _leader_id(current) == self.ident
            if ours and lease in (self._pending, (self._kept or (None,))[0]):
                return self._resume(lease, int(gen_val or 0))
            self._saw(_leader_id(current))
            return False
        self._saw(None)
        gen = int(gen_val or 0)
        grant = e.post("lease/grant", {"TTL": self.ttl, "ID": 0}, budget=0)
        lease = int(grant["ID"])
        sent = self.clock()
        self._pending = lease
        result = e.txn(compare=[e.compare(LEADER_KEY, "CREATE", 0),
                                e.compare(GEN_KEY, "MOD", gen_mod)],
                       success=[e.put_op(LEADER_KEY, json.dumps(self.info), lease),
                                e.put_op(GEN_KEY, str(gen + 1))], budget=0)
        self._pending = None
        if not result.get("succeeded"):
            try:
                e.post("lease/revoke", {"ID": str(lease)}, budget=0)
            except StoreError:
                pass                     # it expires on its own
            return False
        self.granted = max(1, int(grant.get("TTL", self.ttl) or self.ttl))
        self._valid_until = sent + self.granted
        self.lease, self.generation, self._kept = lease, gen + 1, None
        self.is_leader = True
        self._saw(self.ident)
        self.terms += 1
        self.stats["elected"] += 1
        LOG.warning("elected leader (generation %d, lease %x, TTL %ds)", self.generation,
                    lease, self.granted)
        self.on_change(True)
        return True

    def _resume(self, lease, generation):
        """The key is still ours: renew the lease and lead on, same generation."""
        sent = self.clock()
        result = self.etcd.post("lease/keepalive", {"ID": str(lease)},
                                budget=0).get("result") or {}
        ttl = int(result.get("TTL", 0) or 0)
        if ttl <= 0:
            return False                 # gone after all: the key goes with it
        self.granted = ttl
        self._valid_until = sent + ttl
        fresh = self._kept is None       # a campaign whose answer was lost: we won it
        self.lease, self.generation, self._kept, self._pending = lease, generation, None, None
        self.is_leader = True
        self._saw(self.ident)
        if fresh:
            self.terms += 1
            self.stats["elected"] += 1
        else:
            self.stats["resumed"] += 1
        LOG.warning("%s leading (generation %d, lease %x)", "elected" if fresh else "resumed",
                    generation, lease)
        self.on_change(True)
        return True

    def _keepalive(self):
        sent = self.clock()
        result = self.etcd.post("lease/keepalive", {"ID": str(self.lease)},
                                budget=0).get("result") or {}
        ttl = int(result.get("TTL", 0) or 0)
        if ttl <= 0:
            self._lost("the lease expired")
            return
        self.granted = ttl
        self._valid_until = sent + ttl

    def _lost(self, why, keep=False):
        if not self.is_leader:
            return
        LOG.warning("no longer leader: %s", why)
        self.is_leader = False
        self._kept = (self.lease, self.generation) if keep else None
        self.lease = None
        self.stats["stepped_down"] += 1
        self._saw(None)
        self.on_change(False)

    def bump_generation(self, at_least):
        """The bridge knows a larger generation (e.g. left from an older etcd):
        move the counter past it, only while we still hold the leadership."""
        e = self.etcd
        gen_val, gen_mod = e.get(GEN_KEY, budget=0)
        new = max(int(gen_val or 0), at_least) + 1
        _, leader_mod = e.get(LEADER_KEY, budget=0)
        result = e.txn(compare=[e.compare(GEN_KEY, "MOD", gen_mod),
                                e.compare(LEADER_KEY, "VALUE", json.dumps(self.info)),
                                e.compare(LEADER_KEY, "MOD", leader_mod)],
                       success=[e.put_op(GEN_KEY, str(new))], budget=0)
        if result.get("succeeded"):
            self.generation = new
            return True
        return False


def _b64(text):
    import base64
    return base64.b64encode(text.encode()).decode()


def _unb64(text):
    import base64
    return base64.b64decode(text) if text else b""


def _leader_id(raw):
    try:
        return json.loads(raw).get("id")
    except (ValueError, AttributeError):
        return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


def controller_id(config):
    return os.environ.get("VPC_CONTROLLER_ID") or \
        f"{socket.gethostname()}:{config.rest_port}:{os.getpid()}"
