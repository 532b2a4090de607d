"""The physical fabric: LLDP frames and link liveness, paths and the flood
tree on generated graphs, the fabric compiler, and broadcasts through a
leaf-spine with loops in the flow simulator (exactly once, never a loop),
also while flows change from one tree to another."""
import itertools
import random

import networkx as nx
import pytest

from controller import flowsim
from controller.flowsim import SimError
from controller.compile.pipeline import OFPVID_PRESENT, Prio, describe_cookie
from topology import lldp
from topology.fabric import Fabric, fabric_for
from topology.graph import Topology
from tests.support.fabric_world import FABRIC_BASE, FabricWorld

# --- LLDP frames ----------------------------------------------------------------
@pytest.mark.parametrize("dpid,port", [(1, 1), (0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FF00),
                                       (0x1234_5678_9ABC_DEF0, 65534), (7, 4242)])
def test_lldp_round_trip(dpid, port):
    frame = lldp.encode(dpid, port, "02:aa:bb:cc:dd:ee")
    assert len(frame) >= 60
    assert frame[:6] == bytes.fromhex("0180c200000e")
    assert frame[6:12] == bytes.fromhex("02aabbccddee")
    assert frame[12:14] == b"\x88\xcc"
    assert lldp.decode(frame) == (dpid, port)


def test_lldp_decode_refuses_what_is_not_ours():
    good = lldp.encode(5, 3, "02:00:00:00:00:01")
    assert lldp.decode(b"") is None
    assert lldp.decode(good[:20]) is None                      # truncated TLV
    assert lldp.decode(good[:12] + b"\x08\x00" + good[14:]) is None   # not LLDP
    # a chassis id that is a MAC (subtype 4), as a real switch sends
    foreign = good[:14] + bytes([0x02, 0x07, 0x04]) + bytes(6) + good[14 + 2 + 22:]
    assert lldp.decode(foreign) is None
    for n in range(200):                                       # never raises
        rnd = random.Random(n)
        junk = good[:14] + bytes(rnd.randrange(256) for _ in range(rnd.randrange(60)))
        lldp.decode(junk)


def test_lldp_rejects_impossible_ends():
    with pytest.raises(ValueError):
        lldp.encode(1, 0, "02:00:00:00:00:01")
    with pytest.raises(ValueError):
        lldp.encode(-1, 1, "02:00:00:00:00:01")


# --- link liveness -------------------------------------------------------------------
A, B, C = (1, 1), (2, 7), (3, 2)


def both(t, a, b, now):
    return t.observe(a, b, now) + t.observe(b, a, now)


def test_a_switch_link_is_up_once_seen_both_ways_and_down_after_timeout():
    t = lldp.LinkTable(timeout=3)
    assert t.observe(A, B, now=0) == []                   # one way: not yet
    assert t.up() == []
    assert t.observe(B, A, now=0.5) == [(lldp.canonical(A, B), "up")]
    assert t.up() == [lldp.canonical(A, B)]
    assert both(t, A, B, now=2) == []
    assert t.expire(now=4.9) == []
    assert t.expire(now=5.1) == [(lldp.canonical(A, B), "down")]
    assert t.up() == [] and t.down() == [lldp.canonical(A, B)]
    assert both(t, A, B, now=8) == [(lldp.canonical(A, B), "up")]
    assert t.down() == []


def test_a_link_that_fails_one_way_goes_down_and_stays_down():
    t = lldp.LinkTable(timeout=3)
    both(t, A, B, now=0)
    for now in (1, 2, 3):
        t.observe(A, B, now=now)                 # B -> A went silent at 0
    assert t.expire(now=3.5) == [(lldp.canonical(A, B), "down")]
    for now in (4, 5, 6, 7):
        assert t.observe(A, B, now=now) == []    # its working way alone: no
        t.expire(now=now)
    assert t.up() == []
    assert t.observe(B, A, now=7.5) == [(lldp.canonical(A, B), "up")]   # repaired


def test_a_host_uplink_lives_on_its_one_direction():
    t = lldp.LinkTable(timeout=3)
    assert t.observe(A, B, now=0, one_way=True) == [(lldp.canonical(A, B), "up")]
    t.observe(A, B, now=2, one_way=True)
    assert t.expire(now=4.9) == []
    assert t.expire(now=5.1) == [(lldp.canonical(A, B), "down")]


