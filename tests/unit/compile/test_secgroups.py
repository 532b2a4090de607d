"""Security groups compiled and run through the simulator with conntrack:
allow/deny, statefulness, rule removal cutting connections, group references,
port ranges, port_security off, and a flow count that stays linear."""
from hypothesis import given, strategies as st

from controller.compile.secgroups import port_range_masks
from controller.compile.datapath import compile_datapath
from tests.support.worlds import World

WEB = {"id": "web80", "direction": "ingress", "protocol": "tcp", "ports": [80, 80],
       "remote": "sg:default"}


def world(rules=(), groups=None, insecure=()):
    """a1 (h1) and a2 (h2) in tenant a; p2's groups per `groups`; extra rules
    in the default group; rebuilt with the SAME conntrack when `share` given."""
    w = World(tenants=[("a", "vxlan", 5)],
              ports=[("a", 1, "10.0.0.2"), ("a", 2, "10.0.0.3"), ("a", 2, "10.0.0.4")],
              extra_rules=rules, insecure=insecure)
    if groups:
        ops = []
        for name, index, grules in groups.get("defs", []):
            ops.append(("put", "security_groups", f"a/{name}",
                        dict(tenant="a", name=name, index=index, rules=tuple(grules))))
        for pid, names in groups.get("members", {}).items():
            rec = dict(w.state.ports[pid].__dict__, security_groups=tuple(names))
            ops.append(("put", "ports", pid, rec))
        w.state.apply(ops)
        return rebuild(w)
    return w


def rebuild(w, share=None):
    """Recompile w's state into its network; keep `share`'s conntrack (a rule
    change on a live switch keeps its connections)."""
    for name, sw in w.net.switches.items():
        flows = compile_datapath(w.state, w.topo, int(name[1:]))
        w.flows[name] = flows
        ct = (share or w).net.switches[name].sim.ct
        sw.sim.__init__(flows, name=name, conntrack=ct)
    return w


def tcp(w, src, dst, sport, dport, flags=None):
    s, d = w.port(src), w.port(dst)
    return [pid for pid, _ in w.send(src, eth_dst=d.mac, eth_type=0x0800, ipv4_src=s.ip,
                                     ipv4_dst=d.ip, ip_proto=6, tcp_src=sport, tcp_dst=dport)]


def test_default_group_allows_members_and_their_replies():
    w = world()
    assert tcp(w, "p1", "p2", 40000, 22) == ["p2"]
    assert tcp(w, "p2", "p1", 22, 40000) == ["p1"]


def test_only_the_allowed_port_gets_in():
    web = ("web", 1, [WEB])
    w = world(groups={"defs": [web], "members": {"p2": ["web"]}})
    assert tcp(w, "p1", "p2", 40000, 80) == ["p2"]        # allowed by web's rule
    assert tcp(w, "p2", "p1", 80, 40000) == ["p1"]        # its reply passes (stateful)
    assert tcp(w, "p1", "p2", 40001, 22) == []            # not allowed
    # web has no egress rule: p2 may answer, but not start anything
    assert tcp(w, "p2", "p1", 40002, 22) == []


def test_rule_removal_cuts_an_established_connection_and_addition_keeps_it():
    web = ("web", 1, [WEB])
    w = world(groups={"defs": [web], "members": {"p2": ["web"]}})
    assert tcp(w, "p1", "p2", 40000, 80) == ["p2"]
    assert tcp(w, "p2", "p1", 80, 40000) == ["p1"]
    # add a rule: the connection goes on
    ssh = dict(WEB, id="ssh", ports=[22, 22])
    w.state.apply([("put", "security_groups", "a/web",
                    dict(tenant="a", name="web", index=1, rules=(WEB, ssh)))])
    rebuild(w, share=w)
    assert tcp(w, "p1", "p2", 40000, 80) == ["p2"]
    # remove the rule that allowed it: the next packet, either way, is dropped
    w.state.apply([("put", "security_groups", "a/web",
                    dict(tenant="a", name="web", index=1, rules=(ssh,)))])
    rebuild(w, share=w)
    assert tcp(w, "p1", "p2", 40000, 80) == []
    assert tcp(w, "p2", "p1", 80, 40000) == []


