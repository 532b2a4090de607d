"""Traffic between lab containers: ping, arping, TCP transfers, iperf3, and
capture filters for the tunnels.  Used by tests/lab and bench/.

Every function takes a ``lablib.Lab`` and namespace names; every process it
starts in the background it also stops (by pid) before returning, even on
failure.  Nothing here asserts: results are returned, callers judge them.
Standard library only.
"""
import concurrent.futures
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

from vpclab.labsys import LabError, kill_pid

# BPF filters for an underlay capture (the host's eth0).
TUNNEL_FILTER = {"vxlan": "udp port 4789", "gre": "ip proto 47"}

# Tunnel packets whose *inner* frame is ARP.  VXLAN: UDP header 8 + VXLAN
# header 8 + inner MACs 12 -> inner ethertype at udp[28].  GRE as OVS sends it
# with a key: flags 0x2000 (K), protocol 0x6558 (Ethernet), key -> 8 bytes,
# then the inner frame: ethertype at 8 + 12 after the outer IP header.
INNER_ARP_FILTER = {
    "vxlan": "udp port 4789 and udp[28:2] = 0x0806",
    "gre": "ip proto 47 and ip[((ip[0] & 0xf) << 2):2] = 0x2000 and "
           "ip[((ip[0] & 0xf) << 2) + 2:2] = 0x6558 and "
           "ip[((ip[0] & 0xf) << 2) + 20:2] = 0x0806",
}


def wait_until(predicate, timeout=20.0, interval=0.2):
    """Poll ``predicate`` until it is true or ``timeout`` passes; returns its
    last value.  A deadline for waiting, never a measured threshold."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


# --- ping ---------------------------------------------------------------------
@dataclasses.dataclass
class PingResult:
    ns: str
    ip: str
    sent: int
    received: int
    seqs: list          # icmp_seq of every reply, in arrival order
    avg_ms: float       # None without replies
    output: str

    @property
    def first_lost(self):
        return 1 not in self.seqs


def ping(lab, ns, ip, count=3, interval=0.2, wait=1.0, size=None, dont_fragment=False,
         broadcast=False):
    """``ping -c count`` from namespace ``ns``; a PingResult (never raises
    for lost packets)."""
    cmd = ["ping", "-n", "-c", str(count), "-i", str(interval), "-W", str(wait)]
    if size is not None:
        cmd += ["-s", str(size)]
    if dont_fragment:
        cmd += ["-M", "do"]
    if broadcast:
        cmd.append("-b")
    timeout = count * (interval + wait) + 10
    try:
        out = lab.exec(ns, *cmd, ip, check=False, timeout=timeout).stdout
    except LabError as e:
        out = str(e)
    seqs = [int(m) for m in re.findall(r"icmp_seq=(\d+) ", out)]
    m = re.search(r"(\d+) packets transmitted, (\d+) (?:packets )?received", out)
    sent, received = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    rtt = re.search(r"= [\d.]+/([\d.]+)/", out)
    return PingResult(ns, ip, sent, received, seqs, float(rtt.group(1)) if rtt else None, out)


def ping_many(lab, jobs, workers=16, **kw):
    """Run pings in parallel.  ``jobs``: {key: (ns, ip)}; returns {key: PingResult}."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futs = {k: pool.submit(ping, lab, ns, ip, **kw) for k, (ns, ip) in jobs.items()}
        return {k: f.result() for k, f in futs.items()}


# --- arping -------------------------------------------------------------------
_ARPING_FLAVOR = []


def arping_flavor():
    """'iputils' or 'habets': Debian has two conflicting arping packages with
    different flags (scripts/setup installs iputils-arping unless the other
    one is already there)."""
    if not _ARPING_FLAVOR:
        p = subprocess.run(["arping", "-V"], capture_output=True, text=True)
        _ARPING_FLAVOR.append("iputils" if "iputils" in p.stdout + p.stderr else "habets")
    return _ARPING_FLAVOR[0]


