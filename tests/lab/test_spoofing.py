"""Spoofing, end to end: a container's forged frames reach nobody.

Why in the lab: port security is a handful of flows (controller/compile/
host.py), and what they let through depends on how Open vSwitch parses what
really arrives -- a VLAN tag, an ARP body whose sender differs from the frame's
source, a DHCP reply from a port's own addresses.  So an attacker container
writes raw forged frames (vpclab/labspoof.py, AF_PACKET) onto its eth0, and
tcpdump on the victims -- containers of the same tenant on the same host and
on another host -- shows what arrived.  Each run also sends a legitimate frame
(own MAC and IP) to the same victims after the forgeries: the captures must
see it, so "nothing forged arrived" means the path was open and watched.
Forgeries go unicast to each victim's MAC and to broadcast.
"""
import re

import pytest

from tests.support.labhelp import make_tenant, pings, wait_for
from vpclab import labspoof
from vpclab.labspoof import BROADCAST, arp, ethernet, udp_frame

FORGED_MAC = "02:de:ad:be:ef:01"
CONTROL_PORT = 41000            # the legitimate frame's UDP destination port


def forgeries(att, victims, forged_ip):
    """kind -> (frames, regex of a tcpdump -e -n line showing the forgery)."""
    a_mac, a_ip = att["mac"], att["ip"]
    dsts = [(v["mac"], v["ip"]) for v in victims] + [(BROADCAST, "255.255.255.255")]
    victim_ips = "|".join(re.escape(v["ip"]) for v in victims)
    other = {v["ip"]: victims[1 - i]["ip"] for i, v in enumerate(victims)}

    def udp(sport, dport, src_mac=a_mac, src_ip=a_ip, vlan=None):
        return [udp_frame(m, src_mac, src_ip, ip, sport, dport, vlan=vlan) for m, ip in dsts]

    def arp_reply(sha, spa_of, eth_src=a_mac):
        return [ethernet(m, eth_src, labspoof.ETH_ARP,
                         arp(2, sha, spa_of(ip), m if m != BROADCAST else "00:00:00:00:00:00",
                             ip if m != BROADCAST else victims[0]["ip"]))
                for m, ip in dsts]

    return {
        "source MAC": (udp(40000, 41001, src_mac=FORGED_MAC),
                       rf"{FORGED_MAC}|\.41001: "),
        "source IP": (udp(40000, 41002, src_ip=forged_ip),
                      rf"{re.escape(forged_ip)}|\.41002: "),
        # "I am the other victim": the real MAC, another port's IP as sender
        "ARP sender IP": (arp_reply(a_mac, lambda ip: other.get(ip, victims[1]["ip"])),
                          rf"Reply ({victim_ips}) is-at {a_mac}"),
        # its own IP, a made-up MAC as sender (the frame's source is real)
        "ARP sender MAC": (arp_reply(FORGED_MAC, lambda ip: a_ip), rf"is-at {FORGED_MAC}"),
        # a rogue DHCP server, from the port's own MAC and IP
        "DHCP server reply": (udp(67, 68), r"\.67 > \S+\.68: "),
        "VLAN tag": (udp(40000, 41005, vlan=42) + udp(40000, 41006, vlan=1),
                     r"802\.1Q|vlan \d+|\.4100[56]: "),
    }


@pytest.fixture(params=["vlan", "vxlan"])
def tenant(request, lab, api):
    name = f"spoof{request.param[:2]}"
    make_tenant(api, lab, name, network=request.param, cidr="10.66.0.0/24")
    yield name
    api(lab.api_url).delete(f"/v1/tenants/{name}")     # after make_container's detach


def test_forged_frames_reach_nobody(lab, tenant, make_container):
    att = make_container("spa", host=1, tenant=tenant)
    victims = [make_container("spv1", host=1, tenant=tenant),
               make_container("spv2", host=2, tenant=tenant)]
    for v in victims:      # the paths are installed (flows go in as ports appear)
        assert wait_for(lambda v=v: pings(lab, att["ns"], v["ip"], count=1), 20), v
    kinds = forgeries(att, victims, forged_ip="10.66.0.250")
    control = udp_frame(BROADCAST, att["mac"], att["ip"], "255.255.255.255", 40000,
                        CONTROL_PORT)
    control_unicast = [udp_frame(v["mac"], att["mac"], att["ip"], v["ip"], 40000, CONTROL_PORT)
                       for v in victims]
    with lab.tcpdump(victims[0]["ns"], "eth0", direction="in") as near, \
            lab.tcpdump(victims[1]["ns"], "eth0", direction="in") as far:
        for frames, _ in kinds.values():
            labspoof.send_from(lab, att["ns"], frames)
        labspoof.send_from(lab, att["ns"], [control, *control_unicast])
        # the legitimate frames, sent last, arrive: the forgeries had their chance
        seen = {name: cap.wait_for(rf"\.{CONTROL_PORT}: ", count=2, timeout=10)
                for name, cap in (("same host", near), ("other host", far))}
    assert all(seen.values()), f"control frames not seen: {seen}\n{near.lines}\n{far.lines}"
    leaks = {}
    for kind, (_, pattern) in kinds.items():
        for where, cap in (("same host", near), ("other host", far)):
            got = cap.matching(pattern)
            if got:
                leaks.setdefault(kind, []).append(f"{where}: {got[0]}")
    assert not leaks, f"forged frames reached victims ({tenant}): {leaks}"
