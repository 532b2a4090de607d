"""encode.py builds exactly the bytes os-ken builds, for every flow the compiler
emits, and refuses what it has no form for instead of encoding garbage.

The reference is flowmod.encode_with_osken (OFPFlowMod from os-ken objects,
serialized).  The worlds are the golden ones (tests/support/golden.py): VLAN,
VXLAN and GRE tenants, SNAT, floating IPs, port forwards, security groups with
remote groups, IPv6 dual-stack, meters, fabric switches, a bench scenario.
Random flows: test_encode_property.py."""
import pytest

from controller.compile.flows import ACTION_ARITY, MATCH_FIELDS, Flow, flow
from controller.compile.pipeline import Table
from controller.southbound import encode, flowmod
from controller.southbound.encode import EncodeError, encode_add
from controller.southbound.flowmod import encode_with_osken
from tests.support import golden


def _used(flows):
    fields, actions, nats = set(), set(), set()
    for f in flows:
        fields.update(k for k, _ in f.match)
        for a in f.actions:
            actions.add(a[0])
            if a[0] == "ct":
                nat = a[4]
                nats.add(nat if nat in (None, ()) else (nat[0], bool(nat[3])))
    return fields, actions, nats


def test_every_compiled_flow_encodes_to_os_kens_bytes():
    seen, worlds, flows = 0, set(), []
    for name, per_switch in golden.worlds():
        for fl in per_switch.values():
            for f in fl:
                assert encode_add(f) == encode_with_osken(f), (name, f)
                flows.append(f)
                seen += 1
        worlds.add(name)
    assert seen > 4000 and {"nat", "secgroups", "dual_stack", "fabric_leafspine",
                            "two_tenants_gre", "bench_6x6"} <= worlds
    fields, actions, nats = _used(flows)
    # the worlds exercise every action, every kind of ct/nat, meters, write-metadata, goto
    assert actions == set(ACTION_ARITY)
    assert nats == {None, (), ("src", False), ("dst", False), ("src", True), ("dst", True)}
    assert any(f.meter is not None for f in flows) and any(f.metadata for f in flows)
    assert any(f.goto is not None for f in flows)
    assert {"reg3", "reg4", "reg7", "ct_state", "ipv6_nd_target", "tunnel_id"} <= fields


def test_the_cache_serves_encode_bytes():
    cache = flowmod.FlowModCache(size=4)
    f = flow(Table.L2, 100, {"eth_dst": "02:00:00:00:00:01", "metadata": 5},
             actions=[("output", 3)])
    assert cache.encoded(f) == encode_add(f) == encode_with_osken(f)
    assert cache.encoded(f) is cache.encoded(f) and cache.hits == 2


def test_every_match_field_of_a_flow_has_an_encoding():
    assert set(encode.FIELDS) == set(MATCH_FIELDS)


def test_a_masked_match_value_is_anded_with_its_mask_as_os_ken_does():
    f = flow(Table.L2, 100, {"metadata": (0x1_0000_00ff, 0x0_ffff_0000),
                             "eth_dst": ("03:00:00:00:00:01", "01:00:00:00:00:00"),
                             "ipv6_src": ("fd00::ff", "ffff::")})
    assert encode_add(f) == encode_with_osken(f)


def _raw(match=(), actions=(), **kw):
    """A Flow built without flow()'s checks: what a compiler bug could hand over."""
    return Flow(table=kw.pop("table", 0), priority=kw.pop("priority", 1), match=tuple(match),
                actions=tuple(actions), **kw)


@pytest.mark.parametrize("f", [
    _raw(match=[("vlan_pcp", 3)]),                                  # a field we do not know
    _raw(match=[("reg9", 1)]),
    _raw(actions=[("group", 1)]),                                   # an action we do not know
    _raw(actions=[("output",)]),
    _raw(actions=[("set_field", "ct_label", 1)]),
    _raw(actions=[("set_field", "reg3", (1, 1))]),                  # os-ken refuses it too
    _raw(actions=[("move", "eth_src", "tcp_dst")]),
    _raw(actions=[("ct", True, 1, None, ("snat", "10.0.0.1", "10.0.0.1", 0, 0))]),
    _raw(match=[("vlan_vid", 0x1_0000)]),       # os-ken silently truncates this to 0
    _raw(match=[("ip_proto", 256)]),
    _raw(match=[("metadata", (1, 1 << 64))]),
    _raw(match=[("eth_dst", "02:00:00:00:00")]),
    _raw(match=[("eth_dst", 2)]),
    _raw(match=[("ipv4_dst", "10.0.0.256")]),
    _raw(match=[("ipv6_dst", "fe80::1%eth0")]),
    _raw(match=[("in_port", "1")]),
    _raw(match=[("in_port", (1, 2, 3))]),
    _raw(match=[("in_port", 1), ("in_port", 2)]),                   # a field twice
    _raw(actions=[("output", -1)]),
    _raw(actions=[("push_vlan", 0x1_0000)]),
    _raw(table=256),
    _raw(priority=0x1_0000),
    _raw(metadata=5),
    _raw(goto=300),
    _raw(meter=1 << 32),
])
def test_what_has_no_form_raises_instead_of_encoding_garbage(f):
    with pytest.raises(EncodeError):
        encode_add(f)
