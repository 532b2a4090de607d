"""The OpenFlow sender: the only code that builds os-ken messages for flows.

It turns Flow values into flow-mods, reads the cookies a switch holds, and
applies a change as one atomic, ordered ONF bundle (the OVN ofctrl lesson: the
switch goes from the old flow set to the new one with nothing in between).

Replies are matched to requests by xid.  The os-ken app's event handlers call
`on_reply` / `on_error`; the caller waits in its own greenthread (never in the
app's event loop, which must stay free to deliver those replies).

LAB.md gotcha handled here: a message rejected when *added* to a bundle does
not poison it, so after the adds we send a barrier, look for errors against
the adds' xids, and discard the bundle if any came back.
"""
import itertools
import logging
import struct
import time
from collections import OrderedDict

from os_ken.lib import hub
from os_ken.lib.packet import arp, ethernet, packet
from os_ken.ofproto import nicira_ext
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.compile.flows import MOVE_FIELDS
from controller.compile.pipeline import NAT_DST, NAT_SRC

LOG = logging.getLogger(__name__)
ALL_COOKIE_BITS = 0xFFFF_FFFF_FFFF_FFFF
BUNDLE_FLAGS = ofp.ONF_BF_ATOMIC | ofp.ONF_BF_ORDERED
REPLY_TIMEOUT = 15.0
BUNDLE_CHUNK = 5000   # adds per bundle-add burst before a barrier (keeps queues sane)
YIELD_EVERY = 256          # flow-mods built between cooperative yields
FLOW_MOD_CACHE = 131072   # serialized flow-mods kept (a few hundred bytes each)


class SwitchError(Exception):
    """The switch refused something or did not answer."""


def to_actions(actions):
    out = []
    for a in actions:
        name = a[0]
        if name == "output" and a[1] == "controller":
            out.append(parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER))
        elif name == "output":
            port = ofp.OFPP_IN_PORT if a[1] == "in_port" else a[1]
            out.append(parser.OFPActionOutput(port, 0))
        elif name == "ct":
            out.append(ct_action(*a[1:]))
        elif name == "push_vlan":
            out.append(parser.OFPActionPushVlan(a[1]))
        elif name == "pop_vlan":
            out.append(parser.OFPActionPopVlan())
        elif name == "set_field":
            out.append(parser.OFPActionSetField(**{a[1]: a[2]}))
        elif name == "move":
            out.append(parser.NXActionRegMove(src_field=a[1], dst_field=a[2],
                                              n_bits=MOVE_FIELDS[a[1]], src_ofs=0, dst_ofs=0))
        elif name == "dec_ttl":
            out.append(parser.OFPActionDecNwTtl())
        else:
            raise ValueError(f"no OpenFlow form for action {a!r}")
    return out


def ct_action(commit, zone, table, nat):
    """("ct", commit, zone, table, nat) -> NXActionCT with an optional NXActionNAT.
    nat: None (no NAT), () (apply an existing connection's NAT), or
    ("src"|"dst", ip_min, ip_max, port_min, port_max)."""
    nat_actions = []
    if nat == ():
        nat_actions = [parser.NXActionNAT(0)]
    elif nat:
        kind, ip_min, ip_max, port_min, port_max = nat
        kwargs = {"range_ipv4_min": ip_min, "range_ipv4_max": ip_max}
        if port_min:
            kwargs.update(range_proto_min=port_min, range_proto_max=port_max)
        nat_actions = [parser.NXActionNAT(NAT_SRC if kind == "src" else NAT_DST, **kwargs)]
    return parser.NXActionCT(
        flags=nicira_ext.NX_CT_F_COMMIT if commit else 0, zone_src="", zone_ofs_nbits=zone,
        recirc_table=nicira_ext.NX_CT_RECIRC_NONE if table is None else table, alg=0,
        actions=nat_actions)


def to_instructions(f):
    inst = []
    if f.actions:
        inst.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, to_actions(f.actions)))
    if f.metadata is not None:
        inst.append(parser.OFPInstructionWriteMetadata(*f.metadata))
    if f.goto is not None:
        inst.append(parser.OFPInstructionGotoTable(f.goto))
    return inst


def add_flow_mod(dp, f):
    return parser.OFPFlowMod(dp, cookie=f.cookie, table_id=f.table, command=ofp.OFPFC_ADD,
                             priority=f.priority, match=parser.OFPMatch(**f.match_dict()),
                             instructions=to_instructions(f))


class _Serialized(parser.MsgBase):
    """A flow-mod whose bytes were built before; only the xid is patched in.

    Why: building an OFPFlowMod (OFPMatch normalises every field through
    netaddr) and serializing it costs ~270 us, and most flows are sent to many
    switches in the same form (a tenant's flows on each of its hosts, the
    table defaults everywhere): at 100 switches x 3,000 flows that was most of
    a cold start's CPU.  Bytes depend only on the Flow (and its cookie)."""

    def __init__(self, dp, data):
        super().__init__(dp)
        self._data = data

    def serialize(self):
        self.buf = bytearray(self._data)
        struct.pack_into("!I", self.buf, 4, self.xid or 0)


