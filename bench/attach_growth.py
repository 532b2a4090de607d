#!/usr/bin/env python3
"""Attach -> first ping as the lab grows: the same attach measurement
(bench/attach.py) with 100, 1,000 and 5,000 ports already in the lab.

    .venv/bin/python bench/attach_growth.py [--quick] [--sizes 100,1000,5000]
        [--hosts 3] [--attaches 30] [--out FILE]

Run as root.  For each size, bench/attach.py --bulk SIZE: the bulk ports sit
on dummy datapaths (bench/dummyovs.py; 50 ports and 10 tenants each,
preloaded into the store before the controller starts) and the attach
tenants are three of the bulk's tenants, so every attach changes a tenant
that has ports on other (dummy) hosts; the pinger and the new containers
are real, on --hosts emulated hosts.  Each size is a fresh lab and
controller.  Prints one JSON document; never a threshold.
"""
import argparse
import sys

import attach
import common

TAG = "attach-growth"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="sizes 100,1000; 9 attaches")
    p.add_argument("--sizes", default=None)
    p.add_argument("--hosts", type=int, default=3)
    p.add_argument("--attaches", type=int, default=None)
    p.add_argument("--out", help="also write the JSON here")
    a = p.parse_args(argv)
    a.sizes = [int(x) for x in (a.sizes or ("100,1000" if a.quick else "100,1000,5000"))
               .split(",")]
    a.attaches = a.attaches or (9 if a.quick else 30)
    return a


def run(args):
    out = {"hosts": args.hosts, "attaches_per_size": args.attaches, "sizes": []}
    for size in args.sizes:
        common.log(TAG, f"{size} ports in the lab")
        a = attach.parse_args(["--hosts", str(args.hosts), "--attaches", str(args.attaches),
                               "--bulk", str(size), "--no-profile"])
        res = attach.run(a)
        res.pop("samples", None)
        res["bulk_ports"] = size
        out["sizes"].append(res)
    p50 = {r["bulk_ports"]: (r.get("ping_ms") or {}).get("p50") for r in out["sizes"]}
    lo, hi = min(p50), max(p50)
    if p50.get(lo) and p50.get(hi):
        out["p50_ratio_largest_to_smallest"] = round(p50[hi] / p50[lo], 2)
    return out


def main(argv=None):
    return common.run_main("bench/attach_growth.py", parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
