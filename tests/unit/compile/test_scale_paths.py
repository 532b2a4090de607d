"""The shortcuts that make a cold start of many switches cheap must not change
what any switch ends up holding: recompiling only overlay peers, the model's
and the topology's caches, pre-serialized flow-mods, bounded reconciles,
reply timeouts that count silence rather than total time."""
import struct

import eventlet
from hypothesis import HealthCheck, given, settings, strategies as st

from controller.southbound import ofsender
from controller.compile.datapath import compile_datapath, overlay_peers
from controller.compile.flows import flow
from controller.model.state import State
from controller.compile.pipeline import CookieKind, Table
from controller.reconcile.plan import SwitchSync
from topology.graph import Topology, TopoView
from tests.support.worlds import World

NETWORK = st.sampled_from(["vlan", "vxlan", "gre"])


@st.composite
def worlds(draw):
    hosts = draw(st.integers(2, 5))
    tenants, ports = [], []
    for i in range(1, draw(st.integers(1, 4)) + 1):
        tenants.append((f"t{i}", draw(NETWORK), i))
        for k in range(draw(st.integers(0, 4))):
            ports.append((f"t{i}", draw(st.integers(1, hosts)), f"10.0.0.{2 + k}"))
    return World(hosts=hosts, tenants=tenants, ports=ports), hosts


def topo_with(world, hosts, down):
    spec = {}
    for i in range(1, hosts + 1):
        spec[i] = {"connected": i not in down, "ports": dict(world.topo.ports(i))}
    return TopoView.build(spec)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds(), st.data())
def test_a_switch_coming_or_going_changes_only_its_overlay_peers(wh, data):
    world, hosts = wh
    d = data.draw(st.integers(1, hosts))
    up, down = topo_with(world, hosts, set()), topo_with(world, hosts, {d})
    peers = overlay_peers(world.state, d)
    for other in range(1, hosts + 1):
        if other == d:
            continue
        if compile_datapath(world.state, up, other) != compile_datapath(world.state, down, other):
            assert other in peers, f"h{other} changes when h{d} leaves but is not a peer"


def test_peers_are_hosts_sharing_an_overlay_tenant_not_a_vlan_one():
    w = World(hosts=4, tenants=[("a", "vxlan", 1), ("b", "vlan", 2), ("c", "gre", 3)],
              ports=[("a", 1, "10.0.0.2"), ("a", 2, "10.0.0.3"), ("b", 1, "10.0.0.2"),
                     ("b", 3, "10.0.0.3"), ("c", 4, "10.0.0.2")])
    assert overlay_peers(w.state, 1) == {2}
    assert overlay_peers(w.state, 3) == set()
    assert overlay_peers(w.state, 4) == set()
    assert overlay_peers(w.state, 99) == set()     # not a host (a fabric switch)


def test_state_indexes_follow_every_apply_and_copies_stay_apart():
    w = World(hosts=2, tenants=[("a", "vlan", 1)], ports=[("a", 1, "10.0.0.2")])
    s = w.state
    assert [p.id for p in s.ports_of("a")] == ["p1"] and s.host_by_dpid(2).name == "h2"
    c = s.copy()
    rec = dict(s.ports["p1"].__dict__, id="p2", ip="10.0.0.3", host="h2", serial=2)
    s.apply([("put", "ports", "p2", rec)])
    assert [p.id for p in s.ports_of("a")] == ["p1", "p2"]
    assert [p.id for p in s.ports_on("h2")] == ["p2"]
    assert [p.id for p in c.ports_of("a")] == ["p1"]          # the copy did not move
    s.apply([("del", "hosts", "h2")])
    assert s.host_by_dpid(2) is None and c.host_by_dpid(2).name == "h2"
    s.ports_of("a").clear()                                  # callers get their own list
    assert len(s.ports_of("a")) == 2
    assert State().ports_of("a") == [] and State().tenant_by_id(1) is None


def test_topology_snapshot_is_cached_until_something_changes():
    t = Topology()
    t.datapath_up(1)
    t.set_ports(1, {"c1": 10})
    a = t.snapshot()
    assert t.snapshot() is a
    t.port_added(1, "c2", 11)
    b = t.snapshot()
    assert b is not a and dict(b.ports(1)) == {"c1": 10, "c2": 11}
    assert t.set_gateway_mac(1, "02:00:00:00:00:01") and t.snapshot().gateway_mac(1)
    t.datapath_down(1)
    assert not t.snapshot().connected(1)


class FakeDp:
    ofproto = ofsender.ofp
    ofproto_parser = ofsender.parser
    id = 7

    def __init__(self):
        self.xid = 0
        self.sent = []
        self.on_send = None

    def set_xid(self, msg):
        self.xid += 1
        msg.set_xid(self.xid)
        return self.xid

    def send_msg(self, msg):
        if msg.xid is None:
            self.set_xid(msg)
        msg.serialize()
        self.sent.append(msg)
        if self.on_send:
            self.on_send(msg)
        return True


