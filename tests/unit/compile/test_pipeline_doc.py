"""docs/pipeline.md documents every table pipeline.py defines, with its number."""
import re
from pathlib import Path

from controller.compile.pipeline import Table

DOC = Path(__file__).resolve().parents[3] / "docs" / "pipeline.md"


def test_every_table_is_documented_with_its_number():
    rows = dict(re.findall(r"^\| (\d+) \| ([A-Z_0-9]+) \|", DOC.read_text(), re.M))
    assert {name: int(n) for n, name in rows.items()} == {t.name: int(t) for t in Table}


def test_flow_count_formula_matches_the_compiler():
    from tests.support.worlds import World
    w = World(tenants=[("a", "vlan", 5), ("b", "vxlan", 6)],
              ports=[("a", 1, "10.0.0.2"), ("a", 1, "10.0.0.3"), ("a", 2, "10.0.0.4"),
                     ("b", 1, "10.0.0.2"), ("b", 3, "10.0.0.3"), ("b", 2, "10.0.0.5")])
    P, T, N, R, S = 3, 2, 6, 3, 2
    assert len(w.flows["h1"]) == 19 + 8 * P + 4 * N + 16 * T + 3 * S + R
