"""`@mutator`: the mark on every service operation that commits.

On a shared store (etcd) a commit may find the model changed by another
controller (StoreConflict): the operation is then run again, whole, against
the refreshed model, so that every check is made again.  That is only safe
for an operation written to be re-run from the top, so the mark sits on the
operation itself, where a new one cannot be added without deciding it; and
VpcService._commit refuses a commit made outside a marked operation (`active`),
so an operation that commits unmarked fails in its first test instead of
failing once in production, under etcd, on a conflict.

A mutator must not call another mutator: the inner one would retry alone on
a conflict while the outer one kept the checks it made on the stale model.

Store faults.  The whole operation -- every refresh and commit of the
conflict loop -- runs inside one store deadline (VPC_STORE_RETRY_BUDGET): the
store retries transient etcd errors within it, and when it runs out the
request is answered 503 with Retry-After, never 500.  The conflict loop can
never turn one request into two writes: the store only raises StoreConflict
when its commit certainly did not apply (etcd_store.py, checked writes), and
a commit whose outcome is unknown is never re-run here (503 outcome_unknown).
"""
import contextlib
import functools
import logging
import random
import threading
import time

from controller.service.errors import ApiError, conflict, unavailable
from controller.store.base import StoreConflict, StoreError, StoreUnavailable

LOG = logging.getLogger(__name__)
CONFLICT_RETRIES = 8
_depth = threading.local()      # mutators running on this thread (green thread under eventlet)


def mutator(operation):
    @functools.wraps(operation)
    def run(self, *args, **kwargs):
        _depth.n = getattr(_depth, "n", 0) + 1
        try:
            if not getattr(self.store, "optimistic", False):
                return operation(self, *args, **kwargs)
            bound = getattr(self.store, "deadline", None)
            with (bound() if bound and _depth.n == 1 else contextlib.nullcontext()):
                try:
                    return _retrying(self, operation, args, kwargs)
                except StoreConflict:
                    raise
                except StoreError as exc:
                    raise _unavailable(self.store, exc) from exc
        finally:
            _depth.n -= 1
    run.mutator = True
    return run


def _retrying(self, operation, args, kwargs):
    for attempt in range(CONFLICT_RETRIES):
        try:
            return operation(self, *args, **kwargs)
        except StoreConflict:
            _count(self.store, "conflict_retries")
            self.refresh()
            time.sleep(random.uniform(0, 0.01 * (attempt + 1)))
        except ApiError as exc:
            # refused on this controller's model: is that model current?  A
            # tenant created through another controller a moment ago must not
            # be a 404 here (read-your-writes across controllers).  One read
            # of /vpc/rev; only a refusal pays for it.
            if exc.status >= 500 or attempt == CONFLICT_RETRIES - 1 or not _stale(self.store):
                raise
            _count(self.store, "stale_refusal_retries")
            self.refresh()
    _count(self.store, "busy_replies")
    raise conflict("the model kept changing under this request; try again", code="busy")


def _stale(store):
    try:
        return store.remote_revision() != store.revision
    except (StoreError, AttributeError):
        return False          # cannot tell: the refusal stands


def _unavailable(store, exc):
    """The 503 for a store fault: nothing written, or outcome unknown."""
    _count(store, "unavailable_replies")
    LOG.warning("answering 503: %s", exc)
    budget = getattr(store, "retry_budget", 0)
    after = getattr(store, "retry_after", 1)
    if not isinstance(exc, StoreUnavailable):
        return unavailable(f"the store refused the change ({exc}); nothing was written",
                           after, code="store_error")
    if exc.maybe_sent:
        return unavailable(f"the store (etcd) did not confirm the change within {budget:g} s; "
                           "it may or may not have been made: read it back before sending "
                           "it again", after, code="outcome_unknown")
    return unavailable(f"the store (etcd) is unavailable (no answer within {budget:g} s); "
                       "nothing was written: try again", after)


def _count(store, key):
    stats = getattr(store, "stats", None)
    if isinstance(stats, dict):
        stats[key] = stats.get(key, 0) + 1


def active():
    """Whether a @mutator operation is running on this thread."""
    return getattr(_depth, "n", 0) > 0


def is_mutator(fn):
    return getattr(fn, "mutator", False) is True
