"""Meters in the compiler: every packet-in path is metered, by construction.

Why: the guarantee "no tenant can flood the controller" rests on each flow
that outputs to the controller naming a meter; flow() refuses one that does
not, and the golden worlds show the only punting flows (gateway ARP, LLDP)
carry their meter and compile the meters they use."""
import pytest

from controller.compile.flows import CONTROLLER, FlowError, flow
from controller.compile.meters import METERS, Meter, MeterId, meters_for
from controller.compile.pipeline import Prio, Table
from tests.support import golden


def test_a_flow_to_the_controller_without_a_meter_is_refused():
    with pytest.raises(FlowError, match="needs a meter"):
        flow(Table.EXT_IN, Prio.EXT_IN.ARP, {"eth_type": 0x0806},
             actions=[("output", CONTROLLER)])


def test_an_undeclared_meter_is_refused():
    with pytest.raises(FlowError, match="not declared"):
        flow(Table.EXT_IN, Prio.EXT_IN.ARP, {"eth_type": 0x0806},
             actions=[("output", CONTROLLER)], meter=99)


def test_a_meter_changes_the_cookie_of_its_flow_only():
    plain = flow(Table.L2, Prio.L2.PORT_MAC, {"in_port": 1}, actions=[("output", 2)])
    metered = flow(Table.L2, Prio.L2.PORT_MAC, {"in_port": 1}, actions=[("output", 2)],
                   meter=MeterId.LLDP)
    assert plain.meter is None and plain.content == plain.content[:6]
    assert metered.cookie != plain.cookie and metered != plain
    assert metered.meter == 2 and type(metered.meter) is int


def test_every_punting_flow_of_every_golden_world_is_metered():
    punting = 0
    for name, flows in golden.worlds():
        for switch, fl in flows.items():
            for f in fl:
                if ("output", CONTROLLER) in f.actions:
                    punting += 1
                    assert f.meter in METERS, (name, switch, f)
            assert set(meters_for(fl)) == {f.meter for f in fl if f.meter is not None}
    assert punting >= 10


def test_meters_for_gives_the_declared_meter_values():
    f = flow(Table.EXT_IN, Prio.EXT_IN.ARP, {"eth_type": 0x0806},
             actions=[("output", CONTROLLER)], meter=MeterId.GATEWAY_ARP)
    assert meters_for([f]) == {1: METERS[MeterId.GATEWAY_ARP]}
    assert meters_for([]) == {}


def test_a_meter_value_is_checked():
    with pytest.raises(ValueError):
        Meter(0, 10, 20)
    with pytest.raises(ValueError):
        Meter(1, 0, 20)
