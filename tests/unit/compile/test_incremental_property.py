"""Property: the incremental compiler always agrees with a full recompile.

Random sequences of REST-level changes go through the service (VpcService,
as the API calls it; rejected requests included), mixed with the switch
events the controller sees (OVS ports appearing and going, bridges
connecting and leaving, an external gateway's MAC learned).  After every
step, exactly the datapaths the controller would recompile are recompiled
incrementally -- the hosts the service names, the switch an event is about,
the overlay peers of a switch that connects or leaves -- and then, for every
connected host bridge:

  * the incremental flow set equals compile_datapath() from scratch, flow by
    flow and cookie by cookie, so the pieces kept and the hosts the service
    names are right;
  * a switch that only ever received the deltas (adds and removes) holds
    exactly those flows, so the delta chain is right.
"""
import itertools
import tempfile
import uuid
from unittest import mock

from hypothesis import HealthCheck, given, settings, strategies as st

from controller.compile.datapath import compile_datapath, overlay_peers
from controller.compile.incremental import IncrementalCompiler
from controller.compile.pipeline import SERVICE_PORT, TUNNEL_PORTS
from controller.model.state import State
from controller.service.errors import ApiError
from controller.service.vpc import VpcService
from controller.store.msgpack_store import MsgpackStore
from topology.graph import TopoView

TENANTS = ["t1", "t2", "t3"]
HOSTS = ["h1", "h2", "h3", "h4"]
PORT_NAMES = ["c1", "c2", "c3", "c4", "c5"]
GROUPS = ["default", "web", "db"]
GATEWAY_MAC = "02:99:00:00:00:01"


def host_body(i):
    body = dict(name=f"h{i}", dpid=i, tunnel_ip=f"198.18.0.{10 + i}", uplink_port="patch-phy")
    if i in (1, 2, 4):
        body.update(external_port="ext0", external_ip=f"203.0.113.{10 + i}",
                    external_gateway="203.0.113.1")
    return body


class Lab:
    """The service, the switches' view of themselves, and what each switch holds."""

    def __init__(self, directory):
        store = MsgpackStore(directory)
        self.state = State(store.load())
        self.named = []
        self.service = VpcService(self.state, store,
                                  on_change=lambda hosts: self.named.extend(hosts))
        self.ofports = {}            # dpid -> {name: ofport}
        self.connected = {}
        self.gateway = {}
        self.next_ofport = {}
        for i in range(1, 4):
            self.service.create_host(host_body(i))
            self._bridge(i)
        self.compiler = IncrementalCompiler()
        self.switch = {}             # dpid -> cookies it holds (deltas only)
        self.applied = {}            # dpid -> generation of the delta it holds
        for dpid in self.dpids():
            self.recompile(dpid)

    def _bridge(self, i):
        ports = {"patch-phy": 1, TUNNEL_PORTS["vxlan"]: 2, TUNNEL_PORTS["gre"]: 3}
        if i in (1, 2, 4):
            ports["ext0"] = 4
        self.ofports[i] = ports
        self.connected[i] = True
        self.gateway.setdefault(i, GATEWAY_MAC)
        self.next_ofport[i] = 10

    def ovs_port(self, dpid, name, add):
        """An OVS port appears (a new number each time, as OVS does) or goes;
        the switch says so (port status) and is recompiled."""
        if add:
            self.ofports[dpid] = {**self.ofports[dpid], name: self.next_ofport[dpid]}
            self.next_ofport[dpid] += 1
        else:
            self.ofports[dpid] = {k: v for k, v in self.ofports[dpid].items() if k != name}
        self.recompile(dpid)

    def topo(self):
        return TopoView.build({
            d: {"connected": self.connected[d], "ports": self.ofports[d],
                "macs": {"ext0": f"02:ee:00:00:00:{d:02x}"} if "ext0" in self.ofports[d] else {},
                "gateway_mac": self.gateway[d]} for d in self.ofports})

    def dpids(self):
        """Host bridges that are connected: the ones being reconciled."""
        return sorted(h.dpid for h in self.state.hosts.values()
                      if self.connected.get(h.dpid))

    def recompile(self, dpid):
        if not self.connected.get(dpid) or self.state.host_by_dpid(dpid) is None:
            return
        delta = self.compiler.compile(self.state.snapshot(), self.topo(), dpid)
        have = self.switch.get(dpid)
        if have is not None and delta.base and delta.base == self.applied.get(dpid):
            for f in delta.removes:
                assert f.cookie in have, f
                have.discard(f.cookie)
            for f in delta.adds:
                assert f.cookie not in have, f
                have.add(f.cookie)
        else:
            self.switch[dpid] = set(delta.desired)
        self.applied[dpid] = delta.generation

    def changed(self):
        """What the app does with the hosts a commit names (apps/vpc.py _model_changed)."""
        names, self.named[:] = list(self.named), []
        for name in names:
            host = self.state.hosts.get(name)
            if host is not None:
                self.recompile(host.dpid)

    def peers_changed(self, dpid):
        """apps/vpc.py _request_peers: a switch connected or left."""
        for other in overlay_peers(self.state, dpid):
            if other != dpid:
                self.recompile(other)

    def check(self):
        topo = self.topo()
        for dpid in self.dpids():
            full = {f.cookie: f for f in compile_datapath(self.state.snapshot(), topo, dpid)}
            delta = self.compiler.compile(self.state.snapshot(), topo, dpid)
            # recompiling with nothing changed builds nothing and changes nothing
            assert delta.pieces_built == 0 and not delta.adds and not delta.removes, dpid
            self.applied[dpid] = delta.generation
            assert dict(delta.desired) == full, _differences(delta.desired, full)
            assert self.switch[dpid] == set(full), dpid


