"""Changes to the model as data: the only way State or a store changes.

An op is ``("put", kind, key, record)`` or ``("del", kind, key)``: kind is a
collection name (controller/model/state.py KINDS), record a plain dict (what
msgpack and etcd hold).  The service builds ops, the store makes them durable,
and both the store's collections and the in-memory State apply them with
`apply_ops` -- one definition, so a replayed journal and the live model agree.
"""


class OpError(ValueError):
    """An op that is neither put nor del: a bug or a corrupt record."""


def apply_ops(collections, ops, decode=None):
    """Apply ops to ``{kind: {key: value}}`` in place; ``decode(kind, record)``
    turns a record into the stored value (State keeps dataclasses, stores
    keep the plain records)."""
    for op in ops:
        if op[0] == "put":
            _, kind, key, data = op
            collections.setdefault(kind, {})[key] = decode(kind, data) if decode else data
        elif op[0] == "del":
            collections.get(op[1], {}).pop(op[2], None)
        else:
            raise OpError(f"unknown op {op[0]!r}")
