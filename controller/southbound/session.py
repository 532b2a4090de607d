"""One connected switch: requests and replies, bundles, roles, ports, packet-outs.

It reads the cookies a switch holds, applies a change as one atomic, ordered ONF bundle (the OVN ofctrl lesson: the
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
import time

from os_ken.lib import hub
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.southbound.flowmod import (FLOW_MODS, bundle_add_bytes, delete_cookie_bytes,
                                           meter_config_request, meter_delete_mod, meter_mod,
                                           meters_from_config)
from controller.southbound.events import port_desc
from controller.southbound.frames import arp_request

LOG = logging.getLogger(__name__)
BUNDLE_FLAGS = ofp.ONF_BF_ATOMIC | ofp.ONF_BF_ORDERED
REPLY_TIMEOUT = 15.0
BUNDLE_CHUNK = 5000   # adds per bundle-add burst before a barrier (keeps queues sane)
YIELD_EVERY = 256          # flow-mods built between cooperative yields
SEND_BYTES = 64 * 1024     # bundle-adds written per send (then a yield)
ROLES = {"nochange": ofp.OFPCR_ROLE_NOCHANGE, "equal": ofp.OFPCR_ROLE_EQUAL,
         "master": ofp.OFPCR_ROLE_MASTER, "slave": ofp.OFPCR_ROLE_SLAVE}
NO_GENERATION = 0xFFFF_FFFF_FFFF_FFFF   # what a bridge reports before any master claim


class SwitchError(Exception):
    """The switch refused something or did not answer."""


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
        self._early = []   # xids of meter-mods the next bundle's barrier checks
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
        return self._await(msg, self._request(msg), timeout)

    def _request(self, msg):
        """Send a request whose reply _await() will collect: several may be
        in flight at once (one round trip for several questions)."""
        self.dp.set_xid(msg)
        p = self._pending[msg.xid] = _Pending()
        try:
            if not self.dp.send_msg(msg):
                raise SwitchError(f"dpid {self.dpid:016x}: connection is gone")
        except BaseException:
            self._pending.pop(msg.xid, None)
            raise
        return p

    def _await(self, msg, p, timeout=REPLY_TIMEOUT):
        try:
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

    def dump_meters(self):
        """{meter id: Meter} of every meter the switch holds (multipart)."""
        return meters_from_config(self.call(meter_config_request(self.dp)))

    def dump_flows_and_meters(self):
        """(cookies, {meter id: Meter}): both questions sent at once, one
        round trip instead of two before a switch's first reconcile."""
        flows = parser.OFPFlowStatsRequest(self.dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY,
                                           0, 0, parser.OFPMatch())
        meters = meter_config_request(self.dp)
        pf = self._request(flows)
        try:
            pm = self._request(meters)
        except BaseException:
            self._pending.pop(flows.xid, None)
            raise
        try:
            cookies = [stat.cookie for reply in self._await(flows, pf) for stat in reply.body]
        except BaseException:
            self._pending.pop(meters.xid, None)
            raise
        return cookies, meters_from_config(self._await(meters, pm))

    def set_meters(self, adds, modifies=(), deletes=()):
        """Meter-mods (adds, modifies: Meter values; deletes: meter ids),
        checked: sent, then a barrier, then any error they drew raises.
        Meters are not bundled (OVS bundles take flow and port mods only), so
        the reconciler adds them before the bundle that uses them and deletes
        them after it.  Returns the number of messages sent."""
        msgs = [meter_mod(self.dp, m, "add") for m in adds] + \
            [meter_mod(self.dp, m, "modify") for m in modifies] + \
            [meter_delete_mod(self.dp, mid) for mid in deletes]
        if msgs:
            self._send_checked(msgs, "meter-mod")
        return len(msgs)

    def send_meters(self, adds, modifies=()):
        """Meter-mods without a barrier of their own, for a bundle that
        follows at once (apply): the switch handles them in order, before the
        bundle's flows that use them, and apply() checks their errors at its
        barrier -- one round trip less than set_meters().  Returns messages sent."""
        msgs = [meter_mod(self.dp, m, "add") for m in adds] + \
            [meter_mod(self.dp, m, "modify") for m in modifies]
        for m in msgs:
            self._early.append(self.dp.set_xid(m))
            self._watch[m.xid] = None
            if not self.dp.send_msg(m):
                raise SwitchError(f"dpid {self.dpid:016x}: connection is gone")
        return len(msgs)

    def _send_checked(self, msgs, what):
        """Send messages that have no reply, then a barrier; raise if the
        switch refused any of them (its errors carry their xids)."""
        xids = []
        try:
            for m in msgs:
                xids.append(self.dp.set_xid(m))
                self._watch[m.xid] = None
                if not self.dp.send_msg(m):
                    raise SwitchError(f"dpid {self.dpid:016x}: connection is gone")
            self._refusals_after_barrier(xids, what)
        finally:
            for x in xids:
                self._watch.pop(x, None)

    def _refusals_after_barrier(self, xids, what):
        """A barrier, then raise if the switch refused any message of `xids`
        (its errors carry their xids; on_error put them in _watch)."""
        self.barrier()
        bad = [self._watch[x] for x in xids if self._watch.get(x) is not None]
        if bad:
            raise SwitchError(f"dpid {self.dpid:016x}: {len(bad)} {what}(s) refused, "
                              f"first: {_describe_error(bad[0])}")

    def apply(self, delete_cookies, add_flows):
        """Deletes then adds, as one atomic ordered bundle.  Returns messages sent.

        The bundle-adds are written straight into large buffers from each
        flow's cached bytes (flowmod.FlowModCache, bundle_add_bytes): no
        os-ken message object per flow, one send per SEND_BYTES instead of
        one per flow, and a cooperative yield between buffers so that other
        switches' handshakes and replies are not held up."""
        inner = [delete_cookie_bytes(c) for c in delete_cookies]
        for n, f in enumerate(add_flows, 1):
            inner.append(FLOW_MODS.encoded(f))
            if n % YIELD_EVERY == 0:
                hub.sleep(0)     # encoding a flow not seen before is CPU work
        if not inner:
            return 0
        bid = next(self._bundle_ids) & 0xFFFF_FFFF
        self.bundle_trouble = None
        # The open's reply is not waited for before the adds: the switch
        # handles messages in order, so it has answered the open by the time
        # it answers the barrier after the adds (one round trip less).
        opening = parser.ONFBundleCtrlMsg(self.dp, bid, ofp.ONF_BCT_OPEN_REQUEST,
                                          BUNDLE_FLAGS, [])
        pending_open = self._request(opening)
        try:
            try:
                for start in range(0, len(inner), BUNDLE_CHUNK):
                    self._bundle_adds(bid, inner[start:start + BUNDLE_CHUNK])
            finally:
                self._await(opening, pending_open)
        except Exception:
            self._watch.clear()
            self._early = []
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
        return len(inner)

    def _bundle_adds(self, bid, inner):
        """Bundle-adds of serialized messages, then a barrier; raise if the
        switch refused any (its errors carry the adds' xids)."""
        xids, self._early = self._early, []      # send_meters' meter-mods, if any
        try:
            buf = bytearray()
            for data in inner:
                xid = self._next_xid()
                xids.append(xid)
                self._watch[xid] = None
                bundle_add_bytes(buf, xid, bid, BUNDLE_FLAGS, data)
                if len(buf) >= SEND_BYTES:
                    self._send_raw(buf)
                    buf = bytearray()
                    hub.sleep(0)
            if buf:
                self._send_raw(buf)
            self._refusals_after_barrier(xids, "flow-/meter-mod")
        finally:
            for x in xids:
                self._watch.pop(x, None)

    def _next_xid(self):
        """The datapath's next xid, as os-ken's Datapath.set_xid counts them."""
        self.dp.xid = (self.dp.xid + 1) & ofp.MAX_XID
        return self.dp.xid

    def _send_raw(self, buf):
        if not self.dp.send(bytes(buf)):
            raise SwitchError(f"dpid {self.dpid:016x}: connection is gone")

    def packet_out(self, port_no, data):
        """Send a ready-made frame out of one port (LLDP probes)."""
        out = parser.OFPPacketOut(self.dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=ofp.OFPP_CONTROLLER,
                                  actions=[parser.OFPActionOutput(port_no, 0)], data=data)
        return self.dp.send_msg(out)

    def arp_probe(self, port_no, src_mac, src_ip, target_ip):
        """Packet-out an ARP request (who has target_ip?) on one port."""
        return self.packet_out(port_no, arp_request(src_mac, src_ip, target_ip))

    def port_descriptions(self, fresh=False):
        """{port name: PortDesc} of every port the switch has now (multipart).

        Unless `fresh`, the ports os-ken read in the handshake are used (its
        ofp_handler asks for them before the switch reaches MAIN_DISPATCHER
        and keeps dp.ports current from port-status messages): one round
        trip less between a switch connecting and its first reconcile."""
        known = getattr(self.dp, "ports", None)
        if not fresh and known:
            return {d.name: d for d in map(port_desc, known.values())}
        ports = {}
        for reply in self.call(parser.OFPPortDescStatsRequest(self.dp, 0)):
            for p in reply.body:
                desc = port_desc(p)
                ports[desc.name] = desc
        return ports

    def role(self, role, generation=0):
        """Send OFPRoleRequest(role, generation); returns the generation id the
        bridge reports in its reply (NO_GENERATION before any master claim).
        role: "nochange", "equal", "master" or "slave"."""
        replies = self.call(parser.OFPRoleRequest(self.dp, ROLES[role], generation))
        return replies[0].generation_id if replies else NO_GENERATION

    def _ctrl(self, bid, kind):
        self.call(parser.ONFBundleCtrlMsg(self.dp, bid, kind, BUNDLE_FLAGS, []))


def _describe_error(err):
    if isinstance(err, str):
        return err
    text = f"type={err.type} code={err.code}"
    if err.type == ofp.OFPET_EXPERIMENTER:
        text += f" exp_type={getattr(err, 'exp_type', '?')}"
    return text
