"""The tunnel ports the compiler sends to are the ones scripts/host-join creates.

host-join runs on hosts from a copy of scripts/ alone (docs/user-guide.md), so
it cannot import pipeline.py and keeps its own TUNNEL_PORTS; read here as a
literal from its source (importing it would need its helper module too)."""
import ast
from pathlib import Path

from controller.compile.pipeline import TUNNEL_PORTS

HOST_JOIN = Path(__file__).resolve().parents[3] / "scripts" / "host-join"


def test_host_join_creates_the_tunnel_ports_the_compiler_uses():
    tree = ast.parse(HOST_JOIN.read_text())
    found = [ast.literal_eval(node.value) for node in tree.body
             if isinstance(node, ast.Assign)
             and any(getattr(t, "id", None) == "TUNNEL_PORTS" for t in node.targets)]
    assert found == [TUNNEL_PORTS]
