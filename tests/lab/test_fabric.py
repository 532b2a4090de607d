"""VLAN tenants over a fabric of OpenFlow switches (2 leaves x 2 spines, full
mesh: loops), discovered by LLDP, with failover.

Its own module-scoped lab (``fabric="leafspine"``, no outside network) and its
own controller.  h1 and h3 hang off leaf1, h2 off leaf2.  Two tenants share
10.0.0.0/24; blue's containers capture red's MACs for the whole module (the
last test checks they never saw one frame).  Timings are measured and
printed, never asserted.
"""
import contextlib
import json
import re
import secrets
import threading
import time
import warnings

import pytest

from vpclab import lablib
from vpclab.labfabric import active_port, arp_burst, fabric_rx_packets, ping_outage
from tests.support.labhelp import wait_for

ARP_TARGET = "10.0.0.200"          # nobody has it: every ARP for it is flooded
FABRIC_LINKS = 4                   # leaf-spine cables
HOST_LINKS = 3


def links(api):
    """Link edges of GET /v1/topology."""
    status, topo = api.get("/v1/topology")
    assert status == 200
    return [e for e in topo["links"] if e.get("kind") == "link"]


def fabric_links_up(api):
    return [e for e in links(api) if e["up"] and "attachment" not in e]


def discovered(api):
    up = [e for e in links(api) if e["up"]]
    return len(up) == FABRIC_LINKS + HOST_LINKS and \
        sum(1 for e in up if e.get("attachment") == "active") == HOST_LINKS


@pytest.fixture(scope="module")
def fab(controller_factory):
    ctl = controller_factory("fabctl")
    lab = lablib.Lab(name=f"vt{secrets.token_hex(2)}", hosts=3, of_port=ctl.of_port,
                     fabric="leafspine", external=False)
    lab.api_url, lab.controller, lab.api = ctl.url, ctl, ctl.api
    with contextlib.ExitStack() as stack:
        try:
            t0 = time.monotonic()
            lab.up()
            lab.join_all(ctl.url)
            lab.wait_connected(timeout=30, api_url=ctl.url)
            assert wait_for(lambda: discovered(ctl.api), timeout=20), links(ctl.api)
            print(f"\nfabric lab up, joined and discovered in {time.monotonic() - t0:.1f} s")
            lab.c = {}
            for tenant, members in (("red", [("r1", 1, "10.0.0.2"), ("r2", 2, "10.0.0.3"),
                                             ("r3", 3, "10.0.0.4")]),
                                    ("blue", [("b1", 1, "10.0.0.12"), ("b2", 2, "10.0.0.13")])):
                assert ctl.api.post("/v1/tenants", {"name": tenant, "network": "vlan"})[0] == 201
                assert ctl.api.post(f"/v1/tenants/{tenant}/subnets",
                                    {"cidr": "10.0.0.0/24"})[0] == 201
                for name, host, ip in members:
                    ns = lab.add_container(name, host=host)
                    lab.c[name] = dict(lab.attach(tenant, name, host, ctl.url, ip=ip), ns=ns)
            red_macs = " or ".join(f"ether host {lab.c[n]['mac']}" for n in ("r1", "r2", "r3"))
            lab.blue_views = [stack.enter_context(lab.tcpdump(lab.c[b]["ns"], "eth0", red_macs))
                              for b in ("b1", "b2")]
            yield lab
        finally:
            stack.close()
            problems = lab.down()
            leftovers = [n for n in lablib.list_netns() if n.startswith(lab.prefix)]
            if problems or leftovers:
                warnings.warn(f"lab {lab.name} teardown: {problems} {leftovers}")
            ctl.stop()


def ping(lab, src, dst, count=3):
    return lab.ping(lab.c[src]["ns"], lab.c[dst]["ip"], count=count, interval=0.2, wait=1.0)


def flood_counts(lab, src, receivers, count=20):
    """Send ``count`` broadcast ARPs from ``src``; {receiver: how many arrived}."""
    c = lab.c[src]
    filt = f"arp and ether src {c['mac']} and arp[24:4] = 0x0a0000c8"   # tpa 10.0.0.200
    with contextlib.ExitStack() as stack:
        caps = {r: stack.enter_context(lab.tcpdump(lab.c[r]["ns"], "eth0", filt, settle=0.5))
                for r in receivers}
        arp_burst(lab, c["ns"], c["mac"], c["ip"], ARP_TARGET, count=count, gap=0.01)
        for cap in caps.values():
            cap.wait_for("ARP", count=count, timeout=3)
    return {r: cap.count for r, cap in caps.items()}


