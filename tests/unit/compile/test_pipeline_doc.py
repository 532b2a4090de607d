"""docs/pipeline.md documents the pipeline pipeline.py declares: every table with
its number, the table graph (goto, ct recirculation, miss), each table's priority
bands, the registers and the cookie kinds with what their owner is."""
import re
from pathlib import Path

import controller.compile.pipeline as pipeline
from controller.compile.pipeline import (
    COOKIE_OWNER, FABRIC_PIPELINE, HOST_PIPELINE, REGISTERS, CookieKind, Table)

DOC = (Path(__file__).resolve().parents[3] / "docs" / "pipeline.md").read_text()


def section(title):
    return DOC.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def names(cell):
    return {n.strip() for n in cell.split(",") if n.strip()}


def test_every_table_is_documented_with_its_number():
    rows = dict(re.findall(r"^\| (\d+) \| ([A-Z_0-9]+) \|", DOC, re.M))
    assert {name: int(n) for n, name in rows.items()} == {t.name: int(t) for t in Table}


def test_the_table_graph_is_the_declared_one():
    rows = re.findall(r"^\| ([A-Z_0-9]+) \| ([A-Z_0-9, ]*) \| ([A-Z_0-9, ]*) \| (.+) \|$",
                      section("Table graph"), re.M)
    documented = {t: (names(goto), names(ct), miss) for t, goto, ct, miss in rows}
    declared = {}
    for s in HOST_PIPELINE.values():
        miss = "drop" if s.miss.goto is None else \
            "".join(f"`{r.oxm}` := 0, " for r in s.miss.clear) + f"→ {s.miss.goto.name}"
        declared[s.table.name] = ({t.name for t in s.next_tables},
                                  {t.name for t in s.recirculates_to}, miss)
    assert documented == declared


def test_every_table_s_bands_are_documented_with_their_values():
    rows = re.findall(r"^\| ([A-Z_0-9]+) \| (.+) \|$", section("Priority bands (`Prio`)"), re.M)
    documented = {t: dict((n, int(v)) for n, v in re.findall(r"([A-Z_]+) (\d+)", bands))
                  for t, bands in rows}
    declared = {s.bands.__name__: {b.name: int(b) for b in s.bands}
                for s in (*HOST_PIPELINE.values(), *FABRIC_PIPELINE.values())}
    assert documented == declared


def test_every_register_is_documented_by_field_and_name():
    rows = re.findall(r"^\| `(reg\d+)` \| `([A-Z_]+)` \|", section("Registers and metadata"), re.M)
    assert {(field, getattr(pipeline, name)) for field, name in rows} == \
        {(r.oxm, r) for r in REGISTERS}


def test_every_cookie_kind_is_documented_with_its_owner():
    rows = re.findall(r"^\| `0x([0-9a-f]{2})` \| ([A-Z_]+) \| (.+) \|$", section("Cookies"), re.M)
    assert {(int(v, 16), n, owner) for v, n, owner in rows} == \
        {(int(k), k.name, COOKIE_OWNER[k]) for k in CookieKind}


def test_flow_count_formula_matches_the_compiler():
    from tests.support.worlds import World
    w = World(tenants=[("a", "vlan", 5), ("b", "vxlan", 6)],
              ports=[("a", 1, "10.0.0.2"), ("a", 1, "10.0.0.3"), ("a", 2, "10.0.0.4"),
                     ("b", 1, "10.0.0.2"), ("b", 3, "10.0.0.3"), ("b", 2, "10.0.0.5")])
    P, T, N, R, S = 3, 2, 6, 3, 2
    assert len(w.flows["h1"]) == len(HOST_PIPELINE) + 11 * P + 4 * N + 16 * T + 3 * S + R
