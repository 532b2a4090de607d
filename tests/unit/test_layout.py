"""The layout is the architecture: these checks keep the data path readable.

REST -> service -> model/store -> pure compiler -> reconciler -> southbound ->
switch.  Only apps/ and controller/southbound import os-ken; the compiler
imports neither I/O nor the layers above it; no source file grows past the
size a reader can hold (~600 lines)."""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for d in ("controller", "apps", "topology", "vpcctl", "vpclab", "vpcagent",
                             "scripts", "bench")
                 for p in (REPO / d).rglob("*.py")
                 # not ours: e.g. bench/.faucet-venv, Faucet's own virtualenv
                 if not any(part.startswith(".") for part in p.relative_to(REPO).parts))

# package -> packages of this project it must not import (the direction of the data path)
FORBIDDEN = {
    # the model may read the pipeline's limits (tenant ids and port serials name
    # conntrack zones), nothing else of the compiler
    "controller.model": {"controller.api", "controller.service", "controller.store",
                         "controller.compile.datapath", "controller.compile.flows",
                         "controller.compile.nat", "controller.compile.secgroups",
                         "controller.compile.fabric", "controller.reconcile", "controller.southbound",
                         "controller.runtime", "controller.ha", "apps"},
    "controller.compile": {"controller.api", "controller.service", "controller.store",
                           "controller.reconcile", "controller.southbound", "controller.runtime",
                           "controller.ha", "apps", "eventlet"},
    "controller.store": {"controller.api", "controller.service", "controller.compile",
                         "controller.reconcile", "controller.southbound", "controller.runtime",
                         "apps"},
    "controller.service": {"controller.api", "controller.compile.datapath",
                           "controller.reconcile", "controller.southbound",
                           "controller.runtime", "apps"},
    "controller.reconcile": {"controller.api", "controller.service", "controller.store",
                             "controller.southbound", "apps"},
    "controller.southbound": {"controller.api", "controller.service", "controller.store",
                              "controller.reconcile", "controller.runtime", "controller.ha",
                              "apps"},
    "topology": {"controller", "apps"},
}


def imports(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


def module_of(path):
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


def under(name, prefix):
    return name == prefix or name.startswith(prefix + ".")


def test_only_apps_and_the_southbound_import_os_ken():
    offenders = sorted({module_of(p) for p in SOURCES for name in imports(p)
                        if under(name, "os_ken") and not (
                            under(module_of(p), "apps") or
                            under(module_of(p), "controller.southbound"))})
    assert not offenders, offenders


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_each_layer_imports_only_what_is_below_it(package):
    bad = []
    for p in SOURCES:
        if not under(module_of(p), package):
            continue
        for name in imports(p):
            if any(under(name, f) for f in FORBIDDEN[package]):
                bad.append(f"{module_of(p)} imports {name}")
    assert not bad, bad


def test_no_source_file_is_too_long_to_read():
    long = {str(p.relative_to(REPO)): n for p in SOURCES
            if (n := len(p.read_text().splitlines())) > 620}
    assert not long, long