def test_fabric_is_discovered_with_ports_and_one_tree(fab):
    status, topo = fab.api.get("/v1/topology")
    roles = {n["dpid"]: n.get("role") for n in topo["nodes"] if n.get("kind") == "datapath"}
    for sw in fab.fabric_switches():
        assert roles[fab.switch_dpid(sw)] == "fabric"
    for i in fab.hosts_range():
        assert roles[fab.dpid(i)] == "host"
    fabric = fabric_links_up(fab.api)
    assert len(fabric) == FABRIC_LINKS
    for e in fabric:
        names = sorted(end["name"] for end in e["ends"])
        assert all(isinstance(end["port"], int) and end["port"] > 0 for end in e["ends"])
        assert re.match(r"^l\d$", names[0]) and re.match(r"^s\d$", names[1]), names
    assert sum(e["in_tree"] for e in fabric) == len(fab.fabric_switches()) - 1   # a tree
    print("\ntree:", [sorted(f"{x['dpid'][-3:]}:{x['name']}" for x in e["ends"])
                      for e in fabric if e["in_tree"]])


def test_same_tenant_pings_across_hosts_and_leaves(fab):
    assert ping(fab, "r1", "r2")        # leaf1 -> spine -> leaf2
    assert ping(fab, "r2", "r3")
    assert ping(fab, "r1", "r3")        # both on leaf1
    assert ping(fab, "b1", "b2")
    assert not fab.ping(fab.c["r1"]["ns"], fab.c["b2"]["ip"], count=2)


def test_broadcast_delivered_exactly_once_per_container(fab):
    got = flood_counts(fab, "r1", ["r2", "r3", "b1"], count=20)
    print(f"\nARP broadcasts from r1 (20 sent): {got}")
    assert got == {"r2": 20, "r3": 20, "b1": 0}
    got = flood_counts(fab, "r2", ["r1", "r3"], count=20)
    print(f"ARP broadcasts from r2 (20 sent): {got}")
    assert got == {"r1": 20, "r3": 20}


def test_link_down_fails_over_without_storm(fab):
    """Cut the leaf1-spine cable r1 -> r2 uses, under a ping every 20 ms and a
    stream of broadcasts: the ping recovers (outage printed), no broadcast
    arrives twice, the fabric's packet counters show no storm."""
    r1, r2 = fab.c["r1"], fab.c["r2"]
    port, name = active_port(fab, "leaf1", r2["mac"])
    spine = int(name[1:])                        # leaf1's port s<n> faces spine n
    n_arp = 160                                  # ~5 s of broadcasts around the cut
    filt = f"arp and ether src {r1['mac']} and arp[24:4] = 0x0a0000c8"
    rx0 = fabric_rx_packets(fab)
    with fab.tcpdump(r2["ns"], "eth0", filt) as r2_view, \
            fab.tcpdump(fab.c["r3"]["ns"], "eth0", filt) as r3_view:
        stream = threading.Thread(target=arp_burst, args=(fab, r1["ns"], r1["mac"], r1["ip"],
                                                          ARP_TARGET),
                                  kwargs=dict(count=n_arp, gap=0.03))
        stream.start()
        result = ping_outage(fab, r1["ns"], r2["ip"], lambda: fab.fabric_link_down(1, spine),
                             interval=0.02, before=1.0, after=3.0)
        stream.join()
    rx = fabric_rx_packets(fab) - rx0
    print(f"\nfailover: cut leaf1-spine{spine} (leaf1 port {port}) under ping r1->r2 every "
          f"20 ms: {json.dumps(result)}")
    print(f"broadcasts during it: {n_arp} sent, r2 got {r2_view.count}, r3 got "
          f"{r3_view.count}; packets received by fabric ports meanwhile: {rx}")
    assert result["replies_after"] > 0, result         # it recovered
    assert 0 < r2_view.count <= n_arp and 0 < r3_view.count <= n_arp   # never twice
    assert rx < 20 * (n_arp + result["replies_before"] + result["replies_after"]) * 2
    assert len(fabric_links_up(fab.api)) == FABRIC_LINKS - 1
    new = active_port(fab, "leaf1", r2["mac"])
    assert new is not None and new[1] != name, new
    assert ping(fab, "r1", "r2") and ping(fab, "r2", "r1") and ping(fab, "r2", "r3")
    got = flood_counts(fab, "r1", ["r2", "r3"], count=20)
    print(f"ARP broadcasts from r1 after the cut (20 sent): {got}")
    assert got == {"r2": 20, "r3": 20}
    fab.cut_spine = spine