def test_port_down_removes_at_once_and_ignores_frames_in_flight():
    t = lldp.LinkTable(timeout=3)
    both(t, A, B, now=0)
    assert t.port_down(B, now=1) == [(lldp.canonical(A, B), "down")]
    assert both(t, A, B, now=1.01) == []         # sent before the cable was pulled
    assert t.up() == []
    t.port_up(B)
    assert both(t, A, B, now=2) == [(lldp.canonical(A, B), "up")]


def test_deleted_port_and_departed_datapath_forget_their_links():
    t = lldp.LinkTable(timeout=3)
    both(t, A, B, now=0)
    both(t, C, (2, 8), now=0)
    assert t.port_gone(B, now=1) == [(lldp.canonical(A, B), "down")]
    assert t.down() == []                          # not remembered as "down"
    assert t.datapath_gone(3, now=1) == [(lldp.canonical(C, (2, 8)), "down")]
    assert t.up() == [] and t.down() == []


def test_a_port_has_one_neighbour_the_latest():
    t = lldp.LinkTable(timeout=3)
    both(t, A, B, now=0)
    changes = both(t, C, B, now=1)               # recabled: B now faces C
    assert (lldp.canonical(A, B), "down") in changes
    assert (lldp.canonical(C, B), "up") in changes
    assert t.up() == [lldp.canonical(C, B)]


def test_a_frame_looped_back_to_its_own_port_is_no_link():
    t = lldp.LinkTable(timeout=3)
    assert t.observe(A, A, now=0) == []


# --- paths and the flood tree on generated graphs ------------------------------------
def fabric_from_graph(g, order=None):
    """nx graph of switch indexes -> Fabric (dpid = FABRIC_BASE + index + 1;
    ports numbered per switch in neighbour order)."""
    dpid = {n: FABRIC_BASE + i + 1 for i, n in enumerate(sorted(g))}
    nextport = {n: 1 for n in g}
    links = []
    for u, v in sorted(g.edges):
        links.append((dpid[u], nextport[u], dpid[v], nextport[v]))
        nextport[u] += 1
        nextport[v] += 1
    if order is not None:
        order.shuffle(links)
    return Fabric(dpid.values(), [], links), dpid


def graphs():
    out = [("cycle5", nx.cycle_graph(5)), ("cycle8", nx.cycle_graph(8)),
           ("k4", nx.complete_graph(4)), ("k6", nx.complete_graph(6)),
           ("leafspine", nx.complete_bipartite_graph(3, 2)),
           ("grid", nx.grid_2d_graph(3, 3))]
    for seed in range(6):
        out.append((f"random{seed}", nx.connected_watts_strogatz_graph(10, 4, 0.4, seed=seed)))
        out.append((f"gnp{seed}", nx.gnp_random_graph(9, 0.45, seed=100 + seed)))
    return [(name, g) for name, g in out if nx.is_connected(g)]


@pytest.mark.parametrize("name,g", graphs(), ids=[n for n, _ in graphs()])
def test_tree_spans_every_switch_without_a_cycle(name, g):
    fab, _ = fabric_from_graph(g)
    assert set(fab.tree) == set(fab.switches)
    assert nx.is_tree(fab.tree)
    assert all(fab.graph.has_edge(u, v) for u, v in fab.tree.edges)
    # deterministic whatever order the links were learned in
    again, _ = fabric_from_graph(g, order=random.Random(name))
    assert again.tree_links() == fab.tree_links()


@pytest.mark.parametrize("name,g", graphs(), ids=[n for n, _ in graphs()])
def test_every_pair_has_a_shortest_path(name, g):
    fab, _ = fabric_from_graph(g)
    for a, b in itertools.permutations(fab.switches, 2):
        path = fab.path(a, b)
        assert path[0] == a and path[-1] == b
        assert len(path) - 1 == nx.shortest_path_length(fab.graph, a, b)
        assert all(fab.graph.has_edge(u, v) for u, v in zip(path, path[1:]))


@pytest.mark.parametrize("name,g", graphs(), ids=[n for n, _ in graphs()])
def test_subtree_joins_the_terminals_and_nothing_more(name, g):
    fab, _ = fabric_from_graph(g)
    rnd = random.Random(name)
    for k in (1, 2, 3, len(fab.switches)):
        terminals = set(rnd.sample(fab.switches, k))
        sub = fab.subtree(terminals)
        assert terminals <= set(sub)
        assert nx.is_tree(sub)
        assert all(n in terminals for n in sub if sub.degree(n) <= 1 and len(sub) > 1)