def _differences(got, want):
    extra = [got[c] for c in set(got) - set(want)]
    missing = [want[c] for c in set(want) - set(got)]
    return f"incremental has {len(extra)} more: {extra[:3]}; lacks {len(missing)}: {missing[:3]}"


def _pick(data, items):
    items = sorted(items)
    return data.draw(st.sampled_from(items)) if items else None


def step(lab, data):
    """One random change, as the REST API or a switch would make it."""
    s, st_ = lab.service, lab.state
    existing = sorted(st_.tenants)
    tenant = data.draw(st.sampled_from(existing)) if existing and data.draw(st.integers(0, 5)) \
        else data.draw(st.sampled_from(TENANTS))
    ports = [p.id for p in st_.ports_of(tenant)]
    kind = data.draw(st.sampled_from([
        "tenant", "subnet", "attach", "attach", "attach", "detach", "update_port", "snat",
        "group", "add_rule", "del_rule", "del_group", "forward", "forward", "del_forward",
        "fip", "fip", "del_fip", "del_subnet", "del_tenant", "ovs_add", "ovs_add", "ovs_del", "connect",
        "gateway", "host_add", "host_del"]))
    if kind == "tenant":
        s.create_tenant({"name": tenant, "network": data.draw(st.sampled_from(
            ["vlan", "vxlan", "gre"]))})
    elif kind == "subnet":
        s.create_subnet(tenant, {"cidr": data.draw(st.sampled_from(
            ["10.0.0.0/24", "10.1.0.0/24", "fd00:1::/64", "fd00:2::/64"]))})
    elif kind == "attach":
        body = {"host": data.draw(st.sampled_from(HOSTS)),
                "port": data.draw(st.sampled_from(PORT_NAMES))}
        dpid = int(body["host"][1:])
        if dpid in lab.ofports and body["port"] not in lab.ofports[dpid] and \
                data.draw(st.integers(0, 4)):
            lab.ovs_port(dpid, body["port"], True)     # usually the OVS port is there first
        choice = data.draw(st.sampled_from(["plain", "insecure", "groups", "ip", "ip6",
                                            "v4only", "v6only"]))
        if choice == "insecure":
            body["port_security"] = False
        elif choice == "groups":
            body["security_groups"] = data.draw(st.lists(st.sampled_from(GROUPS), min_size=1,
                                                         max_size=2, unique=True))
        elif choice == "ip":
            body["ip"] = data.draw(st.sampled_from(["10.0.0.5", "10.1.0.5"]))
        elif choice == "ip6":
            body["ip6"] = data.draw(st.sampled_from(["fd00:1::5", "fd00:2::5"]))
        elif choice in ("v4only", "v6only"):
            body["family"] = "ipv4" if choice == "v4only" else "ipv6"
        s.create_port(tenant, body)
    elif kind == "detach" and ports:
        s.delete_port(tenant, _pick(data, ports))
    elif kind == "update_port" and ports:
        body = data.draw(st.sampled_from([
            {"port_security": False, "security_groups": []}, {"port_security": True},
            {"security_groups": ["web"]}, {"security_groups": ["default", "db"]},
            {"name": "web", "aliases": ["www"]}]))
        s.update_port(tenant, _pick(data, ports), body)
    elif kind == "snat":
        s.set_snat(tenant, {"enabled": data.draw(st.booleans())})
    elif kind == "group":
        s.create_group(tenant, {"name": data.draw(st.sampled_from(GROUPS[1:])),
                                "rules": [_rule(data)]})
    elif kind == "add_rule":
        s.add_rule(tenant, data.draw(st.sampled_from(GROUPS)), _rule(data))
    elif kind == "del_rule":
        g = st_.security_groups.get(f"{tenant}/{data.draw(st.sampled_from(GROUPS))}")
        if g is not None and g.rules:
            s.delete_rule(tenant, g.name, _pick(data, [r["id"] for r in g.rules]))
    elif kind == "del_group":
        s.delete_group(tenant, data.draw(st.sampled_from(GROUPS)))
    elif kind == "forward" and ports:
        s.create_forward(tenant, {"port_id": _pick(data, ports),
                                  "protocol": data.draw(st.sampled_from(["tcp", "udp"])),
                                  "external_port": data.draw(st.sampled_from([80, 8080])),
                                  "internal_port": 80})
    elif kind == "del_forward":
        fwds = [f.id for f in st_.forwards_of(tenant)]
        if fwds:
            s.delete_forward(tenant, _pick(data, fwds))
    elif kind == "fip" and ports:
        s.create_fip(tenant, {"port_id": _pick(data, ports), "external_ip":
                              data.draw(st.sampled_from(["203.0.113.100", "203.0.113.101"]))})
    elif kind == "del_fip":
        fips = [f.id for f in st_.fips_of(tenant)]
        if fips:
            s.delete_fip(tenant, _pick(data, fips))
    elif kind == "del_subnet":
        s.delete_subnet(tenant, data.draw(st.sampled_from(["10.0.0.0_24", "10.1.0.0_24",
                                                           "fd00:1::_64", "fd00:2::_64"])))
    elif kind == "del_tenant":
        s.delete_tenant(tenant)
    elif kind in ("ovs_add", "ovs_del"):
        # an OVS port appears (a new number each time, as OVS does) or goes
        dpid = data.draw(st.sampled_from(sorted(lab.ofports)))
        name = data.draw(st.sampled_from(PORT_NAMES + [SERVICE_PORT]))   # + the agent's
        lab.ovs_port(dpid, name, kind == "ovs_add")
    elif kind == "connect":
        dpid = data.draw(st.sampled_from(sorted(lab.ofports)))
        lab.connected[dpid] = not lab.connected[dpid]
        if lab.connected[dpid]:
            lab.recompile(dpid)          # its own first reconcile (full)
        lab.peers_changed(dpid)
    elif kind == "gateway":
        dpid = data.draw(st.sampled_from(sorted(lab.ofports)))
        lab.gateway[dpid] = None if lab.gateway[dpid] else GATEWAY_MAC
        lab.recompile(dpid)
    elif kind == "host_add":
        s.create_host(host_body(4))
        if 4 not in lab.ofports:
            lab._bridge(4)
            lab.recompile(4)
    elif kind == "host_del":
        s.delete_host("h4")
    lab.changed()


