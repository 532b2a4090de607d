"""Golden flows: what the compiler emits for a fixed set of worlds.

Why: the layout refactor (and any later one) must not change a single flow by
accident.  `capture()` compiles every world below and renders each flow as one
line of plain numbers and strings (table and priority as ints, so renaming a
table or a priority band is not a difference; the cookie as hex, so a change of
owner encoding is).  tests/golden/flows.json.gz was first captured before the
layout move, then regenerated once for the intended priority/cookie fixes
(each listed in that commit); tests/unit/compile/test_golden.py compares
against it.

Regenerate (only for an intended change, and list the differences in the
commit):  .venv/bin/python -m tests.support.golden --write
"""
import enum
import gzip
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
GOLDEN = os.path.join(REPO, "tests", "golden", "flows.json.gz")


def _plain(v):
    if isinstance(v, enum.Enum):
        return int(v.value)
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    return v


def render(f):
    """One line per flow; a metered flow also shows ["meter", id] before its
    cookie (flows without a meter render as they did before meters)."""
    meter = [] if f.meter is None else [["meter", int(f.meter)]]
    return json.dumps([int(f.table), int(f.priority), _plain(f.match), _plain(f.actions),
                       _plain(f.goto), _plain(f.metadata), *meter, "%016x" % f.cookie],
                      separators=(",", ":"))


def worlds():
    """(name, {switch: [Flow]}) for every golden world."""
    from tests.support.worlds import World
    from tests.support.fabric_world import FabricWorld
    leafspine = {1: [3, 4], 2: [3, 4], 3: [1, 2], 4: [1, 2]}     # leaves 1, 2; spines 3, 4
    tenants = [("red", "vlan", 10), ("blue", "vlan", 20), ("green", "vxlan", 30)]
    ports = [("red", 1, "10.0.0.2"), ("red", 2, "10.0.0.3"), ("red", 3, "10.0.0.4"),
             ("red", 3, "10.0.0.5"), ("blue", 1, "10.0.0.2"), ("blue", 3, "10.0.0.3"),
             ("green", 1, "10.0.0.2"), ("green", 2, "10.0.0.3")]
    web = {"id": "web80", "direction": "ingress", "protocol": "tcp", "ports": [80, 80],
           "remote": "sg:default"}
    ssh = {"id": "ssh", "direction": "ingress", "protocol": "tcp", "ports": [22, 22],
           "remote": "0.0.0.0/0"}
    for network in ("vlan", "vxlan", "gre"):
        yield f"two_tenants_{network}", World(
            tenants=[("a", network, 5), ("b", network, 6)],
            ports=[("a", 1, "10.0.0.2"), ("a", 2, "10.0.0.3"),
                   ("b", 1, "10.0.0.2"), ("b", 3, "10.0.0.3")]).flows
    yield "missing_disconnected", World(
        tenants=[("a", "vlan", 5), ("b", "vxlan", 6)],
        ports=[("a", 1, "10.0.0.2"), ("a", 2, "10.0.0.3"), ("b", 1, "10.0.0.2"),
               ("b", 3, "10.0.0.3")], missing={"p1"}, disconnected={3}).flows
    yield "mixed_types", World(
        tenants=[("v", "vlan", 7), ("x", "vxlan", 7), ("g", "gre", 7)],
        ports=[("v", 1, "10.0.0.2"), ("v", 2, "10.0.0.3"), ("x", 1, "10.0.0.2"),
               ("x", 2, "10.0.0.3"), ("g", 1, "10.0.0.2"), ("g", 2, "10.0.0.3")]).flows
    yield "nat", World(
        tenants=[("red", "vxlan", 5), ("blue", "vlan", 6)],
        ports=[("red", 1, "10.0.0.2"), ("blue", 1, "10.0.0.2"), ("red", 2, "10.0.0.3")],
        external={1, 2}, snat=("red", "blue"), forwards=[("p1", "tcp", 5000, 22),
                                                         ("p2", "udp", 5353, 53)],
        fips=[("p3", "203.0.113.100")], extra_rules=[ssh]).flows
    yield "nat_gateway_unknown", World(
        tenants=[("red", "gre", 5)], ports=[("red", 1, "10.0.0.2"), ("red", 2, "10.0.0.3")],
        external={1}, snat=("red",), gateway_known=False).flows
    yield "routing", World(
        tenants=[("a", "vxlan", 5)],
        ports=[("a", 1, "10.0.0.2"), ("a", 2, "10.0.1.2"), ("a", 3, "10.0.2.2")],
        subnets=[("a", "10.0.1.0/24"), ("a", "10.0.2.0/24")]).flows
    yield "secgroups", World(
        tenants=[("a", "vxlan", 5)],
        ports=[("a", 1, "10.0.0.2"), ("a", 2, "10.0.0.3"), ("a", 2, "10.0.0.4")],
        extra_rules=[web, ssh, {"id": "udp", "direction": "egress", "protocol": "udp",
                                "ports": [1000, 2000], "remote": "10.9.0.0/16"},
                     {"id": "icmp", "direction": "ingress", "protocol": "icmp", "ports": None,
                      "remote": "0.0.0.0/0"}],
        insecure={"p3"}).flows
    yield "dual_stack", dual_stack_world().flows
    fw = FabricWorld(leafspine, {1: 1, 2: 2, 3: 2}, tenants, ports)
    yield "fabric_leafspine", fw.flows
    fw = FabricWorld(leafspine, {1: [1, 2], 2: 2}, [("red", "vlan", 10)],
                     [("red", 1, "10.0.0.2"), ("red", 2, "10.0.0.3")], down=[(1, 3)])
    yield "fabric_dualhomed_cut", fw.flows
    sys.path.insert(0, os.path.join(REPO, "bench"))
    from bench.scenario import Scenario
    from controller.compile.datapath import compile_datapath
    sc = Scenario(hosts=6, ports_per_host=6, tenants=6, tenants_per_host=3)
    state, topo = sc.state(), sc.topo()
    yield "bench_6x6", {sc.dpid(h): compile_datapath(state, topo, sc.dpid(h))
                        for h in range(sc.hosts)}


