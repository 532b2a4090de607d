#!/usr/bin/env python3
"""Flows per switch as ports and tenants grow: the compiler vs docs/pipeline.md.

    .venv/bin/python bench/flowcount.py [--quick] [--out FILE]

Pure: no switches, no root.  For each size (10 / 100 / 1,000 / 5,000 ports;
--quick stops at 1,000) it builds the synthetic model of bench/scenario.py
(hosts x ports per host, tenants mixed VLAN/VXLAN/GRE, every tenant on
several hosts, every port in the default security group), compiles every
host's bridge with ``controller.compile.datapath.compile_datapath`` (all bridges
connected, the scenario's port numbers) and puts next to it the "Flow count"
formula of docs/pipeline.md, evaluated on the same host (P, T, N, R, S).
The formula's coefficients are read from the document itself, so the
comparison follows the document as it is today.

Prints one JSON document; never a threshold.
"""
import argparse
import os
import re
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402
from scenario import Scenario  # noqa: E402

# (hosts, ports per host, tenants, tenants per host) -> 10 / 100 / 1,000 / 5,000 ports
SIZES = [(2, 5, 2, 2), (10, 10, 10, 5), (50, 20, 50, 10), (100, 50, 100, 10)]
DOC = os.path.join(common.REPO, "docs", "pipeline.md")
FALLBACK = {"base": 19, "P": 11, "N": 4, "T": 16, "S": 3, "R": 1}


def doc_formula():
    """Coefficients of the "Flow count" formula as docs/pipeline.md states them."""
    try:
        text = open(DOC).read()
    except OSError:
        return dict(FALLBACK, source="fallback (docs/pipeline.md unreadable)")
    block = text.split("## Flow count", 1)[-1].split("##", 1)[0]
    pats = {"base": r"flows\s*=\s*(\d+)", "P": r"\+\s*(\d+)\s*·\s*P", "N": r"\+\s*(\d+)\s*·\s*N",
            "T": r"\+\s*T\s*·\s*(\d+)", "S": r"\+\s*(\d+)\s*·\s*S", "R": r"\+\s*(\d*)\s*·?\s*R\b"}
    out = {}
    for k, pat in pats.items():
        m = re.search(pat, block)
        if not m:
            return dict(FALLBACK, source=f"fallback (term {k} not found in docs/pipeline.md)")
        out[k] = int(m.group(1) or 1)
    out["source"] = "docs/pipeline.md"
    return out


def formula_for(state, host_name, coef):
    local = [p for p in state.ports.values() if p.host == host_name]
    tenants = {p.tenant for p in local}
    n = sum(1 for p in state.ports.values() if p.tenant in tenants)
    s = sum(1 for sn in state.subnets.values() if sn.tenant in tenants)
    terms = {"P": len(local), "T": len(tenants), "N": n, "R": n - len(local), "S": s}
    flows = coef["base"] + sum(coef[k] * v for k, v in terms.items())
    return flows, terms


def measure(size, coef):
    hosts, ppp, tenants, tph = size
    sc = Scenario(hosts, ppp, tenants, tph)
    state, topo = sc.state(), sc.topo()
    from controller.compile.datapath import compile_datapath
    rows, times = [], []
    for h in range(hosts):
        t0 = time.perf_counter()
        n = len(compile_datapath(state, topo, sc.dpid(h)))
        times.append((time.perf_counter() - t0) * 1000)
        f, terms = formula_for(state, sc.host_name(h), coef)
        rows.append((n, f, terms))
    compiled = [r[0] for r in rows]
    predicted = [r[1] for r in rows]
    diffs = sorted({c - p for c, p, _ in rows})
    return {
        "ports": hosts * ppp, "hosts": hosts, "ports_per_host": ppp, "tenants": tenants,
        "tenants_per_host": tph, "hosts_per_tenant": hosts * tph // tenants,
        "networks": "vlan/vxlan/gre by tenant index mod 3",
        "flows_per_switch_compiler": {"min": min(compiled), "max": max(compiled),
                                      "median": statistics.median(compiled)},
        "flows_per_switch_formula": {"min": min(predicted), "max": max(predicted),
                                     "median": statistics.median(predicted)},
        "compiler_minus_formula": diffs,
        "terms_host0": rows[0][2],
        "flows_all_switches": sum(compiled),
        "compile_ms_per_switch": round(statistics.median(times), 1),
    }


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="sizes up to 1,000 ports")
    p.add_argument("--out", help="also write the JSON here")
    return p.parse_args(argv)


def run(quick=False):
    load = common.load_avg()
    coef = doc_formula()
    sizes = SIZES[:3] if quick else SIZES
    results = []
    for size in sizes:
        common.log("flowcount", f"{size[0] * size[1]} ports ({size[0]} hosts x {size[1]})")
        results.append(measure(size, coef))
    from controller.compile.datapath import base_flows
    return {"formula": coef, "table_defaults_compiler": len(base_flows()),
            "load_avg_at_start": load,
            "formula_text": "{base} + {P}·P + {N}·N + {T}·T + {S}·S + {R}·R".format(**coef),
            "model": "bench/scenario.py: every port secured, default security group only, "
                     "no NAT; all bridges connected",
            "sizes": results}


def main(argv=None):
    args = parse_args(argv)
    result = run(args.quick)
    result["machine"] = common.machine()
    common.emit(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
