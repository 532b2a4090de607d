"""The Store on etcd (v3, through its JSON gateway with `etcd3gw`): several
controllers share one model.

Layout:  /vpc/data/<kind>/<key> -> msgpack(record)     one key per object
         /vpc/rev                -> touched by every commit

Optimistic concurrency.  The store remembers the mod_revision of /vpc/rev as
of its last load/refresh/commit: the version of the model it (and the service
on top of it) has validated against.  commit(ops) is ONE etcd transaction:
    if mod_revision(/vpc/rev) == remembered: the puts/deletes + touch /vpc/rev
    else: nothing
so a change validated against a model that someone else has changed since is
refused (StoreConflict) instead of handing out an IP, MAC, segment or external
port twice.  The service then refresh()es (a full read, diffed against what it
had) and runs the whole operation again.

Watching: `watch(callback)` runs a watch on the data prefix (a fast trigger)
plus a slow poll of /vpc/rev (a safety net if the watch stream dies, e.g. when
its etcd member goes away); both just call `callback()`, which is expected to
call refresh() under the service's lock.

Endpoints: VPC_ETCD_ENDPOINTS, comma separated.  Every call fails over to the
next member and retries transient errors within a budget (etcd_client.py).

Checked writes.  Each commit txn also puts a fresh request id under this
store's own key /vpc/req/<instance>, and its failure branch reads that key
back.  A commit whose answer was lost (timeout after sending, member died,
"leader changed") is re-sent *unchanged*: both copies compare the same
/vpc/rev mod_revision, so at most one can apply; if the re-sent copy fails
and the key holds our request id, the first copy did commit and the commit is
reported done, not repeated and not reported as a conflict (a conflict makes
the service re-run the operation: that would have been a second write).
Only when the budget runs out with no answer at all is the outcome unknown
(StoreUnavailable.maybe_sent); the next refresh reads what happened.
"""
import logging
import os
import threading
import time
import uuid

import msgpack

from controller.store.base import Store, StoreConflict, StoreError, StoreUnavailable
from controller.store.etcd_client import Etcd, b64, deadline, prefix_end, unb64  # noqa: F401
from controller.model.ops import apply_ops

LOG = logging.getLogger(__name__)
PREFIX = "/vpc/"
DATA = PREFIX + "data/"
REV_KEY = PREFIX + "rev"
REQ_PREFIX = PREFIX + "req/"
POLL_INTERVAL = 1.0
RETRY_BUDGET = 5.0        # VPC_STORE_RETRY_BUDGET: one REST request's time with etcd
REQUEST_TIMEOUT = 2.0     # VPC_STORE_REQUEST_TIMEOUT: one HTTP request to a member
RETRY_AFTER = 2           # VPC_STORE_RETRY_AFTER: what a 503 tells the client


def data_key(kind, key):
    return f"{DATA}{kind}/{key}"


def responses(result):
    return result.get("responses") or []


def kvs_of(resp):
    return (resp.get("response_range") or {}).get("kvs") or []