def test_link_up_restores_the_graph(fab):
    spine = getattr(fab, "cut_spine", None)
    if spine is None:
        pytest.skip("the link-down test did not cut a link")
    t0 = time.monotonic()
    fab.fabric_link_up(1, spine)
    assert wait_for(lambda: len(fabric_links_up(fab.api)) == FABRIC_LINKS, timeout=15)
    print(f"\nlink leaf1-spine{spine} back in the graph after {time.monotonic() - t0:.2f} s")
    assert discovered(fab.api)
    assert sum(e["in_tree"] for e in fabric_links_up(fab.api)) == len(fab.fabric_switches()) - 1
    assert ping(fab, "r1", "r2") and ping(fab, "b1", "b2")
    assert flood_counts(fab, "r1", ["r2", "r3"], count=20) == {"r2": 20, "r3": 20}


def test_a_link_broken_one_way_times_out(fab):
    """No port event: the leaf silently drops what the spine sends.  LLDP
    stops arriving one way and the link goes after VPC_LLDP_TIMEOUT (3 s)."""
    r1, r2 = fab.c["r1"], fab.c["r2"]
    _, name = active_port(fab, "leaf1", r2["mac"])
    spine = int(name[1:])
    try:
        t0 = time.monotonic()
        result = ping_outage(fab, r1["ns"], r2["ip"],
                             lambda: fab.fabric_link_silence(1, spine), interval=0.05,
                             before=0.5, after=6.0)
        print(f"\nleaf1 deaf to spine{spine}: ping r1->r2 every 50 ms: {json.dumps(result)}")
        assert result["replies_after"] > 0, result
        assert len(fabric_links_up(fab.api)) == FABRIC_LINKS - 1
        assert active_port(fab, "leaf1", r2["mac"])[1] != name
    finally:
        fab.fabric_link_silence(1, spine, silent=False)
    assert wait_for(lambda: len(fabric_links_up(fab.api)) == FABRIC_LINKS, timeout=15)
    print(f"link back after {time.monotonic() - t0:.1f} s in all")
    assert ping(fab, "r1", "r2")


def test_controller_restart_leaves_fabric_flows_alone(fab):
    """kill -9 and start again over the same state: fabric switches keep
    forwarding meanwhile (fail-secure), and once LLDP has found the links
    again their first reconcile adds and removes nothing."""
    ctl, r1, r2 = fab.controller, fab.c["r1"], fab.c["r2"]
    mark = ctl.log.stat().st_size
    result = ping_outage(fab, r1["ns"], r2["ip"], lambda: (ctl.kill9(), ctl.start()),
                         interval=0.05, before=0.5, after=1.0)
    dpids = [fab.switch_dpid(sw) for sw in fab.fabric_switches()]

    def first_reconciles():
        log = ctl.log.read_text(errors="replace")[mark:]
        return {d: m.group(1) for d in dpids
                for m in [re.search(rf"dpid {d} reconciled in \d+ ms: (.*)", log)] if m}

    assert wait_for(lambda: len(first_reconciles()) == len(dpids), timeout=30), \
        first_reconciles()
    print(f"\ncontroller restart under ping r1->r2 every 50 ms: {json.dumps(result)}; "
          f"fabric switches' first reconcile: {first_reconciles()}")
    assert all(v.startswith("0 added, 0 removed") for v in first_reconciles().values())
    assert result["replies_after"] > 0
    assert discovered(fab.api)
    assert ping(fab, "r1", "r2")


def test_no_cross_tenant_frame_at_any_point(fab):
    """Last: blue's containers captured red's MACs since the module began."""
    time.sleep(0.5)
    for view in fab.blue_views:
        assert view.count == 0, view.lines
