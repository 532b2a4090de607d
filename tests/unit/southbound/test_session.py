"""The southbound's shortcuts for many switches: pre-serialized flow-mods (also
inside bundles), reply timeouts that count silence rather than total time,
and flow dumps parsed for cookies only -- each checked against os-ken's own
full path."""
import struct

import eventlet
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.compile.flows import flow
from controller.compile.pipeline import CookieKind, Table
from controller.southbound import flowmod, flowstats, patches, session as ofsession


class FakeDp:
    ofproto = ofp
    ofproto_parser = parser
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
    dp, cache = FakeDp(), flowmod.FlowModCache(size=2)
    f1 = flow(Table.L2, 100, {"eth_dst": "02:00:00:00:00:01", "metadata": 5},
              actions=[("output", 3)], kind=CookieKind.PORT, owner=1)
    f2 = flow(Table.L2, 100, {"eth_dst": "02:00:00:00:00:01", "metadata": 5},
              actions=[("output", 3)], kind=CookieKind.PORT, owner=2)  # same content
    for xid, f in ((41, f1), (42, f1), (43, f2)):
        m = cache.message(dp, f)
        m.set_xid(xid)
        m.serialize()
        fresh = flowmod.add_flow_mod(dp, f)
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
    add = parser.ONFBundleAddMsg(dp, 1, ofsession.BUNDLE_FLAGS,
                                          flowmod.FLOW_MODS.message(dp, f1), [])
    dp.set_xid(add)
    add.serialize()
    inner = add.buf[16 + 8:]                      # experimenter header + bundle id/flags
    assert struct.unpack_from("!I", inner, 4)[0] == add.xid


def test_multipart_replies_that_keep_coming_are_not_a_timeout():
    dp = FakeDp()
    session = ofsession.OFSession(dp)

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
    replies = session.call(parser.OFPBarrierRequest(dp), timeout=0.1)
    assert len(replies) == 9
    dp.on_send = None
    try:
        session.call(parser.OFPBarrierRequest(dp), timeout=0.1)
    except ofsession.SwitchError as exc:
        assert "no reply" in str(exc)
    else:
        raise AssertionError("silence must time out")


def test_flow_stats_parse_to_cookies_that_match_the_full_parser():
    """Serialize real flow-stats entries (as OVS sends them) and parse them both ways."""
    p, o = parser, ofp
    flows = [flow(Table.L2, 100 + i, {"eth_dst": f"02:00:00:00:00:0{i}", "metadata": i},
                  actions=[("output", i + 1)], kind=CookieKind.PORT, owner=i) for i in range(1, 5)]
    buf = bytearray()
    for f in flows:
        st = p.OFPFlowStats(table_id=f.table, duration_sec=1, duration_nsec=2, priority=f.priority,
                            idle_timeout=0, hard_timeout=0, flags=0, cookie=f.cookie,
                            packet_count=3, byte_count=4, match=p.OFPMatch(**f.match_dict()),
                            instructions=flowmod.to_instructions(f))
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
        b = flowstats.CookieFlowStats.parser(buf, offset)
        assert (a.length, a.table_id, a.priority, a.cookie) == \
               (b.length, b.table_id, b.priority, b.cookie)
        full.append(a.cookie)
        fast.append(b.cookie)
        offset += b.length
    assert fast == full == [f.cookie for f in flows]
    saved = p.OFPFlowStatsReply.cls_stats_body_cls
    try:
        patches.use_cookie_flow_stats()
        assert p.OFPFlowStatsReply.cls_stats_body_cls is flowstats.CookieFlowStats
    finally:
        p.OFPFlowStatsReply.cls_stats_body_cls = saved
