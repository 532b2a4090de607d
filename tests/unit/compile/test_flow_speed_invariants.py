"""Making flow() and Flow.cookie cheaper (issue 17) must not change one result.

Cookies are how a restarted controller recognises the flows it installed: a
changed cookie makes an upgrade replace every flow.  So every compiled flow of
the golden worlds (tests/support/golden.py, the ones test_golden.py compares)
and of a bench scenario (bench/scenario.py) is recorded as
(cookie, table, priority, match, actions, goto, metadata, meter), in repr (so a
changed type, say an IntEnum where an int was, is a difference too), sorted,
into one sha256 per world.  The digests below were computed with flows.py as
it was before the speed-up; any difference in any flow fails here.

flow() now remembers what it found valid and computes the cookie from cached
reprs, so the rest checks what those caches must not change: each flow equals
what the dataclass's own constructor and the old cookie formula give, a
malformed flow raises the very message it raised before (recorded then, with
the caches warm), and a value that equals a cached one but is of another type
(True for 1, an IntEnum member for its int) is checked, and hashed, on its own.
"""
import hashlib
import os
import sys

import pytest

from controller.compile.flows import Flow, FlowError, flow
from controller.compile.meters import MeterId
from controller.compile.pipeline import (COOKIE_HASH_BYTES, COOKIE_HASH_MASK, CookieKind,
                                         Prio, Table)
from tests.support import golden

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

DIGESTS = {
    'two_tenants_vlan': 'df8857b7df2101b091aaad1dfb7998a8f701752bc75cd78b2697f342ec60c631',
    'two_tenants_vxlan': '0f6a4257e0c4f7d778a967f4e4daf3a3a096671ddd1c6e8bd56ae038f432b345',
    'two_tenants_gre': '1611271b656df73f61a4e3368d6f8f1ebda0de829ff4a6d88994d95edaaa000c',
    'missing_disconnected': 'c91b16ea9f45303534cfb2fe0c413ee2fed6e4918d55b181d18589d347b175e3',
    'mixed_types': 'ebd8aff81c636158fdb1136cb6f0217656b40d56768fa6d5fb9a23776782255d',
    'nat': '30833de0878c5096fcf689a4e5d2936764187b29ed17f8bd2f145212c1b868cb',
    'nat_gateway_unknown': '401bbdc00f20c514e52734759218c79f90079d33fc01e45533ac062d2ece0e69',
    'routing': 'bdc36ef80c0e5bb2ea95f69edbba8bea4da3f051b803d38ba9038b5c05010624',
    'secgroups': 'a9cba88752fbcb2ea57f2c26756025dc851fcabcfc4ddedd8316066ed0d4f489',
    'dual_stack': '3f1669dcf9a5f800be8107b6dc417567ff0b4309fd8d0aa285e66fe406cf91fc',
    'fabric_leafspine': '3334c9cececdd63f48c26780059f2a183b6fc31c320cea480afacc61ef1c51cd',
    'fabric_dualhomed_cut': '9fc8599a9a8dcd68b98605307d367fe38cca1350ddb011af1f074237ce62eb6b',
    'bench_6x6': 'e3cbc752be80b2fd422bae6a1e4cdc65e6ca9fb783123260c86e6481f6b998af',
    'bench_9x12': 'a41f5f4a4d0d3bb1382c5886666a8ec1d6762357ce24eb4bb2ee68bb44bed84a',
}


def _line(f):
    return repr((f.cookie, f.table, f.priority, f.match, f.actions, f.goto, f.metadata,
                 f.meter))


def digest(flows_by_switch):
    lines = sorted(f"{sw!r} {_line(f)}" for sw, flows in flows_by_switch.items()
                   for f in flows)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def bench_world():
    if os.path.join(REPO, "bench") not in sys.path:
        sys.path.insert(0, os.path.join(REPO, "bench"))
    from bench.scenario import Scenario
    from controller.compile.datapath import compile_datapath
    sc = Scenario(hosts=9, ports_per_host=12, tenants=9, tenants_per_host=3)
    state, topo = sc.state(), sc.topo()
    return {sc.dpid(h): compile_datapath(state, topo, sc.dpid(h)) for h in range(sc.hosts)}