def test_partitioned_fabric_gives_a_forest_and_no_path_across():
    g = nx.disjoint_union(nx.cycle_graph(4), nx.path_graph(3))
    fab, dpid = fabric_from_graph(g)
    assert nx.is_forest(fab.tree) and nx.number_connected_components(fab.tree) == 2
    assert fab.path(dpid[0], dpid[5]) is None
    assert fab.next_hop(dpid[0], dpid[5]) is None


def test_parallel_links_use_the_lowest_ports():
    fab = Fabric([1, 2], [], [(1, 5, 2, 9), (1, 3, 2, 4), (2, 1, 1, 8)])
    assert fab.link(1, 2) == (1, 3, 2, 4) and fab.link(2, 1) == (2, 1, 1, 8)


def test_a_host_linked_twice_uses_one_attachment():
    fab = Fabric([101, 102], [1], [(101, 1, 102, 1), (1, 1, 102, 5), (1, 2, 101, 6)])
    assert fab.attachments == {1: (101, 6)}
    assert fab.standby == [(102, 5)]


# --- a fabric world: hosts' br-int on controlled fabric switches ----------------------


LEAFSPINE = {1: [3, 4], 2: [3, 4], 3: [1, 2], 4: [1, 2]}     # leaves 1, 2; spines 3, 4
TENANTS = [("red", "vlan", 10), ("blue", "vlan", 20), ("green", "vxlan", 30)]
PORTS = [("red", 1, "10.0.0.2"), ("red", 2, "10.0.0.3"), ("red", 3, "10.0.0.4"),
         ("red", 3, "10.0.0.5"), ("blue", 1, "10.0.0.2"), ("blue", 3, "10.0.0.3"),
         ("green", 1, "10.0.0.2"), ("green", 2, "10.0.0.3")]
RED = ["p1", "p2", "p3", "p4"]
BLUE = ["p5", "p6"]


def leafspine(**kw):
    return FabricWorld(LEAFSPINE, {1: 1, 2: 2, 3: 2}, TENANTS, PORTS, **kw)


def test_every_fabric_flow_is_one_ovs_would_accept():
    w = leafspine()
    for d, flows in w.flows.items():
        for f in flows:
            flowsim.install_check(f)


def test_broadcast_reaches_each_port_of_the_tenant_exactly_once():
    w = leafspine()
    for group in (RED, BLUE):
        for src in group:
            got = w.broadcast(src)
            assert sorted(pid for pid, _ in got) == sorted(p for p in group if p != src)
            assert all("vlan_vid" not in pkt for _, pkt in got)


def test_unicast_reaches_only_its_port_across_the_fabric():
    w = leafspine()
    for a, b in itertools.permutations(RED, 2):
        assert [pid for pid, _ in w.unicast(a, b)] == [b]
    # red's frame to blue's MAC (same IP) goes nowhere
    assert w.unicast("p1", "p6") == []


def test_unicast_follows_a_shortest_path():
    w = leafspine()
    w.unicast("p1", "p2")                       # h1 on leaf 1 -> h2 on leaf 2
    assert [h.switch for h in w.net.hops] == ["h1", "s1", "s3", "s2", "h2"]


def test_fabric_switches_hold_only_what_they_need():
    w = leafspine()
    spine3, spine4, leaf1 = w.flows[FABRIC_BASE + 3], w.flows[FABRIC_BASE + 4], w.flows[FABRIC_BASE + 1]
    base = {(f.priority, f.match) for f in spine4}
    # spine 4 is on no path and not in the tree: only LLDP and the drop
    assert base == {(Prio.FABRIC.LLDP, (("eth_type", 0x88CC),)), (Prio.FABRIC.MISS, ())}
    # no fabric flow mentions the VXLAN tenant, nor a switch-internal table
    for flows in (spine3, leaf1):
        assert {f.table for f in flows} == {0}
        assert all(describe_cookie(f.cookie)["kind"] == "fabric" for f in flows)
        vids = {dict(f.match).get("vlan_vid") for f in flows} - {None}
        assert vids <= {OFPVID_PRESENT | 10, OFPVID_PRESENT | 20}
    # spine 3 carries red's and blue's MACs both ways, but leaf 1 floods blue
    # only between its tree port and h1 (blue lives on h1 and h3)
    macs = {dict(f.match)["eth_dst"] for f in spine3 if f.priority == Prio.FABRIC.PATH}
    assert macs == {w.state.ports[p].mac for p in RED + BLUE}
    # h2 and h3 share leaf 2: red between them never needs leaf 1's flows for
    # p2 <-> p3, but p1 needs the path to them
    assert any(dict(f.match).get("eth_dst") == w.state.ports["p2"].mac for f in leaf1)


