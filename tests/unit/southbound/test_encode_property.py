"""Random flows, built with flows.flow() (so: flows the compiler could build),
encode to the same bytes with encode.py as with os-ken: every match field with
any value of its width, masked or not, every action with its arguments, ct with
each kind of nat, meters, write-metadata, goto."""
import ipaddress

from hypothesis import HealthCheck, given, settings, strategies as st
from os_ken.ofproto import ofproto_v1_3 as ofp

from controller.compile.flows import MATCH_FIELDS, MOVE_FIELDS, SET_FIELDS, TABLE_IDS, flow
from controller.compile.meters import declared
from controller.southbound.encode import encode_add
from controller.southbound.flowmod import encode_with_osken

TABLES = sorted(TABLE_IDS)


def width(name):
    """Value width of a field, as os-ken knows it (not as encode.py does)."""
    return ofp.oxm_get_field_info_by_name(name)[1].size


def plain_value(name):
    kind = MATCH_FIELDS[name]
    if kind == "int":
        return st.integers(0, (1 << 8 * width(name)) - 1)
    if kind == "mac":
        return st.binary(min_size=6, max_size=6).map(lambda b: b.hex(":"))
    if kind == "ip":
        return st.ip_addresses(v=4).map(str)
    return st.ip_addresses(v=6).map(str)


def value(name, masked=True):
    v = plain_value(name)
    return st.one_of(v, st.tuples(v, plain_value(name))) if masked else v


@st.composite
def nat(draw, commit):
    if not commit:
        return draw(st.sampled_from([None, ()]))
    kind = draw(st.sampled_from([None, (), "src", "dst"]))
    if kind in (None, ()):
        return kind
    a, b = sorted(draw(st.lists(st.integers(1, (1 << 32) - 1), min_size=2, max_size=2)))
    ports = draw(st.one_of(st.just((0, 0)), st.tuples(st.integers(1, 0xFFFF),
                                                       st.integers(1, 0xFFFF)).map(sorted)))
    return (kind, str(ipaddress.IPv4Address(a)), str(ipaddress.IPv4Address(b)), *ports)


@st.composite
def action(draw):
    name = draw(st.sampled_from(["output", "push_vlan", "pop_vlan", "set_field", "move",
                                 "dec_ttl", "ct"]))
    if name == "output":
        return ("output", draw(st.one_of(st.integers(1, 0xFFFF_FFFF),
                                         st.sampled_from(["in_port", "controller"]))))
    if name == "push_vlan":
        return ("push_vlan", draw(st.one_of(st.sampled_from([0x8100, 0x88A8]),
                                            st.integers(0, 0xFFFF))))
    if name == "set_field":
        field = draw(st.sampled_from(sorted(SET_FIELDS)))
        return ("set_field", field, draw(value(field, masked=False)))   # os-ken: no mask
    if name == "move":
        src = draw(st.sampled_from(sorted(MOVE_FIELDS)))
        return ("move", src, draw(st.sampled_from(
            sorted(f for f in MOVE_FIELDS if MOVE_FIELDS[f] == MOVE_FIELDS[src]))))
    if name == "ct":
        commit = draw(st.booleans())
        return ("ct", commit, draw(st.integers(0, 0xFFFF)),
                draw(st.one_of(st.none(), st.sampled_from(TABLES))), draw(nat(commit)))
    return (name,)


@st.composite
def flows(draw):
    table = draw(st.sampled_from(TABLES[:-1]))
    fields = draw(st.lists(st.sampled_from(sorted(MATCH_FIELDS)), max_size=8, unique=True))
    match = {f: draw(value(f)) for f in fields}
    actions = draw(st.lists(action(), max_size=6))
    # a ct that recirculates ends the list (flow() says why)
    actions = [a[:3] + (None,) + a[4:] if a[0] == "ct" and n < len(actions) - 1 else a
               for n, a in enumerate(actions)]
    forked = bool(actions) and actions[-1][0] == "ct" and actions[-1][3] is not None
    goto = None if forked else draw(st.one_of(
        st.none(), st.sampled_from([t for t in TABLES if t > table])))
    metadata = None if forked else draw(st.one_of(
        st.none(), st.integers(0, (1 << 64) - 1),
        st.tuples(st.integers(0, (1 << 64) - 1), st.integers(0, (1 << 64) - 1))))
    meter = draw(st.one_of(st.none(), st.integers(1, 0x1FFFF).filter(
        lambda m: declared(m) is not None)))
    if meter is None and ("output", "controller") in actions:
        meter = 1
    return flow(table, draw(st.integers(0, 0xFFFF)), match, actions, goto, metadata,
                meter=meter)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flows())
def test_a_random_flow_encodes_to_os_kens_bytes(f):
    assert encode_add(f) == encode_with_osken(f)