def test_cached_flow_mod_bytes_equal_a_fresh_serialization_with_the_xid_patched():
    dp, cache = FakeDp(), ofsender.FlowModCache(size=2)
    f1 = flow(Table.L2, 100, {"eth_dst": "02:00:00:00:00:01", "metadata": 5},
              actions=[("output", 3)], kind=CookieKind.PORT, owner=1)
    f2 = flow(Table.L2, 100, {"eth_dst": "02:00:00:00:00:01", "metadata": 5},
              actions=[("output", 3)], kind=CookieKind.PORT, owner=2)  # same content
    for xid, f in ((41, f1), (42, f1), (43, f2)):
        m = cache.message(dp, f)
        m.set_xid(xid)
        m.serialize()
        fresh = ofsender.add_flow_mod(dp, f)
        fresh.set_xid(xid)
        fresh.serialize()
        assert bytes(m.buf) == bytes(fresh.buf)
        assert struct.unpack_from("!I", m.buf, 4)[0] == xid
    assert (cache.hits, cache.misses) == (1, 2)
    f3 = flow(Table.L2, 100, {"in_port": 1}, actions=[("output", 2)])
    cache.message(dp, f3)
    assert len(cache._data) == 2                              # bounded, oldest dropped


def test_a_cached_flow_mod_inside_a_bundle_carries_the_bundles_xid():
    dp = FakeDp()
    f1 = flow(Table.L2, 100, {"in_port": 1}, actions=[("output", 2)])
    add = ofsender.parser.ONFBundleAddMsg(dp, 1, ofsender.BUNDLE_FLAGS,
                                          ofsender.FLOW_MODS.message(dp, f1), [])
    dp.set_xid(add)
    add.serialize()
    inner = add.buf[16 + 8:]                      # experimenter header + bundle id/flags
    assert struct.unpack_from("!I", inner, 4)[0] == add.xid


def test_multipart_replies_that_keep_coming_are_not_a_timeout():
    dp = FakeDp()
    session = ofsender.OFSession(dp)

    class Part:
        def __init__(self, xid):
            self.xid = xid

    def stream(msg):
        def parts():
            for _ in range(8):                      # 8 x 30 ms > the 100 ms timeout
                eventlet.sleep(0.03)
                session.on_reply(Part(msg.xid), more=True)
            session.on_reply(Part(msg.xid), more=False)
        eventlet.spawn(parts)
    dp.on_send = stream
    replies = session.call(ofsender.parser.OFPBarrierRequest(dp), timeout=0.1)
    assert len(replies) == 9
    dp.on_send = None
    try:
        session.call(ofsender.parser.OFPBarrierRequest(dp), timeout=0.1)
    except ofsender.SwitchError as exc:
        assert "no reply" in str(exc)
    else:
        raise AssertionError("silence must time out")


def test_reconciles_share_a_bounded_number_of_slots():
    from eventlet.semaphore import Semaphore
    running, peak = [0], [0]

    class SlowSwitch:
        def __init__(self, dpid):
            self.dpid, self.flows = dpid, set()

        def dump_cookies(self):
            return list(self.flows)

        def apply(self, deletes, adds):
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            eventlet.sleep(0.01)
            running[0] -= 1
            self.flows |= {f.cookie for f in adds}
            return len(adds)

    desired = {flow(Table.L2, 100, {"in_port": 1}, actions=[("output", 2)])}
    slots = Semaphore(2)
    syncs = [SwitchSync(SlowSwitch(i), lambda dpid: desired, limiter=slots) for i in range(10)]
    for s in syncs:
        s.request(full=True)
    for s in syncs:
        assert s.wait_idle(timeout=5)
    assert peak[0] == 2
    assert all(s.session.flows == {f.cookie for f in desired} for s in syncs)
    for s in syncs:
        s.stop()


def test_reconcile_settings_come_from_the_environment():
    import pytest
    from controller.config import Config, ConfigError
    d = Config.from_env({})
    assert (d.reconcile_parallel, d.startup_grace) == (4, 10.0)
    c = Config.from_env({"VPC_RECONCILE_PARALLEL": "16", "VPC_STARTUP_GRACE": "0"})
    assert (c.reconcile_parallel, c.startup_grace) == (16, 0.0)
    for bad in ({"VPC_RECONCILE_PARALLEL": "0"}, {"VPC_RECONCILE_PARALLEL": "two"},
                {"VPC_STARTUP_GRACE": "-1"}, {"VPC_STARTUP_GRACE": "nan"},
                {"VPC_STARTUP_GRACE": "soon"}):
        with pytest.raises(ConfigError):
            Config.from_env(bad)


