"""Operations that commit are marked @mutator on the method itself
(controller/service/mutator.py), so none can be left out of the conflict retry.

- every writing route of the table calls a mutator and every reading route
  does not;
- a recording store, driving one of every write through the REST app, sees
  each commit come from a marked public method, and sees every writing
  route's handler commit;
- a commit from an unmarked method is refused before the store sees it;
- on an optimistic store a conflict re-runs the operation whole, and gives up
  with 409 busy.
"""
import inspect

import pytest

from controller.api.routes import ROUTES
from controller.service import mutator as mutator_mod
from controller.service.errors import ApiError
from controller.service.mutator import is_mutator
from controller.service.vpc import VpcService
from controller.store.base import StoreConflict
from tests.support.rest_api import Api

SERVICE_ROUTES = [r for r in ROUTES if not r.handler.startswith("app.")]


@pytest.mark.parametrize("route", SERVICE_ROUTES, ids=[f"{r.method} {r.path}" for r in ROUTES
                                                       if not r.handler.startswith("app.")])
def test_writing_routes_call_mutators_and_reading_routes_do_not(route):
    assert is_mutator(getattr(VpcService, route.handler)) == route.writes


class RecordingStore:
    """Wraps the real store; for each commit, the outermost public method of
    the service on the stack and whether it is marked."""

    def __init__(self, store):
        self.store = store
        self.commits = []

    def __getattr__(self, name):
        return getattr(self.store, name)

    def commit(self, ops):
        frames = [f for f in inspect.stack()
                  if isinstance(f.frame.f_locals.get("self"), VpcService)
                  and not f.function.startswith("_") and f.function != "run"]
        name = frames[-1].function
        self.commits.append((name, is_mutator(getattr(VpcService, name))))
        return self.store.commit(ops)


def _every_write(api):
    """One successful call of every writing route, in an order that works."""
    api.ok("POST", "/v1/hosts", {"name": "h1", "dpid": 1, "tunnel_ip": "198.18.0.11",
                                 "external_port": "ext0", "external_ip": "203.0.113.11",
                                 "external_gateway": "203.0.113.1"})
    api.ok("POST", "/v1/hosts", {"name": "h2", "dpid": 2, "tunnel_ip": "198.18.0.12"})
    api.ok("POST", "/v1/tenants", {"name": "red", "network": "vxlan"})
    api.ok("PUT", "/v1/tenants/red/snat", {"enabled": True})
    api.ok("PATCH", "/v1/tenants/red/dhcp-options", {"ttl": 9})
    api.ok("POST", "/v1/tenants/red/subnets", {"cidr": "10.0.0.0/24"})
    api.ok("POST", "/v1/tenants/red/subnets", {"cidr": "10.1.0.0/24"})
    port = api.ok("POST", "/v1/tenants/red/ports", {"host": "h1", "port": "c1"})["id"]
    sg = "/v1/tenants/red/security-groups"
    api.ok("POST", sg, {"name": "web"})
    api.ok("PUT", sg + "/web", {"rules": []})
    rule = api.ok("POST", sg + "/web/rules", {"direction": "ingress"})["id"]
    api.ok("DELETE", f"{sg}/web/rules/{rule}")
    api.ok("PATCH", f"/v1/tenants/red/ports/{port}", {"security_groups": ["web"]})
    api.ok("PATCH", f"/v1/tenants/red/ports/{port}", {"security_groups": ["default"]})
    api.ok("DELETE", sg + "/web")
    fwd = api.ok("POST", "/v1/tenants/red/port-forwards",
                 {"port_id": port, "protocol": "tcp", "external_port": 2222,
                  "internal_port": 22})["id"]
    api.ok("DELETE", f"/v1/tenants/red/port-forwards/{fwd}")
    fip = api.ok("POST", "/v1/tenants/red/floating-ips",
                 {"port_id": port, "external_ip": "203.0.113.100"})["id"]
    api.ok("DELETE", f"/v1/tenants/red/floating-ips/{fip}")
    api.ok("DELETE", f"/v1/tenants/red/ports/{port}")
    api.ok("DELETE", "/v1/tenants/red/subnets/10.1.0.0_24")
    tok = api.ok("POST", "/v1/tenants/red/tokens", {"name": "ci"})["id"]
    api.ok("DELETE", f"/v1/tenants/red/tokens/{tok}")
    tok = api.ok("POST", "/v1/hosts/h2/tokens", {"name": "join"})["id"]
    api.ok("DELETE", f"/v1/hosts/h2/tokens/{tok}")
    api.ok("DELETE", "/v1/tenants/red")
    api.ok("DELETE", "/v1/hosts/h2")


def test_every_commit_comes_from_a_marked_operation(tmp_path):
    api = Api(tmp_path)
    recorder = RecordingStore(api.store)
    api.service.store = recorder
    try:
        _every_write(api)
    finally:
        api.store.close()
    unmarked = sorted({name for name, marked in recorder.commits if not marked})
    assert unmarked == []
    committed = {name for name, _ in recorder.commits}
    assert {r.handler for r in SERVICE_ROUTES if r.writes} == committed


def test_a_commit_outside_a_mutator_is_refused(tmp_path):
    class Careless(VpcService):
        def rename_nothing(self):        # commits, but nobody marked it
            self._commit([("del", "hosts", "h9")], ())

    api = Api(tmp_path)
    try:
        svc = Careless(api.state, RecordingStore(api.store))
        with pytest.raises(RuntimeError, match="@mutator"):
            svc.rename_nothing()
        assert svc.store.commits == []
    finally:
        api.store.close()


class ConflictingStore(RecordingStore):
    """Optimistic like etcd: the first `conflicts` commits find the model changed."""
    optimistic = True

    def __init__(self, store, conflicts):
        super().__init__(store)
        self.conflicts = conflicts
        self.refreshes = 0

    def refresh(self):
        self.refreshes += 1
        return []

    def commit(self, ops):
        if self.conflicts:
            self.conflicts -= 1
            raise StoreConflict("changed")
        return super().commit(ops)


def test_a_conflict_reruns_the_operation(tmp_path):
    api = Api(tmp_path)
    try:
        store = ConflictingStore(api.store, conflicts=2)
        svc = VpcService(api.state, store)
        host = svc.create_host({"name": "h1", "dpid": 1, "tunnel_ip": "198.18.0.11"})
        assert host["name"] == "h1" and store.refreshes == 2
        assert store.commits == [("create_host", True)]
    finally:
        api.store.close()


def test_endless_conflicts_give_409_busy(tmp_path, monkeypatch):
    monkeypatch.setattr(mutator_mod.time, "sleep", lambda s: None)
    api = Api(tmp_path)
    try:
        store = ConflictingStore(api.store, conflicts=10 ** 6)
        svc = VpcService(api.state, store)
        with pytest.raises(ApiError) as exc:
            svc.create_tenant({"name": "red", "network": "vxlan"})
        assert (exc.value.status, exc.value.code) == (409, "busy")
        assert store.refreshes == mutator_mod.CONFLICT_RETRIES
        assert "red" not in api.state.tenants
        assert not mutator_mod.active()
    finally:
        api.store.close()
