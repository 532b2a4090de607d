"""IPv6 dual-stack in the lab: real OVS, real containers, real packets.

Why in the lab: the neighbour discovery answer is built by ovs-vswitchd from
set_field actions (compile/ipv6.py); only a real datapath shows the NA is
well formed (checksum, flags, target link-layer option) and that the
container's kernel takes it.  Each test tenant is dual-stack:
  * VLAN, VXLAN, GRE: ping6 from h1 to containers on h2 and h3, TCP over IPv6,
    IPv4 beside it, and the NA a container receives checked by tcpdump -vv;
  * one VXLAN tenant with two IPv6 subnets and a second tenant reusing the
    same prefix: routing between the subnets, nothing of one tenant reaching
    the other (a control capture in the same tenant sees the same frames),
    a spoofed IPv6 source, a forged RA and a forged NA dropped, and a
    security group that allows TCP/80 over IPv6 only.
"""
import sys

import pytest

from tests.support.labhelp import make_tenant, pings, wait_for
from vpclab import labspoof
from vpclab.labspoof import ETH_IPV6
from vpclab.labsys import LabError
from vpclab.labtraffic import iperf3, tcp_transfer

PREFIX, PREFIX2 = "fd00:61::/64", "fd00:62::/64"


def add_subnet(api, lab, tenant, cidr):
    status, body = api(lab.api_url).post(f"/v1/tenants/{tenant}/subnets", {"cidr": cidr})
    assert status == 201, body


@pytest.fixture(params=["vlan", "vxlan", "gre"])
def dual(request, lab, api):
    name = f"six{request.param[:2]}"
    make_tenant(api, lab, name, network=request.param, cidr="10.61.0.0/24")
    add_subnet(api, lab, name, PREFIX)
    yield name
    api(lab.api_url).delete(f"/v1/tenants/{name}")


def test_dual_stack_across_hosts(lab, dual, make_container):
    a = make_container("sxa", 1, dual)
    b, c = make_container("sxb", 2, dual), make_container("sxc", 3, dual)
    assert a["ip6"].startswith("fd00:61::") and a["gateway6"] == "fd00:61::1"
    # the first ping6 makes a's kernel solicit b: the NA it gets back was built by OVS
    with lab.tcpdump(a["ns"], "eth0", "icmp6 and ip6[40] == 136", direction="in",
                     verbose=True) as cap:
        assert wait_for(lambda: pings(lab, a["ns"], b["ip6"], count=1), 20)
        cap.wait_for("neighbor advertisement", timeout=5)
    text = "\n".join(cap.lines)
    assert "[icmp6 sum ok]" in text and f"tgt is {b['ip6']}" in text, text
    assert "solicited, override" in text and b["mac"] in text, text
    assert wait_for(lambda: pings(lab, a["ns"], c["ip6"], count=1), 20)
    assert pings(lab, a["ns"], a["gateway6"], count=1)            # the router answers
    assert pings(lab, a["ns"], c["ip"], count=1)                  # and IPv4 is still there
    t = tcp_transfer(lab, c["ns"], a["ns"], c["ip6"], 1 << 20)
    assert t.identical, t
    if dual == "sixvx":        # the figure for the report (not asserted): IPv6 vs IPv4, h1 -> h3
        runs = [(fam, iperf3(lab, c["ns"], a["ns"], c[key], seconds=3)["mbit_s"])
                for fam, key in (("v4", "ip"), ("v6", "ip6"), ("v4", "ip"), ("v6", "ip6"))]
        print(f"\nIPV6 DATA PLANE (VXLAN, h1 -> h3, 3 s each): {runs}", file=sys.stderr)


# --- one VXLAN tenant with two IPv6 subnets, and another reusing its prefix --------------------
@pytest.fixture
def pair(lab, api):
    for name in ("sixr", "sixo"):
        make_tenant(api, lab, name, network="vxlan", cidr="10.62.0.0/24")
        add_subnet(api, lab, name, PREFIX)
    add_subnet(api, lab, "sixr", PREFIX2)
    yield "sixr", "sixo"
    for name in ("sixr", "sixo"):
        api(lab.api_url).delete(f"/v1/tenants/{name}")


def ns_for(target, src_mac, src_ip):
    """A well-formed NS for `target` (floods in the tenant: nobody answers fe80::)."""
    import ipaddress
    low = ipaddress.IPv6Address(target).packed[-3:]
    dst = str(ipaddress.IPv6Address(b"\xff\x02" + b"\x00" * 9 + b"\x01\xff" + low))
    body = (bytes([135, 0, 0, 0, 0, 0, 0, 0]) + ipaddress.IPv6Address(target).packed
            + bytes([1, 1]) + labspoof.mac_bytes(src_mac))
    mac = "33:33:ff:" + ":".join(f"{b:02x}" for b in low)
    return labspoof.ethernet(mac, src_mac, ETH_IPV6, labspoof.ipv6_icmp(src_ip, dst, body))