def test_a_tenant_on_one_switch_stays_there():
    w = FabricWorld(LEAFSPINE, {1: 2, 2: 2, 3: 1}, [("red", "vlan", 10)],
                    [("red", 1, "10.0.0.2"), ("red", 2, "10.0.0.3")])
    for s in (1, 3, 4):
        assert len(w.flows[FABRIC_BASE + s]) == 2     # LLDP + drop
    assert sorted(p for p, _ in w.broadcast("p1")) == ["p2"]
    assert [p for p, _ in w.unicast("p1", "p2")] == ["p2"]


def test_host_flows_do_not_change_with_the_fabric():
    w = leafspine()
    for h in (1, 2, 3):
        assert w.flows[h] == w.w.flows[f"h{h}"]


def test_a_cut_link_reroutes_and_keeps_broadcast_exactly_once():
    for down in ([(1, 3)], [(2, 3)], [(1, 4)], [(2, 4)]):
        w = leafspine(down=down)
        for src in RED:
            assert sorted(p for p, _ in w.broadcast(src)) == sorted(p for p in RED if p != src)
        for a, b in itertools.permutations(RED, 2):
            assert [pid for pid, _ in w.unicast(a, b)] == [b], (down, a, b)


def test_a_partitioned_fabric_keeps_each_side_working():
    w = leafspine(down=[(1, 3), (2, 4)])           # leaf1-spine4 | leaf2-spine3
    assert w.broadcast("p1") == []                   # h1 is alone on its side
    assert sorted(p for p, _ in w.broadcast("p2")) == ["p3", "p4"]
    assert w.unicast("p1", "p2") == []
    assert [p for p, _ in w.unicast("p2", "p3")] == ["p3"]


def test_standby_attachment_drops_what_arrives_there():
    w = FabricWorld(LEAFSPINE, {1: [1, 2], 2: 2}, [("red", "vlan", 10)],
                    [("red", 1, "10.0.0.2"), ("red", 2, "10.0.0.3")])
    leaf2 = {(f.priority, f.match): f for f in w.flows[FABRIC_BASE + 2]}
    assert (Prio.FABRIC.STANDBY_DROP, (("in_port", 101),)) in leaf2
    assert not any(("output", 101) in f.actions for f in leaf2.values())


# --- random fabrics, random hosts: broadcast exactly once, never a loop ---------------
@pytest.mark.parametrize("seed", range(8))
def test_random_fabric_broadcast_exactly_once(seed):
    rnd = random.Random(seed)
    g = nx.connected_watts_strogatz_graph(6, 3, 0.5, seed=seed)
    switches = {n + 1: sorted(m + 1 for m in g[n]) for n in g}
    hosts = 4
    attach = {h: rnd.randint(1, 6) for h in range(1, hosts + 1)}
    ports = [("red", rnd.randint(1, hosts), f"10.0.0.{i}") for i in range(2, 8)]
    w = FabricWorld(switches, attach, [("red", "vlan", 10)], ports)
    pids = [f"p{i}" for i in range(1, len(ports) + 1)]
    for src in pids:
        got = sorted(p for p, _ in w.broadcast(src))
        assert got == sorted(p for p in pids if p != src)
        for dst in pids:
            if dst != src:
                assert [p for p, _ in w.unicast(src, dst)] == [dst]


# --- changing trees: two phases never loop, a direct switch-over can ----------------
SQUARE = {1: [2, 4], 2: [1, 3], 3: [2, 4], 4: [1, 3]}
SQUARE_ATTACH = {1: 1, 2: 2, 3: 3, 4: 4}
SQUARE_PORTS = [("red", h, f"10.0.0.{h + 1}") for h in (1, 2, 3, 4)]


def square(down=()):
    return FabricWorld(SQUARE, SQUARE_ATTACH, [("red", "vlan", 10)], SQUARE_PORTS, down=down)


def mixed(old, new, in_new):
    return {d: (new.flows[d] if d - FABRIC_BASE in in_new else old.flows[d])
            for d in old.flows}


def deliveries_or_loop(world, flows):
    world.wire(SQUARE, SQUARE_ATTACH, flows=flows)
    try:
        return [sorted(p for p, _ in world.broadcast(src)) for src in ("p1", "p2", "p3", "p4")]
    except SimError:
        return "loop"


