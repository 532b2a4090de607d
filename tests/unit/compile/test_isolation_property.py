"""Property: whatever the mix of tenants, network types, segments and hosts,
a frame sent by a port is delivered only to ports of the same tenant, at most
once per port, and never loops."""
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
    ports = []
    for name, _, _ in unique:
        for k in range(draw(st.integers(1, 3))):
            ports.append((name, draw(st.integers(1, hosts)), f"10.0.0.{2 + k}"))
    missing = draw(st.sets(st.sampled_from([f"p{i}" for i in range(1, len(ports) + 1)]),
                           max_size=1))
    disconnected = draw(st.sets(st.integers(1, hosts), max_size=1))
    return World(hosts=hosts, tenants=unique, ports=ports, missing=missing,
                 disconnected=disconnected), missing, disconnected


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
    kind = data.draw(st.sampled_from(["ipv4", "arp"]))
    if kind == "ipv4":
        got = w.ipv4(src, data.draw(st.sampled_from(macs)),
                     data.draw(st.sampled_from(["10.0.0.2", "10.0.0.3", "10.0.0.4"])))
    else:
        got = w.arp_request(src, data.draw(st.sampled_from(["10.0.0.2", "10.0.0.3", "10.0.0.9"])))
    for pid, _ in got:
        assert isinstance(pid, str), f"frame delivered to a non-port {pid}"
        assert w.port(pid).tenant == tenant, f"{src} ({tenant}) reached {pid}\n{w.net.format_trace()}"
    counts = Counter(pid for pid, _ in got)
    assert all(c == 1 for c in counts.values()), counts
