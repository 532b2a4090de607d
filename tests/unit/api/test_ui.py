"""The topology page (GET /ui) drawn by a real headless Chromium, without a lab:
the REST API over a made-up topology (3 hosts, one not connected, a fabric
switch) is served on 127.0.0.1, and the page's own counters are read back
from the DOM Chromium dumps.  Skipped when Chromium is not installed (under
CI=true it fails instead: scripts/setup installs it)."""
import re
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from controller.api.metrics import Metrics
from controller.api.ui import UiApp
from tests.support.rest_api import Api
from topology.graph import Topology
from tests.support.chromium import browse, chromium, page_state, summary

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

        def port_link_down(self, dpid, name):
            return topo.port_link_down(dpid, name)

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
