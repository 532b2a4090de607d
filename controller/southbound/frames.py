"""Frames the controller itself sends or reads: ARP (the external gateway).

LLDP frames are built and parsed in topology/lldp.py (pure, no os-ken); ARP
uses os-ken's packet library, so it lives here with the rest of os-ken.
"""
from os_ken.lib.packet import arp, ethernet, packet


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
