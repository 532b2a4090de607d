"""DHCPv6: scapy-built client messages through the dispatcher, the replies
(built with struct) parsed with scapy's DHCPv6 layers."""
import pytest
from scapy.layers.dhcp6 import (DHCP6_Advertise, DHCP6_Confirm, DHCP6_InfoRequest,
                                DHCP6_Rebind, DHCP6_Release, DHCP6_Renew, DHCP6_Reply,
                                DHCP6_Request, DHCP6_Solicit, DHCP6OptClientId,
                                DHCP6OptDNSDomains, DHCP6OptDNSServers, DHCP6OptIA_NA,
                                DHCP6OptIA_PD, DHCP6OptIAAddress, DHCP6OptOptReq,
                                DHCP6OptRapidCommit, DHCP6OptServerId, DHCP6OptStatusCode,
                                DUID_LL)
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from tests.unit.agent.services.conftest import (ROUTER_LL6, ROUTER_MAC, V6ONLY_MAC, WEB1_LL,
                                                 WEB1_MAC, checked, tag, v6_frame)
from tests.unit.agent.services.test_dhcp4 import dispatch

CLIENT = DHCP6OptClientId(duid=DUID_LL(lladdr=WEB1_MAC))
SERVER = DHCP6OptServerId(duid=DUID_LL(lladdr=ROUTER_MAC))
IAID = 0x0A0B0C0D


def ia(*addrs):
    return DHCP6OptIA_NA(iaid=IAID, ianaopts=[DHCP6OptIAAddress(addr=a) for a in addrs])


def reply_of(store, msg, **kw):
    [frame] = dispatch(store, v6_frame(msg, **kw))
    p = checked(frame)
    assert p[Ether].dst == tag(kw.get("serial", 7)) and p[Ether].src == ROUTER_MAC
    assert (p[IPv6].src, p[IPv6].dst, p[IPv6].hlim) == (ROUTER_LL6, kw.get("src", WEB1_LL),
                                                        64)
    assert (p[UDP].sport, p[UDP].dport) == (547, 546)
    return p


def assert_config(p, address="fd00:1::5"):
    assert p[DHCP6OptClientId].duid.lladdr == WEB1_MAC
    sid = p[DHCP6OptServerId].duid
    assert (sid.type, sid.hwtype, sid.lladdr) == (3, 1, ROUTER_MAC)
    i = p[DHCP6OptIA_NA]
    assert (i.iaid, i.T1, i.T2) == (IAID, 1800, 2880)
    a = i.ianaopts[0]
    assert (a.addr, a.preflft, a.validlft) == (address, 3600, 3600)
    assert p[DHCP6OptDNSServers].dnsservers == ["fd00:1::1"]
    assert p[DHCP6OptDNSDomains].dnsdomains == ["blue.internal."]


def test_solicit_gets_an_advertise(store):
    p = reply_of(store, DHCP6_Solicit(trid=0x123456) / CLIENT / ia() /
                 DHCP6OptOptReq(reqopts=[23, 24]))
    assert DHCP6_Advertise in p and p[DHCP6_Advertise].trid == 0x123456
    assert_config(p)
    assert DHCP6OptRapidCommit not in p


def test_rapid_commit_solicit_gets_a_reply(store):
    p = reply_of(store, DHCP6_Solicit(trid=7) / CLIENT / DHCP6OptRapidCommit() / ia())
    assert DHCP6_Reply in p and p[DHCP6_Reply].trid == 7
    assert_config(p)
    assert DHCP6OptRapidCommit in p


@pytest.mark.parametrize("cls,with_server", [(DHCP6_Request, True), (DHCP6_Renew, True),
                                             (DHCP6_Rebind, False)])
def test_request_renew_rebind_get_a_reply(store, cls, with_server):
    msg = cls(trid=42) / CLIENT
    if with_server:
        msg = msg / SERVER
    p = reply_of(store, msg / ia("fd00:1::5"))
    assert DHCP6_Reply in p and p[DHCP6_Reply].trid == 42
    assert_config(p)


def test_renew_of_an_old_address_gets_it_with_zero_lifetimes(store):
    p = reply_of(store, DHCP6_Renew(trid=1) / CLIENT / SERVER / ia("fd00:1::99"))
    addrs = {a.addr: (a.preflft, a.validlft) for a in p[DHCP6OptIA_NA].ianaopts}
    assert addrs == {"fd00:1::5": (3600, 3600), "fd00:1::99": (0, 0)}


def test_request_for_another_server_is_ignored(store):
    other = DHCP6OptServerId(duid=DUID_LL(lladdr="02:00:00:00:00:01"))
    assert dispatch(store, v6_frame(DHCP6_Request(trid=1) / CLIENT / other / ia())) == []


def test_information_request_gets_no_ia(store):
    p = reply_of(store, DHCP6_InfoRequest(trid=3) / CLIENT / DHCP6OptOptReq(reqopts=[23]))
    assert DHCP6_Reply in p and DHCP6OptIA_NA not in p
    assert p[DHCP6OptDNSServers].dnsservers == ["fd00:1::1"]


@pytest.mark.parametrize("addr,code", [("fd00:1::5", 0), ("fd00:9::5", 4)])
def test_confirm(store, addr, code):
    p = reply_of(store, DHCP6_Confirm(trid=5) / CLIENT / ia(addr))
    assert DHCP6_Reply in p and p[DHCP6OptStatusCode].statuscode == code


def test_release_gets_success(store):
    p = reply_of(store, DHCP6_Release(trid=9) / CLIENT / SERVER / ia("fd00:1::5"))
    assert DHCP6_Reply in p and p[DHCP6OptStatusCode].statuscode == 0
    assert DHCP6OptIA_NA not in p


def test_prefix_delegation_is_declined(store):
    p = reply_of(store, DHCP6_Solicit(trid=2) / CLIENT / ia() / DHCP6OptIA_PD(iaid=1))
    assert p[DHCP6OptIA_PD].iaid == 1
    assert p[DHCP6OptIA_PD][DHCP6OptStatusCode].statuscode == 6


def test_ipv6_only_port(store):
    client = DHCP6OptClientId(duid=DUID_LL(lladdr=V6ONLY_MAC))
    [frame] = dispatch(store, v6_frame(DHCP6_Solicit(trid=1) / client / ia(), serial=0x1234,
                                       src_mac=V6ONLY_MAC))
    p = checked(frame)
    assert p[Ether].dst == "02:76:70:73:12:34"
    assert p[DHCP6OptIA_NA].ianaopts[0].addr == "fd00:1::6"


def test_port_without_ipv6_gets_nothing(store):
    from tests.unit.agent.services.conftest import RED_MAC
    assert dispatch(store, v6_frame(DHCP6_Solicit() / CLIENT / ia(), serial=9,
                                    src_mac=RED_MAC)) == []


def test_not_from_link_local_gets_nothing(store):
    assert dispatch(store, v6_frame(DHCP6_Solicit() / CLIENT / ia(), src="fd00:1::5")) == []


@pytest.mark.parametrize("payload", [b"", b"\x01\x00", b"\x01\x00\x00\x01\x00\x01\x00\x50ab",
                                     b"\x07\x00\x00\x01"])
def test_garbage_and_server_messages_get_nothing(store, payload):
    assert dispatch(store, v6_frame(payload)) == []