class FlowModCache:
    """(cookie, Flow) -> serialized OFPFC_ADD, least recently used dropped.
    The key holds the cookie too: Flow equality ignores the owner bits."""

    def __init__(self, size=FLOW_MOD_CACHE):
        self.size = size
        self._data = OrderedDict()
        self.hits = self.misses = 0

    def message(self, dp, f):
        key = (f.cookie, f)
        data = self._data.get(key)
        if data is None:
            self.misses += 1
            m = add_flow_mod(dp, f)
            m.set_xid(0)
            m.serialize()
            data = self._data[key] = bytes(m.buf)
            if len(self._data) > self.size:
                self._data.popitem(last=False)
        else:
            self.hits += 1
            self._data.move_to_end(key)
        return _Serialized(dp, data)


FLOW_MODS = FlowModCache()


class CookieFlowStats:
    """A flow-stats entry as far as this controller cares: table, priority,
    cookie (and the length, to step to the next entry).

    Why: os-ken parses every match field and instruction of every flow in a
    dump (through netaddr for addresses); reading back 100 switches x 3,000
    flows after a restart spent half the controller's CPU there, only for the
    reconciler to keep the cookies.  Installed by `use_cookie_flow_stats()`,
    which makes every OFPFlowStatsReply in this process carry these."""

    __slots__ = ("length", "table_id", "priority", "cookie")
    _HEAD = struct.Struct(ofp.OFP_FLOW_STATS_0_PACK_STR)

    def __init__(self, length, table_id, priority, cookie):
        self.length, self.table_id, self.priority, self.cookie = \
            length, table_id, priority, cookie

    @classmethod
    def parser(cls, buf, offset):
        (length, table_id, _, _, priority, _, _, _, cookie, _, _) = \
            cls._HEAD.unpack_from(buf, offset)
        if length < cls._HEAD.size:
            raise ValueError(f"flow stats entry of {length} bytes")
        return cls(length, table_id, priority, cookie)


def use_cookie_flow_stats():
    """Parse flow-stats replies into CookieFlowStats (see there).  Only the
    controller's edge calls this; nothing in it reads more of a flow dump."""
    parser.OFPFlowStatsReply.cls_stats_body_cls = CookieFlowStats


def delete_cookie_mod(dp, cookie):
    """Delete exactly the flows carrying this cookie, in every table."""
    return parser.OFPFlowMod(dp, cookie=cookie, cookie_mask=ALL_COOKIE_BITS,
                             table_id=ofp.OFPTT_ALL, command=ofp.OFPFC_DELETE,
                             out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                             match=parser.OFPMatch())


def parse_arp(data):
    """(opcode, sender mac, sender ip, target ip) of an ARP frame, else None."""
    try:
        pkt = packet.Packet(data)
    except Exception:
        return None
    a = pkt.get_protocol(arp.arp)
    if a is None:
        return None
    return a.opcode, a.src_mac, a.src_ip, a.dst_ip


class _Pending:
    def __init__(self):
        self.event = hub.Event()
        self.replies = []
        self.error = None
        self.progress = time.monotonic()


