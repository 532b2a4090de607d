"""What every store backend offers the service: load the model, commit ops durably.

Two backends implement it: `msgpack_store.MsgpackStore` (one controller, a
local snapshot + journal) and `etcd_store.EtcdStore` (several controllers on
one etcd, optimistic: a commit may raise StoreConflict).  Ops are the model's
(controller/model/ops.py): the store applies them with the same function the
in-memory State uses, so what is on disk and what is in memory cannot drift.
"""


class StoreError(Exception):
    pass


class StoreConflict(StoreError):
    """A shared store changed since the model was read: refresh, re-validate, retry."""


class StoreUnavailable(StoreError):
    """The store did not answer within its retry budget (etcd electing a
    leader, members down).  `maybe_sent`: whether a write may have been
    applied all the same (its outcome is unknown) -- False means nothing was
    written.  The API answers 503 with Retry-After, never 500."""

    maybe_sent = False


class Store:
    """Interface: load() -> collections dict; commit(ops) durable on return."""

    def load(self):
        raise NotImplementedError

    def commit(self, ops):
        raise NotImplementedError

    def close(self):
        pass