def test_switching_trees_directly_can_loop_two_phases_cannot():
    old, new = square(down=[(1, 2)]), square()      # the link 1-2 comes back
    assert old.flows != new.flows
    subsets = [set(c) for k in range(5) for c in itertools.combinations((1, 2, 3, 4), k)]
    # a direct switch-over: some switches old, some new -> a loop exists
    assert any(deliveries_or_loop(old, mixed(old, new, s)) == "loop" for s in subsets)
    # two phases: old -> (old & new) -> new, any mix within a phase
    reduced = {d: frozenset(old.flows[d] & new.flows[d]) for d in old.flows}
    mid = type("W", (), {"flows": reduced})
    for s in subsets:
        for a, b in ((old, mid), (mid, new)):
            got = deliveries_or_loop(old, mixed(a, b, s))
            assert got != "loop", s
            for src, recv in zip(("p1", "p2", "p3", "p4"), got):
                assert len(recv) == len(set(recv)), (s, src, recv)   # never twice


# --- the topology graph -------------------------------------------------------------------
def test_topology_keeps_links_with_ports_and_marks_the_tree():
    topo = Topology()
    for d in (101, 102, 103):
        topo.datapath_up(d)
        topo.set_ports(d, {"a": 1, "b": 2, "c": 3})
    up = [((101, 1), (102, 1)), ((102, 2), (103, 1)), ((101, 2), (103, 2))]
    down = [((101, 3), (102, 3))]
    assert topo.set_links(up, down)
    assert not topo.set_links(up, down)             # nothing new for the compiler
    assert topo.snapshot().links() == ((101, 1, 102, 1), (101, 2, 103, 2), (102, 2, 103, 1))
    data = topo.node_link()
    links = [e for e in data["links"] if e.get("kind") == "link"]
    assert len(links) == 4
    assert sum(e["in_tree"] for e in links) == 2    # a triangle's tree has two edges
    assert [e["up"] for e in links].count(False) == 1
    assert not any(e["in_tree"] for e in links if not e["up"])
    roles = {n["id"]: n.get("role") for n in data["nodes"] if n.get("kind") == "datapath"}
    assert set(roles.values()) == {"fabric"}
    topo.port_deleted(102, "b")
    assert topo.snapshot().links() == ((101, 1, 102, 1), (101, 2, 103, 2))


def test_fabric_for_is_shared_between_compiles_of_one_topology():
    a = fabric_for([1, 2], [], [(1, 1, 2, 1)])
    assert fabric_for([2, 1], [], [(1, 1, 2, 1)]) is a


def test_lldp_settings_come_from_the_environment():
    from controller.config import Config, ConfigError
    c = Config.from_env({"VPC_LLDP_INTERVAL": "0.5", "VPC_LLDP_TIMEOUT": "2"})
    assert (c.lldp_interval, c.lldp_timeout) == (0.5, 2.0)
    assert (Config.from_env({}).lldp_interval, Config.from_env({}).lldp_timeout) == (1.0, 3.0)
    for bad in ({"VPC_LLDP_INTERVAL": "x"}, {"VPC_LLDP_INTERVAL": "0"},
                {"VPC_LLDP_INTERVAL": "2", "VPC_LLDP_TIMEOUT": "1"}):
        with pytest.raises(ConfigError):
            Config.from_env(bad)


def test_topology_marks_host_attachments_active_and_standby():
    from controller.model.state import Host
    topo = Topology()
    topo.sync_hosts([Host(name="h1", dpid=1, tunnel_ip="198.18.0.11", uplink_port="patch-phy")])
    for d, ports in ((1, {"patch-phy": 1}), (101, {"h1": 5, "s": 1}), (102, {"h1": 6, "s": 1})):
        topo.datapath_up(d)
        topo.set_ports(d, ports)
    topo.set_links([((1, 1), (101, 5)), ((1, 1), (102, 6)), ((101, 1), (102, 1))])
    data = topo.node_link()
    roles = {n["dpid"]: n.get("role") for n in data["nodes"] if n.get("kind") == "datapath"}
    assert roles == {f"{1:016x}": "host", f"{101:016x}": "fabric", f"{102:016x}": "fabric"}
    host_links = {e["ends"][1]["dpid"]: (e["attachment"], e["in_tree"])
                  for e in data["links"] if e.get("attachment")}
    assert host_links == {f"{101:016x}": ("active", True), f"{102:016x}": ("standby", False)}
