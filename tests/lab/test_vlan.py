"""VLAN tenants on real OVS: the foundation's end-to-end promises.

One 3-host lab for the module (fixtures in conftest.py); each test makes its
own tenants and containers and removes them.
"""
import re

import pytest
from tests.support.labhelp import flows_of, make_tenant, pings, wait_for

ARP_FLOOD_TARGET = "10.0.0.200"     # nobody has it: every ARP for it is flooded


@pytest.fixture
def two_tenants(api, lab, make_container, request):
    """The demo's picture: red and blue, both 10.0.0.0/24, on different hosts,
    with blue's first port holding the same IP as red's first port."""
    suffix = request.node.name[-6:].strip("[]_").replace("-", "")[:4] or "x"
    red, blue = f"red{suffix}", f"blue{suffix}"
    make_tenant(api, lab, red)
    make_tenant(api, lab, blue)
    c = {
        "r1": make_container("r1", 1, red, ip="10.0.0.2"),
        "r2": make_container("r2", 2, red, ip="10.0.0.3"),
        "b1": make_container("b1", 2, blue, ip="10.0.0.2"),
        "b2": make_container("b2", 3, blue, ip="10.0.0.4"),
    }
    yield red, blue, c
    # containers are detached by make_container; then the tenants can go
    for t in (red, blue):
        api(lab.api_url).delete(f"/v1/tenants/{t}")


def test_same_tenant_pings_cross_hosts_and_other_tenants_are_unreachable(lab, two_tenants):
    red, blue, c = two_tenants
    assert pings(lab, c["r1"]["ns"], "10.0.0.3")          # red h1 -> red h2
    assert pings(lab, c["b1"]["ns"], "10.0.0.4")          # blue h2 -> blue h3
    assert pings(lab, c["r2"]["ns"], "10.0.0.2")          # reaches red's .2, not blue's .2
    neigh = lab.exec(c["r2"]["ns"], "ip", "neigh", "show", "10.0.0.2").stdout
    assert c["r1"]["mac"] in neigh and c["b1"]["mac"] not in neigh
    assert not pings(lab, c["r1"]["ns"], "10.0.0.4", count=2)   # blue's address
    assert not pings(lab, c["b2"]["ns"], "10.0.0.3", count=2)   # red's address


def test_other_tenant_sees_zero_frames(lab, two_tenants):
    """tcpdump in blue's container next to red's sees none of red's broadcast,
    ARP or ping traffic; red's own container is the positive control."""
    red, blue, c = two_tenants
    red_macs = f"ether host {c['r1']['mac']} or ether host {c['r2']['mac']}"
    with lab.tcpdump(c["b1"]["ns"], "eth0", red_macs) as blue_view, \
            lab.tcpdump(c["r2"]["ns"], "eth0", f"ether src {c['r1']['mac']}") as red_view:
        arping(lab, c["r1"]["ns"], ARP_FLOOD_TARGET, count=3)
        lab.exec(c["r1"]["ns"], "ping", "-c", "5", "-i", "0.2", "-b", "10.0.0.255", check=False)
        assert pings(lab, c["r1"]["ns"], "10.0.0.3", count=5)
        red_view.wait_for(".", count=5, timeout=5)
    assert blue_view.count == 0, blue_view.lines
    assert red_view.count >= 5


def arping(lab, ns, ip, count=3):
    """iputils' arping takes -I for the interface, Habets' arping -i: accept both
    (scripts/setup installs iputils-arping unless the other is already there)."""
    version = lab.exec(ns, "arping", "-V", check=False)
    flag = "-I" if "iputils" in version.stdout + version.stderr else "-i"
    return lab.exec(ns, "arping", "-c", str(count), "-w", "3", flag, "eth0", ip, check=False)


def test_tenant_traffic_crosses_the_fabric_tagged_with_its_vlan(api, lab, two_tenants):
    red, blue, c = two_tenants
    seg = api(lab.api_url).get(f"/v1/tenants/{red}")[1]["segment"]
    # the host's uplink peer lives in the fabric namespace, named after the host
    with lab.tcpdump(lab.fab_ns, "h1", f"vlan {seg} and icmp") as cap:
        assert pings(lab, c["r1"]["ns"], "10.0.0.3", count=3)
        cap.wait_for("ICMP", count=2, timeout=5)
    assert cap.count >= 2
    assert all(f"vlan {seg}" in line for line in cap.lines)


