"""The etcd store under faults, with a real etcd on loopback and a client
that loses answers on purpose.

- an answer lost after the commit applied: the re-sent txn finds its own
  request id and the write counts once (no conflict, no second port);
- the store gone for longer than the budget: 503 store_unavailable with
  Retry-After through the REST app, nothing written, never 500;
- a commit whose every answer is lost: 503 outcome_unknown; the next refresh
  finds it applied exactly once;
- transient vs permanent gateway errors.
"""
import json
import shutil
import socket

import pytest
import webob

pytest.importorskip("etcd3gw")
if shutil.which("etcd") is None:
    pytest.skip("etcd not installed (scripts/setup)", allow_module_level=True)

import etcd3gw  # noqa: E402

from controller.api.rest import RestApi  # noqa: E402
from controller.model.state import State  # noqa: E402
from controller.service.vpc import VpcService  # noqa: E402
from controller.store.base import StoreError, StoreUnavailable  # noqa: E402
from controller.store.etcd_client import Etcd  # noqa: E402
from controller.store.etcd_store import EtcdStore  # noqa: E402
from vpclab.labmulti import EtcdCluster  # noqa: E402

WIPE = {"key": "L3ZwYy8=", "range_end": "L3ZwYzA="}      # /vpc/ .. /vpc0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = EtcdCluster(tmp_path_factory.mktemp("etcdf"), members=1)
    c.start()
    yield c
    c.stop()


class LossyClient:
    """Wraps an etcd3gw client: `lose` txns are sent (and applied) but their
    answer is replaced by a timeout; `drop` calls fail before sending."""

    def __init__(self, inner):
        self.inner, self.lose, self.drop, self.calls = inner, 0, 0, 0

    def get_url(self, path):
        return self.inner.get_url(path)

    def post(self, url, **kw):
        self.calls += 1
        if self.drop:
            self.drop -= 1
            raise etcd3gw.exceptions.ConnectionFailedError("Connection refused")
        result = self.inner.post(url, **kw)
        if self.lose and url.endswith("kv/txn"):
            self.lose -= 1
            raise etcd3gw.exceptions.ConnectionTimeoutError("Read timed out")
        return result


def _service(cluster, budget=3.0):
    store = EtcdStore(cluster.endpoints.split(","), budget=budget)
    store.etcd.post("kv/deleterange", WIPE)
    svc = VpcService(State(store.load()), store)
    svc.create_host({"name": "h1", "dpid": "1", "tunnel_ip": "192.0.2.1"})
    svc.create_tenant({"name": "t", "network": "vxlan"})
    svc.create_subnet("t", {"cidr": "10.0.0.0/24"})
    lossy = LossyClient(store.etcd.clients[0])
    store.etcd.clients[0] = lossy
    store.etcd.sleep = lambda s: None
    return svc, store, lossy


def _call(app, method, path, body=None):
    req = webob.Request.blank(path, method=method, environ={"REMOTE_ADDR": "127.0.0.1"})
    if body is not None:
        req.body = json.dumps(body).encode()
        req.content_type = "application/json"
    resp = req.get_response(app)
    return resp.status_code, json.loads(resp.body) if resp.body else None, resp.headers


def test_a_lost_answer_is_recognised_not_redone(cluster):
    svc, store, lossy = _service(cluster)
    lossy.lose = 1
    port = svc.create_port("t", {"host": "h1", "port": "p1"})
    assert store.stats["recognised_commits"] == 1 and store.stats["conflicts"] == 0
    other = EtcdStore(cluster.endpoints.split(","))
    ports = other.load()["ports"]
    assert list(ports) == [port["id"]]          # exactly once
    # and the model goes on: the next write conflicts with nobody
    svc.create_port("t", {"host": "h1", "port": "p2"})
    assert len(other.load()["ports"]) == 2


def test_store_away_longer_than_the_budget_is_503_with_retry_after(cluster):
    svc, store, lossy = _service(cluster, budget=0.3)
    store.etcd.sleep = __import__("time").sleep
    lossy.drop = 10 ** 6
    app = RestApi(svc)
    status, body, headers = _call(app, "POST", "/v1/tenants", {"name": "u", "network": "gre"})
    assert status == 503, body
    assert body["error"]["code"] == "store_unavailable"
    assert "nothing was written" in body["error"]["message"]
    assert int(headers["Retry-After"]) >= 1
    assert store.etcd.stats["retries"] > 0 and store.stats["unavailable_replies"] == 1
    lossy.drop = 0
    assert "u" not in EtcdStore(cluster.endpoints.split(",")).load().get("tenants", {})
    assert "u" not in svc.state.tenants
    # etcd back: the same request works, once
    assert _call(app, "POST", "/v1/tenants", {"name": "u", "network": "gre"})[0] == 201


