"""Flow values -> OpenFlow 1.3 flow-mods (os-ken messages), built once per distinct flow.

The compiler's `Flow` (controller/compile/flows.py) is plain data; this is the
one place that turns it into os-ken actions, instructions and OFPFlowMod, and
the one place that builds the delete-by-cookie a reconcile sends, and the
meter-mods of the meters those flows use (compile/meters.py).  Serialized adds
are cached: a tenant's flows are the same bytes on each of its hosts.  Their
bytes come from encode.py (struct alone, several times faster); the os-ken
objects here (add_flow_mod, encode_with_osken) are the reference the tests
compare them with, and what parses flow-mods back (flow_from_mod).
"""
import struct

from os_ken.ofproto import nicira_ext
from os_ken.ofproto.ofproto_common import ONF_EXPERIMENTER_ID
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.compile.flows import MOVE_FIELDS
from controller.compile.pipeline import NAT_DST, NAT_SRC
from controller.southbound.encode import encode_add
from controller.southbound.patches import add_nd_fields

add_nd_fields()           # before any flow with nd_reserved / nd_options_type is encoded

ALL_COOKIE_BITS = 0xFFFF_FFFF_FFFF_FFFF
FLOW_MOD_CACHE = 131072   # serialized flow-mods kept (a few hundred bytes each)


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
    # OpenFlow 1.3 runs instructions in a fixed order, meter first: a packet
    # the meter drops never reaches the apply-actions (the packet-in).
    inst = [] if f.meter is None else [parser.OFPInstructionMeter(f.meter)]
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


def encode_with_osken(f):
    """The flow's OFPFC_ADD bytes (xid 0) as os-ken builds them: the reference
    encode.encode_add is checked against (tests/unit/southbound/test_encode*.py)."""
    m = add_flow_mod(_NoDatapath, f)
    m.set_xid(0)
    m.serialize()
    return bytes(m.buf)


class _Serialized(parser.MsgBase):
    """A flow-mod whose bytes were built before; only the xid is patched in.

    Why: most flows are sent to many switches in the same form (a tenant's
    flows on each of its hosts, the table defaults everywhere), and encoding
    one costs ~6-9 us (encode.py; ~150 us with os-ken objects, most of a cold
    start's CPU at 100 switches x 3,000 flows).  Bytes depend only on the
    Flow (and its cookie)."""

    def __init__(self, dp, data):
        super().__init__(dp)
        self._data = data

    def serialize(self):
        self.buf = bytearray(self._data)
        struct.pack_into("!I", self.buf, 4, self.xid or 0)


class _NoDatapath:
    """What os-ken's message classes read of a datapath while serializing: a
    flow-mod's bytes depend on the flow alone, so they are built without one."""
    ofproto = ofp
    ofproto_parser = parser


class FlowModCache:
    """cookie -> (Flow, serialized OFPFC_ADD with xid 0): each distinct flow is
    encoded once and its bytes reused for every switch that gets it (a
    tenant's shared pieces are the same Flow objects on each of its hosts,
    compile/incremental.py).  Keyed by cookie (the content hash, owner
    included) and checked against the Flow itself, so a hit costs one int
    lookup and an identity test instead of hashing the whole flow.  Oldest
    entries are dropped first."""

    def __init__(self, size=FLOW_MOD_CACHE):
        self.size = size
        self._data = {}
        self.hits = self.misses = 0

    def encoded(self, f):
        """The flow's OFPFC_ADD as bytes, xid 0."""
        got = self._data.get(f.cookie)
        if got is not None and (got[0] is f or got[0] == f):
            self.hits += 1
            return got[1]
        self.misses += 1
        data = encode_add(f)
        if got is None and len(self._data) >= self.size:
            del self._data[next(iter(self._data))]
        self._data[f.cookie] = (f, data)
        return data

    def message(self, dp, f):
        """The flow-mod as an os-ken message (its xid is patched in when sent)."""
        return _Serialized(dp, self.encoded(f))


FLOW_MODS = FlowModCache()


_BUNDLE_ADD_HEAD = struct.Struct("!BBHIIII2xH")    # ofp header, experimenter, bundle id, flags
BUNDLE_ADD_HEAD_LEN = _BUNDLE_ADD_HEAD.size


def bundle_add_bytes(buf, xid, bundle_id, flags, inner):
    """Append one ONF bundle-add carrying `inner` (a serialized message whose
    xid is patched to the bundle-add's own, as the bundle extension wants) to
    `buf`, without building os-ken objects: what ONFBundleAddMsg(...).serialize()
    gives for a message without properties (tests/unit/southbound checks)."""
    buf += _BUNDLE_ADD_HEAD.pack(ofp.OFP_VERSION, ofp.OFPT_EXPERIMENTER,
                                 BUNDLE_ADD_HEAD_LEN + len(inner), xid, ONF_EXPERIMENTER_ID,
                                 ofp.ONF_ET_BUNDLE_ADD_MESSAGE, bundle_id, flags)
    buf += inner[:4]
    buf += xid.to_bytes(4, "big")
    buf += inner[8:]


