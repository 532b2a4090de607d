"""Meters through os-ken: meter-mods pack to the bytes of the Meter they
came from (os-ken has no parser for OFPMeterMod: read here with struct), a metered flow's meter instruction comes first and reads back,
and meter-config replies read back as Meters (foreign shapes never equal one).
Why: the reconciler compares installed meters with desired ones by value; a
reading that drifted from what we send would re-add meters on every start."""
import struct
from types import SimpleNamespace

from os_ken.ofproto import ofproto_parser
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.compile.flows import CONTROLLER, flow
from controller.compile.meters import METERS, Meter, MeterId
from controller.compile.pipeline import Prio, Table
from controller.southbound.flowmod import (
    add_flow_mod,
    flow_from_mod,
    meter_delete_mod,
    meter_mod,
    meters_from_config,
)

DP = SimpleNamespace(ofproto=ofp, ofproto_parser=parser, id=1)


def roundtrip(msg):
    msg.set_xid(9)
    msg.serialize()
    buf = bytes(msg.buf)
    version, msg_type, length, xid = ofproto_parser.header(buf)
    return ofproto_parser.msg(DP, version, msg_type, length, xid, buf)


def meter_mod_fields(msg):
    """(command, flags, Meter or meter id) from a packed OFPMeterMod (OF1.3 7.3.4.4)."""
    msg.set_xid(9)
    msg.serialize()
    buf = bytes(msg.buf)
    command, flags, meter_id = struct.unpack_from("!HHI", buf, 8)
    if len(buf) == 16:
        return command, flags, meter_id
    band_type, band_len, rate, burst = struct.unpack_from("!HHII", buf, 16)
    assert band_type == ofp.OFPMBT_DROP and band_len == 16 and len(buf) == 32
    return command, flags, Meter(meter_id, rate, burst)


def test_meter_mods_pack_the_meter():
    for meter in METERS.values():
        for command, code in (("add", ofp.OFPMC_ADD), ("modify", ofp.OFPMC_MODIFY)):
            assert meter_mod_fields(meter_mod(DP, meter, command)) == \
                (code, ofp.OFPMF_PKTPS | ofp.OFPMF_BURST | ofp.OFPMF_STATS, meter)


def test_a_meter_delete_names_only_the_id():
    assert meter_mod_fields(meter_delete_mod(DP, 7)) == (ofp.OFPMC_DELETE, 0, 7)


def test_a_metered_flow_has_its_meter_instruction_first_and_reads_back():
    f = flow(Table.EXT_IN, Prio.EXT_IN.ARP, {"eth_type": 0x0806, "arp_op": 2},
             actions=[("output", CONTROLLER)], meter=MeterId.GATEWAY_ARP)
    msg = roundtrip(add_flow_mod(DP, f))
    assert isinstance(msg.instructions[0], parser.OFPInstructionMeter)
    assert flow_from_mod(msg) == (f, f.cookie)


def test_meter_config_replies_read_back_as_meters():
    ours = METERS[MeterId.LLDP]
    cfg = [parser.OFPMeterConfigStats(flags=ofp.OFPMF_PKTPS | ofp.OFPMF_BURST,
                                      meter_id=ours.meter_id,
                                      bands=[parser.OFPMeterBandDrop(rate=ours.rate,
                                                                     burst_size=ours.burst)]),
           parser.OFPMeterConfigStats(flags=ofp.OFPMF_KBPS, meter_id=5,
                                      bands=[parser.OFPMeterBandDrop(rate=1000)])]
    got = meters_from_config([SimpleNamespace(body=cfg)])
    assert got[ours.meter_id] == ours
    assert got[5] != METERS.get(5) and 5 in got      # kbps: foreign, never equal to ours
