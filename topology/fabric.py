"""The physical fabric as a graph: shortest paths and one loop-free flood tree.

Pure and deterministic (no clock, no randomness, no dependence on the order
links were learned in): the same switches, hosts and links give the same
paths and the same tree.  Used by the compiler (controller/compile_fabric.py)
and by the topology's REST view (which links the tree uses).

Vocabulary
  fabric switch  a connected datapath that is not a registered host's bridge
  link           (dpid_a, port_a, dpid_b, port_b), up, learned by LLDP
  attachment     where a host's uplink meets the fabric: (switch, port).  A host
                 linked to several fabric ports uses one (the lowest switch,
                 then port); the others are standby: the fabric ignores what
                 arrives there, so a host is never reached twice.
  tree           a spanning forest of the fabric switches (BFS from the
                 best-connected switch of each component, neighbours in dpid
                 order; parallel links: the lowest port pair)

Hosts are leaves: paths and the tree run over fabric switches only, never
through a host's bridge (split horizon there would drop the frames anyway).
"""
from functools import lru_cache

import networkx as nx


class Fabric:
    def __init__(self, switches, hosts, links):
        """switches, hosts: dpids; links: (dpid_a, port_a, dpid_b, port_b), up."""
        self.switches = tuple(sorted(set(switches)))
        self.hosts = tuple(sorted(set(hosts) - set(self.switches)))
        sw, hs = set(self.switches), set(self.hosts)
        g = nx.Graph()
        g.add_nodes_from(self.switches)
        ports = {}            # (u, v) -> (port on u, port on v), the lowest pair
        host_ports = {}       # host -> [(switch, switch port)]
        for a, pa, b, pb in sorted(tuple(lk) for lk in links):
            if a in sw and b in sw and a != b:
                for (u, pu), (v, pv) in (((a, pa), (b, pb)), ((b, pb), (a, pa))):
                    if (u, v) not in ports or (pu, pv) < ports[(u, v)]:
                        ports[(u, v)] = (pu, pv)
                g.add_edge(a, b)
            elif a in sw and b in hs:
                host_ports.setdefault(b, []).append((a, pa))
            elif b in sw and a in hs:
                host_ports.setdefault(a, []).append((b, pb))
        self.graph = g
        self._ports = ports
        self.attachments = {h: min(eps) for h, eps in sorted(host_ports.items())}
        self.standby = sorted(ep for h, eps in host_ports.items() for ep in eps
                              if ep != self.attachments[h])
        self.tree = self._spanning_forest()
        self._dist = {}

    # --- links ---------------------------------------------------------------
    def port_to(self, u, v):
        """u's port on the link it uses towards neighbour v."""
        return self._ports[(u, v)][0]

    def link(self, u, v):
        """(u, port on u, v, port on v) of the link u uses towards v."""
        pu, pv = self._ports[(u, v)]
        return (u, pu, v, pv)

    # --- shortest paths --------------------------------------------------------
    def distances(self, dst):
        if dst not in self._dist:
            self._dist[dst] = nx.single_source_shortest_path_length(self.graph, dst)
        return self._dist[dst]

    def next_hop(self, sw, dst):
        """The neighbour of ``sw`` one hop closer to ``dst`` (lowest dpid of
        those), or None when dst is sw or unreachable.  Every hop lowers the
        distance, so forwarding on next hops cannot loop."""
        dist = self.distances(dst) if dst in self.graph else {}
        if sw == dst or sw not in dist:
            return None
        return min(n for n in self.graph[sw] if dist.get(n) == dist[sw] - 1)

    def path(self, src, dst):
        """Switches from src to dst along next hops, or None if unreachable."""
        if dst not in self.graph or src not in self.distances(dst):
            return None
        out = [src]
        while out[-1] != dst:
            out.append(self.next_hop(out[-1], dst))
        return out

    # --- the flood tree --------------------------------------------------------------
    def _spanning_forest(self):
        tree = nx.Graph()
        tree.add_nodes_from(self.switches)
        for comp in sorted((sorted(c) for c in nx.connected_components(self.graph))):
            root = min(comp, key=lambda n: (-self.graph.degree(n), n))
            seen, frontier = {root}, [root]
            while frontier:
                nxt = []
                for u in frontier:
                    for v in sorted(self.graph[u]):
                        if v not in seen:
                            seen.add(v)
                            tree.add_edge(u, v)
                            nxt.append(v)
                frontier = nxt
        return tree

    def subtree(self, terminals):
        """The part of the tree that joins ``terminals`` (switches): the tree
        with every branch leading to no terminal pruned away."""
        terminals = set(terminals) & set(self.switches)
        keep = set()
        for comp in nx.connected_components(self.tree):
            if comp & terminals:
                keep |= comp
        sub = self.tree.subgraph(keep).copy()
        leaves = [n for n in sub if sub.degree(n) <= 1 and n not in terminals]
        while leaves:
            n = leaves.pop()
            nbrs = list(sub[n])
            sub.remove_node(n)
            leaves += [m for m in nbrs if sub.degree(m) <= 1 and m not in terminals]
        return sub

    def tree_links(self):
        """Links the tree uses, as (dpid_a, port_a, dpid_b, port_b), a < b."""
        return sorted(self.link(*sorted(e)) for e in self.tree.edges)


@lru_cache(maxsize=16)
def _cached(switches, hosts, links):
    return Fabric(switches, hosts, links)


def fabric_for(switches, hosts, links):
    """A Fabric, shared between the compiles of one topology (same input,
    same object: it is read-only after construction except its distance
    cache, which is a pure function of the graph)."""
    return _cached(tuple(sorted(set(switches))), tuple(sorted(set(hosts))),
                   tuple(sorted(tuple(lk) for lk in links)))
