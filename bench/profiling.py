"""Profiling helpers for the benchmarks: py-spy on a running controller,
cProfile on the pure compiler.

py-spy is looked up on PATH, then in bench/.faucet-venv/bin (run.py installs
it there with Faucet: ``pip install faucet py-spy``).  Without it the live
profile is skipped and says so.
"""
import cProfile
import os
import pstats
import re
import shutil
import signal
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
VENV_PYSPY = os.path.join(HERE, ".faucet-venv", "bin", "py-spy")
FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")


def find_pyspy():
    return shutil.which("py-spy") or (VENV_PYSPY if os.access(VENV_PYSPY, os.X_OK) else None)


class PySpy:
    """``py-spy record --format raw`` on a pid until ``stop()``."""

    def __init__(self, pid, out, rate=50):
        self.out = out
        self.proc = None
        exe = find_pyspy()
        self.error = None if exe else "py-spy not installed"
        if exe:
            self.proc = subprocess.Popen(
                [exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
                 "--nonblocking", "-o", out, "--duration", "3600"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                start_new_session=True)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)      # py-spy writes its output on Ctrl-C
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if not os.path.exists(self.out):
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            self.error = f"py-spy wrote nothing: {err.strip()[-300:]}"
        if self.proc.stderr:
            self.proc.stderr.close()

    def top(self, n=20):
        if self.error or not os.path.exists(self.out):
            return {"error": self.error or "no output"}
        return top_from_raw(self.out, n)


def _fn(frame):
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    name, path = m.group(1), m.group(2)
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def top_from_raw(path, n=20):
    """Self and inclusive share of samples per function from py-spy's raw
    (collapsed) output: ``frame;frame;... count`` per line."""
    self_t, incl, total = {}, {}, 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            c = int(count)
            total += c
            frames = [_fn(fr) for fr in stack.split(";") if fr]
            if not frames:
                continue
            self_t[frames[-1]] = self_t.get(frames[-1], 0) + c
            for fn in set(frames):
                incl[fn] = incl.get(fn, 0) + c
    if not total:
        return {"samples": 0}

    def pct(d):
        return [{"function": k, "pct": round(100 * v / total, 1)}
                for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:n]]
    return {"samples": total, "self": pct(self_t),
            "inclusive": [x for x in pct({k: v for k, v in incl.items()
                                          if not k.startswith(("<module>", "_bootstrap",
                                                               "run (", "main ("))})]}


def cprofile(fn, n=12):
    """Run fn() under cProfile: (its result, seconds, top functions by
    cumulative and by own time)."""
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    result = prof.runcall(fn)
    seconds = time.perf_counter() - t0
    st = pstats.Stats(prof)
    rows = []
    for (file, line, name), (cc, nc, tt, ct, callers) in st.stats.items():
        short = file
        for marker in ("site-packages/", "/work/main/", "python3.11/"):
            if marker in short:
                short = short.split(marker, 1)[1]
        rows.append({"function": f"{name} ({short}:{line})", "calls": nc,
                     "own_s": round(tt, 3), "cumulative_s": round(ct, 3)})
    by_cum = sorted(rows, key=lambda r: -r["cumulative_s"])
    by_own = sorted(rows, key=lambda r: -r["own_s"])[:n]
    return result, seconds, {"by_cumulative": by_cum[:n], "by_own_time": by_own}
