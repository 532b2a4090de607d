"""The fault lab (vpclab/faultlab.py), short and seeded: 3 etcd members, 3
controllers, 2 hosts; a client stream through all three REST APIs while the
controller leader, etcd's leader, an etcd follower, a host's OVS die and come
back and one controller is cut off from etcd, in an order drawn from the
seed.  vpclab/history.py checks the history: acknowledged writes there
exactly once, refused ones absent, no IP/MAC/segment twice, the switches
holding exactly the flows the leader wants with one master each, pings lost
only while a host's OVS was down.

The history of each seed is written as JSON next to the lab's files (the path
is printed; a failure names it).  The longer run is bench/faults.py.
No timing thresholds: takeover times are printed, not asserted.
"""
import json
import shutil
import warnings

import pytest

from vpclab.faultlab import FaultLab
from vpclab.history import check, summary

SEEDS = (1, 2, 3)

if shutil.which("etcd") is None:
    pytest.skip("etcd not installed (scripts/setup)", allow_module_level=True)


@pytest.fixture(scope="module")
def faultlab(tmp_path_factory):
    work = tmp_path_factory.mktemp("faultlab")
    lab = FaultLab(work)
    try:
        lab.up()
        yield lab
    finally:
        problems = lab.down()
        if problems:
            warnings.warn(f"fault lab teardown: {problems}")


@pytest.mark.parametrize("seed", SEEDS)
def test_seeded_faults_lose_and_double_nothing(faultlab, seed):
    history = faultlab.run(seed, faults=5)
    path = faultlab.workdir / f"history-{seed}.json"
    path.write_text(json.dumps(history, indent=1))
    s = summary(history)
    print(f"\n[faults] {json.dumps(s)}\n[faults] history: {path}")
    problems = check(history)
    assert not problems, f"seed {seed} ({path}):\n" + "\n".join(problems)
    assert s["ops"] > 0 and s["ok"] > 0
