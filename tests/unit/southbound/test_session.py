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
        self.raw = []
        self.on_send = None

    def set_xid(self, msg):
        self.xid += 1
        msg.set_xid(self.xid)
        return self.xid

    def send(self, buf):
        self.raw.append(bytes(buf))
        return True

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
    # whole replies, through os-ken's own entry point: a flow dump (MORE flag
    # kept) and a port-description reply, which must still be os-ken's
    from os_ken.ofproto import ofproto_parser
    from os_ken.ofproto.ofproto_protocol import ProtocolDesc

    def reply(mp_type, body, flags=0):
        head = struct.pack(o.OFP_MULTIPART_REPLY_PACK_STR, mp_type, flags)
        n = o.OFP_HEADER_SIZE + len(head) + len(body)
        return struct.pack(o.OFP_HEADER_PACK_STR, o.OFP_VERSION, o.OFPT_MULTIPART_REPLY, n, 7) \
            + head + bytes(body)

    port = struct.pack(o.OFP_PORT_PACK_STR, 3, b"\x02\x00\x00\x00\x00\x03", b"p3",
                       0, 0, 0, 0, 0, 0, 0, 0)
    dp = ProtocolDesc(o.OFP_VERSION)

    def parse(data):
        return ofproto_parser.msg(dp, o.OFP_VERSION, o.OFPT_MULTIPART_REPLY, len(data), 7, data)

    saved = p.OFPFlowStatsReply.cls_stats_body_cls
    saved_parser = p._MSG_PARSERS[o.OFPT_MULTIPART_REPLY]
    try:
        before = parse(reply(o.OFPMP_FLOW, buf, o.OFPMPF_REPLY_MORE))
        patches.use_cookie_flow_stats()
        assert p.OFPFlowStatsReply.cls_stats_body_cls is flowstats.CookieFlowStats
        got = parse(reply(o.OFPMP_FLOW, buf, o.OFPMPF_REPLY_MORE))
        assert isinstance(got, p.OFPFlowStatsReply) and got.flags == o.OFPMPF_REPLY_MORE
        assert [(e.table_id, e.priority, e.cookie) for e in got.body] == \
               [(e.table_id, e.priority, e.cookie) for e in before.body]
        assert parse(reply(o.OFPMP_FLOW, b"")).body == []
        ports = parse(reply(o.OFPMP_PORT_DESC, port))
        assert isinstance(ports, p.OFPPortDescStatsReply) and ports.body[0].name == b"p3"
        # a malformed entry: os-ken logs the message as malformed and drops it
        assert parse(reply(o.OFPMP_FLOW, struct.pack(o.OFP_FLOW_STATS_0_PACK_STR, 4, 0, 1, 2,
                                                     100, 0, 0, 0, 5, 3, 4))) is None
    finally:
        p.OFPFlowStatsReply.cls_stats_body_cls = saved
        p._MSG_PARSERS[o.OFPT_MULTIPART_REPLY] = saved_parser


def _parse_all(buf):
    """[(xid, bundle id, inner message)] of a stream of bundle-adds (os-ken has
    no parser for them: the head by hand, the inner message by os-ken)."""
    from os_ken.ofproto import ofproto_parser
    out, offset = [], 0
    while offset < len(buf):
        _, msg_type, length, xid, exp, exp_type, bid, _ = struct.unpack_from(
            "!BBHIIII2xH", buf, offset)
        assert (msg_type, exp_type) == (ofp.OFPT_EXPERIMENTER, ofp.ONF_ET_BUNDLE_ADD_MESSAGE)
        inner = buf[offset + 24:offset + length]
        version, itype, ilen, ixid = ofproto_parser.header(inner)
        out.append((xid, bid, ofproto_parser.msg(FakeDp(), version, itype, ilen, ixid, inner)))
        offset += length
    return out


def test_bundle_adds_written_from_cached_bytes_equal_os_kens_own():
    dp = FakeDp()
    f1 = flow(Table.L2, 100, {"eth_dst": "02:00:00:00:00:01", "metadata": 5},
              actions=[("output", 3)], kind=CookieKind.PORT, owner=1)
    for inner, fresh in ((flowmod.FLOW_MODS.encoded(f1), flowmod.add_flow_mod(dp, f1)),
                         (flowmod.delete_cookie_bytes(f1.cookie),
                          flowmod.delete_cookie_mod(dp, f1.cookie))):
        buf = bytearray()
        flowmod.bundle_add_bytes(buf, 77, 5, ofsession.BUNDLE_FLAGS, inner)
        add = parser.ONFBundleAddMsg(dp, 5, ofsession.BUNDLE_FLAGS, fresh, [])
        add.set_xid(77)
        add.serialize()
        assert bytes(buf) == bytes(add.buf)


