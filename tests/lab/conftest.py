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
import os
import re
import secrets
import shutil
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
from vpclab import lablib  # noqa: E402
# The controller process and the REST client live in vpclab/labctl.py so the
# benchmarks (bench/) start the controller exactly the same way.
from vpclab.labctl import ACTIVE as _ACTIVE, Api, Controller, free_port  # noqa: E402,F401


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
# REST helper and controller (both from vpclab/labctl.py)

@pytest.fixture
def api():
    return Api


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
