"""Fixtures for the lab tests: a real controller process and a real lab.

Everything under tests/lab needs root, Open vSwitch and socat.  Without them
each test is skipped with the reason -- unless CI=true, where a skipped lab
suite would hide a broken pipeline, so it fails instead.

Fixtures
--------
``controller_factory`` (session)  make(name="ctl", start=True, extra_env=None)
    -> Controller; every controller made is stopped at session end.
``controller`` (module)  one started Controller: ``.url``, ``.of_port``,
    ``.rest_port``, ``.state_dir``, ``.log``, ``.pid``, ``.api``, ``.start()``,
    ``.stop()``, ``.kill9()``, ``.restart()``, ``.alive``, ``.tail(n)``.
``api`` (function)  the ``Api`` class: ``api(url).get/post/put/delete(path,
    json=None) -> (status, body)``; never raises on HTTP errors.
``lab`` (module)  a ``lablib.Lab`` named ``vt<4 hex>`` with 3 hosts, joined
    to ``controller`` through scripts/host-join and connected; torn down at
    module end even on failure.  ``lab.api_url`` is the controller's URL.
``make_container`` (function)  make(name, host, tenant, ip=None, mac=None)
    -> port dict (+ "ns"): a container namespace attached with scripts/attach;
    detached and removed when the test ends, so the module's lab stays clean.

The controller runs from the project venv (``<repo>/.venv/bin/osken-manager``);
the fixtures themselves run in pytest's interpreter.  For developing these
fixtures without the real app, VPC_TEST_OSKEN_MANAGER and VPC_TEST_APP
override the manager binary and the app path.
"""
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
sys.path.insert(0, str(SCRIPTS))
import lablib  # noqa: E402

_ACTIVE = []    # running controllers, for log tails in failure reports


# --------------------------------------------------------------------------
# requirements

def _missing_requirement():
    if os.geteuid() != 0:
        return "lab tests need root (network namespaces, OVS daemons)"
    for tool in ("ovs-vswitchd", "ovsdb-server", "ovs-vsctl", "ovs-ofctl",
                 "ip", "socat", "tcpdump"):
        if shutil.which(tool) is None:
            return f"lab tests need {tool}: run scripts/setup"
    return None


def _skip_or_fail(reason):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the lab suite must not be skipped)",
                    pytrace=False)
    pytest.skip(reason)


def _reap_stale_labs():
    """Labs named like ours (vt + 4 hex) whose creating process is dead were
    left by a killed test run: remove them before making new ones."""
    if not os.path.isdir(lablib.BASE):
        return
    for name in os.listdir(lablib.BASE):
        if not re.match(r"^vt[0-9a-f]{4}$", name):
            continue
        st = lablib.Lab.load(name)._read_state()
        pid = st.get("up_pid")
        if not pid or not lablib.pid_alive(pid):
            lablib.Lab.load(name).down()


