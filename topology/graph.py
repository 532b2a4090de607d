"""What the controller knows about the network, as one networkx graph.

Nodes (ids are strings so node-link JSON is plain):
  host:<name>            a registered host (from the model): tunnel_ip, dpid
  dp:<dpid16>            an OpenFlow datapath (a host's br-int or a fabric switch)
  port:<dpid16>:<name>   a port of a datapath, with its OpenFlow number
Edges:
  host -- dp             kind="bridge": the host's integration bridge
  dp -- port             kind="port"
  host -- host           kind="tunnel": the logical overlay mesh between hosts
                         whose bridges are connected (tunnel endpoints)
  port -- port           kind="link": a physical link between two datapaths,
                         learned by LLDP (topology/lldp.py): up true/false,
                         ends [{dpid, port, name}] with OpenFlow port numbers

The compiler never sees the graph: `snapshot()` hands it an immutable view,
so a compile is a pure function of (model, snapshot, dpid).
"""
from dataclasses import dataclass, field
from itertools import combinations
from types import MappingProxyType

import networkx as nx

from topology.fabric import fabric_for


def dp_node(dpid):
    return f"dp:{dpid:016x}"


def port_node(dpid, name):
    return f"port:{dpid:016x}:{name}"


def host_node(name):
    return f"host:{name}"


@dataclass(frozen=True)
class DatapathView:
    connected: bool
    ports: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    macs: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    gateway_mac: object = None     # the external gateway's MAC, once ARP found it


class TopoView:
    """Immutable facts for the compiler: per dpid, connected and name->ofport;
    and the physical links that are up, as (dpid_a, port_a, dpid_b, port_b)."""

    def __init__(self, datapaths, links=()):
        self._dps = MappingProxyType(dict(datapaths))
        self._links = tuple(sorted(tuple(lk) for lk in links))

    def links(self):
        """Up links between datapaths: sorted (dpid_a, port_a, dpid_b, port_b)."""
        return self._links

    def fabric(self, host_dpids):
        """The Fabric (topology/fabric.py) between the hosts' bridges: every
        connected datapath that is not one of `host_dpids` is a fabric switch.
        The one place that says so, for the compiler and for the graph's
        node-link view alike."""
        hosts = set(host_dpids)
        switches = [d for d in self.dpids() if self.connected(d) and d not in hosts]
        return fabric_for(switches, hosts, self.links())

    def connected(self, dpid):
        dp = self._dps.get(dpid)
        return bool(dp and dp.connected)

    def ports(self, dpid):
        dp = self._dps.get(dpid)
        return dp.ports if dp else MappingProxyType({})

    def port_mac(self, dpid, name):
        dp = self._dps.get(dpid)
        return dp.macs.get(name) if dp else None

    def gateway_mac(self, dpid):
        dp = self._dps.get(dpid)
        return dp.gateway_mac if dp else None

    def dpids(self):
        return sorted(self._dps)

    @classmethod
    def build(cls, spec, links=()):
        """For tests: {dpid: {"connected": bool, "ports": {name: ofport},
        "macs": {name: mac}, "gateway_mac": mac}}, links [(a, pa, b, pb)]."""
        return cls({d: DatapathView(s.get("connected", True), MappingProxyType(dict(s["ports"])),
                                    MappingProxyType(dict(s.get("macs", {}))),
                                    s.get("gateway_mac"))
                    for d, s in spec.items()}, links)