def test_apply_sends_one_bundle_of_every_delete_and_add_in_order(monkeypatch):
    """Open, the adds written in large buffers (each with its own xid), a
    barrier, commit; what the switch parses is the deletes then the adds."""
    monkeypatch.setattr(ofsession, "SEND_BYTES", 512)     # several buffers
    dp = FakeDp()
    session = ofsession.OFSession(dp)
    dp.on_send = lambda msg: eventlet.spawn(session.on_reply, msg)   # answer every call
    flows = [flow(Table.L2, 100, {"in_port": i}, actions=[("output", i + 1)],
                  kind=CookieKind.PORT, owner=i) for i in range(1, 40)]
    assert session.apply([0x0200000100000001], flows) == 40
    msgs = [m for buf in dp.raw for m in _parse_all(buf)]
    assert len(dp.raw) > 1 and len(msgs) == 40
    assert len({x for x, _, _ in msgs}) == 40 and all(m.xid == x for x, _, m in msgs)
    assert len({b for _, b, _ in msgs}) == 1
    first = msgs[0][2]
    assert first.command == ofp.OFPFC_DELETE and first.cookie == 0x0200000100000001
    assert [(m.cookie, m.match["in_port"]) for _, _, m in msgs[1:]] == \
        [(f.cookie, f.match_dict()["in_port"]) for f in flows]
    kinds = [type(m).__name__ for m in dp.sent]
    assert kinds == ["ONFBundleCtrlMsg", "OFPBarrierRequest", "ONFBundleCtrlMsg"]


def test_ports_come_from_the_handshake_and_both_dumps_share_one_round_trip():
    dp = FakeDp()
    session = ofsession.OFSession(dp)
    dp.ports = {3: parser.OFPPort(port_no=3, hw_addr="02:00:00:00:00:03", name=b"vx",
                                  config=0, state=0, curr=0, advertised=0, supported=0,
                                  peer=0, curr_speed=0, max_speed=0)}
    assert list(session.port_descriptions()) == ["vx"] and dp.sent == []   # nothing asked
    waiting = []

    def answer(msg):          # hold the replies until both requests are out
        waiting.append(msg)
        if len(waiting) == 2:
            for m in waiting:
                eventlet.spawn(session.on_reply, type("R", (), {"xid": m.xid, "body": []})())
    dp.on_send = answer
    assert session.dump_flows_and_meters() == ([], {})
    assert [type(m).__name__ for m in dp.sent] == ["OFPFlowStatsRequest",
                                                   "OFPMeterConfigStatsRequest"]


def test_meters_sent_before_a_bundle_are_checked_at_its_barrier():
    from controller.compile.meters import port_meter
    dp = FakeDp()
    session = ofsession.OFSession(dp)
    refuse = []

    def answer(msg):
        if isinstance(msg, parser.OFPMeterMod) and refuse:
            err = type("E", (), {"xid": msg.xid, "type": 1, "code": 2})()
            eventlet.spawn(session.on_error, err)
        elif not isinstance(msg, parser.OFPMeterMod):
            eventlet.spawn(session.on_reply, msg)
    dp.on_send = answer
    f1 = flow(Table.L2, 100, {"in_port": 1}, actions=[("output", 2)])
    assert session.send_meters([port_meter(1)]) == 1
    session.apply([], [f1])
    kinds = [type(m).__name__ for m in dp.sent]
    assert kinds == ["OFPMeterMod", "ONFBundleCtrlMsg", "OFPBarrierRequest", "ONFBundleCtrlMsg"]
    refuse.append(True)
    session.send_meters([port_meter(2)])
    try:
        session.apply([], [f1])
    except ofsession.SwitchError as exc:
        assert "refused" in str(exc)
    else:
        raise AssertionError("a refused meter-mod must fail the bundle")
    assert session._early == [] and not session._watch
