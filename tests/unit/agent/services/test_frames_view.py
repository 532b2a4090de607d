"""The frame contract (tag MAC, what parse accepts) and the view with its state file."""
import json
import os

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Dot1Q, Ether

from tests.unit.agent.services.conftest import VIEW, WEB1_MAC, tag
from vpcagent.services import frames
from vpcagent.services.view import Store, View, save, state_path


def test_tag_mac_round_trip():
    assert frames.mac_str(frames.tag_mac(7)) == "02:76:70:73:00:07" == tag(7)
    assert frames.mac_str(frames.tag_mac(0x1234)) == "02:76:70:73:12:34"
    assert frames.serial_of(frames.tag_mac(65535)) == 65535
    assert frames.serial_of(frames.mac_bytes(WEB1_MAC)) is None
    with pytest.raises(ValueError):
        frames.tag_mac(65536)


def udp4(**ip):
    return Ether(dst=tag(7), src=WEB1_MAC) / IP(src="10.0.0.5", dst="10.0.0.1", **ip) / \
        UDP(sport=1000, dport=53) / b"payload"


def test_parse_accepts_a_tagged_udp_frame():
    pkt = frames.parse(bytes(udp4()))
    assert pkt == frames.Udp(7, WEB1_MAC, 4, "10.0.0.5", "10.0.0.1", 1000, 53, b"payload")


def test_parse_strips_ethernet_padding():
    raw = bytes(Ether(dst=tag(7), src=WEB1_MAC) / IP(src="10.0.0.5", dst="10.0.0.1") /
                UDP(sport=1, dport=53) / b"x")
    assert len(raw) < 60
    assert frames.parse(raw + b"\0" * (60 - len(raw))).payload == b"x"


@pytest.mark.parametrize("frame", [
    b"", b"\x02\x76\x70\x73\x00", bytes(udp4())[:30],
    bytes(Ether(dst="02:00:00:00:00:01", src=WEB1_MAC) / IP() / UDP()),    # not a tag MAC
    bytes(Ether(dst=tag(7), src=WEB1_MAC) / Dot1Q(vlan=5) / IP() / UDP()),  # tagged
    bytes(udp4(flags="MF")), bytes(udp4(frag=10)),                          # fragments
    bytes(Ether(dst=tag(7), src=WEB1_MAC) / IP(proto=6) / (b"x" * 20)),       # not UDP
    bytes(Ether(dst=tag(7), src=WEB1_MAC, type=0x0806) / (b"x" * 28)),        # ARP
])
def test_parse_rejects(frame):
    assert frames.parse(frame) is None


def test_build_rejects_mixed_families():
    with pytest.raises(ValueError):
        frames.build(1, WEB1_MAC, "10.0.0.1", "fd00::1", 53, 53, b"")


def test_view_indexes_and_skips_bad_entries():
    raw = json.loads(json.dumps(VIEW))
    raw["ports"].append({"serial": 11, "tenant": "blue"})                 # no MAC
    raw["ports"].append({"serial": 12, "tenant": "gone", "mac": "02:00:00:00:00:0c"})
    raw["tenants"]["blue"]["records"].append({"names": ["bad"], "ip": "not an ip"})
    v = View(raw)
    assert sorted(v.ports) == [7, 9, 0x1234]
    assert v.port(7).gateway.compressed == "10.0.0.1" and v.port(0x1234).ip is None
    t = v.tenant("blue")
    assert [a for a, _ in t.names["web"]] == [v.port(7).ip, *(
        __import__("ipaddress").ip_address(f"10.0.0.{i}") for i in (6, 7))]
    assert "bad" not in t.names
    with pytest.raises(ValueError):
        View(["not", "a", "view"])


def test_state_file_round_trip(tmp_path):
    path = state_path(str(tmp_path / "state"), "h1")
    assert path.endswith("services-h1.json")
    s = Store(path)
    s.set(json.loads(json.dumps(VIEW)))
    assert json.load(open(path)) == VIEW
    assert [f for f in os.listdir(tmp_path / "state")] == ["services-h1.json"]  # no temp left
    again = Store(path)
    assert again.load("h1") and again.view.etag == "e1" and sorted(again.view.ports) == \
        [7, 9, 0x1234]
    assert not Store(path).load("h2")                   # another host's file is not used
    assert not Store(str(tmp_path / "none.json")).load("h1")


def test_a_corrupt_state_file_is_ignored(tmp_path):
    path = tmp_path / "services-h1.json"
    path.write_text("{half")
    s = Store(str(path))
    assert not s.load("h1") and not s.loaded and s.view.ports == {}


def test_save_replaces_atomically(tmp_path):
    path = str(tmp_path / "v.json")
    save(path, {"a": 1})
    save(path, {"a": 2})
    assert json.load(open(path)) == {"a": 2} and os.listdir(tmp_path) == ["v.json"]