def arping(lab, ns, ip, count=3, iface="eth0"):
    """Send ``count`` ARP requests for ``ip`` out of ``iface`` in ``ns``;
    returns the number of replies received."""
    if arping_flavor() == "iputils":
        # iputils: one request a second, -w is the overall deadline.
        cmd = ["arping", "-c", str(count), "-w", str(count + 1), "-I", iface, ip]
    else:
        # Habets: -W is the interval, -w the overall deadline.
        cmd = ["arping", "-c", str(count), "-W", "0.2", "-w", str(count + 1),
               "-i", iface, ip]
    p = lab.exec(ns, *cmd, check=False, timeout=count + 15)
    return len(re.findall(r"reply from|bytes from", p.stdout))


# --- TCP ---------------------------------------------------------------------
def wait_listening(lab, ns, port, timeout=10.0):
    """True once something listens on TCP ``port`` in ``ns``."""
    def listening():
        out = lab.exec(ns, "ss", "-Hltn", check=False).stdout
        return re.search(rf":{port}\s", out) is not None
    return wait_until(listening, timeout=timeout, interval=0.05)


@dataclasses.dataclass
class Transfer:
    sent: int
    received: int
    identical: bool     # same SHA-256 on both ends
    client_rc: int
    detail: str


def tcp_transfer(lab, server_ns, client_ns, server_ip, nbytes, port=5001, timeout=120):
    """Send ``nbytes`` random bytes from ``client_ns`` to a netcat-openbsd
    listener in ``server_ns``; returns a Transfer with both byte counts and
    whether the data arrived unchanged."""
    tmp = tempfile.mkdtemp(prefix="vpc-xfer-")
    src, dst = os.path.join(tmp, "src"), os.path.join(tmp, "dst")
    server = None
    try:
        with open(src, "wb") as f:
            left = nbytes
            while left:
                chunk = os.urandom(min(left, 1 << 20))
                f.write(chunk)
                left -= len(chunk)
        with open(dst, "wb") as out:
            family = ["-6"] if ":" in server_ip else []      # nc listens on IPv4 otherwise
            server = lab.spawn(server_ns, "nc", *family, "-n", "-l", str(port), stdout=out)
        if not wait_listening(lab, server_ns, port):
            raise LabError(f"nc did not listen on {port} in {server_ns}")
        client = lab.exec(client_ns, "sh", "-c", f'nc -n -N {server_ip} {port} < "{src}"',
                          check=False, timeout=timeout)
        try:
            server.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        same = os.path.getsize(dst) == nbytes and _sha256(src) == _sha256(dst)
        return Transfer(nbytes, os.path.getsize(dst), same, client.returncode,
                        (client.stderr or "").strip()[-300:])
    finally:
        if server is not None:
            kill_pid(server.pid, timeout=2)
            try:
                server.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(tmp, ignore_errors=True)


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def iperf3(lab, server_ns, client_ns, server_ip, seconds=5, port=5201):
    """One iperf3 TCP run, client -> server; returns a dict with Mbit/s as the
    receiver counted them, the sender's retransmits and the bytes received."""
    server = lab.spawn(server_ns, "iperf3", "-s", "-1", "-p", str(port))
    try:
        if not wait_listening(lab, server_ns, port):
            raise LabError(f"iperf3 did not listen on {port} in {server_ns}")
        p = lab.exec(client_ns, "iperf3", "-c", server_ip, "-p", str(port),
                     "-t", str(seconds), "-J", check=False, timeout=seconds + 60)
        try:
            res = json.loads(p.stdout)
        except ValueError:
            raise LabError(f"iperf3 gave no JSON: {p.stderr.strip()[-300:]}") from None
        if "error" in res:
            raise LabError(f"iperf3: {res['error']}")
        end = res["end"]
        return {"mbit_s": round(end["sum_received"]["bits_per_second"] / 1e6, 1),
                "bytes": end["sum_received"]["bytes"],
                "retransmits": end["sum_sent"].get("retransmits")}
    finally:
        kill_pid(server.pid, timeout=2)
        try:
            server.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