def all_worlds():
    yield from golden.worlds()
    yield "bench_9x12", bench_world()


def compute():
    return {name: digest(flows) for name, flows in all_worlds()}


def test_every_flow_and_cookie_is_what_it_was():
    got = compute()
    assert set(got) == set(DIGESTS)
    changed = sorted(name for name in DIGESTS if got[name] != DIGESTS[name])
    assert not changed, f"flows or cookies changed in {changed}"


@pytest.mark.parametrize("name", ["two_tenants_vxlan", "nat", "dual_stack"])
def test_repeated_compiles_agree(name):
    """Caches must not make a second compile differ from the first."""
    first = dict(golden.worlds())[name]
    again = dict(golden.worlds())[name]
    assert digest(first) == digest(again)


def _cookie_as_it_was(f):
    """Flow.cookie as flows.py computed it before: blake2b of repr(content)."""
    digest = hashlib.blake2b(repr(f.content).encode(), digest_size=COOKIE_HASH_BYTES).digest()
    return f.owner | (int.from_bytes(digest, "big") & COOKIE_HASH_MASK)


def test_flow_gives_what_the_dataclass_and_the_old_cookie_give():
    """flow() fills a Flow without its __init__ and computes its cookie from
    cached reprs: each must be what Flow(...) and repr(content) give."""
    n = 0
    for _, flows in all_worlds():
        for fl in flows.values():
            for f in fl:
                again = Flow(f.table, f.priority, f.match, f.actions, f.goto, f.metadata,
                             f.owner, f.meter)
                assert f == again and hash(f) == hash(again) and repr(f) == repr(again)
                assert f.cookie == again.cookie == _cookie_as_it_was(f)
                n += 1
    assert n > 5000


