"""The controller answers an IPv6 router solicitation with its tenant's RA, back
out of the soliciting port; anything else it leaves alone (runtime/router_adverts.py)."""
import ipaddress

from os_ken.lib.packet import ethernet, icmpv6, ipv6, packet

from controller.compile.ipv6 import link_local
from controller.compile.pipeline import router_mac
from controller.runtime.router_adverts import RouterAdverts
from controller.southbound.frames import arp_request
from tests.support.golden import dual_stack_world


class Session:
    def __init__(self):
        self.out = []

    def packet_out(self, port_no, data):
        self.out.append((port_no, data))


class Switches:
    def __init__(self):
        self.s = Session()

    def session(self, dpid):
        return self.s


def rs(mac, src):
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst="33:33:00:00:00:02", src=mac, ethertype=0x86DD))
    pkt.add_protocol(ipv6.ipv6(src=src, dst="ff02::2", nxt=58, hop_limit=255))
    pkt.add_protocol(icmpv6.icmpv6(type_=icmpv6.ND_ROUTER_SOLICIT,
                                   data=icmpv6.nd_router_solicit(
                                       option=icmpv6.nd_option_sla(hw_src=mac))))
    pkt.serialize()
    return bytes(pkt.data)


def tlvs(raw):
    """{option type: [value bytes]} of an ND option list."""
    out = {}
    while raw:
        kind, length = raw[0], raw[1] * 8
        out.setdefault(kind, []).append(raw[2:length])
        raw = raw[length:]
    return out


def test_an_rs_gets_the_tenants_ra_on_its_port():
    w = dual_stack_world()
    switches = Switches()
    ra = RouterAdverts(w.state, w.topo, switches, underlay_mtu=1500)
    p1 = w.port("p1")
    ofport = w.ofport["p1"][1]
    assert ra.packet_in(1, ofport, rs(p1.mac, link_local(p1.mac)))
    [(port_no, frame)] = switches.s.out
    assert port_no == ofport
    pkt = packet.Packet(frame)
    eth, ip6, icmp = (pkt.get_protocol(c) for c in (ethernet.ethernet, ipv6.ipv6, icmpv6.icmpv6))
    rmac = router_mac(w.state.tenants["a"].id)
    assert (eth.src, eth.dst, ip6.src, ip6.dst) == (rmac, p1.mac, link_local(rmac),
                                                     link_local(p1.mac))
    adv = icmp.data
    assert icmp.type_ == icmpv6.ND_ROUTER_ADVERT and adv.res == 3 and adv.rou_l == 1800
    options = tlvs(frame[14 + 40 + 16:])          # os-ken's parser folds them into the SLA
    assert options[1] == [bytes.fromhex(rmac.replace(":", ""))]
    assert options[5] == [bytes(2) + (1450).to_bytes(4, "big")]           # MTU (VXLAN)
    prefixes = {(str(ipaddress.IPv6Address(v[14:30])), v[0], v[1]) for v in options[3]}
    assert prefixes == {("fd00:1::", 64, 0x80), ("fd00:2::", 64, 0x80)}  # L on, A off


def test_what_is_not_an_rs_of_a_known_port_gets_nothing():
    w = dual_stack_world()
    switches = Switches()
    ra = RouterAdverts(w.state, w.topo, switches)
    assert not ra.packet_in(1, 10, arp_request("02:00:00:00:00:01", "10.0.0.2", "10.0.0.1"))
    p1 = w.port("p1")
    assert ra.packet_in(1, 10, rs("02:66:00:00:00:01", "fe80::1"))      # a MAC not the port's
    assert ra.packet_in(1, 999, rs(p1.mac, link_local(p1.mac)))           # an unknown ofport
    assert switches.s.out == []