def test_flow_stats_parse_to_cookies_that_match_the_full_parser():
    """Serialize real flow-stats entries (as OVS sends them) and parse them both ways."""
    p, o = ofsender.parser, ofsender.ofp
    flows = [flow(Table.L2, 100 + i, {"eth_dst": f"02:00:00:00:00:0{i}", "metadata": i},
                  actions=[("output", i + 1)], kind=CookieKind.PORT, owner=i) for i in range(1, 5)]
    buf = bytearray()
    for f in flows:
        st = p.OFPFlowStats(table_id=f.table, duration_sec=1, duration_nsec=2, priority=f.priority,
                            idle_timeout=0, hard_timeout=0, flags=0, cookie=f.cookie,
                            packet_count=3, byte_count=4, match=p.OFPMatch(**f.match_dict()),
                            instructions=ofsender.to_instructions(f))
        # os-ken has no serializer for a flow-stats entry: pack it like OVS does
        mbuf = bytearray()
        st.match.serialize(mbuf, 0)
        ibuf = bytearray()
        for inst in st.instructions:
            inst.serialize(ibuf, len(ibuf))
        length = o.OFP_FLOW_STATS_0_SIZE + len(mbuf) + len(ibuf)
        head = struct.pack(o.OFP_FLOW_STATS_0_PACK_STR, length, f.table, 1, 2, f.priority,
                           0, 0, 0, f.cookie, 3, 4)
        buf += head + mbuf + ibuf
    offset, full, fast = 0, [], []
    while offset < len(buf):
        a = p.OFPFlowStats.parser(buf, offset)
        b = ofsender.CookieFlowStats.parser(buf, offset)
        assert (a.length, a.table_id, a.priority, a.cookie) == \
               (b.length, b.table_id, b.priority, b.cookie)
        full.append(a.cookie)
        fast.append(b.cookie)
        offset += b.length
    assert fast == full == [f.cookie for f in flows]
    saved = p.OFPFlowStatsReply.cls_stats_body_cls
    try:
        ofsender.use_cookie_flow_stats()
        assert p.OFPFlowStatsReply.cls_stats_body_cls is ofsender.CookieFlowStats
    finally:
        p.OFPFlowStatsReply.cls_stats_body_cls = saved


def test_presumed_hosts_count_as_connected_for_the_compiler_until_given_up():
    from controller.model.state import Host
    t = Topology()
    t.sync_hosts([Host(name="h1", dpid=1, tunnel_ip="198.18.0.11"),
                  Host(name="h2", dpid=2, tunnel_ip="198.18.0.12")])
    t.presume_connected([1, 2])
    assert t.snapshot().connected(1) and t.snapshot().connected(2)
    assert not t.connected(1)                    # the live graph (UI, health) does not lie
    t.datapath_up(1)
    assert t.stop_presuming(1) == {1} and t.stop_presuming(1) == set()
    assert t.stop_presuming() == {2}
    assert t.snapshot().connected(1) and not t.snapshot().connected(2)


def test_a_restart_compiles_the_same_flows_before_the_peers_are_back():
    """Host 1 reconnects first: with its peers presumed, it gets exactly the
    flows it had before the restart (nothing withdrawn, nothing re-added)."""
    w = World(hosts=3, tenants=[("a", "vxlan", 1), ("b", "gre", 2)],
              ports=[("a", 1, "10.0.0.2"), ("a", 2, "10.0.0.3"), ("b", 1, "10.0.0.2"),
                     ("b", 3, "10.0.0.3")])
    before = compile_datapath(w.state, w.topo, 1)
    t = Topology()
    t.sync_hosts(w.state.hosts.values())
    t.presume_connected(h.dpid for h in w.state.hosts.values())
    t.datapath_up(1)
    t.set_ports(1, dict(w.topo.ports(1)))
    t.stop_presuming(1)
    assert compile_datapath(w.state, t.snapshot(), 1) == before
    t.stop_presuming()                           # the grace ends, 2 and 3 never came
    assert compile_datapath(w.state, t.snapshot(), 1) != before


def test_pausing_between_pieces_changes_nothing_and_happens_per_tenant():
    w = World(hosts=2, tenants=[("a", "vxlan", 1), ("b", "vlan", 2)],
              ports=[("a", 1, "10.0.0.2"), ("a", 2, "10.0.0.3"), ("b", 1, "10.0.0.2")])
    calls = []
    paused = compile_datapath(w.state, w.topo, 1, pause=lambda: calls.append(1))
    assert paused == compile_datapath(w.state, w.topo, 1)
    assert len(calls) == 2 + 2 + 1           # two local ports, two tenants, external


def test_a_state_snapshot_stays_put_while_the_state_moves_on():
    w = World(hosts=2, tenants=[("a", "vlan", 1)], ports=[("a", 1, "10.0.0.2")])
    snap = w.state.snapshot()
    assert w.state.snapshot() is snap and snap is not w.state
    w.state.apply([("del", "ports", "p1")])
    assert "p1" in snap.ports and snap.ports_of("a") and not w.state.ports_of("a")
    assert w.state.snapshot() is not snap and "p1" not in w.state.snapshot().ports