class OFSession:
    """One connected datapath, with request/reply matching."""

    _bundle_ids = itertools.count(1)

    def __init__(self, dp):
        self.dp = dp
        self.dpid = dp.id
        self._pending = {}
        self._watch = {}   # xid -> error, for bundle adds
        self.bundle_trouble = None

    # --- called from the app's event handlers --------------------------------
    def on_reply(self, msg, more=False):
        p = self._pending.get(msg.xid)
        if p is None:
            return
        p.replies.append(msg)
        p.progress = time.monotonic()
        if not more:
            p.event.set()

    def on_error(self, msg):
        matched = msg.xid in self._watch or msg.xid in self._pending
        if msg.xid in self._watch:
            self._watch[msg.xid] = msg
        p = self._pending.get(msg.xid)
        if p is not None:
            p.error = msg
            p.event.set()
        if not matched and msg.type == ofp.OFPET_EXPERIMENTER:
            # e.g. OFPBFC_TIMEOUT: OVS discarded an idle bundle on its own and says
            # so with the open's xid, which nobody waits for any more.  The running
            # reconcile must not believe its commit applied everything.
            LOG.warning("dpid %016x: unsolicited bundle error %s", self.dpid,
                        _describe_error(msg))
            self.bundle_trouble = msg

    def fail_all(self, reason):
        for p in self._pending.values():
            p.error = reason
            p.event.set()

    # --- requests -----------------------------------------------------------------
    def call(self, msg, timeout=REPLY_TIMEOUT):
        self.dp.set_xid(msg)
        p = self._pending[msg.xid] = _Pending()
        try:
            if not self.dp.send_msg(msg):
                raise SwitchError(f"dpid {self.dpid:016x}: connection is gone")
            # `timeout` bounds silence, not the whole answer: a dump of many
            # thousand flows arrives in parts, and each part is progress.
            while not p.event.wait(timeout=max(0.05, p.progress + timeout - time.monotonic())):
                if time.monotonic() - p.progress >= timeout:
                    raise SwitchError(f"dpid {self.dpid:016x}: no reply to "
                                      f"{type(msg).__name__} within {timeout:.0f}s")
            if p.error is not None:
                raise SwitchError(f"dpid {self.dpid:016x}: {type(msg).__name__} failed: "
                                  f"{_describe_error(p.error)}")
            return p.replies
        finally:
            self._pending.pop(msg.xid, None)

    def barrier(self):
        self.call(parser.OFPBarrierRequest(self.dp))

    def dump_cookies(self):
        """Cookies of every flow the switch holds (one per flow)."""
        req = parser.OFPFlowStatsRequest(self.dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY,
                                         0, 0, parser.OFPMatch())
        cookies = []
        for reply in self.call(req):
            cookies += [stat.cookie for stat in reply.body]
        return cookies

    def apply(self, delete_cookies, add_flows):
        """Deletes then adds, as one atomic ordered bundle.  Returns messages sent."""
        msgs = [delete_cookie_mod(self.dp, c) for c in delete_cookies]
        for n, f in enumerate(add_flows, 1):
            msgs.append(FLOW_MODS.message(self.dp, f))
            if n % YIELD_EVERY == 0:
                hub.sleep(0)     # building is CPU work: let handshakes and replies in
        if not msgs:
            return 0
        bid = next(self._bundle_ids) & 0xFFFF_FFFF
        self.bundle_trouble = None
        self._ctrl(bid, ofp.ONF_BCT_OPEN_REQUEST)
        try:
            for start in range(0, len(msgs), BUNDLE_CHUNK):
                xids = []
                for m in msgs[start:start + BUNDLE_CHUNK]:
                    add = parser.ONFBundleAddMsg(self.dp, bid, BUNDLE_FLAGS, m, [])
                    xids.append(self.dp.set_xid(add))
                    self._watch[add.xid] = None
                    if not self.dp.send_msg(add):
                        raise SwitchError(f"dpid {self.dpid:016x}: connection is gone")
                self.barrier()
                bad = [self._watch[x] for x in xids if self._watch.get(x) is not None]
                if bad:
                    raise SwitchError(f"dpid {self.dpid:016x}: {len(bad)} flow-mod(s) refused, "
                                      f"first: {_describe_error(bad[0])}")
                for x in xids:
                    self._watch.pop(x, None)
        except Exception:
            self._watch.clear()
            try:
                self._ctrl(bid, ofp.ONF_BCT_DISCARD_REQUEST)
            except SwitchError as exc:
                LOG.warning("discarding bundle %d failed: %s", bid, exc)
            raise
        self._ctrl(bid, ofp.ONF_BCT_COMMIT_REQUEST)
        if self.bundle_trouble is not None:
            raise SwitchError(f"dpid {self.dpid:016x}: the switch reported a bundle failure "
                              f"({_describe_error(self.bundle_trouble)}); its flows will be "
                              f"re-read")
        return len(msgs)

    def packet_out(self, port_no, data):
        """Send a ready-made frame out of one port (LLDP probes)."""
        out = parser.OFPPacketOut(self.dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=ofp.OFPP_CONTROLLER,
                                  actions=[parser.OFPActionOutput(port_no, 0)], data=data)
        return self.dp.send_msg(out)

    def arp_probe(self, port_no, src_mac, src_ip, target_ip):
        """Packet-out an ARP request (who has target_ip?) on one port."""
        pkt = packet.Packet()
        pkt.add_protocol(ethernet.ethernet(dst="ff:ff:ff:ff:ff:ff", src=src_mac,
                                           ethertype=0x0806))
        pkt.add_protocol(arp.arp(opcode=arp.ARP_REQUEST, src_mac=src_mac, src_ip=src_ip,
                                 dst_mac="00:00:00:00:00:00", dst_ip=target_ip))
        pkt.serialize()
        out = parser.OFPPacketOut(self.dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=ofp.OFPP_CONTROLLER,
                                  actions=[parser.OFPActionOutput(port_no, 0)], data=pkt.data)
        return self.dp.send_msg(out)

    def _ctrl(self, bid, kind):
        self.call(parser.ONFBundleCtrlMsg(self.dp, bid, kind, BUNDLE_FLAGS, []))


def _describe_error(err):
    if isinstance(err, str):
        return err
    text = f"type={err.type} code={err.code}"
    if err.type == ofp.OFPET_EXPERIMENTER:
        text += f" exp_type={getattr(err, 'exp_type', '?')}"
    return text
