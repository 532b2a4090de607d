"""The topology page (GET /ui) drawn by a real headless Chromium, without a lab:
the REST API over a made-up topology (3 hosts, one not connected, a fabric
switch) is served on 127.0.0.1, and the page's own counters are read back
from the DOM Chromium dumps.  Skipped when Chromium is not installed (under
CI=true it fails instead: scripts/setup installs it)."""
import os
import re
import shutil
import subprocess
import tempfile
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from controller.metrics import Metrics
from controller.ui import UiApp
from tests.unit.test_rest import Api
from topology.graph import Topology

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("chromium is not installed (CI=true: run scripts/setup)", pytrace=False)
    pytest.skip("chromium is not installed (scripts/setup installs it)")


def browse(url, screenshot=None, budget_ms=6000, size="1400,860"):
    """Load url in headless Chromium with `budget_ms` of virtual time (the
    page's fetches and timers run), return the DOM as Chromium serialises it
    (or write a PNG to `screenshot`)."""
    exe = chromium()
    with tempfile.TemporaryDirectory(prefix="vpc-chromium-") as profile:
        cmd = [exe] + CHROMIUM_FLAGS + [f"--user-data-dir={profile}",
                                        f"--virtual-time-budget={budget_ms}",
                                        f"--window-size={size}"]
        cmd += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
        p = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=90,
                           stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


def summary(dom):
    """The data-* attributes of the page's #summary element, as ints."""
    m = re.search(r'<span id="summary"([^>]*)>', dom)
    assert m, dom[:2000]
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', m.group(1)))
    return {k: int(v) for k, v in attrs.items() if v.isdigit()}


def page_state(url, want=lambda s: s.get("rendered", 0) > 0, tries=3):
    """Load the page until `want(summary)` holds (the controller may still be
    catching up); returns (summary, title, dom)."""
    for _ in range(tries):
        dom = browse(url)
        s = summary(dom)
        if want(s):
            break
    title = re.search(r"<title>([^<]*)</title>", dom).group(1)
    return s, title, dom


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    """The API (state in tmp_path) + /metrics + /ui on a free 127.0.0.1 port."""
    api = Api(tmp_path)
    topo = Topology()

    class Facts:     # what the app tells the service about switches
        def host_connected(self, dpid):
            return topo.connected(dpid)

        def port_number(self, dpid, name):
            return topo.port_number(dpid, name)

    api.service.topology = Facts()
    api.app.topology_json = topo.node_link
    metrics = Metrics()
    server = make_server("127.0.0.1", 0, metrics.wsgi(api.app, mounts={"/ui": UiApp()}),
                         handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api, topo, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        api.store.close()


def test_page_draws_hosts_ports_and_states(served):
    chromium()
    api, topo, url = served
    for i in (1, 2, 3):
        api.ok("POST", "/v1/hosts", {"name": f"h{i}", "dpid": i,
                                     "tunnel_ip": f"198.18.0.{10 + i}"})
    topo.sync_hosts(api.state.hosts.values())
    for t, net in (("red", "vlan"), ("blue", "vxlan")):
        api.ok("POST", "/v1/tenants", {"name": t, "network": net})
        api.ok("POST", f"/v1/tenants/{t}/subnets", {"cidr": "10.0.0.0/24"})
    for t, h, port in (("red", "h1", "r1"), ("red", "h2", "r2"), ("blue", "h1", "b1"),
                       ("blue", "h3", "b3")):
        api.ok("POST", f"/v1/tenants/{t}/ports", {"host": h, "port": port})
    # h1 and h2 connected with their ports; h3 registered but never connected
    for dpid, ports in ((1, {"patch-phy": 1, "vxlan0": 2, "r1": 3, "b1": 4}),
                        (2, {"patch-phy": 1, "vxlan0": 2, "r2": 3})):
        topo.datapath_up(dpid)
        topo.set_ports(dpid, ports)
    has_links = hasattr(topo, "set_links")
    if has_links:     # a fabric switch linked to both hosts' uplinks (LLDP)
        topo.datapath_up(0x100)
        topo.set_ports(0x100, {"p1": 1, "p2": 2})
        topo.set_links([((1, 1), (0x100, 1)), ((2, 1), (0x100, 2))])

    s, title, dom = page_state(url + "/ui")
    assert s["hosts"] == 3 and s["hosts-up"] == 2, s
    assert s["ports"] == 4 and s["ports-up"] == 3, s          # b3's host is down
    assert s["tunnels"] == 1, s                               # h1 -- h2 only
    if has_links:
        assert s["switches"] == 1 and s["links"] == 2, s
    assert title == "VPC topology: 3 hosts, 4 ports"
    assert 'id="error" hidden' in dom
    for name in ("red", "blue"):
        assert f"<strong>{name}</strong>" in dom              # the tenants' legend

    # the page follows the controller: a new port appears on the next refresh
    api.ok("POST", "/v1/tenants/blue/ports", {"host": "h2", "port": "b2"})
    topo.port_added(2, "b2", 4)
    s, title, _ = page_state(url + "/ui/", want=lambda s: s.get("ports") == 5)
    assert (s["ports"], s["ports-up"]) == (5, 4)


def test_page_says_so_when_the_api_fails():
    chromium()

    def broken_api(environ, start_response):
        start_response("503 Service Unavailable", [("Content-Type", "application/json")])
        return [b'{"error": {"code": "down", "message": "down"}}']

    server = make_server("127.0.0.1", 0, Metrics().wsgi(broken_api, mounts={"/ui": UiApp()}),
                         handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        dom = browse(f"http://127.0.0.1:{server.server_port}/ui", budget_ms=3000)
    finally:
        server.shutdown()
        server.server_close()
    assert summary(dom)["rendered"] == 0
    assert re.search(r'<span id="error">controller unreachable \(/v1/[a-z]+: HTTP 503\)', dom), \
        dom[:3000]
