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

Endpoints: VPC_ETCD_ENDPOINTS, comma separated; a request that cannot reach
one member is retried on the next.
"""
import base64
import json
import logging
import threading
import time
from urllib.parse import urlsplit

import msgpack

from controller.store.base import Store, StoreConflict, StoreError
from controller.model.ops import apply_ops

LOG = logging.getLogger(__name__)
PREFIX = "/vpc/"
DATA = PREFIX + "data/"
REV_KEY = PREFIX + "rev"
POLL_INTERVAL = 1.0


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def unb64(text):
    return base64.b64decode(text) if text else b""


def prefix_end(prefix):
    raw = bytearray(prefix.encode())
    raw[-1] += 1
    return bytes(raw)


def data_key(kind, key):
    return f"{DATA}{kind}/{key}"


class Etcd:
    """A few etcd v3 gateway calls over etcd3gw clients, with member failover."""

    def __init__(self, endpoints, timeout=5.0):
        import etcd3gw   # only needed when etcd is configured
        self._errors = (etcd3gw.exceptions.ConnectionFailedError,
                        etcd3gw.exceptions.ConnectionTimeoutError,
                        etcd3gw.exceptions.InternalServerError)
        self.endpoints = [e.strip() for e in endpoints if e.strip()]
        if not self.endpoints:
            raise StoreError("no etcd endpoint configured")
        self.clients = []
        for ep in self.endpoints:
            u = urlsplit(ep if "//" in ep else "http://" + ep)
            self.clients.append(etcd3gw.Etcd3Client(host=u.hostname, port=u.port or 2379,
                                                    protocol=u.scheme or "http",
                                                    timeout=timeout, api_path="/v3/"))
        self.current = 0

    @property
    def client(self):
        return self.clients[self.current]

    def post(self, path, body):
        last = None
        for i in range(len(self.clients)):
            idx = (self.current + i) % len(self.clients)
            c = self.clients[idx]
            try:
                result = c.post(c.get_url(path), data=json.dumps(body))
                self.current = idx
                return result
            except self._errors as exc:
                last = exc
                LOG.debug("etcd %s: %s", self.endpoints[idx], exc)
        raise StoreError(f"no etcd member answered ({last})")

    def txn(self, compare=(), success=(), failure=()):
        return self.post("kv/txn", {"compare": list(compare), "success": list(success),
                                    "failure": list(failure)})

    @staticmethod
    def range_op(key, prefix=False, keys_only=False):
        r = {"key": b64(key)}
        if prefix:
            r["range_end"] = b64(prefix_end(key))
        if keys_only:
            r["keys_only"] = True
        return {"request_range": r}

    @staticmethod
    def put_op(key, value, lease=None):
        r = {"key": b64(key), "value": b64(value)}
        if lease:
            r["lease"] = str(lease)
        return {"request_put": r}

    @staticmethod
    def del_op(key):
        return {"request_delete_range": {"key": b64(key)}}

    @staticmethod
    def compare(key, target, value, result="EQUAL"):
        field = {"MOD": "mod_revision", "CREATE": "create_revision", "VALUE": "value",
                 "VERSION": "version"}[target]
        return {"key": b64(key), "target": target, "result": result,
                field: b64(value) if target == "VALUE" else str(value)}

    def get(self, key):
        """(value bytes, mod_revision) or (None, 0)."""
        r = self.post("kv/range", {"key": b64(key)})
        kvs = r.get("kvs") or []
        if not kvs:
            return None, 0
        return unb64(kvs[0].get("value")), int(kvs[0].get("mod_revision", 0))


def responses(result):
    return result.get("responses") or []


def kvs_of(resp):
    return (resp.get("response_range") or {}).get("kvs") or []


class EtcdStore(Store):
    optimistic = True     # commit may raise StoreConflict: the service retries

    def __init__(self, endpoints, timeout=5.0):
        self.etcd = Etcd(endpoints, timeout=timeout)
        self._collections = {}
        self._rev = 0          # mod_revision of REV_KEY our model reflects
        self.stats = {"records_replayed": 0, "conflicts": 0, "commits": 0, "refreshes": 0}
        self._stop = threading.Event()
        self._mutex = threading.RLock()   # refresh vs commit (the app commits outside the
                                          # service lock: gateway MACs)

    @property
    def revision(self):
        return self._rev

    # --- reading ----------------------------------------------------------------
    def _read_all(self):
        """One consistent snapshot: (collections, rev)."""
        result = self.etcd.txn(success=[Etcd.range_op(DATA, prefix=True),
                                        Etcd.range_op(REV_KEY)])
        data_resp, rev_resp = responses(result)
        collections = {}
        for kv in kvs_of(data_resp):
            kind, _, key = unb64(kv["key"]).decode()[len(DATA):].partition("/")
            collections.setdefault(kind, {})[key] = msgpack.unpackb(
                unb64(kv.get("value")), raw=False, strict_map_key=False)
        rev_kvs = kvs_of(rev_resp)
        rev = int(rev_kvs[0].get("mod_revision", 0)) if rev_kvs else 0
        return collections, rev

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
        _, rev = self.etcd.get(REV_KEY)
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
        requests.append(Etcd.put_op(REV_KEY, b"1"))
        result = self.etcd.txn(compare=[Etcd.compare(REV_KEY, "MOD", self._rev)],
                               success=requests)
        if not result.get("succeeded"):
            self.stats["conflicts"] += 1
            raise StoreConflict("the model changed in etcd since it was read")
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
        return EtcdStore(config.etcd_endpoints)
    from controller.store.msgpack_store import MsgpackStore
    return MsgpackStore(config.state_dir)
