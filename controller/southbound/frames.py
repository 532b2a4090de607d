"""Frames the controller itself sends or reads: ARP (the external gateway),
IPv6 router solicitations and the router advertisements answering them.

LLDP frames are built and parsed in topology/lldp.py (pure, no os-ken); ARP
uses os-ken's packet library, so it lives here with the rest of os-ken.
"""
import struct

from os_ken.lib.packet import arp, ethernet, icmpv6, ipv6, packet

ALL_NODES = ("33:33:00:00:00:01", "ff02::1")
RA_MANAGED, RA_OTHER = 2, 1          # nd_router_advert.res: the M and O flags
PI_ON_LINK = 4                       # nd_option_pi.res1: L (on-link), A (autonomous) off


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


def arp_request(src_mac, src_ip, target_ip):
    """An ARP request frame: who has target_ip?  Tell src_ip (src_mac)."""
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst="ff:ff:ff:ff:ff:ff", src=src_mac,
                                       ethertype=0x0806))
    pkt.add_protocol(arp.arp(opcode=arp.ARP_REQUEST, src_mac=src_mac, src_ip=src_ip,
                             dst_mac="00:00:00:00:00:00", dst_ip=target_ip))
    pkt.serialize()
    return bytes(pkt.data)


def parse_router_solicit(data):
    """(source MAC, source IPv6) of an ICMPv6 router solicitation, else None."""
    try:
        pkt = packet.Packet(data)
    except Exception:
        return None
    eth, ip6, icmp = (pkt.get_protocol(c) for c in (ethernet.ethernet, ipv6.ipv6,
                                                    icmpv6.icmpv6))
    if eth is None or ip6 is None or icmp is None or icmp.type_ != icmpv6.ND_ROUTER_SOLICIT:
        return None
    return eth.src, ip6.src


def router_advert(router_mac, router_ip, dst_mac, dst_ip, prefixes, mtu, lifetime=1800):
    """An RA from the tenant's router: its link-local address and MAC, the
    M and O flags (addresses and the rest come from elsewhere: a container
    with a static address keeps it), and each prefix on-link but not for
    autoconfiguration; the MTU.  Sent to the soliciting address, or to
    all-nodes when it solicited from ::.  `prefixes`: [(prefix, length)]."""
    if dst_ip == "::":
        dst_mac, dst_ip = ALL_NODES
    # the MTU option as bytes: os-ken's nd_option_mtu cannot be measured (__len__ fails)
    options = [icmpv6.nd_option_sla(hw_src=router_mac), struct.pack("!BBHI", 5, 1, 0, mtu)]
    options += [icmpv6.nd_option_pi(pl=length, res1=PI_ON_LINK, val_l=0xFFFFFFFF,
                                    pre_l=0xFFFFFFFF, prefix=prefix)
                for prefix, length in prefixes]
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst=dst_mac, src=router_mac, ethertype=0x86DD))
    pkt.add_protocol(ipv6.ipv6(src=router_ip, dst=dst_ip, nxt=58, hop_limit=255))
    pkt.add_protocol(icmpv6.icmpv6(type_=icmpv6.ND_ROUTER_ADVERT, data=icmpv6.nd_router_advert(
        ch_l=64, res=RA_MANAGED | RA_OTHER, rou_l=lifetime, options=options)))
    pkt.serialize()
    return bytes(pkt.data)
