"""The compiled flows keep to the pipeline as pipeline.py declares it.

Why: flow() checks each flow of a pipeline table as it is built; this checks
the whole output of every golden world from the other side, so neither a
flow that slipped past flow() (a bare table number) nor a declaration that
no longer matches what the compiler does (an edge nothing uses, a miss
written by hand) can stay unnoticed.
"""
from collections import Counter

from controller.compile.pipeline import (
    FABRIC_PIPELINE, HOST_PIPELINE, CookieKind, FabricTable, Prio, Table, describe_cookie)
from tests.support import golden


def pipeline_of(flows):
    fabric = all(describe_cookie(f.cookie)["kind"] == "fabric" for f in flows)
    return (FABRIC_PIPELINE, FabricTable) if fabric else (HOST_PIPELINE, Table)


def every_switch():
    for name, by_switch in golden.worlds():
        for switch, flows in by_switch.items():
            yield f"{name}/{switch}", list(flows)


def test_every_goto_recirculation_and_priority_is_declared():
    used_gotos, used_recircs = set(), set()
    for where, flows in every_switch():
        pipeline, tables = pipeline_of(flows)
        for f in flows:
            spec = pipeline[tables(f.table)]
            assert f.priority in {int(b) for b in spec.bands}, (where, f)
            if f.goto is not None:
                assert f.goto in spec.next_tables, (where, f)
                used_gotos.add((f.table, f.goto))
            for a in f.actions:
                if a[0] == "ct" and a[3] is not None:
                    assert a[3] in spec.recirculates_to, (where, f)
                    used_recircs.add((f.table, a[3]))
    # and the declaration claims nothing the compiler never does
    declared_gotos = {(s.table, n) for s in HOST_PIPELINE.values() for n in s.next_tables}
    declared_recircs = {(s.table, n) for s in HOST_PIPELINE.values() for n in s.recirculates_to}
    assert declared_gotos == used_gotos
    assert declared_recircs == used_recircs


def test_every_table_has_exactly_its_declared_miss():
    for where, flows in every_switch():
        pipeline, tables = pipeline_of(flows)
        misses = [f for f in flows if f.priority == 0]
        assert Counter(f.table for f in misses) == Counter(int(t) for t in pipeline), where
        for f in misses:
            spec = pipeline[tables(f.table)]
            assert f.match == () and f.goto == spec.miss.goto, (where, f)
            assert f.actions == tuple(("set_field", r.oxm, 0) for r in spec.miss.clear), where
            kind = CookieKind.FABRIC if pipeline is FABRIC_PIPELINE else CookieKind.BASE
            assert describe_cookie(f.cookie)["kind"] == kind.name.lower(), where


def test_bands_are_per_table_and_name_one_value():
    assert Prio.L3.ROUTE.name == "ROUTE" and Prio.L3(110).name == "GATEWAY"
    for spec in (*HOST_PIPELINE.values(), *FABRIC_PIPELINE.values()):
        values = [int(b) for b in spec.bands]
        assert len(values) == len(set(values)), spec.table.name     # no aliases
        assert spec.bands.MISS == 0


def test_flow_refuses_what_its_table_does_not_declare():
    import pytest
    from controller.compile.flows import FlowError, flow
    flow(Table.L2, Prio.L2.UNKNOWN_UNICAST, {"metadata": 1}, goto=Table.FLOOD)      # declared
    with pytest.raises(FlowError, match="not one of its next tables"):
        flow(Table.L2, Prio.L2.PORT_MAC, {"metadata": 1}, goto=Table.DELIVER)     # forward, undeclared
    with pytest.raises(FlowError, match="whose bands are Prio.ACL_IN"):
        flow(Table.ACL_IN, Prio.L2.UNKNOWN_UNICAST, {"reg7": 3}, goto=Table.DELIVER)
    with pytest.raises(FlowError, match="recirculates only"):
        flow(Table.ACL, Prio.ACL.SECURED_IP, {"in_port": 1},
             actions=[("ct", True, 1, int(Table.SG_IN_REMOTE), None)])
    with pytest.raises(FlowError, match="unknown match field 'reg5'"):
        flow(Table.L2, Prio.L2.PORT_MAC, {"reg5": 1})                               # not declared
