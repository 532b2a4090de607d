"""Headless Chromium for the /ui tests (unit and lab): render a page, read its DOM."""
import os
import re
import shutil
import subprocess
import tempfile

import pytest


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("chromium is not installed (CI=true: run scripts/setup)", pytrace=False)
    pytest.skip("chromium is not installed (scripts/setup installs it)")


def browse(url, screenshot=None, budget_ms=6000, size="1400,860"):
    """Load url in headless Chromium with `budget_ms` of virtual time (the
    page's fetches and timers run), return the DOM as Chromium serialises it
    (or write a PNG to `screenshot`)."""
    exe = chromium()
    with tempfile.TemporaryDirectory(prefix="vpc-chromium-") as profile:
        cmd = [exe] + CHROMIUM_FLAGS + [f"--user-data-dir={profile}",
                                        f"--virtual-time-budget={budget_ms}",
                                        f"--window-size={size}"]
        cmd += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
        p = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=90,
                           stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


def summary(dom):
    """The data-* attributes of the page's #summary element, as ints."""
    m = re.search(r'<span id="summary"([^>]*)>', dom)
    assert m, dom[:2000]
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', m.group(1)))
    return {k: int(v) for k, v in attrs.items() if v.isdigit()}


def page_state(url, want=lambda s: s.get("rendered", 0) > 0, tries=3):
    """Load the page until `want(summary)` holds (the controller may still be
    catching up); returns (summary, title, dom)."""
    for _ in range(tries):
        dom = browse(url)
        s = summary(dom)
        if want(s):
            break
    title = re.search(r"<title>([^<]*)</title>", dom).group(1)
    return s, title, dom
