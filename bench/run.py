#!/usr/bin/env python3
"""Run the benchmark suite and regenerate docs/benchmarks.md.

    .venv/bin/python bench/run.py [--quick] [--only NAME[,NAME]] [--report-only]

Parts (each is also a script of its own, printing JSON):
  attach     bench/attach.py     POST of a port -> first ping from another host
  attach_growth  bench/attach_growth.py  the same with 100, 1,000, 5,000 ports in the lab
  scale      bench/scale.py      100 dummy datapaths x 50 ports: cold / warm start
  dataplane  bench/dataplane.py  throughput and RTT vs plain OVS NORMAL, packet-ins
  flowcount  bench/flowcount.py  flows per switch: compiler vs docs/pipeline.md
  faucet     bench/faucet.py     the same VLAN scenario under Faucet, side by side
Optional (only with --only): faults  bench/faults.py  seeded control-plane faults (docs/ha.md)

Each part runs as its own process (its own cleanup); a part that fails is
recorded with its error and the others still run.  The results go to
bench/results/<timestamp>.json (gitignored), and docs/benchmarks.md is
rewritten from them; parts not run this time are taken from the newest
earlier results file that has them (the document names the file); full-size
results are preferred over newer --quick ones.
--report-only rewrites the document from bench/results/ without running.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402
import report  # noqa: E402

PARTS = ("attach", "attach_growth", "scale", "dataplane", "flowcount", "faucet")
OPTIONAL = ("faults",)          # not in the default run; --only faults
NEEDS_ROOT = {"attach", "attach_growth", "scale", "dataplane", "faucet", "faults"}
RESULTS = os.path.join(HERE, "results")
DOC = os.path.join(common.REPO, "docs", "benchmarks.md")


def part_args(name, quick):
    if name == "faults":
        return ["--seeds", "1", "--faults", "5"] if quick else []
    if name == "dataplane":
        return ["--seconds", "3", "--repeat", "1", "--pings", "10"] if quick else []
    if name == "scale":         # 100 x 50, or the largest size converging in 5 min
        return ["--quick", "--timeout", "120"] if quick else ["--fallback", "--timeout", "300"]
    return ["--quick"] if quick else []


def run_part(name, quick):
    fd, out = tempfile.mkstemp(prefix=f"vpc-bench-{name}-", suffix=".json")
    os.close(fd)
    cmd = [sys.executable, os.path.join(HERE, f"{name}.py")] + part_args(name, quick) + \
        ["--out", out]
    common.log("run", f"{name}: {' '.join(cmd[1:])}  (load {common.load_avg()})")
    t0 = time.time()
    try:
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=None)
        seconds = round(time.time() - t0, 1)
        if p.returncode != 0:
            return {"error": f"exit status {p.returncode}", "part_seconds": seconds}
        with open(out) as f:
            res = json.load(f)
        res["part_seconds"] = seconds
        return res
    except (OSError, ValueError) as exc:
        return {"error": str(exc), "part_seconds": round(time.time() - t0, 1)}
    finally:
        os.unlink(out)


def latest_parts():
    """{part: (result, results file name, quick)} from the newest file having
    each part; full-size results win over newer --quick ones."""
    docs = []
    for path in glob.glob(os.path.join(RESULTS, "*.json")):
        try:
            with open(path) as f:
                docs.append((os.path.basename(path), json.load(f)))
        except (OSError, ValueError):
            continue
    docs.sort(key=lambda d: (not d[1].get("quick"), d[0]), reverse=True)
    found = {}
    for fname, doc in docs:
        for name, res in (doc.get("parts") or {}).items():
            if name not in found and isinstance(res, dict) and "error" not in res:
                found[name] = (res, fname, doc.get("quick"))
    return found


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, to check the suite")
    p.add_argument("--only", action="append", default=[],
                   help=f"run only these parts ({', '.join(PARTS)}); repeat or comma-separate")
    p.add_argument("--report-only", action="store_true",
                   help="rewrite docs/benchmarks.md from bench/results/ and exit")
    a = p.parse_args(argv)
    a.parts = [x for o in a.only for x in o.split(",") if x] or list(PARTS)
    bad = [x for x in a.parts if x not in PARTS + OPTIONAL]
    if bad:
        p.error(f"unknown part(s) {bad}; parts are {', '.join(PARTS)}")
    return a


def main(argv=None):
    args = parse_args(argv)
    if not args.report_only:
        if os.geteuid() != 0 and NEEDS_ROOT & set(args.parts):
            sys.exit("bench/run.py needs root for " + ", ".join(sorted(NEEDS_ROOT & set(args.parts))))
        os.makedirs(RESULTS, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        doc = {"started": stamp, "quick": args.quick, "machine": common.machine(),
               "parts": {}}
        path = os.path.join(RESULTS, f"{stamp}.json")
        for name in args.parts:
            doc["parts"][name] = run_part(name, args.quick)
            with open(path, "w") as f:          # after every part: a crash keeps the rest
                json.dump(doc, f, indent=2, sort_keys=True)
        common.log("run", f"results: {os.path.relpath(path, common.REPO)}")
        print(json.dumps(report.summary(doc), indent=2, sort_keys=True))
    found = latest_parts()
    if not found:
        sys.exit("no results in bench/results/ to report")
    with open(DOC, "w") as f:
        f.write(report.render(found))
    common.log("run", f"wrote {os.path.relpath(DOC, common.REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