L2, MAC = Table.L2, Prio.L2.PORT_MAC
CT = Table.ACL
# built first: each malformed case below then follows a valid twin the caches hold
VALID = [
    (L2, MAC, dict(match={"in_port": 1, "metadata": (1, 1), "eth_dst": "02:00:00:00:00:0a",
                          "ipv4_dst": "10.0.0.1", "ipv6_dst": "fd00::1"},
                   actions=[("output", 2), ("set_field", "reg3", 1), ("push_vlan", 0x8100)],
                   metadata=(5, 1), kind=CookieKind.PORT, owner=7, meter=MeterId(1))),
    (CT, Prio.ACL.SECURED_IP, dict(actions=[("ct", True, 5, None, None)])),
    (CT, Prio.ACL.SECURED_IP, dict(actions=[("ct", True, 1, None, None)])),
]
CASES = [
    ("bool in_port", L2, MAC, dict(match={"in_port": True})),
    ("negative", L2, MAC, dict(match={"in_port": -1})),
    ("float in_port", L2, MAC, dict(match={"in_port": 1.0})),
    ("unknown field", L2, MAC, dict(match={"bogus": 1})),
    ("upper MAC", L2, MAC, dict(match={"eth_dst": "02:00:00:00:00:0A"})),
    ("bad IPv4", L2, MAC, dict(match={"ipv4_dst": "10.0.0.01"})),
    ("bad IPv6", L2, MAC, dict(match={"ipv6_dst": "fd00:0::1"})),
    ("masked bool", L2, MAC, dict(match={"metadata": (1, True)})),
    ("three-tuple", L2, MAC, dict(match={"metadata": (1, 2, 3)})),
    ("list value", L2, MAC, dict(match={"in_port": [1]})),
    ("output 0", L2, MAC, dict(actions=[("output", 0)])),
    ("output float", L2, MAC, dict(actions=[("output", 2.0)])),
    ("unknown action", L2, MAC, dict(actions=[("bogus", 1)])),
    ("arity", L2, MAC, dict(actions=[("push_vlan",)])),
    ("set bool", L2, MAC, dict(actions=[("set_field", "reg3", True)])),
    ("set in_port", L2, MAC, dict(actions=[("set_field", "in_port", 1)])),
    ("set list", L2, MAC, dict(actions=[("set_field", "eth_src", ["02:00:00:00:00:01"])])),
    ("move widths", L2, MAC, dict(actions=[("move", "eth_src", "ipv4_src")])),
    ("ct commit int", CT, Prio.ACL.SECURED_IP, dict(actions=[("ct", 1, 5, None, None)])),
    ("ct zone bool", CT, Prio.ACL.SECURED_IP, dict(actions=[("ct", True, True, None, None)])),
    ("ct nat no commit", CT, Prio.ACL.SECURED_IP,
     dict(actions=[("ct", False, 5, None, ("src", "1.2.3.4", "1.2.3.4", 0, 0))])),
    ("ct nat ports", CT, Prio.ACL.SECURED_IP,
     dict(actions=[("ct", True, 5, None, ("src", "1.2.3.4", "1.2.3.4", 5, 0))])),
    ("ct not last", CT, Prio.ACL.SECURED_IP,
     dict(actions=[("ct", True, 5, int(Table.SG_OUT_REMOTE), None), ("output", 1)])),
    ("ct undeclared table", L2, MAC, dict(actions=[("ct", True, 5, int(Table.SG_OUT), None)])),
    ("meter undeclared", L2, MAC, dict(meter=999999)),
    ("meter float", L2, MAC, dict(meter=1.0)),
    ("controller unmetered", L2, MAC, dict(actions=[("output", "controller")])),
    ("unknown table", 250, 5, dict()),
    ("foreign band", L2, Prio.CLASSIFY.IN_PORT, dict()),
    ("undeclared goto", L2, MAC, dict(goto=Table.CLASSIFY)),
    ("bare goto back", int(L2), 5, dict(goto=int(Table.CLASSIFY))),
    ("priority range", L2, 70000, dict()),
    ("metadata bool", L2, MAC, dict(metadata=(5, True))),
    ("metadata negative", L2, MAC, dict(metadata=-3)),
    ("owner too big", L2, MAC, dict(kind=CookieKind.PORT, owner=1 << 40)),
]
# the exception and message each case raised before the caches (recorded then)
RAISED = [
    ('bool in_port', FlowError, 'in_port: expected a non-negative int, got True'),
    ('negative', FlowError, 'in_port: expected a non-negative int, got -1'),
    ('float in_port', FlowError, 'in_port: expected a non-negative int, got 1.0'),
    ('unknown field', FlowError, "unknown match field 'bogus'"),
    ('upper MAC', FlowError, "eth_dst: expected a lowercase MAC, got '02:00:00:00:00:0A'"),
    ('bad IPv4', FlowError, "ipv4_dst: expected a canonical IPv4, got '10.0.0.01'"),
    ('bad IPv6', FlowError, "ipv6_dst: expected a canonical (compressed) IPv6, got 'fd00:0::1'"),
    ('masked bool', FlowError, 'metadata: expected a non-negative int, got True'),
    ('three-tuple', FlowError, 'metadata: masked value must be (value, mask)'),
    ('list value', FlowError, 'in_port: expected a non-negative int, got [1]'),
    ('output 0', FlowError, 'output to 0'),
    ('output float', FlowError, 'output to 2.0'),
    ('unknown action', FlowError, "unknown action ('bogus', 1)"),
    ('arity', FlowError, 'push_vlan: expected 1 arguments, got ()'),
    ('set bool', FlowError, 'reg3: expected a non-negative int, got True'),
    ('set in_port', FlowError, "set_field of unknown field 'in_port'"),
    ('set list', FlowError, "eth_src: expected a lowercase MAC, got ['02:00:00:00:00:01']"),
    ('move widths', FlowError, 'move eth_src->ipv4_src: fields unknown or of different widths'),
    ('ct commit int', FlowError, 'ct: commit must be a bool, got 1'),
    ('ct zone bool', FlowError, 'ct: zone must be an int 0..65535, got True'),
    ('ct nat no commit', FlowError, 'ct: a nat range needs commit (the switch rejects it)'),
    ('ct nat ports', FlowError,
     'ct: nat port range 5-0: give both (min <= max) or neither (0, 0)'),
    ('ct not last', FlowError, 'ct with a table must be the last action, without goto or '
     'write-metadata (OVS forks the packet there)'),
    ('ct undeclared table', FlowError, 'ct(table=32) in table L2: it recirculates only to []'),
    ('meter undeclared', FlowError, 'meter 999999 is not declared in meters.py'),
    ('meter float', FlowError, 'meter 1.0 is not declared in meters.py'),
    ('controller unmetered', FlowError, 'a flow that outputs to the controller needs a meter '
     '(meters.py): no packet-in path may be unmetered'),
    ('unknown table', FlowError, 'unknown table 250'),
    ('foreign band', FlowError,
     'priority CLASSIFY.IN_PORT used in table L2, whose bands are Prio.L2'),
    ('undeclared goto', FlowError,
     "goto 0 from table L2: not one of its next tables ['ACL_IN', 'FLOOD']"),
    ('bare goto back', FlowError, 'goto 0 from table 50: must be a later table'),
    ('priority range', FlowError, 'priority 70000 is outside 0..65535'),
    ('metadata bool', FlowError, 'metadata: expected a non-negative int, got True'),
    ('metadata negative', FlowError, 'metadata: expected a non-negative int, got -3'),
    ('owner too big', ValueError, 'cookie owner 1099511627776 does not fit 24 bits'),
]


