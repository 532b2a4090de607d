"""The topology page draws a trace as a path (headless Chromium, no lab; skipped
without Chromium as tests/unit/api/test_ui.py is)."""
import re

from tests.support.chromium import browse, chromium
from tests.unit.api.test_ui import served  # noqa: F401


def verdict(dom):
    m = re.search(r'<p id="trace-verdict"([^>]*)>([^<]*)</p>', dom)
    assert m, dom[:2000]
    return dict(re.findall(r'data-([a-z]+)="([^"]*)"', m.group(1))), m.group(2)


def test_trace_path_over_the_picture(served):  # noqa: F811
    chromium()
    api, topo, url = served
    for i in (1, 2):
        api.ok("POST", "/v1/hosts", {"name": f"h{i}", "dpid": i,
                                     "tunnel_ip": f"198.18.0.{10 + i}"})
    topo.sync_hosts(api.state.hosts.values())
    api.ok("POST", "/v1/tenants", {"name": "red", "network": "vxlan"})
    api.ok("POST", "/v1/tenants/red/subnets", {"cidr": "10.0.0.0/24"})
    for h, port in (("h1", "r1"), ("h2", "r2")):
        api.ok("POST", "/v1/tenants/red/ports", {"host": h, "port": port})
    for dpid, ports in ((1, {"vxlan0": 2, "gre0": 3, "r1": 10}),
                        (2, {"vxlan0": 2, "gre0": 3, "r2": 10})):
        topo.datapath_up(dpid)
        topo.set_ports(dpid, ports)
    attrs, text = verdict(browse(url + "/ui?trace=red&from=r1&to=r2", budget_ms=8000))
    assert (attrs["code"], attrs["action"]) == ("delivered", "delivered"), text
    assert attrs["path"] == "6"          # r1, br-int, vxlan0 of h1; vxlan0, br-int, r2 of h2
    assert text.startswith("DELIVERED: delivered to port ")
    attrs, text = verdict(browse(url + "/ui?trace=red&from=r1&to=10.0.0.99", budget_ms=8000))
    assert attrs["code"] == "not_in_tenant" and text.startswith("DROPPED: dropped: no port")
    attrs, text = verdict(browse(url + "/ui?trace=red&from=nope&to=r2", budget_ms=8000))
    assert attrs["code"] == "refused" and "has no port 'nope'" in text
