"""Where a switch's connection goes until the first ping: every OpenFlow
message of both bridges' connections to our controller, timed from
set-controller (tcpdump -w on the root namespace's loopback, the controller's
port only: passive; decoded with dpkt).  The lab of bench/faucet.py.

    sudo .venv/bin/python bench/handshake_timeline.py     # text on stdout

Not part of bench/run.py (a finding, quoted in issue 17's closing note: OVS
answers FEATURES_REQUEST 16-50 ms after it; every other step is 0.1-2 ms)."""
import os, secrets, shutil, subprocess, sys, tempfile, time, json
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE); sys.path.insert(0, os.path.dirname(HERE))
import common, faucet as F, dpkt
from vpclab import lablib
from vpclab.labctl import free_port
NAMES = {0: "HELLO", 1: "ERROR", 2: "ECHO_REQ", 3: "ECHO_REP", 4: "EXPERIMENTER",
         5: "FEATURES_REQ", 6: "FEATURES_REP", 9: "SET_CONFIG", 10: "PACKET_IN",
         12: "PORT_STATUS", 13: "PACKET_OUT", 14: "FLOW_MOD", 18: "MP_REQ", 19: "MP_REP",
         20: "BARRIER_REQ", 21: "BARRIER_REP", 24: "ROLE_REQ", 25: "ROLE_REP",
         26: "GET_ASYNC_REQ", 28: "SET_ASYNC", 29: "METER_MOD"}   # OpenFlow 1.3 types
workdir = tempfile.mkdtemp(prefix="vpc-hs-")
lab = lablib.Lab(name=f"bfa{secrets.token_hex(2)}", hosts=2, of_port=free_port(), external=False)
ctl = None
try:
    lab.up(); F.build(lab)
    ctl = common.TimedController(os.path.join(workdir, "ours")); ctl.start()
    F.configure_ours(lab, ctl)
    F.point_relays(lab, ctl.of_port)
    for rnd in range(3):
        pcap = os.path.join(workdir, f"hs{rnd}.pcap")
        td = subprocess.Popen(["tcpdump", "-i", "lo", "-p", "-n", "-w", pcap, "-U", f"tcp port {ctl.of_port}"], stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(1)
        ms, t0, syn = F.connect_to_ping(lab)
        time.sleep(0.5); lablib.kill_pid(td.pid, timeout=2); td.wait(5)
        print(f"round {rnd}: set-controller->ping {ms} ms, syn->ping {syn} ms")
        conns = {}
        for ts, buf in dpkt.pcap.Reader(open(pcap, "rb")):
            # lo: linktype NULL or EN10MB
            try:
                eth = dpkt.ethernet.Ethernet(buf); ip = eth.data
            except Exception:
                continue
            if not isinstance(ip, dpkt.ip.IP) or not isinstance(ip.data, dpkt.tcp.TCP): continue
            tcp = ip.data
            to_ctl = tcp.dport == ctl.of_port
            cport = tcp.sport if to_ctl else tcp.dport
            c = conns.setdefault(cport, {"buf": {True: b"", False: b""}, "ev": []})
            if tcp.flags & dpkt.tcp.TH_SYN and not tcp.flags & dpkt.tcp.TH_ACK:
                c["ev"].append((ts, "SYN"))
            data = c["buf"][to_ctl] + bytes(tcp.data)
            while len(data) >= 8:
                ln = int.from_bytes(data[2:4], "big")
                if len(data) < ln: break
                c["ev"].append((ts, ("sw->ctl " if to_ctl else "ctl->sw ") + NAMES.get(data[1], str(data[1]))))
                data = data[ln:]
            c["buf"][to_ctl] = data
        for cport, c in conns.items():
            evs = [e for e in c["ev"] if e[0] >= t0 - 0.01]
            if not evs: continue
            line = []; last = None
            for ts, what in evs[:40]:
                if last is None or what != last:
                    line.append(f"{(ts - t0)*1000:6.1f} {what}")
                last = what
            print(f" conn {cport}:"); print("   " + "\n   ".join(line[:25]))
finally:
    ctl and ctl.stop(); lab.down(); shutil.rmtree(workdir, ignore_errors=True)
