"""The topology graph's edge indexes (the tunnel mesh, the link edges) stay
equal to what a full rebuild from the graph gives, whatever order hosts,
switches, ports and links come and go in; an LLDP tick that changes nothing
keeps the compiler's cached snapshot."""
import random
from dataclasses import dataclass
from itertools import combinations

from topology.graph import Topology, host_node


@dataclass
class H:
    name: str
    dpid: int
    tunnel_ip: str


def mesh_by_rebuild(topo):
    """Tunnel edges as the graph should hold them: every pair of hosts whose
    bridge is connected, with both tunnel addresses."""
    g = topo.graph
    live = sorted(n for n, d in g.nodes(data=True) if d.get("kind") == "host"
                  and topo.connected(int(d["dpid"], 16)))
    return {(a, b): [g.nodes[a]["tunnel_ip"], g.nodes[b]["tunnel_ip"]]
            for a, b in combinations(live, 2)}


def mesh_in_graph(topo):
    return {tuple(sorted((a, b))): d["endpoints"]
            for a, b, d in topo.graph.edges(data=True) if d.get("kind") == "tunnel"}


def links_by_scan(topo):
    out = []
    for _, _, d in topo.graph.edges(data=True):
        if d.get("kind") == "link" and d.get("up"):
            a, b = d["ends"]
            out.append((int(a["dpid"], 16), a["port"], int(b["dpid"], 16), b["port"]))
    return sorted(out)


def test_mesh_and_links_stay_equal_to_a_rebuild_through_random_events():
    rng = random.Random(17)
    topo = Topology()
    hosts = {f"h{i}": H(f"h{i}", i + 1, f"192.0.2.{i + 1}") for i in range(6)}
    switches = [100, 101]
    topo.sync_hosts(hosts.values())
    for _ in range(400):
        ev = rng.randrange(7)
        dpid = rng.choice([h.dpid for h in hosts.values()] + switches)
        if ev == 0:
            topo.datapath_up(dpid)
            topo.set_ports(dpid, {"uplink": 1, "p2": 2})
        elif ev == 1:
            topo.datapath_down(dpid)
        elif ev == 2:        # a host moves to another tunnel address, or goes, or comes back
            name = rng.choice(sorted(hosts))
            hosts[name] = H(name, hosts[name].dpid, f"198.51.100.{rng.randrange(1, 250)}")
            shown = [h for n, h in hosts.items() if rng.random() > 0.2]
            topo.sync_hosts(shown)
        elif ev == 3:
            topo.port_deleted(dpid, rng.choice(["uplink", "p2"]))
        elif ev == 4:
            topo.port_added(dpid, "uplink", 1)
        else:
            ends = [(d, 1) for d in rng.sample(switches + [1, 2, 3], 2)]
            up = [tuple(ends)] if rng.random() < 0.7 else []
            down = [tuple(ends)] if not up else []
            topo.set_links(up, down)
        assert mesh_in_graph(topo) == mesh_by_rebuild(topo)
        assert topo.links() == links_by_scan(topo)
        assert list(topo.snapshot().links()) == topo.links()


def test_an_lldp_tick_that_changes_nothing_keeps_the_snapshot():
    topo = Topology()
    for d in (1, 2):
        topo.datapath_up(d)
        topo.set_ports(d, {"up": 7})
    assert topo.set_links([((1, 7), (2, 7))]) is True
    view = topo.snapshot()
    assert topo.set_links([((1, 7), (2, 7))]) is False
    assert topo.snapshot() is view
    assert topo.set_links([], [((1, 7), (2, 7))]) is True      # now down
    assert topo.snapshot() is not view and list(topo.snapshot().links()) == []


def test_a_connecting_switch_adds_only_its_own_tunnel_edges():
    topo = Topology()
    hosts = [H(f"h{i}", i + 1, f"192.0.2.{i + 1}") for i in range(4)]
    topo.sync_hosts(hosts)
    for h in hosts[:3]:
        topo.datapath_up(h.dpid)
    before = {e: id(topo.graph.edges[e]) for e in mesh_in_graph(topo)}
    topo.datapath_up(hosts[3].dpid)
    after = mesh_in_graph(topo)
    assert len(after) == 6 and all(id(topo.graph.edges[e]) == i for e, i in before.items())
    assert {e for e in after if e not in before} == {
        tuple(sorted((host_node(h.name), host_node("h3")))) for h in hosts[:3]}