def test_port_attached_before_its_veth_exists_works_once_it_appears(api, lab, make_container,
                                                                    request):
    t = "late" + request.node.name[-3:].replace("_", "")
    make_tenant(api, lab, t)
    peer = make_container("lp", 2, t)
    a = api(lab.api_url)
    status, port = a.post(f"/v1/tenants/{t}/ports", {"host": "h1", "port": "late0"})
    assert status == 201 and port["status"] == "down"
    assert "late0" not in lab.ovs_vsctl(1, "list-ports", "br-int")
    ns = lab.add_container("late")
    try:
        # what scripts/attach would do, minus the REST call: plug a veth in later
        lab.exec(lab.host_ns(1), "ip", "link", "add", "late0", "type", "veth", "peer", "name",
                 "eth0", "netns", ns)
        lab.exec(ns, "ip", "link", "set", "eth0", "address", port["mac"])
        lab.exec(ns, "ip", "addr", "add", f"{port['ip']}/{port['prefixlen']}", "dev", "eth0")
        lab.exec(ns, "ip", "link", "set", "eth0", "up")
        lab.exec(ns, "ethtool", "-K", "eth0", "tx", "off", check=False)
        lab.exec(lab.host_ns(1), "ip", "link", "set", "late0", "up")
        lab.ovs_vsctl(1, "add-port", "br-int", "late0")
        assert wait_for(lambda: a.get(f"/v1/tenants/{t}/ports/{port['id']}")[1]["status"] == "up")
        assert wait_for(lambda: pings(lab, ns, peer["ip"], count=1), timeout=10)
        # ... and when the port goes away, so do its flows
        ofport = a.get(f"/v1/tenants/{t}/ports/{port['id']}")[1]["ofport"]
        lab.ovs_vsctl(1, "del-port", "br-int", "late0")
        assert wait_for(lambda: f"in_port={ofport} " not in flows_of(lab, 1, "table=0") and
                        f"in_port={ofport}," not in flows_of(lab, 1, "table=0"))
        assert a.get(f"/v1/tenants/{t}/ports/{port['id']}")[1]["status"] == "down"
    finally:
        lab.ovs_vsctl(1, "--if-exists", "del-port", "br-int", "late0", check=False)
        lab.del_container("late")
        a.delete(f"/v1/tenants/{t}/ports/{port['id']}")


def test_detaching_a_port_stops_its_traffic(api, lab, make_container, request):
    t = "det" + request.node.name[-3:].replace("_", "")
    make_tenant(api, lab, t)
    x = make_container("dx", 1, t)
    y = make_container("dy", 3, t)
    assert pings(lab, x["ns"], y["ip"])
    # Only the REST detach: the veth stays plugged in, so only flows can stop it.
    status, _ = api(lab.api_url).delete(f"/v1/tenants/{t}/ports/{y['id']}")
    assert status == 204
    assert wait_for(lambda: y["mac"] not in flows_of(lab, 3), timeout=10)
    assert not pings(lab, x["ns"], y["ip"], count=2)
    assert not pings(lab, y["ns"], x["ip"], count=2)


def test_controller_restart_keeps_tenants_and_traffic(api, lab, make_container, request):
    t = "rst" + request.node.name[-3:].replace("_", "")
    make_tenant(api, lab, t)
    x = make_container("rx", 1, t)
    y = make_container("ry", 2, t)
    assert pings(lab, x["ns"], y["ip"])
    ctl = lab.controller
    ctl.kill9()
    # fail-mode secure: the flows stay, traffic goes on without a controller
    assert pings(lab, x["ns"], y["ip"], count=5)
    mark = ctl.log.stat().st_size
    ctl.start()
    a = api(lab.api_url)
    status, tenant = a.get(f"/v1/tenants/{t}")
    assert status == 200 and tenant["ports"] == 2
    assert len(a.get(f"/v1/tenants/{t}/ports")[1]) == 2
    lab.wait_connected(timeout=30, api_url=lab.api_url)
    assert pings(lab, x["ns"], y["ip"], count=3)
    # a restart over unchanged state re-installs nothing
    log = ctl.log.read_text()[mark:]
    assert wait_for(lambda: len(re.findall(r"reconciled in .* 0 added, 0 removed",
                                           ctl.log.read_text()[mark:])) >= 3, timeout=15), log
    assert not re.search(r"reconciled in .*: [1-9]\d* added", ctl.log.read_text()[mark:])