def dual_stack_world():
    """Two tenants (VXLAN, VLAN) reusing fd00:1::/64, dual-stack ports, an
    IPv6-only port in a second IPv6 subnet, an IPv4-only port, an open port,
    IPv6 security-group rules."""
    from tests.support.worlds import World
    return World(
        tenants=[("a", "vxlan", 5), ("b", "vlan", 6)],
        subnets6=[("a", "fd00:1::/64"), ("a", "fd00:2::/64"), ("b", "fd00:1::/64")],
        subnets=[("a", "10.0.1.0/24")],
        ports=[("a", 1, "10.0.0.2", "fd00:1::2"), ("a", 2, "10.0.0.3", "fd00:1::3"),
               ("a", 3, None, "fd00:2::4"), ("a", 1, "10.0.0.5"),
               ("b", 1, "10.0.0.2", "fd00:1::2"), ("b", 3, "10.0.0.3", "fd00:1::3"),
               ("a", 2, "10.0.0.7", "fd00:1::7")],
        insecure={"p7"},
        extra_rules=[{"id": "web6", "direction": "ingress", "protocol": "tcp",
                      "ports": [80, 80], "remote": "::/0"},
                     {"id": "ping6", "direction": "ingress", "protocol": "icmpv6",
                      "ports": None, "remote": "fd00::/16"},
                     {"id": "out6", "direction": "egress", "protocol": "any", "ports": None,
                      "remote": "::/0"}])


def capture():
    out = {}
    for name, flows in worlds():
        out[name] = {str(sw): sorted(render(f) for f in fl) for sw, fl in flows.items()}
    return out


def load():
    with gzip.open(GOLDEN, "rt") as f:
        return json.load(f)


def diff(old, new):
    """Lines only in old (-) and only in new (+), per world and switch."""
    lines = []
    for world in sorted(set(old) | set(new)):
        a, b = old.get(world, {}), new.get(world, {})
        for sw in sorted(set(a) | set(b)):
            x, y = set(a.get(sw, ())), set(b.get(sw, ()))
            lines += [f"{world} {sw} - {f}" for f in sorted(x - y)]
            lines += [f"{world} {sw} + {f}" for f in sorted(y - x)]
    return lines


if __name__ == "__main__":
    sys.path.insert(0, REPO)
    data = capture()
    if "--write" in sys.argv:
        os.makedirs(os.path.dirname(GOLDEN), exist_ok=True)
        with gzip.GzipFile(GOLDEN, "wb", mtime=0) as f:
            f.write(json.dumps(data, sort_keys=True, indent=0).encode())
        print(f"wrote {GOLDEN}: {sum(len(v) for w in data.values() for v in w.values())} flows")
    else:
        d = diff(load(), data)
        print("\n".join(d) or "no difference")
