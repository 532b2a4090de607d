"""Faults for the lab: restart a host's ovs-vswitchd, stream pings with
timestamps.  Used by tests/lab/test_reliability.py.  Standard library only.

``restart_vswitchd`` stops one emulated host's ovs-vswitchd by the pid in its
pid file (SIGTERM, then SIGKILL) and starts it again with exactly the command
line ``lablib.Lab._make_host`` uses, so the daemon comes back from the same
OVSDB: same bridges, ports and controller targets, but no flows -- OpenFlow
tables live only in the daemon.

``PingStream`` runs ``ping -D -O`` in a namespace in the background and keeps
every reply's timestamp, so a test can say when traffic came back without
polling from the outside.
"""
import os
import re
import subprocess
import threading
import time

from vpclab.labsys import LabError, kill_pid, pid_alive, read_pidfile, sh


def vswitchd_pid(lab, i):
    return read_pidfile(os.path.join(lab.rundir(i), "ovs-vswitchd.pid"))


def stop_vswitchd(lab, i):
    """Stop host i's ovs-vswitchd by its pid; True when it is gone."""
    pid = vswitchd_pid(lab, i)
    if not pid:
        raise LabError(f"h{i} has no ovs-vswitchd pid file")
    return kill_pid(pid, expect="ovs-vswitchd")


def start_vswitchd(lab, i, timeout=15):
    """Start host i's ovs-vswitchd as lablib does and wait until it answers
    ``ovs-appctl version``.  Returns its pid."""
    ns, d = lab.host_ns(i), lab.rundir(i)
    env = dict(os.environ, OVS_RUNDIR=d, OVS_LOGDIR=d, OVS_DBDIR=d)
    cmd = ["ovs-vswitchd", f"unix:{d}/db.sock", f"--pidfile={d}/ovs-vswitchd.pid", "--detach",
           "--no-chdir", f"--log-file={d}/ovs-vswitchd.log"]
    # stdout/stderr to a file: a detached daemon may keep an inherited pipe open
    with open(os.path.join(d, "start.err"), "a") as err:
        rc = subprocess.run(["ip", "netns", "exec", ns] + cmd, env=env,
                            stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                            timeout=30).returncode
    if rc != 0:
        raise LabError(f"ovs-vswitchd of h{i} did not start (exit {rc}); see {d}/start.err")
    deadline = time.monotonic() + timeout
    while True:
        pid = vswitchd_pid(lab, i)
        if pid and pid_alive(pid) and sh(["ovs-appctl", "-t", f"{d}/ovs-vswitchd.{pid}.ctl",
                                          "version"], check=False, timeout=5).returncode == 0:
            return pid
        if time.monotonic() > deadline:
            raise LabError(f"ovs-vswitchd of h{i} did not come up; see {d}/ovs-vswitchd.log")
        time.sleep(0.05)


def restart_vswitchd(lab, i):
    """Stop and start host i's ovs-vswitchd; returns (old pid, new pid)."""
    old = vswitchd_pid(lab, i)
    if not stop_vswitchd(lab, i):
        raise LabError(f"ovs-vswitchd {old} of h{i} survived SIGKILL")
    return old, start_vswitchd(lab, i)


class PingStream:
    """``ping -n -D -O -i interval ip`` in ``ns`` until ``stop()``.

    ``replies``: [(unix time, icmp_seq)]; ``misses``: icmp_seqs ping reported
    with "no answer yet" (-O); ``sent``/``received`` from ping's summary,
    available after ``stop()``.  Stopped by pid (SIGINT, so ping prints its
    summary) -- also when the ``with`` block fails.
    """

    REPLY = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)")
    MISS = re.compile(r"no answer yet for icmp_seq=(\d+)")

    def __init__(self, lab, ns, ip, interval=0.01, wait=1.0):
        self.cmd = ["ping", "-n", "-D", "-O", "-i", str(interval), "-W", str(wait), ip]
        self.lab, self.ns = lab, ns
        self.replies, self.misses, self.lines = [], [], []
        self.sent = self.received = None
        self.proc = None
        self._reader = None

    def __enter__(self):
        self.proc = self.lab.spawn(self.ns, *self.cmd, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            m = self.REPLY.match(line)
            if m:
                self.replies.append((float(m.group(1)), int(m.group(2))))
                continue
            m = self.MISS.search(line)
            if m:
                self.misses.append(int(m.group(1)))
                continue
            m = re.search(r"(\d+) packets transmitted, (\d+) received", line)
            if m:
                self.sent, self.received = int(m.group(1)), int(m.group(2))

    def first_reply_after(self, t):
        return next((ts for ts, _ in self.replies if ts >= t), None)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(2)           # SIGINT: ping prints its summary
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                kill_pid(self.proc.pid, timeout=2)
                self.proc.wait(timeout=5)
        if self._reader is not None:
            self._reader.join(5)
        self.proc = None

    def __exit__(self, *exc):
        self.stop()
        return False
