"""Process and namespace plumbing under lablib: commands, pids, captures.

Split from lablib.py to keep each file readable; lablib re-exports all of it.
Standard library only.

Why the pid helpers are careful: the lab stops processes by pid only (never
by name), and pids come from files that may be stale after a crash, so a pid
is killed only when its command line still names what we started; zombies
count as gone (the init of these machines reaps late).
"""
import contextlib
import os
import re
import signal
import subprocess
import threading
import time

for _d in ("/usr/local/sbin", "/usr/sbin", "/sbin"):
    if _d not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.environ.get("PATH", "") + os.pathsep + _d


class LabError(Exception):
    """A lab operation failed; the message carries the command's stderr."""


class LabExists(LabError):
    """``up`` found the lab already there (use ``recreate=True``)."""


def sh(cmd, check=True, timeout=30, env=None, input=None):
    """Run a command, capture text output, raise LabError on failure."""
    cmd = [str(c) for c in cmd]
    full_env = dict(os.environ, **{k: str(v) for k, v in (env or {}).items()})
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env=full_env, input=input)
    except subprocess.TimeoutExpired as e:
        raise LabError(f"timed out after {timeout}s: {' '.join(cmd)}") from e
    except FileNotFoundError as e:
        raise LabError(f"command not found: {cmd[0]}") from e
    if check and p.returncode != 0:
        raise LabError(f"`{' '.join(cmd)}` exited {p.returncode}: "
                       f"{(p.stderr or p.stdout).strip()}")
    return p


def list_netns():
    p = sh(["ip", "netns", "list"], check=False)
    return [ln.split()[0] for ln in p.stdout.splitlines() if ln.strip()]


def netns_pids(ns):
    p = sh(["ip", "netns", "pids", ns], check=False)
    return [int(x) for x in p.stdout.split() if x.isdigit()]


def pid_alive(pid):
    """True for a running process; a zombie counts as gone (and is reaped
    when it is our child, so that tests do not accumulate zombies)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def pid_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def read_pidfile(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def kill_pid(pid, expect=None, timeout=5.0, group=False):
    """SIGTERM, wait, SIGKILL.  Returns True when the process is gone.

    ``expect``: a substring its command line must contain, else it is left
    alone (pid reuse after a crash).  ``group``: signal the process group
    too when the pid leads one (socat's forked children).
    """
    if not pid or pid == os.getpid() or not pid_alive(pid):
        return True
    if expect and expect not in pid_cmdline(pid):
        return True
    use_group = False
    if group:
        try:
            use_group = os.getpgid(pid) == pid
        except OSError:
            pass
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 3.0)):
        try:
            os.killpg(pid, sig) if use_group else os.kill(pid, sig)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return True
            time.sleep(0.05)
    return not pid_alive(pid)


class Capture:
    """Lines printed by a running ``tcpdump -l -n -e`` (filled by a thread)."""

    def __init__(self, cmd):
        self.cmd = cmd
        self.lines = []
        self.stderr = []
        self._cond = threading.Condition()

    @property
    def count(self):
        with self._cond:
            return len(self.lines)

    def matching(self, pattern):
        rx = re.compile(pattern)
        with self._cond:
            return [ln for ln in self.lines if rx.search(ln)]

    def wait_for(self, pattern=".", count=1, timeout=5.0):
        """Block until ``count`` lines match ``pattern``; returns bool."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while sum(1 for ln in self.lines if rx.search(ln)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def _add(self, line):
        if not line.strip():
            return
        with self._cond:
            self.lines.append(line.rstrip("\n"))
            self._cond.notify_all()


@contextlib.contextmanager
def capture(ns, iface, filter="", direction=None, settle=0.3, timeout=10, verbose=False):
    """Capture in ``ns`` on ``iface`` while the block runs.

    Yields a ``Capture`` (``.lines``, ``.count``, ``.wait_for()``,
    ``.matching()``).  Returns only once tcpdump reports "listening on",
    i.e. the capture is active; on exit waits ``settle`` seconds for late
    packets, then stops tcpdump by its pid.
    """
    cmd = ["ip", "netns", "exec", ns, "tcpdump", "-l", "-n", "-e",
           "--immediate-mode", "-i", iface]
    if direction:
        cmd += ["-Q", direction]
    if verbose:                 # checksums and ND options, each on its own line
        cmd.append("-vv")
    if filter:
        cmd.append(filter)
    cap = Capture(cmd)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)
    listening = threading.Event()

    def read_err():
        for line in proc.stderr:
            cap.stderr.append(line.rstrip("\n"))
            if "listening on" in line:
                listening.set()
        listening.set()

    def read_out():
        for line in proc.stdout:
            cap._add(line)

    threads = [threading.Thread(target=read_err, daemon=True),
               threading.Thread(target=read_out, daemon=True)]
    for t in threads:
        t.start()
    try:
        if not listening.wait(timeout) or proc.poll() is not None:
            raise LabError(f"tcpdump did not start in {ns} on {iface}: "
                           f"{' '.join(cap.stderr)[-300:]}")
        yield cap
        time.sleep(settle)
    finally:
        kill_pid(proc.pid, timeout=3)
        with contextlib.suppress(Exception):
            proc.wait(timeout=3)
        for t in threads:
            t.join(timeout=3)
