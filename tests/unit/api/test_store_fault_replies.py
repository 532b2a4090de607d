"""Every operation that writes answers a store fault the way the OpenAPI
document says, and changes nothing: 503 with Retry-After when the store does
not answer (store_unavailable: nothing written; outcome_unknown: maybe), 409
`busy` when the model keeps changing under it (several controllers).

The samples are the auth matrix's (tests/unit/api/test_auth_matrix.py), so a
new writing route is covered the moment it has a sample there."""
import pytest

from controller.api.routes import ROUTES
from controller.store.base import StoreConflict, StoreUnavailable
from tests.unit.api.test_auth_matrix import ADMIN_CONFLICTS, World, _sample

WRITES = [r for r in ROUTES if r.writes]


class Faults:
    """What the world's store does on commit, switched on after the world is built."""

    def __init__(self, store):
        self.store, self.mode = store, None
        store.optimistic, store.retry_budget, store.retry_after = True, 2.0, 3
        store.refresh = lambda: []
        store.remote_revision = lambda: 0
        store.revision = 0
        self._commit = store.commit
        store.commit = self.commit

    def commit(self, ops):
        if self.mode == "unavailable":
            raise StoreUnavailable("etcd: no leader")
        if self.mode == "unknown":
            exc = StoreUnavailable("etcd: request timed out")
            exc.maybe_sent = True
            raise exc
        if self.mode == "conflict":
            raise StoreConflict("someone else committed")
        return self._commit(ops)


def writable_sample(world, route):
    """The route's sample, made one that reaches the commit: the matrix's
    three samples that conflict on purpose get an object of their own."""
    s = world.service
    if route.op_id == "createHost":
        return route.path, {"name": "h9", "dpid": 9, "tunnel_ip": "198.18.0.19"}
    if route.op_id == "deleteHost":
        s.create_host({"name": "h8", "dpid": 8, "tunnel_ip": "198.18.0.18"})
        return route.path.format(host="h8"), None
    if route.op_id == "deleteTenant":
        s.create_tenant({"name": "gone", "network": "vxlan"})
        return route.path.format(tenant="gone"), None
    assert route.op_id not in ADMIN_CONFLICTS
    return _sample(route, world.ids)


@pytest.mark.parametrize("mode,status,code", [
    ("unavailable", 503, "store_unavailable"), ("unknown", 503, "outcome_unknown"),
    ("conflict", 409, "busy")])
@pytest.mark.parametrize("route", WRITES, ids=[f"{r.method} {r.path}" for r in WRITES])
def test_a_store_fault_is_answered_as_documented_and_changes_nothing(route, mode, status,
                                                                     code, monkeypatch):
    monkeypatch.setattr("controller.service.mutator.time.sleep", lambda s: None)
    world = World()
    faults = Faults(world.service.store)
    path, body = writable_sample(world, route)
    before = world.service.state.to_collections()
    faults.mode = mode
    got, reply, headers = world.call(route.method, path, body)
    assert (got, reply["error"]["code"]) == (status, code), reply
    assert str(status) in _documented(route)
    if status == 503:
        assert headers["Retry-After"] == "3"
    assert world.service.state.to_collections() == before


def _documented(route):
    from controller.api.openapi import document
    return document()["paths"][route.path][route.method.lower()]["responses"]