def delete_cookie_bytes(cookie):
    """delete_cookie_mod's bytes, xid 0."""
    m = delete_cookie_mod(_NoDatapath, cookie)
    m.set_xid(0)
    m.serialize()
    return bytes(m.buf)


def delete_cookie_mod(dp, cookie):
    """Delete exactly the flows carrying this cookie, in every table."""
    return parser.OFPFlowMod(dp, cookie=cookie, cookie_mask=ALL_COOKIE_BITS,
                             table_id=ofp.OFPTT_ALL, command=ofp.OFPFC_DELETE,
                             out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                             match=parser.OFPMatch())


# --- the way back: a flow-mod read from the wire, as the Flow it was built from -------
def flow_from_mod(msg):
    """(Flow, cookie) of a parsed OFPFlowMod (OFPFC_ADD).

    Why: the compiler's Flow values are what the simulator runs and the
    reconciler diffs; this proves the bytes we send say the same thing (the
    round-trip test), and it reads installed flows back as Flows (traces)."""
    from controller.compile.flows import Flow
    actions, goto, metadata, meter = (), None, None, None
    for inst in msg.instructions:
        if isinstance(inst, parser.OFPInstructionActions):
            actions = tuple(_action_back(a) for a in inst.actions)
        elif isinstance(inst, parser.OFPInstructionWriteMetadata):
            metadata = (inst.metadata, inst.metadata_mask)
        elif isinstance(inst, parser.OFPInstructionGotoTable):
            goto = inst.table_id
        elif isinstance(inst, parser.OFPInstructionMeter):
            meter = inst.meter_id
        else:
            raise ValueError(f"unexpected instruction {inst!r}")
    match = tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                         for k, v in msg.match.items()))
    return Flow(msg.table_id, msg.priority, match, actions, goto, metadata,
                meter=meter), msg.cookie


def _action_back(a):
    if isinstance(a, parser.OFPActionOutput):
        port = {ofp.OFPP_CONTROLLER: "controller", ofp.OFPP_IN_PORT: "in_port"}.get(a.port, a.port)
        return ("output", port)
    if isinstance(a, parser.NXActionCT):
        return ("ct", bool(a.flags & nicira_ext.NX_CT_F_COMMIT), a.zone_ofs_nbits,
                None if a.recirc_table == nicira_ext.NX_CT_RECIRC_NONE else a.recirc_table,
                _nat_back(a.actions))
    if isinstance(a, parser.OFPActionPushVlan):
        return ("push_vlan", a.ethertype)
    if isinstance(a, parser.OFPActionPopVlan):
        return ("pop_vlan",)
    if isinstance(a, parser.OFPActionSetField):
        return ("set_field", a.key, a.value)
    if isinstance(a, parser.NXActionRegMove):
        return ("move", a.src_field, a.dst_field)
    if isinstance(a, parser.OFPActionDecNwTtl):
        return ("dec_ttl",)
    raise ValueError(f"no Flow form for {a!r}")


def _nat_back(actions):
    if not actions:
        return None
    (nat,) = actions
    if not nat.flags & (NAT_SRC | NAT_DST):
        return ()
    return ("src" if nat.flags & NAT_SRC else "dst", nat.range_ipv4_min, nat.range_ipv4_max,
            nat.range_proto_min or 0, nat.range_proto_max or 0)


# --- meters: installed before the flows that use them -------------------------------------
METER_FLAGS = ofp.OFPMF_PKTPS | ofp.OFPMF_BURST | ofp.OFPMF_STATS


def meter_mod(dp, meter, command="add"):
    """OFPMeterMod for a compile/meters.Meter: pktps, one drop band with a burst.
    command: "add" or "modify"."""
    cmd = {"add": ofp.OFPMC_ADD, "modify": ofp.OFPMC_MODIFY}[command]
    return parser.OFPMeterMod(dp, command=cmd, flags=METER_FLAGS, meter_id=meter.meter_id,
                              bands=[parser.OFPMeterBandDrop(rate=meter.rate,
                                                             burst_size=meter.burst)])


def meter_delete_mod(dp, meter_id):
    """Delete one meter.  The switch also deletes every flow that uses it, so
    the reconciler sends this only after the flows are gone."""
    return parser.OFPMeterMod(dp, command=ofp.OFPMC_DELETE, flags=0, meter_id=meter_id,
                              bands=[])


def meter_config_request(dp):
    return parser.OFPMeterConfigStatsRequest(dp, 0, ofp.OFPM_ALL)


def meters_from_config(replies):
    """{meter id: Meter} read back from OFPMeterConfigStatsReply parts.  A meter
    that is not ours in shape (several bands, kbps, not a drop band) reads as
    (id, "foreign"), which equals no Meter: the reconciler rewrites it."""
    from controller.compile.meters import Meter
    out = {}
    for reply in replies:
        for cfg in reply.body:
            bands = [b for b in cfg.bands if isinstance(b, parser.OFPMeterBandDrop)]
            ours = len(cfg.bands) == 1 and bands and cfg.flags & ofp.OFPMF_PKTPS
            out[cfg.meter_id] = Meter(cfg.meter_id, bands[0].rate, bands[0].burst_size) \
                if ours else (cfg.meter_id, "foreign")
    return out
