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
"""
import functools
import random
import threading
import time

from controller.service.errors import conflict
from controller.store.base import StoreConflict

CONFLICT_RETRIES = 8
_depth = threading.local()      # mutators running on this thread (green thread under eventlet)


def mutator(operation):
    @functools.wraps(operation)
    def run(self, *args, **kwargs):
        _depth.n = getattr(_depth, "n", 0) + 1
        try:
            if not getattr(self.store, "optimistic", False):
                return operation(self, *args, **kwargs)
            for attempt in range(CONFLICT_RETRIES):
                try:
                    return operation(self, *args, **kwargs)
                except StoreConflict:
                    self.refresh()
                    time.sleep(random.uniform(0, 0.01 * (attempt + 1)))
            raise conflict("the model kept changing under this request; try again",
                           code="busy")
        finally:
            _depth.n -= 1
    run.mutator = True
    return run


def active():
    """Whether a @mutator operation is running on this thread."""
    return getattr(_depth, "n", 0) > 0


def is_mutator(fn):
    return getattr(fn, "mutator", False) is True
