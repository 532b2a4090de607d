"""Property: whatever the mix of tenants, network types, segments and hosts --
IPv4-only, dual-stack and IPv6-only ports, tenants reusing one IPv6 prefix --
a frame sent by a port (IPv4, ARP, IPv6, neighbour solicitation) is delivered
only to ports of the same tenant, at most once per port, and never loops."""
from collections import Counter

from hypothesis import HealthCheck, given, settings, strategies as st

from tests.support.worlds import World

NETWORK = st.sampled_from(["vlan", "vxlan", "gre"])


@st.composite
def worlds(draw):
    hosts = draw(st.integers(2, 4))
    n_tenants = draw(st.integers(2, 4))
    tenants = []
    for i in range(n_tenants):
        # small segment space on purpose: equal numbers across network types
        tenants.append((f"t{i}", draw(NETWORK), draw(st.integers(1, 3))))
    seen, unique = set(), []
    for name, net, seg in tenants:            # segments are unique per network type
        while (net, seg) in seen:
            seg += 1
        seen.add((net, seg))
        unique.append((name, net, seg))
    ports, subnets6 = [], []
    for name, _, _ in unique:
        dual = draw(st.booleans())
        if dual:
            subnets6.append((name, "fd00:1::/64"))        # every tenant the same prefix
        for k in range(draw(st.integers(1, 3))):
            family = draw(st.sampled_from(["dual", "ipv4", "ipv6"])) if dual else "ipv4"
            ip = None if family == "ipv6" else f"10.0.0.{2 + k}"
            ports.append((name, draw(st.integers(1, hosts)), ip,
                          *([f"fd00:1::{2 + k:x}"] if family != "ipv4" else [])))
    missing = draw(st.sets(st.sampled_from([f"p{i}" for i in range(1, len(ports) + 1)]),
                           max_size=1))
    disconnected = draw(st.sets(st.integers(1, hosts), max_size=1))
    return World(hosts=hosts, tenants=unique, ports=ports, missing=missing,
                 disconnected=disconnected, subnets6=subnets6), missing, disconnected


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds(), st.data())
def test_frames_never_cross_tenants(world_spec, data):
    w, missing, disconnected = world_spec
    senders = [pid for pid, (h, _) in w.ofport.items()
               if pid not in missing and int(h[1:]) not in disconnected]
    if not senders:
        return
    src = data.draw(st.sampled_from(senders))
    tenant = w.port(src).tenant
    macs = [p.mac for p in w.state.ports.values()] + ["ff:ff:ff:ff:ff:ff", "02:12:34:56:78:9a",
                                                      "01:00:5e:00:00:fb"]
    p = w.port(src)
    kind = data.draw(st.sampled_from(["ipv4", "arp"] if p.ip6 is None else
                                     ["ipv6", "ns"] if p.ip is None else
                                     ["ipv4", "arp", "ipv6", "ns"]))
    targets6 = ["fd00:1::2", "fd00:1::3", "fd00:1::4", "fd00:1::1", "fd00:1::9"]
    icmp6 = dict(eth_type=0x86DD, ip_proto=58, ip_ttl=255, icmpv6_code=0)
    if kind == "ipv6":
        got = w.send(src, eth_dst=data.draw(st.sampled_from(macs + ["33:33:00:00:00:01"])),
                     ipv6_src=p.ip6, ipv6_dst=data.draw(st.sampled_from(targets6 + ["ff02::1"])),
                     **icmp6, icmpv6_type=128, icmp_id=7)
    elif kind == "ns":
        target = data.draw(st.sampled_from(targets6))
        got = w.send(src, eth_dst="33:33:ff:00:00:0" + target[-1], ipv6_src=p.ip6,
                     ipv6_dst="ff02::1:ff00:" + target[-1], **icmp6, icmpv6_type=135,
                     ipv6_nd_target=target, ipv6_nd_sll=p.mac, nd_reserved=0,
                     nd_options_type=1)
    elif kind == "ipv4":
        got = w.ipv4(src, data.draw(st.sampled_from(macs)),
                     data.draw(st.sampled_from(["10.0.0.2", "10.0.0.3", "10.0.0.4"])))
    else:
        got = w.arp_request(src, data.draw(st.sampled_from(["10.0.0.2", "10.0.0.3", "10.0.0.9"])))
    for pid, _ in got:
        assert isinstance(pid, str), f"frame delivered to a non-port {pid}"
        assert w.port(pid).tenant == tenant, f"{src} ({tenant}) reached {pid}\n{w.net.format_trace()}"
    counts = Counter(pid for pid, _ in got)
    assert all(c == 1 for c in counts.values()), counts