class Topology:
    """The live graph.  Every mutation goes through a method here and bumps
    ``version``; ``snapshot()`` is cached per version, so compiling a hundred
    switches after one event builds the TopoView once, not a hundred times."""

    def __init__(self):
        self.graph = nx.Graph()
        self.version = 0
        # Indexes of the edges the graph holds by kind, so that neither the
        # LLDP loop (links, every second) nor a switch connecting (the tunnel
        # mesh) walks every edge: at 100 hosts x 50 ports that was 10,000
        # edges per call, and the mesh was rebuilt whole (4,950 edges) for
        # each of 100 connecting switches.  Port and datapath removals drop
        # edges by themselves: an index entry is checked against the graph.
        self._mesh_live = {}       # host node -> tunnel ip, of the mesh's hosts
        self._link_edges = set()   # (node a, node b) of kind "link"
        self._snapshot = None      # (version, TopoView)
        self._presumed = frozenset()

    # --- after a controller restart ----------------------------------------
    def presume_connected(self, dpids):
        """The compiler's view counts these datapaths as connected until they
        connect or `stop_presuming` gives up on them.  Why: after a controller
        restart the hosts' bridges reconnect one by one (over seconds, more at
        scale); overlay flows towards a host exist only while it is connected,
        so without this the first switches reconciled would withdraw their
        flows towards every host not back yet, and re-add them moments later."""
        self._presumed = frozenset(dpids)
        self._changed()

    def stop_presuming(self, dpid=None):
        """Stop presuming one datapath (None: all).  Returns those no longer
        presumed, whose connectedness as the compiler sees it may have changed."""
        gone = self._presumed if dpid is None else self._presumed & {dpid}
        if gone:
            self._presumed = self._presumed - gone
            self._changed()
        return set(gone)

    def presumed(self, dpid):
        return dpid in self._presumed

    def _changed(self):
        self.version += 1

    # --- datapaths and ports (from switch events) -----------------------
    def datapath_up(self, dpid):
        self._changed()
        self.graph.add_node(dp_node(dpid), kind="datapath", dpid=f"{dpid:016x}", connected=True)
        self._refresh_mesh()

    def datapath_down(self, dpid):
        self._changed()
        node = dp_node(dpid)
        if node in self.graph:
            self.graph.nodes[node]["connected"] = False
            self.graph.nodes[node].pop("gateway_mac", None)
            for p in [n for n in self.graph[node] if n.startswith("port:")]:
                self.graph.remove_node(p)
        self._refresh_mesh()

    def set_ports(self, dpid, ports):
        """Replace the port list of a datapath: {name: ofport}."""
        self._changed()
        node = dp_node(dpid)
        for p in [n for n in self.graph[node] if n.startswith("port:")] if node in self.graph else []:
            self.graph.remove_node(p)
        for name, number in ports.items():
            if isinstance(number, tuple):
                self.port_added(dpid, name, *number)
            else:
                self.port_added(dpid, name, number)

    def set_gateway_mac(self, dpid, mac):
        """Record the external gateway's MAC; True when it changed."""
        node = self.graph.nodes.get(dp_node(dpid))
        if node is None or node.get("gateway_mac") == mac:
            return False
        self._changed()
        node["gateway_mac"] = mac
        return True

    def port_added(self, dpid, name, number, mac=None, link_down=False):
        self._changed()
        node = dp_node(dpid)
        if node not in self.graph:
            self.graph.add_node(node, kind="datapath", dpid=f"{dpid:016x}", connected=True)
        pn = port_node(dpid, name)
        self.graph.add_node(pn, kind="port", name=name, ofport=number, dpid=f"{dpid:016x}",
                            mac=mac, link_down=bool(link_down))
        self.graph.add_edge(node, pn, kind="port")

    def set_port_link(self, dpid, name, down):
        """Record whether a port has no link (OFPPS_LINK_DOWN or admin down):
        a container's veth whose other end is gone.  Flows do not depend on it
        (the compiler is not told), only what the API and /ui report does.
        True when it changed."""
        attrs = self.graph.nodes.get(port_node(dpid, name))
        if attrs is None or attrs.get("link_down") == bool(down):
            return False
        attrs["link_down"] = bool(down)
        return True

    def port_link_down(self, dpid, name):
        """True/False for a known port, None for a port the switch does not have."""
        attrs = self.graph.nodes.get(port_node(dpid, name))
        return None if attrs is None else bool(attrs.get("link_down"))

    def port_deleted(self, dpid, name):
        self._changed()
        pn = port_node(dpid, name)
        if pn in self.graph:
            self.graph.remove_node(pn)

    # --- physical links (from LLDP) -------------------------------------------
    def set_links(self, up, down=()):
        """Make the link edges those of ``up`` and ``down`` ((dpid, port_no)
        pairs of ends).  A link whose port is not known (yet) is left out.
        Returns True when the up links the compiler sees changed."""
        before = self.links()
        self.graph.remove_edges_from([e for e in self._link_edges if self.graph.has_edge(*e)])
        self._link_edges = set()
        for state, links in ((False, down), (True, up)):
            for ea, eb in links:
                na, nb = self._port_by_number(*ea), self._port_by_number(*eb)
                if na is None or nb is None:
                    continue
                ends = [{"dpid": f"{e[0]:016x}", "port": e[1],
                         "name": self.graph.nodes[n]["name"]}
                        for e, n in ((ea, na), (eb, nb))]
                self.graph.add_edge(na, nb, kind="link", up=state, ends=ends)
                self._link_edges.add((na, nb))
        if self.links() == before:
            # the compiler's view (up links) is the same: keep the snapshot
            # (the LLDP loop calls this every second)
            return False
        self._changed()
        return True

    def links(self):
        """Up links as sorted (dpid_a, port_a, dpid_b, port_b)."""
        out = []
        for e in self._link_edges:
            d = self.graph.get_edge_data(*e)
            if d is not None and d.get("kind") == "link" and d.get("up"):
                (a, b) = d["ends"]
                out.append((int(a["dpid"], 16), a["port"], int(b["dpid"], 16), b["port"]))
        return sorted(out)

    def _port_by_number(self, dpid, number):
        node = dp_node(dpid)
        if node not in self.graph:
            return None
        for p in self.graph[node]:
            if p.startswith("port:") and self.graph.nodes[p].get("ofport") == number:
                return p
        return None

    def port_name(self, dpid, number):
        p = self._port_by_number(dpid, number)
        return None if p is None else self.graph.nodes[p]["name"]

    # --- hosts (from the model) -------------------------------------------
    def sync_hosts(self, hosts):
        self._changed()
        wanted = {host_node(h.name): h for h in hosts}
        for n in [n for n, d in self.graph.nodes(data=True) if d.get("kind") == "host"]:
            if n not in wanted:
                self.graph.remove_node(n)
                self._mesh_live.pop(n, None)     # its tunnel edges went with it
        for n, h in wanted.items():
            self.graph.add_node(n, kind="host", name=h.name, tunnel_ip=h.tunnel_ip,
                                dpid=f"{h.dpid:016x}")
            dpn = dp_node(h.dpid)
            if dpn not in self.graph:
                self.graph.add_node(dpn, kind="datapath", dpid=f"{h.dpid:016x}", connected=False)
            self.graph.add_edge(n, dpn, kind="bridge")
        self._refresh_mesh()

    def _refresh_mesh(self):
        """Tunnel edges between every pair of hosts whose bridges are connected.
        Only the difference is applied: the hosts that came, went or moved to
        another tunnel address since the last call (one switch connecting
        adds its own edges, not all n*(n-1)/2)."""
        nodes = self.graph.nodes
        live = {}
        for n, d in nodes(data=True):
            if d.get("kind") == "host" and \
                    nodes.get(dp_node(int(d["dpid"], 16)), {}).get("connected"):
                live[n] = d["tunnel_ip"]
        before = self._mesh_live
        changed = {n for n, ip in before.items() if live.get(n) != ip} | \
                  {n for n in live if n not in before}
        for n in changed:
            for other in (list(self.graph[n]) if n in self.graph else ()):
                if self.graph.edges[n, other].get("kind") == "tunnel":
                    self.graph.remove_edge(n, other)
        for n in changed:
            if n in live:
                for other, ip in live.items():
                    if other != n:
                        a, b = sorted((n, other))
                        self.graph.add_edge(a, b, kind="tunnel", endpoints=[live[a], live[b]])
        self._mesh_live = live

    # --- queries ------------------------------------------------------------
    def connected(self, dpid):
        return bool(self.graph.nodes.get(dp_node(dpid), {}).get("connected"))

    def port_number(self, dpid, name):
        return self.graph.nodes.get(port_node(dpid, name), {}).get("ofport")

    def ports(self, dpid):
        node = dp_node(dpid)
        if node not in self.graph:
            return {}
        return {self.graph.nodes[p]["name"]: self.graph.nodes[p]["ofport"]
                for p in self.graph[node] if p.startswith("port:")}

    def connected_dpids(self):
        return sorted(int(d["dpid"], 16) for _, d in self.graph.nodes(data=True)
                      if d.get("kind") == "datapath" and d.get("connected"))

    def snapshot(self):
        """An immutable TopoView of now (cached until the next change)."""
        if self._snapshot is not None and self._snapshot[0] == self.version:
            return self._snapshot[1]
        view = self._build_snapshot()
        self._snapshot = (self.version, view)
        return view

    def _build_snapshot(self):
        views = {}
        for _, d in self.graph.nodes(data=True):
            if d.get("kind") == "datapath":
                dpid = int(d["dpid"], 16)
                node = dp_node(dpid)
                macs = {self.graph.nodes[p]["name"]: self.graph.nodes[p].get("mac")
                        for p in self.graph[node] if p.startswith("port:")}
                views[dpid] = DatapathView(bool(d.get("connected")) or dpid in self._presumed,
                                           MappingProxyType(self.ports(dpid)),
                                           MappingProxyType(macs), d.get("gateway_mac"))
        return TopoView(views, self.links())

    def host_dpids(self):
        return sorted(int(d["dpid"], 16) for _, d in self.graph.nodes(data=True)
                      if d.get("kind") == "host")

    def fabric(self):
        """The fabric as the compiler sees it (TopoView.fabric)."""
        return self.snapshot().fabric(self.host_dpids())

    def node_link(self):
        """node-link JSON, with the fabric's roles and flood tree marked:
        datapaths get role "host" (a host's bridge) or "fabric"; links get
        in_tree (the flood tree uses it, or it is a host's active attachment)
        and, for host links, attachment "active"/"standby"."""
        g = self.graph.copy()
        fab = self.fabric()
        hosts = set(fab.hosts)
        for n, d in g.nodes(data=True):
            if d.get("kind") == "datapath":
                dpid = int(d["dpid"], 16)
                d["role"] = "host" if dpid in hosts else "fabric" if d.get("connected") else None
        tree = {frozenset([(a, pa), (b, pb)]) for a, pa, b, pb in fab.tree_links()}
        active = {frozenset([(h, None), ep]) for h, ep in fab.attachments.items()}
        for _, _, d in g.edges(data=True):
            if d.get("kind") != "link":
                continue
            ea, eb = [(int(e["dpid"], 16), e["port"]) for e in d["ends"]]
            d["in_tree"] = bool(d.get("up")) and frozenset([ea, eb]) in tree
            for host_end, sw_end in ((ea, eb), (eb, ea)):
                if host_end[0] in hosts and d.get("up"):
                    on = frozenset([(host_end[0], None), sw_end]) in active
                    d["attachment"] = "active" if on else "standby"
                    d["in_tree"] = on
        return nx.node_link_data(g, edges="links")