def link_local(mac):
    from controller.compile.ipv6 import link_local as ll
    return ll(mac)


def test_routing_isolation_spoofing_and_security_groups(lab, api, pair, make_container):
    red, other = pair
    r1 = make_container("sxr1", 1, red)
    r3 = make_container("sxr3", 1, red)                           # same host: the control
    o1 = make_container("sxo1", 1, other)                         # the same address as r1
    assert o1["ip6"] == r1["ip6"]
    lab.add_container("sxr2", host=2)
    try:
        r2 = lab.attach(red, "sxr2", 2, lab.api_url, extra=["--ip6", "fd00:62::5"])
        r2["ns"] = lab.container_ns("sxr2")
        # between the tenant's two IPv6 subnets, across hosts
        assert wait_for(lambda: pings(lab, r1["ns"], "fd00:62::5", count=1), 20)
        assert wait_for(lambda: pings(lab, r1["ns"], r3["ip6"], count=1), 20)

        # a router solicitation gets the tenant router's RA: M and O set, both
        # prefixes on-link, not for autoconfiguration (a static address stays)
        ll = link_local(r1["mac"])
        rs = labspoof.ethernet("33:33:00:00:00:02", r1["mac"], ETH_IPV6, labspoof.ipv6_icmp(
            ll, "ff02::2", labspoof.router_solicit(r1["mac"])))
        with lab.tcpdump(r1["ns"], "eth0", "icmp6 and ip6[40] == 134", direction="in",
                         verbose=True) as ras:
            labspoof.send_from(lab, r1["ns"], [rs])
            ras.wait_for("prefix info", timeout=10)
        text = "\n".join(ras.lines)
        assert "router advertisement" in text and "managed" in text and "other" in text, text
        assert "fd00:61::/64" in text and "fd00:62::/64" in text and "[icmp6 sum ok]" in text
        assert f"> {ll}:" in text, text                          # unicast to the solicitor

        legit = [ns_for("fe80::abcd", r1["mac"], ll),                       # floods in red
                 labspoof.ethernet(r3["mac"], r1["mac"], ETH_IPV6,
                                   labspoof.ipv6_udp(r1["ip6"], r3["ip6"], 40000, 41000))]
        forged = {
            "spoofed source": labspoof.ethernet(
                r3["mac"], r1["mac"], ETH_IPV6,
                labspoof.ipv6_udp("fd00:61::99", r3["ip6"], 40000, 41001)),
            "rogue RA": labspoof.ethernet(
                "33:33:00:00:00:01", r1["mac"], ETH_IPV6,
                labspoof.ipv6_icmp(ll, "ff02::1",
                                   labspoof.router_advert(r1["mac"], "fd00:66::"))),
            "forged NA": labspoof.ethernet(
                r3["mac"], r1["mac"], ETH_IPV6,
                labspoof.ipv6_icmp(r1["ip6"], r3["ip6"],
                                   labspoof.neighbor_advert("fd00:62::5", r1["mac"]))),
        }
        with lab.tcpdump(r3["ns"], "eth0", "ip6", direction="in") as control, \
                lab.tcpdump(o1["ns"], "eth0", "ip6 or arp", direction="in") as foreign:
            labspoof.send_from(lab, r1["ns"], list(forged.values()))
            labspoof.send_from(lab, r1["ns"], legit)
            assert control.wait_for(r"\.41000: ", timeout=10), control.lines
            assert control.wait_for("who has fe80::abcd", timeout=10), control.lines
        leaks = {k: control.matching(p) for k, p in (
            ("spoofed source", r"fd00:61::99"), ("rogue RA", r"router advertisement"),
            ("forged NA", r"tgt is fd00:62::5"))}
        assert not any(leaks.values()), leaks
        assert foreign.lines == [], f"tenant {other} saw {red}'s frames: {foreign.lines}"

        # a group that lets TCP/80 in over IPv6 only
        c = api(lab.api_url)
        assert c.post(f"/v1/tenants/{red}/security-groups",
                      {"name": "web6", "rules": [{"direction": "ingress", "protocol": "tcp",
                                                  "ports": "80", "remote": "::/0"}]})[0] == 201
        assert c.patch(f"/v1/tenants/{red}/ports/{r3['id']}",
                       {"security_groups": ["web6"]})[0] == 200

        def reaches(ip, port):
            try:
                return tcp_transfer(lab, r3["ns"], r1["ns"], ip, 1000, port=port,
                                    timeout=5).identical
            except LabError:              # the connection hung: dropped by the group
                return False
        assert wait_for(lambda: reaches(r3["ip6"], 80), 10)
        assert not reaches(r3["ip"], 80)
        assert not reaches(r3["ip6"], 22)
    finally:
        port = locals().get("r2")
        if port:
            lab.detach(red, port["id"], 2, lab.api_url, check=False)
        lab.del_container("sxr2")
