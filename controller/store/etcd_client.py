"""A few etcd v3 gateway calls over etcd3gw clients: member failover, and
retries with backoff within a time budget.

Why a budget and not "one pass over the members": while etcd elects a leader
(a member died, ~1-2 s) every member answers "no leader" / "leader changed" /
"request timed out", or not at all.  One pass fails in milliseconds and the
REST client saw a 500.  Now a transient error is retried on the next member,
with jittered exponential backoff, until the budget (VPC_STORE_RETRY_BUDGET,
default 5 s) runs out; then StoreUnavailable, which the service answers as
503 with Retry-After.  A permanent error (bad request, too many ops in a
txn) is not retried: StoreError at once.

Retrying a *write* blindly could apply it twice.  This module retries the
same request body; writes are made safe by their shape, not here: the store's
commit txn compares /vpc/rev's mod_revision (so two copies can never both
apply) and reads back its request id on failure (so a copy that did apply is
recognised) -- see etcd_store.EtcdStore._commit.  What this module tells the
caller is whether any attempt *may* have reached etcd (`maybe_sent`), so that
an exhausted budget can say "nothing was written" or "outcome unknown".

A thread-local deadline (`deadline(seconds)`) caps every call made inside it,
so one REST request -- a conflict loop of refreshes and commits -- stays
within one budget overall, not one budget per etcd call.
"""
import base64
import contextlib
import json
import logging
import random
import threading
import time
from urllib.parse import urlsplit

from controller.store.base import StoreError, StoreUnavailable

LOG = logging.getLogger(__name__)
TRANSIENT_TEXT = ("no leader", "leader changed", "timed out", "timeout", "unavailable",
                  "too many requests", "bad gateway", "connection", "not capable",
                  "stopped", "server is stopping")
BACKOFF_FIRST, BACKOFF_MAX = 0.05, 0.5
_local = threading.local()


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


@contextlib.contextmanager
def deadline(seconds):
    """Every etcd call inside this block gives up at now + seconds (the
    outermost block wins: a nested one cannot extend it)."""
    outer = getattr(_local, "deadline", None)
    mine = time.monotonic() + seconds
    _local.deadline = mine if outer is None else min(outer, mine)
    try:
        yield
    finally:
        _local.deadline = outer


class Etcd:
    """etcd v3 JSON gateway calls with member failover and bounded retries.

    timeout: one HTTP request (VPC_STORE_REQUEST_TIMEOUT); budget: a whole
    call with its retries (VPC_STORE_RETRY_BUDGET).  `stats` counts retries
    and exhausted budgets for /metrics."""

    def __init__(self, endpoints, timeout=2.0, budget=5.0, sleep=time.sleep):
        import etcd3gw   # only needed when etcd is configured
        self._exc = etcd3gw.exceptions
        self.endpoints = [e.strip() for e in endpoints if e.strip()]
        if not self.endpoints:
            raise StoreError("no etcd endpoint configured")
        self.timeout, self.budget, self.sleep = timeout, budget, sleep
        self.clients = []
        for ep in self.endpoints:
            u = urlsplit(ep if "//" in ep else "http://" + ep)
            self.clients.append(etcd3gw.Etcd3Client(host=u.hostname, port=u.port or 2379,
                                                    protocol=u.scheme or "http",
                                                    timeout=timeout, api_path="/v3/"))
        self.current = 0
        self.stats = {"retries": 0, "unavailable": 0}

    @property
    def client(self):
        return self.clients[self.current]

    def transient(self, exc):
        """(retry?, maybe sent?) for an error of one HTTP request."""
        e = self._exc
        if isinstance(exc, e.ConnectionFailedError):
            # refused before sending is safe; a 503 "no leader" was refused by
            # etcd; a reset after sending is not known: say maybe
            return True, "refused" not in _full(exc).lower()
        if isinstance(exc, (e.ConnectionTimeoutError, e.InternalServerError)):
            return True, True
        if isinstance(exc, e.Etcd3Exception):
            text = _full(exc).lower()
            return any(t in text for t in TRANSIENT_TEXT), True
        if isinstance(exc, (ValueError, OSError)):   # a cut-off reply, a reset socket
            return True, True
        return False, True

    def post(self, path, body, budget=None):
        """POST to the first member that answers; transient errors are retried
        with backoff until the budget (or the enclosing deadline()) runs out."""
        result, _ = self.post_checked(path, body, budget)
        return result

    def post_checked(self, path, body, budget=None):
        """Like post(); raises StoreUnavailable with `.maybe_sent` set when
        some attempt may have reached etcd."""
        now = time.monotonic()
        end = now + (self.budget if budget is None else budget)
        outer = getattr(_local, "deadline", None)
        if outer is not None:
            end = min(end, outer)
        data = json.dumps(body)
        last, maybe_sent, pause, attempt = None, False, BACKOFF_FIRST, 0
        while True:
            for _ in range(len(self.clients)):
                idx = self.current
                c = self.clients[idx]
                attempt += 1
                if attempt > 1:
                    self.stats["retries"] += 1      # another member, or again after a pause
                try:
                    return c.post(c.get_url(path), data=data), maybe_sent
                except Exception as exc:        # noqa: BLE001 -- classified below
                    retry, sent = self.transient(exc)
                    last = exc
                    if not retry:
                        err = (StoreUnavailable if maybe_sent else StoreError)(
                            f"etcd refused {path}: {_text(exc)}")
                        err.maybe_sent = maybe_sent     # an earlier copy may have applied
                        raise err from exc
                    maybe_sent = maybe_sent or sent
                    LOG.debug("etcd %s %s: %s", self.endpoints[idx], path, _text(exc))
                    self.current = (idx + 1) % len(self.clients)   # next call: next member
                if time.monotonic() >= end:
                    break
            left = end - time.monotonic()
            if left <= 0:
                self.stats["unavailable"] += 1
                err = StoreUnavailable(f"etcd did not answer {path} within the retry budget "
                                       f"({attempt} attempts; last: {_text(last)})")
                err.maybe_sent = maybe_sent
                raise err
            if attempt <= len(self.clients):
                LOG.info("etcd %s: %s; retrying for up to %.1f s", path, _text(last), left)
            self.sleep(min(left, random.uniform(pause / 2, pause)))
            pause = min(pause * 2, BACKOFF_MAX)

    def txn(self, compare=(), success=(), failure=(), budget=None):
        return self.post("kv/txn", {"compare": list(compare), "success": list(success),
                                    "failure": list(failure)}, budget)

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

    def get(self, key, budget=None):
        """(value bytes, mod_revision) or (None, 0)."""
        r = self.post("kv/range", {"key": b64(key)}, budget)
        kvs = r.get("kvs") or []
        if not kvs:
            return None, 0
        return unb64(kvs[0].get("value")), int(kvs[0].get("mod_revision", 0))


def _text(exc):
    """etcd3gw keeps the reply (or the requests error) in detail_text, the
    HTTP reason in args."""
    return _full(exc).replace("\n", " ")[:200]


def _full(exc):
    parts = [getattr(exc, "detail_text", None)] + list(getattr(exc, "args", ()))
    return " ".join(str(a) for a in parts if a) or type(exc).__name__