def test_group_reference_follows_membership():
    admin = ("admin", 1, [dict(WEB, id="ssh", ports=[22, 22], remote="sg:ops")])
    ops = ("ops", 2, [{"id": "out", "direction": "egress", "protocol": "any", "ports": None,
                       "remote": "0.0.0.0/0"}])
    w = world(groups={"defs": [admin, ops], "members": {"p2": ["admin"], "p3": ["ops"]}})
    assert tcp(w, "p3", "p2", 40000, 22) == ["p2"]        # p3 is in ops
    assert tcp(w, "p1", "p2", 40000, 22) == []            # p1 is not
    w.state.apply([("put", "ports", "p1", dict(w.port("p1").__dict__,
                                               security_groups=("default", "ops")))])
    rebuild(w, share=w)
    assert tcp(w, "p1", "p2", 40001, 22) == ["p2"]        # now it is


def test_icmp_rule_and_port_ranges():
    rules = [{"id": "icmp", "direction": "ingress", "protocol": "icmp", "ports": None,
              "remote": "10.0.0.0/24"},
             {"id": "hi", "direction": "ingress", "protocol": "udp", "ports": [8000, 8080],
              "remote": "0.0.0.0/0"}]
    only = ("only", 1, rules)
    w = world(groups={"defs": [only], "members": {"p2": ["only"]}})
    assert [p for p, _ in w.ipv4("p1", w.port("p2").mac, "10.0.0.3")] == ["p2"]
    s, d = w.port("p1"), w.port("p2")

    def udp(dport):
        return [p for p, _ in w.send("p1", eth_dst=d.mac, eth_type=0x0800, ipv4_src=s.ip,
                                     ipv4_dst=d.ip, ip_proto=17, udp_src=5000, udp_dst=dport)]
    assert udp(8000) == ["p2"] and udp(8080) == ["p2"] and udp(8043) == ["p2"]
    assert udp(7999) == [] and udp(8081) == []


@given(st.integers(1, 65535), st.integers(0, 65535))
def test_port_range_masks_cover_exactly(lo, span):
    hi = min(65535, lo + span)
    masks = port_range_masks(lo, hi)
    covered = set()
    for value, mask in masks:
        size = (~mask & 0xFFFF) + 1
        covered |= set(range(value, value + size))
    assert covered == set(range(lo, hi + 1))


def test_port_security_off_sends_anything_and_gets_everything():
    w = world(insecure={"p3"})
    s = w.port("p3")
    spoofed = w.send("p3", eth_src="02:aa:aa:aa:aa:aa", eth_dst=w.port("p1").mac,
                     eth_type=0x0800, ipv4_src="10.0.0.99", ipv4_dst="10.0.0.2", ip_proto=6,
                     tcp_src=1, tcp_dst=2)
    assert [p for p, _ in spoofed] == []     # p1 is secured: 10.0.0.99 is in no group
    assert s.port_security is False
    assert tcp(w, "p1", "p3", 40000, 9999) == ["p3"]


def test_ip_broadcast_skips_secured_ports_but_arp_does_not():
    w = world(insecure={"p3"})
    got = w.send("p1", eth_dst="ff:ff:ff:ff:ff:ff", eth_type=0x0800, ipv4_src="10.0.0.2",
                 ipv4_dst="10.0.0.255", ip_proto=17, udp_src=1, udp_dst=9)
    assert sorted(p for p, _ in got) == ["p3"]
    assert sorted(p for p, _ in w.arp_request("p1", "10.0.0.200")) == ["p2", "p3"]


def flows_for(n_ports, n_rules):
    rules = [dict(WEB, id=f"r{i}", ports=[1000 + i, 1000 + i]) for i in range(n_rules)]
    w = World(hosts=1, tenants=[("a", "vlan", 5)],
              ports=[("a", 1, f"10.0.0.{i + 2}") for i in range(n_ports)], extra_rules=rules)
    return len(w.flows["h1"])


def test_flow_count_grows_linearly_not_n_times_m():
    """N ports in a group referenced by M rules: ~a*N + b*M flows, not N*M."""
    base = flows_for(10, 5)
    more_ports = flows_for(20, 5) - base
    more_ports_many_rules = flows_for(20, 20) - flows_for(10, 20)
    assert more_ports == more_ports_many_rules        # a port's cost is independent of M
    more_rules = flows_for(10, 20) - base
    assert more_rules == flows_for(20, 20) - flows_for(20, 5)   # a rule's cost independent of N
    print(f"flows per port: {more_ports / 10:.1f}, per rule: {more_rules / 15:.1f}")