def pytest_collection_modifyitems(config, items):
    """Mark everything under tests/lab with ``lab`` so ``-m "not lab"``
    selects the quick suite without every test file remembering the mark."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session", autouse=True)
def _lab_requirements():
    reason = _missing_requirement()
    if reason:
        _skip_or_fail(reason)
    _reap_stale_labs()


# --------------------------------------------------------------------------
# REST helper

class Api:
    """Tiny JSON client: ``(status, body)``; body is parsed JSON, text, or
    None.  HTTP errors are returned, not raised, so tests assert on them."""

    def __init__(self, url, timeout=10):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def request(self, method, path, json_body=None):
        data = None if json_body is None else json.dumps(json_body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return r.status, _decode(r.read())
        except urllib.error.HTTPError as e:
            return e.code, _decode(e.read())

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, json=None):
        return self.request("POST", path, json)

    def put(self, path, json=None):
        return self.request("PUT", path, json)

    def delete(self, path, json=None):
        return self.request("DELETE", path, json)


def _decode(raw):
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


@pytest.fixture
def api():
    return Api


# --------------------------------------------------------------------------
# controller

def free_port():
    """A TCP port free on 127.0.0.1 right now (bind port 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Controller:
    """osken-manager running apps/vpc.py, REST and OpenFlow on 127.0.0.1.

    Ports and state dir are fixed at construction, so ``restart()`` brings
    back the same controller (same URL, same persisted state) -- what a
    restart test needs.
    """

    def __init__(self, workdir, extra_env=None):
        self.workdir = Path(workdir)
        self.state_dir = self.workdir / "state"
        self.log = self.workdir / "controller.log"
        self.rest_port = free_port()
        self.of_port = free_port()
        self.url = f"http://127.0.0.1:{self.rest_port}"
        self.api = Api(self.url)
        self.extra_env = dict(extra_env or {})
        self.proc = None
        self.manager = os.environ.get("VPC_TEST_OSKEN_MANAGER") or \
            str(REPO / ".venv" / "bin" / "osken-manager")
        self.app = os.environ.get("VPC_TEST_APP") or "apps/vpc.py"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=30):
        if self.alive:
            return self
        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(VPC_REST_HOST="127.0.0.1", VPC_REST_PORT=str(self.rest_port),
                   VPC_STATE=str(self.state_dir), PYTHONUNBUFFERED="1")
        env.update(self.extra_env)
        cmd = [self.manager, "--ofp-tcp-listen-port", str(self.of_port),
               "--ofp-listen-host", "127.0.0.1", self.app]
        with open(self.log, "a") as logf:
            logf.write(f"\n===== start {time.strftime('%H:%M:%S')}: {' '.join(cmd)}\n")
            logf.flush()
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=env,
                                         stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT,
                                         start_new_session=True)
        if self not in _ACTIVE:
            _ACTIVE.append(self)
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout=30):
        """Poll ``GET /v1/health`` until 200; fail early if the process dies."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"controller exited with {self.proc.returncode} "
                                   f"before answering /v1/health; log tail:\n{self.tail()}")
            try:
                status, _ = Api(self.url, timeout=2).get("/v1/health")
                if status == 200:
                    return
                last = f"HTTP {status}"
            except OSError as e:
                last = str(e)
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"controller not healthy after {timeout}s ({last}); "
                           f"log tail:\n{self.tail()}")

    def stop(self, timeout=10):
        """SIGTERM by pid, then SIGKILL after ``timeout``."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self in _ACTIVE:
            _ACTIVE.remove(self)

    def kill9(self):
        """Crash it: SIGKILL, no chance to clean up or flush state."""
        if self.alive:
            self.proc.kill()
            self.proc.wait(5)
        if self in _ACTIVE:
            _ACTIVE.remove(self)

    def restart(self, timeout=30):
        self.stop()
        return self.start(timeout)

    def tail(self, n=60):
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failing lab test, append each running controller's log tail to
    the report: most lab failures are explained there."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and call.when in ("setup", "call"):
        for c in list(_ACTIVE):
            rep.sections.append((f"controller log tail ({c.log})", c.tail(40)))


@pytest.fixture(scope="session")
def controller_factory(tmp_path_factory):
    made = []

    def make(name="ctl", start=True, extra_env=None):
        ctl = Controller(tmp_path_factory.mktemp(name), extra_env=extra_env)
        if not os.access(ctl.manager, os.X_OK):
            _skip_or_fail(f"{ctl.manager} missing: run scripts/setup")
        if not (REPO / ctl.app).exists():
            _skip_or_fail(f"controller app {ctl.app} does not exist yet")
        made.append(ctl)
        if start:
            ctl.start()
        return ctl

    yield make
    for ctl in made:
        ctl.stop()


@pytest.fixture(scope="module")
def controller(controller_factory):
    ctl = controller_factory("ctl")
    yield ctl
    ctl.stop()


# --------------------------------------------------------------------------
# lab

@pytest.fixture(scope="module")
def lab(controller):
    lab = lablib.Lab(name=f"vt{secrets.token_hex(2)}", hosts=3,
                     of_port=controller.of_port)
    lab.api_url = controller.url
    lab.controller = controller
    try:
        lab.up()
        lab.join_all(controller.url)
        lab.wait_connected(timeout=30, api_url=controller.url)
        yield lab
    finally:
        problems = lab.down()
        leftovers = [n for n in lablib.list_netns() if n.startswith(lab.prefix)]
        if problems or leftovers:
            warnings.warn(f"lab {lab.name} teardown: {problems} {leftovers}")


@pytest.fixture
def make_container(lab):
    made = []

    def make(name, host, tenant, ip=None, mac=None):
        ns = lab.add_container(name, host=host)
        made.append((name, host, tenant, None))
        port = lab.attach(tenant, name, host, lab.api_url, ip=ip, mac=mac)
        made[-1] = (name, host, tenant, port["id"])
        return dict(port, ns=ns)

    yield make
    for name, host, tenant, port_id in reversed(made):
        if port_id:
            lab.detach(tenant, port_id, host, lab.api_url, check=False)
        lab.del_container(name)