def _rule(data):
    proto = data.draw(st.sampled_from(["tcp", "udp", "icmp", "icmpv6", "any"]))
    remotes = ["sg:default", "sg:web"] + (["::/0", "fd00:1::/64"] if proto != "icmp" else []) \
        + (["0.0.0.0/0", "10.0.0.0/24"] if proto != "icmpv6" else [])
    rule = {"direction": data.draw(st.sampled_from(["ingress", "egress"])), "protocol": proto,
            "remote": data.draw(st.sampled_from(remotes))}
    if proto in ("tcp", "udp"):
        rule["ports"] = data.draw(st.sampled_from(["80", "8000-8080"]))
    return rule


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_incremental_compile_equals_full_recompile_after_every_step(data):
    # ids from a counter, not uuid4: hypothesis replays a failing example and
    # needs the same ids to draw the same choices (else it reports a "flaky
    # strategy" instead of the failure)
    counter = itertools.count(1)
    with mock.patch("uuid.uuid4", lambda: uuid.UUID(int=next(counter) << 80)), \
            tempfile.TemporaryDirectory() as d:
        lab = Lab(d)
        # a useful start: a tenant of each kind, with a subnet and ports on two hosts
        for n, (t, net) in enumerate((("t1", "vxlan"), ("t2", "vlan"), ("t3", "gre"))):
            lab.service.create_tenant({"name": t, "network": net})
            lab.service.create_subnet(t, {"cidr": "10.0.0.0/24"})
            if t == "t1":                                   # and one dual-stack tenant
                lab.service.create_subnet(t, {"cidr": "fd00:1::/64"})
            for h in (1 + n % 3, 1 + (n + 1) % 3):
                lab.ovs_port(h, PORT_NAMES[n], True)
                lab.service.create_port(t, {"host": f"h{h}", "port": PORT_NAMES[n]})
        lab.changed()
        lab.check()
        for _ in range(data.draw(st.integers(5, 40))):
            try:
                step(lab, data)
            except ApiError:
                lab.changed()            # a rejected request changes nothing
            lab.check()