def test_malformed_flows_raise_what_they_raised_before():
    for table, priority, kwargs in VALID:
        flow(table, priority, **kwargs)
    assert [c[0] for c in CASES] == [r[0] for r in RAISED]
    for (label, table, priority, kwargs), (_, error, message) in zip(CASES, RAISED):
        with pytest.raises(error) as raised:
            flow(table, priority, **kwargs)
        assert str(raised.value) == message, label


def test_equal_values_of_other_types_are_not_taken_from_the_caches():
    """True == 1 and an IntEnum member equals its int: a cached valid int must
    not make a bool valid, and an IntEnum value keeps its own repr (and so
    its own cookie, as before)."""
    from enum import IntEnum

    class Port(IntEnum):
        ONE = 1

    plain = flow(L2, MAC, {"in_port": 1}, actions=[("output", 1)])
    enum = flow(L2, MAC, {"in_port": Port.ONE}, actions=[("output", Port.ONE)])
    assert plain == enum
    assert enum.cookie == _cookie_as_it_was(enum) != plain.cookie == _cookie_as_it_was(plain)
    with pytest.raises(FlowError):
        flow(L2, MAC, {"in_port": True})
    flow(CT, Prio.ACL.SECURED_IP, actions=[("ct", True, 5, None, None)])
    with pytest.raises(FlowError, match="commit must be a bool"):
        flow(CT, Prio.ACL.SECURED_IP, actions=[("ct", 1, 5, None, None)])


def test_a_flow_pickles_without_its_cached_hash():
    import pickle
    f = flow(L2, MAC, {"in_port": 3}, actions=[("output", 4)])
    hash(f)
    g = pickle.loads(pickle.dumps(f))
    assert g == f and g.cookie == f.cookie and "_hash" not in g.__dict__


if __name__ == "__main__":
    sys.path.insert(0, REPO)
    for name, d in compute().items():
        print(f"    {name!r}: {d!r},")
