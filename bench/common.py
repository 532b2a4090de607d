"""Shared plumbing of the bench/ scripts: paths, the machine description,
a controller whose log lines carry timestamps, percentiles, cleanup on
signals.  Standard library only (plus the project's scripts/ modules).

Every bench script prints one JSON document on stdout (progress goes to
stderr) and never judges a number: there are no thresholds anywhere.
"""
import contextlib
import importlib.metadata
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from vpclab import labctl  # noqa: E402

LOG_LINE = re.compile(r"^(\d{9,}\.\d+) (\w+) (\S+) (.*)$")
RECONCILED = re.compile(r"dpid ([0-9a-f]{16}) reconciled in (\d+) ms: (\d+) added, "
                        r"(\d+) removed, (\d+) kept")
CONNECTED = re.compile(r"switch connected: dpid ([0-9a-f]{16})")


def log(tag, msg):
    print(f"[{tag}] {msg}", file=sys.stderr, flush=True)


def load_avg():
    return [round(x, 2) for x in os.getloadavg()]


def _cmd_first_line(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True,
                              timeout=10).stdout.split("\n")[0].strip()
    except (OSError, subprocess.SubprocessError):
        return None


def machine():
    """What ran the benchmark: cores, memory, kernel, versions, load."""
    mem = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
            cpu = m.group(1).strip() if m else None
    except OSError:
        pass
    try:
        osken = importlib.metadata.version("os-ken")
    except importlib.metadata.PackageNotFoundError:
        osken = None
    return {"cores": os.cpu_count(), "cpu": cpu, "memory_gib": mem,
            "kernel": platform.release(), "python": platform.python_version(),
            "ovs": _cmd_first_line(["ovs-vswitchd", "--version"]),
            "os_ken": osken, "load_avg": load_avg()}


def percentiles(values, digits=1):
    """p50/p95/p99/max/min/mean of a list (nearest-rank), None when empty."""
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None

    def rank(p):
        k = max(0, min(len(vals) - 1, int(round(p / 100 * len(vals) + 0.5)) - 1))
        return round(vals[k], digits)
    return {"n": len(vals), "min": round(vals[0], digits), "p50": rank(50),
            "p95": rank(95), "p99": rank(99), "max": round(vals[-1], digits),
            "mean": round(sum(vals) / len(vals), digits)}


def proc_status(pid, field):
    """A kB field of /proc/<pid>/status (VmHWM, VmRSS) in MiB, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


# --- a controller whose log lines carry a timestamp ------------------------------
LOG_CONF = """[loggers]
keys=root
[handlers]
keys=stderr
[formatters]
keys=stamped
[logger_root]
level=INFO
handlers=stderr
[handler_stderr]
class=StreamHandler
args=(sys.stderr,)
formatter=stamped
[formatter_stamped]
format=%(created).6f %(levelname)s %(name)s %(message)s
"""


class TimedController(labctl.Controller):
    """labctl.Controller (same start, same ports, same state dir) with
    ``--log-config-file`` so every log line starts with its epoch time:
    the benchmarks read when a switch connected or was reconciled from the
    controller's own log.  A tiny ``exec`` wrapper adds the flag, so the pid
    is still the osken-manager process (VmHWM, py-spy).  ``app`` may name
    another app file (bench/scale_app.py)."""

    def __init__(self, workdir, extra_env=None, app=None):
        super().__init__(workdir, extra_env)
        os.makedirs(self.workdir, exist_ok=True)
        conf = self.workdir / "logging.conf"
        conf.write_text(LOG_CONF)
        wrapper = self.workdir / "osken-manager"
        wrapper.write_text(f'#!/bin/sh\nexec "{self.manager}" --log-config-file "{conf}" "$@"\n')
        wrapper.chmod(0o755)
        self.manager = str(wrapper)
        if app:
            self.app = app
        self.started_at = None

    def start(self, timeout=60):
        self.started_at = time.time()
        self.log_offset = self.log.stat().st_size if self.log.exists() else 0
        return super().start(timeout)

    def lines(self, since_offset=None):
        """[(epoch, level, logger, message)] of the log (from an offset)."""
        try:
            with open(self.log, "rb") as f:
                f.seek(since_offset or 0)
                text = f.read().decode(errors="replace")
        except OSError:
            return []
        out = []
        for line in text.splitlines():
            m = LOG_LINE.match(line)
            if m:
                out.append((float(m.group(1)), m.group(2), m.group(3), m.group(4)))
        return out

    def reconciles(self, since_offset=None):
        """[(epoch, dpid, ms, added, removed, kept)] from the log."""
        out = []
        for t, _, _, msg in self.lines(since_offset):
            m = RECONCILED.search(msg)
            if m:
                out.append((t, int(m.group(1), 16), int(m.group(2)), int(m.group(3)),
                            int(m.group(4)), int(m.group(5))))
        return out

    def connects(self, since_offset=None):
        out = []
        for t, _, _, msg in self.lines(since_offset):
            m = CONNECTED.search(msg)
            if m:
                out.append((t, int(m.group(1), 16)))
        return out

    def log_size(self):
        return self.log.stat().st_size if self.log.exists() else 0

    def metric_sum(self, name):
        """Sum of every sample of one metric family from GET /metrics."""
        try:
            status, body = labctl.Api(self.url, timeout=30).get("/metrics")
        except OSError:
            return None
        if status != 200 or not isinstance(body, str):
            return None
        total, seen = 0.0, False
        for line in body.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                parts = line.rsplit(" ", 1)
                if parts[0] == name or parts[0].startswith(name + "{"):
                    total += float(parts[1])
                    seen = True
        return total if seen else None


# --- running a bench as a script ----------------------------------------------------
def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def install_signal_handlers():
    """SIGTERM/SIGHUP raise SystemExit so ``finally`` blocks clean up."""
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)


@contextlib.contextmanager
def uninterruptible():
    """A second Ctrl-C or SIGTERM must not interrupt a cleanup."""
    old = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM,
                                                                      signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old[0])
        signal.signal(signal.SIGTERM, old[1])


def emit(result, out=None):
    text = json.dumps(result, indent=2, sort_keys=True)
    print(text, flush=True)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")


def need_root(prog):
    if os.geteuid() != 0:
        sys.exit(f"{prog} needs root (namespaces, OVS daemons)")


def run_main(prog, parse_args, run, argv=None):
    """The shared entry point of a bench part: args, root, signals, run, JSON out.
    Returns the process exit status (130 on Ctrl-C)."""
    try:
        args = parse_args(argv)
        need_root(prog)
        install_signal_handlers()
        result = run(args)
        result["machine"] = machine()
        emit(result, args.out)
        return 0
    except KeyboardInterrupt:
        return 130


def reap_stale(prefix_re, tag):
    """Remove bench labs (under lablib.BASE) whose creating process is dead:
    what a SIGKILLed run left behind.  Only names matching ``prefix_re``."""
    from vpclab import lablib
    if not os.path.isdir(lablib.BASE):
        return
    for name in os.listdir(lablib.BASE):
        if re.match(prefix_re, name):
            lab = lablib.Lab.load(name)
            pid = lab._read_state().get("up_pid")
            if not pid or not lablib.pid_alive(pid):
                log(tag, f"removing stale lab {name}")
                lab.down()