class EtcdStore(Store):
    optimistic = True     # commit may raise StoreConflict: the service retries

    def __init__(self, endpoints, timeout=REQUEST_TIMEOUT, budget=RETRY_BUDGET,
                 retry_after=RETRY_AFTER):
        self.etcd = Etcd(endpoints, timeout=timeout, budget=budget)
        self.retry_budget, self.retry_after = budget, retry_after
        self.req_key = REQ_PREFIX + uuid.uuid4().hex     # this store instance's own
        self._collections = {}
        self._rev = 0          # mod_revision of REV_KEY our model reflects
        self._pending = None   # (request id, rev) of a commit whose outcome is unknown
        self.stats = {"records_replayed": 0, "conflicts": 0, "commits": 0, "refreshes": 0,
                      "resent_commits": 0, "recognised_commits": 0,
                      "unknown_outcomes": 0, "unknown_committed": 0, "unknown_absent": 0}
        self._stop = threading.Event()
        self._mutex = threading.RLock()   # refresh vs commit (the app commits outside the
                                          # service lock: gateway MACs)

    @property
    def revision(self):
        return self._rev

    def deadline(self, seconds=None):
        """Bound every etcd call of one request (see etcd_client.deadline)."""
        return deadline(self.retry_budget if seconds is None else seconds)

    # --- reading ----------------------------------------------------------------
    def _read_all(self):
        """One consistent snapshot: (collections, rev); also settles a commit
        whose outcome was unknown, now that its fate can be read."""
        result = self.etcd.txn(success=[Etcd.range_op(DATA, prefix=True),
                                        Etcd.range_op(REV_KEY), Etcd.range_op(self.req_key)])
        data_resp, rev_resp, req_resp = responses(result)
        collections = {}
        for kv in kvs_of(data_resp):
            kind, _, key = unb64(kv["key"]).decode()[len(DATA):].partition("/")
            collections.setdefault(kind, {})[key] = msgpack.unpackb(
                unb64(kv.get("value")), raw=False, strict_map_key=False)
        rev_kvs = kvs_of(rev_resp)
        rev = int(rev_kvs[0].get("mod_revision", 0)) if rev_kvs else 0
        self._settle(kvs_of(req_resp), rev)
        return collections, rev

    def _settle(self, req_kvs, rev):
        if self._pending is None:
            return
        req_id, at = self._pending
        if req_kvs and unb64(req_kvs[0].get("value")).decode() == req_id:
            self.stats["unknown_committed"] += 1
            LOG.warning("a commit whose outcome was unknown did apply (request %s)", req_id)
        elif rev != at:      # /vpc/rev moved on without it: it can never apply now
            self.stats["unknown_absent"] += 1
            LOG.warning("a commit whose outcome was unknown did not apply (request %s)", req_id)
        else:
            return
        self._pending = None

    def load(self):
        self._collections, self._rev = self._read_all()
        return self._collections

    def refresh(self):
        """Catch up with etcd.  Returns the ops that turn the old model into
        the current one (empty when nothing changed)."""
        with self._mutex:
            collections, rev = self._read_all()
            if rev == self._rev:
                return []
            ops = diff(self._collections, collections)
            self._collections, self._rev = collections, rev
            self.stats["refreshes"] += 1
            return ops

    def collection(self, kind):
        return self._collections.get(kind, {})

    def remote_revision(self):
        _, rev = self.etcd.get(REV_KEY, budget=0)
        return rev

    # --- writing ----------------------------------------------------------------
    def commit(self, ops):
        with self._mutex:
            self._commit(ops)

    def _commit(self, ops):
        ops = [list(op) for op in ops]
        last = {}
        for op in ops:            # one etcd txn may touch a key once: last op wins
            if op[0] not in ("put", "del"):
                raise StoreError(f"unknown op {op[0]!r}")
            last[data_key(op[1], op[2])] = op
        requests = []
        for key, op in last.items():
            if op[0] == "put":
                requests.append(Etcd.put_op(key, msgpack.packb(op[3], use_bin_type=True)))
            else:
                requests.append(Etcd.del_op(key))
        req_id = uuid.uuid4().hex
        requests.append(Etcd.put_op(REV_KEY, b"1"))
        requests.append(Etcd.put_op(self.req_key, req_id))
        body = {"compare": [Etcd.compare(REV_KEY, "MOD", self._rev)], "success": requests,
                "failure": [Etcd.range_op(self.req_key)]}
        try:
            result, resent = self.etcd.post_checked("kv/txn", body)
        except StoreUnavailable as exc:
            if exc.maybe_sent:
                self.stats["unknown_outcomes"] += 1
                self._pending = (req_id, self._rev)
                LOG.warning("commit outcome unknown (request %s): %s", req_id, exc)
            raise
        if resent:
            self.stats["resent_commits"] += 1
        if not result.get("succeeded"):
            kvs = kvs_of((responses(result) or [{}])[0])
            if kvs and unb64(kvs[0].get("value")).decode() == req_id:
                # an earlier copy of this very txn applied; this copy found
                # /vpc/rev moved by it.  Done -- once.
                self.stats["recognised_commits"] += 1
                LOG.info("commit %s had applied before its answer was lost", req_id)
                self._rev = int(kvs[0].get("mod_revision"))
            else:
                self.stats["conflicts"] += 1
                raise StoreConflict("the model changed in etcd since it was read")
        else:
            self._rev = int(result["header"]["revision"])
        apply_ops(self._collections, ops)
        self.stats["commits"] += 1

    # --- watching ----------------------------------------------------------------
    def watch(self, callback, spawn=None):
        """Call callback() soon after anyone else changes the model."""
        spawn = spawn or (lambda fn: threading.Thread(target=fn, daemon=True).start())
        spawn(lambda: self._watch_loop(callback))
        spawn(lambda: self._poll_loop(callback))

    def _watch_loop(self, callback):
        while not self._stop.is_set():
            try:
                events, cancel = self.etcd.client.watch_prefix(DATA)
                self._cancel = cancel
                for _ in events:
                    if self._stop.is_set():
                        break
                    callback()
            except Exception as exc:   # a member went away: the poll covers the gap
                LOG.debug("etcd watch: %s", exc)
            time.sleep(POLL_INTERVAL)

    def _poll_loop(self, callback):
        while not self._stop.is_set():
            time.sleep(POLL_INTERVAL)
            try:
                if self.remote_revision() != self._rev:
                    callback()
            except Exception as exc:
                LOG.debug("etcd poll: %s", exc)

    def close(self):
        self._stop.set()
        try:                      # our request-id key is of no use to anyone now
            self.etcd.post("kv/deleterange", {"key": b64(self.req_key)}, budget=0)
        except StoreError:
            pass
        cancel = getattr(self, "_cancel", None)
        if cancel:
            try:
                cancel()
            except Exception:
                pass


def diff(old, new):
    ops = []
    for kind in sorted(set(old) | set(new)):
        a, b = old.get(kind, {}), new.get(kind, {})
        for key, value in b.items():
            if a.get(key) != value:
                ops.append(["put", kind, key, value])
        for key in a:
            if key not in b:
                ops.append(["del", kind, key])
    return ops


def open_store(config):
    """The store the configuration asks for (msgpack unless VPC_STORE=etcd)."""
    if getattr(config, "store", "msgpack") == "etcd":
        env = os.environ
        return EtcdStore(config.etcd_endpoints,
                         timeout=_seconds(env, "VPC_STORE_REQUEST_TIMEOUT", REQUEST_TIMEOUT),
                         budget=_seconds(env, "VPC_STORE_RETRY_BUDGET", RETRY_BUDGET),
                         retry_after=int(_seconds(env, "VPC_STORE_RETRY_AFTER", RETRY_AFTER)))
    from controller.store.msgpack_store import MsgpackStore
    return MsgpackStore(config.state_dir)


def _seconds(env, name, default):
    """A positive number of seconds from the environment, or a clear error."""
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1
    if not 0 < value <= 3600:
        raise StoreError(f"{name} must be a number of seconds in (0, 3600], not {raw!r}")
    return value