def test_every_answer_lost_is_outcome_unknown_then_settled_once(cluster):
    svc, store, lossy = _service(cluster, budget=0.5)
    store.etcd.sleep = __import__("time").sleep
    lossy.lose = 10 ** 6
    app = RestApi(svc)
    status, body, headers = _call(app, "POST", "/v1/tenants/t/ports",
                                  {"host": "h1", "port": "lost"})
    assert status == 503 and body["error"]["code"] == "outcome_unknown", body
    assert "Retry-After" in headers
    lossy.lose = 0
    # the first copy applied (and only it: every re-sent copy found /vpc/rev moved)
    svc.refresh()
    assert [p.port for p in svc.state.ports.values()] == ["lost"]
    assert store.stats["unknown_outcomes"] == 1 and store.stats["unknown_committed"] == 1


def test_transient_and_permanent_errors():
    e = Etcd(["http://127.0.0.1:1"], budget=0)
    exc = etcd3gw.exceptions
    assert e.transient(exc.ConnectionFailedError("Connection refused")) == (True, False)
    assert e.transient(exc.ConnectionFailedError('{"error":"etcdserver: no leader"}')) == \
        (True, True)
    assert e.transient(exc.ConnectionTimeoutError("Read timed out"))[0]
    assert e.transient(exc.InternalServerError("etcdserver: leader changed"))[0]
    assert e.transient(exc.Etcd3Exception("etcdserver: request timed out", "Bad Gateway"))[0]
    assert not e.transient(exc.Etcd3Exception("etcdserver: too many operations in txn "
                                              "request", "Bad Request"))[0]


def test_nobody_listening_fails_within_the_budget():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]            # closed again when the block ends
    e = Etcd([f"http://127.0.0.1:{port}"], timeout=0.2, budget=0.3)
    with pytest.raises(StoreUnavailable) as info:
        e.get("/x")
    assert info.value.maybe_sent is False and e.stats["unavailable"] == 1
    assert isinstance(info.value, StoreError)


def test_a_refusal_on_a_stale_model_is_checked_again(cluster):
    """A tenant made through controller A a moment ago is not a 404 through
    controller B, whose watch has not caught up yet: B's refusal finds its
    model behind etcd, refreshes and runs the operation again."""
    a, store_a, _ = _service(cluster)
    store_b = EtcdStore(cluster.endpoints.split(","))
    b = VpcService(State(store_b.load()), store_b)
    a.create_tenant({"name": "fresh", "network": "vxlan"})
    a.create_subnet("fresh", {"cidr": "10.1.0.0/24"})
    port = b.create_port("fresh", {"host": "h1", "port": "pf"})
    assert port["ip"].startswith("10.1.0.") and store_b.stats["stale_refusal_retries"] >= 1
    # a refusal on a current model stays a refusal, at the price of one read
    with pytest.raises(Exception) as info:
        b.create_port("nosuch", {"host": "h1", "port": "px"})
    assert getattr(info.value, "status", None) == 404


def test_metrics_count_store_faults_and_elections(cluster):
    from prometheus_client import CollectorRegistry, generate_latest
    from controller.ha.election import Election
    from controller.ha.roles import Roles
    svc, store, lossy = _service(cluster)
    lossy.lose = 1
    svc.create_port("t", {"host": "h1", "port": "pm"})
    r = Roles.__new__(Roles)
    r.store, r.store_kind, r.started = store, "etcd", {}
    r.election = Election(store.etcd, "m", ttl=2)
    r.election.step()
    reg = CollectorRegistry()
    r.register_metrics(reg)
    text = generate_latest(reg).decode()
    for line in ("vpc_store_recognised_commits_total 1.0", "vpc_store_retries_total 1.0",
                 "vpc_leader_elected_total 1.0", 'vpc_controller_leader{role="master"'):
        assert line in text, text
    r.election.stop()


def test_one_deadline_caps_every_call_inside_it():
    """A request's conflict loop makes several etcd calls; together they stay
    within one budget: inside an expired deadline a call makes one attempt
    and gives up, whatever its own budget."""
    from controller.store.etcd_client import deadline
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    e = Etcd([f"http://127.0.0.1:{port}"], timeout=0.2, budget=60, sleep=lambda s: None)
    with deadline(0):
        with pytest.raises(StoreUnavailable):
            e.get("/x")
    assert e.stats["retries"] == 0 and e.stats["unavailable"] == 1
