"""Ours vs Faucet throughput, interleaved: ours, Faucet, Faucet, ours, ... on
the same 2-host lab of bench/faucet.py (both controllers running, the relays
pointed at one or the other, bridges emptied in between), then ours with port
security off; with h1's datapath flows during the first run of each.

    sudo .venv/bin/python bench/faucet_interleaved.py [ROUNDS]   # JSON on stdout

Why: bench/faucet.py runs ours first, then Faucet, so order and drift of the
shared machine are in its comparison.  Not part of bench/run.py (a finding,
quoted in issue 17's closing note: the gap is conntrack, see the dumps)."""
import json, os, secrets, shutil, sys, tempfile, threading, time
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE); sys.path.insert(0, os.path.dirname(HERE))
import common, faucet as F
from vpclab import lablib
from vpclab.labctl import free_port
from vpclab.labtraffic import iperf3

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
SECS = 5
workdir = tempfile.mkdtemp(prefix="vpc-tp-")
lab = lablib.Lab(name=f"bfa{secrets.token_hex(2)}", hosts=2, of_port=free_port(), external=False)
out = {"ours": [], "faucet": [], "ours_nosec": [], "order": []}
ctl = fc = None
try:
    lab.up(); F.build(lab)
    ctl = common.TimedController(os.path.join(workdir, "ours")); ctl.start()
    blue = F.configure_ours(lab, ctl)
    fc = F.Faucet(os.path.join(workdir, "faucet")); fc.start(F.ensure_faucet(), F.faucet_yaml(lab))

    def switch_to(port):
        F.empty_bridges(lab); F.point_relays(lab, port)
        for i in lab.hosts_range(): F.set_controller(lab, i)
        lab.ping(lab.container_ns("blue1"), F.IP[2], count=3, interval=0.2)
        if not lab.ping(lab.container_ns("blue1"), F.IP[2], count=5, interval=0.1):
            raise lablib.LabError(f"no ping across the lab with the controller on {port}")
        time.sleep(1)

    def run(who):
        dumps = {}
        def grab():
            time.sleep(2)
            dumps["dp"] = lab.appctl(1, "dpctl/dump-flows", check=False)
            dumps["pmd"] = lab.appctl(1, "dpif-netdev/pmd-stats-show", check=False)
        t = threading.Thread(target=grab); t.start()
        r = iperf3(lab, lab.container_ns("blue2"), lab.container_ns("blue1"), F.IP[2], seconds=SECS)["mbit_s"]
        t.join()
        return r, dumps

    for n in range(ROUNDS):
        for who, port in ((("ours", ctl.of_port), ("faucet", fc.of_port)) if n % 2 == 0
                          else (("faucet", fc.of_port), ("ours", ctl.of_port))):
            switch_to(port)
            r, d = run(who)
            out[who].append(r); out["order"].append(who)
            if n == 0:
                out[f"{who}_dump"] = d
            print(who, r, file=sys.stderr, flush=True)
    switch_to(ctl.of_port)
    for pid in blue:
        ctl.api.request("PATCH", f"/v1/tenants/blue/ports/{pid}", {"port_security": False, "security_groups": []})
    time.sleep(1.5)
    for n in range(ROUNDS):
        r, d = run("ours_nosec"); out["ours_nosec"].append(r)
        if n == 0: out["ours_nosec_dump"] = d
    print(json.dumps(out, indent=1))
finally:
    for x in (ctl, fc):
        try:
            x and x.stop()
        except Exception as e:
            print("stop", e, file=sys.stderr)
    lab.down(); shutil.rmtree(workdir, ignore_errors=True)
