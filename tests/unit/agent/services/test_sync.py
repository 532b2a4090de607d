"""The long poll against a fake controller route; persistence; controller down."""
import copy
import json
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.jsonhttp import send_json
from tests.unit.agent.services.conftest import VIEW
from vpcagent.controller import Controller
from vpcagent.services import sync as sync_mod
from vpcagent.services.sync import Sync
from vpcagent.services.view import Store, state_path


class FakeController:
    """GET /v1/hosts/h1/services?since&wait as the controller will serve it;
    ``view`` None: the route does not exist (404, an old controller)."""

    def __init__(self, view=None):
        self.view = view
        self.requests = []
        self.changed = threading.Condition()
        fake = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(u.query))
                fake.requests.append((u.path, q, self.headers.get("Authorization")))
                if fake.view is None or u.path != "/v1/hosts/h1/services":
                    return self.reply(404, {"error": {"code": "not_found",
                                                      "message": "no such route"}})
                deadline = time.monotonic() + min(float(q.get("wait", 0)), 30)
                with fake.changed:
                    while fake.view.get("etag") == q.get("since") and \
                            time.monotonic() < deadline:
                        fake.changed.wait(deadline - time.monotonic())
                    body = copy.deepcopy(fake.view)
                self.reply(200, body)

            def reply(self, status, body):
                send_json(self, status, body)

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"
        threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def publish(self, view):
        with self.changed:
            self.view = view
            self.changed.notify_all()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def fake():
    f = FakeController(copy.deepcopy(VIEW))
    yield f
    f.stop()


def free_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def test_first_poll_gets_the_view_and_saves_it(fake, tmp_path):
    store = Store(state_path(str(tmp_path), "h1"))
    s = Sync(Controller(fake.url, "h1", token="tok"), store, wait=2)
    assert s.poll() == 0.0
    assert store.view.etag == "e1" and 7 in store.view.ports
    assert json.load(open(store.path))["etag"] == "e1"
    path, q, auth = fake.requests[0]
    assert q == {"wait": "2"} and auth == "Bearer tok"        # no since: no view yet


def test_long_poll_waits_and_wakes_on_a_change(fake, tmp_path):
    store = Store(state_path(str(tmp_path), "h1"))
    s = Sync(Controller(fake.url, "h1"), store, wait=5)
    s.poll()
    changed = copy.deepcopy(VIEW)
    changed["etag"] = "e2"
    changed["ports"] = changed["ports"][:1]
    threading.Timer(0.3, fake.publish, args=(changed,)).start()
    t0 = time.monotonic()
    assert s.poll() == 0.0
    assert 0.2 < time.monotonic() - t0 < 3
    assert fake.requests[-1][1] == {"wait": "5", "since": "e1"}
    assert store.view.etag == "e2" and sorted(store.view.ports) == [7]
    assert json.load(open(store.path))["etag"] == "e2"


def test_unchanged_view_after_wait(fake, tmp_path):
    store = Store(str(tmp_path / "v.json"))
    s = Sync(Controller(fake.url, "h1"), store, wait=0.2)
    s.poll()
    before = store.view
    assert s.poll() >= 0 and store.view is before       # same etag: nothing rebuilt


def test_controller_down_at_start_uses_the_saved_view(tmp_path):
    path = state_path(str(tmp_path), "h1")
    Store(path).set(copy.deepcopy(VIEW))                 # a previous run saved it
    store = Store(path)
    s = Sync(Controller(free_url(), "h1", timeout=1), store, wait=1)
    delays = [s.poll(), s.poll(), s.poll()]
    assert store.loaded and store.view.etag == "e1" and 7 in store.view.ports
    assert delays == [1.0, 2.0, 4.0]                     # backoff
    for _ in range(10):
        s.poll()
    assert s.backoff == sync_mod.MAX_BACKOFF


def test_controller_down_later_keeps_the_view_in_memory(fake, tmp_path):
    store = Store(None)
    s = Sync(Controller(fake.url, "h1", timeout=1), store, wait=1)
    s.poll()
    fake.stop()
    assert s.poll() >= 1.0
    assert store.view.etag == "e1" and 7 in store.view.ports


def test_old_controller_404_is_logged_once(tmp_path, caplog):
    f = FakeController(None)
    try:
        s = Sync(Controller(f.url, "h1"), Store(str(tmp_path / "v.json")), wait=1)
        assert [s.poll(), s.poll()] == [sync_mod.OLD_CONTROLLER_RETRY] * 2
        assert sum("has no /v1/hosts/h1/services" in r.message for r in caplog.records) == 1
        f.publish(copy.deepcopy(VIEW))                   # upgraded: served again
        assert s.poll() == 0.0 and s.store.view.etag == "e1"
    finally:
        f.stop()


def test_a_reply_that_is_not_a_view_keeps_the_old_one(fake, tmp_path):
    store = Store(None)
    s = Sync(Controller(fake.url, "h1"), store, wait=1)
    s.poll()
    fake.publish({"etag": "e3", "ports": "nonsense"})
    assert s.poll() >= 1.0 and store.view.etag == "e1"


def test_run_stops_and_never_dies(fake):
    store = Store(None)
    s = Sync(Controller(fake.url, "h1"), store, wait=0.3)
    calls = {"n": 0}
    real = s.poll

    def flaky():
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("boom")
        return real()

    s.poll = flaky
    sync_mod.MAX_BACKOFF, old = 0.1, sync_mod.MAX_BACKOFF
    stop = threading.Event()
    try:
        t = s.start(stop)
        deadline = time.monotonic() + 5
        while calls["n"] < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert calls["n"] >= 4 and store.view.etag == "e1"
    finally:
        stop.set()
        sync_mod.MAX_BACKOFF = old
    t.join(3)
    assert not t.is_alive()
