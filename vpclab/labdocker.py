"""Docker in the lab: one real dockerd per emulated host, a local busybox
image, and the vpc-agent serving that dockerd.  Used by tests/lab/test_docker.py,
bench/docker_attach.py and scripts/demo (vpclab/demo_docker.py); ``down_lab``
is how ``Lab.down()`` stops them.

How a dockerd joins an emulated host (../shared/LAB.md, "Docker in the lab"):

    nsenter --net=/run/netns/L-hI unshare -m --propagation private sh -c \
        'mount --bind D/plugins /run/docker/plugins && exec dockerd ...'

* its own network namespace (the host's), so the veths it moves into
  containers come from that host and Docker's netns files are that host's;
  never ``ip netns exec`` (it remounts /sys: "Devices cgroup isn't mounted");
* its own mount namespace, in which the host's plugin directory D/plugins is
  /run/docker/plugins: the agent of host I serves D/plugins/vpc.sock and only
  host I's dockerd sees it;
* flags that leave the machine's network alone (no iptables, no bridge), vfs
  storage, its own data root, exec root, API socket and pid file.

Processes are stopped by pid (their pid files), never by name; containers
first (dockerd would otherwise leave their shims running), then dockerd
(which stops its managed containerd), then the data directory goes.
Standard library only.
"""
import contextlib
import glob
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types

from vpclab.labsys import LabError, kill_pid, pid_alive, pid_cmdline, read_pidfile, sh

DOCKER = "/usr/bin/docker"          # the 20.10 client; a newer one on PATH fails some flags
DOCKERD = "/usr/sbin/dockerd"
IMAGE = "local/busybox"
SYSTEM_PLUGIN_DIR = "/run/docker/plugins"


def docker_missing():
    """None when dockerd, the 20.10 client, nsenter/unshare and busybox are
    here; else a sentence (scripts/setup installs them)."""
    for path in (DOCKERD, DOCKER, "/bin/busybox"):
        if not os.access(path, os.X_OK):
            return f"{path} missing: run scripts/setup (docker.io busybox-static)"
    for tool in ("nsenter", "unshare", "containerd", "runc"):
        if shutil.which(tool) is None:
            return f"{tool} missing: run scripts/setup"
    return None


class Dockerd:
    """The dockerd of lab host ``i``, with its files under ``base``."""

    def __init__(self, lab, i, base=None):
        self.lab, self.i = lab, int(i)
        self.base = base or os.path.join(lab.rundir(i), "docker")
        self.sock = os.path.join(self.base, "docker.sock")
        self.pidfile = os.path.join(self.base, "docker.pid")
        self.plugins = os.path.join(self.base, "plugins")
        self.log = os.path.join(self.base, "dockerd.log")
        self.proc = None

    @property
    def host_ns(self):
        return self.lab.host_ns(self.i)

    def cli(self, *args, check=True, timeout=60, input=None):
        """``/usr/bin/docker -H unix://SOCK ARGS``; a CompletedProcess (text)."""
        return sh([DOCKER, "-H", f"unix://{self.sock}"] + list(args), check=check,
                  timeout=timeout, input=input)

    @property
    def pid(self):
        return read_pidfile(self.pidfile)

    def alive(self):
        pid = self.pid
        return bool(pid) and pid_alive(pid) and "dockerd" in pid_cmdline(pid)

    def start(self, timeout=60):
        """Start dockerd in host i's namespaces; wait until its API answers."""
        if self.alive():
            return self
        return self.spawn().wait_ready(timeout)

    def spawn(self):
        """Start dockerd without waiting for it (``wait_ready`` waits): a
        boot in which something else starts while dockerd restores."""
        for d in (self.base, self.plugins, SYSTEM_PLUGIN_DIR):
            os.makedirs(d, exist_ok=True)
        dockerd = " ".join([
            DOCKERD, "--iptables=false", "--ip6tables=false", "--bridge=none",
            "--storage-driver=vfs", f"--data-root={self.base}/data",
            f"--exec-root={self.base}/exec", f"-H unix://{self.sock}",
            f"--pidfile={self.pidfile}", "--log-level=warn"])
        script = f"mount --bind {self.plugins} {SYSTEM_PLUGIN_DIR} && exec {dockerd}"
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{self.host_ns}", "unshare", "-m",
                 "--propagation", "private", "sh", "-c", script],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        return self

    def wait_ready(self, timeout=60):
        """Wait until the API of the dockerd ``spawn`` started answers."""
        wait_started(self.proc, lambda: os.path.exists(self.sock) and self._answers(),
                     f"dockerd of h{self.i}", "did not answer", timeout, self.tail, 0.2)
        return self

    def _answers(self):
        """The API answers; while restoring containers at boot dockerd
        accepts connections but holds requests, so a hung request is a no."""
        try:
            return self.cli("version", "--format", "{{.Server.Version}}", check=False,
                            timeout=10).returncode == 0
        except LabError:
            return False

    def tail(self, n=15):
        return _tail(self.log, n)

    def remove_containers(self):
        if not self.alive():
            return
        ids = self.cli("ps", "-aq", check=False).stdout.split()
        if ids:
            self.cli("rm", "-f", *ids, check=False, timeout=120)

    def stop(self, timeout=30):
        """Stop dockerd by its pid (SIGTERM: it stops its containerd too).
        Returns True when it is gone."""
        pid = self.pid or (self.proc.pid if self.proc else None)
        ok = kill_pid(pid, expect="dockerd", timeout=timeout) if pid else True
        if self.proc is not None:
            with contextlib.suppress(Exception):
                self.proc.wait(timeout=5)
        return ok

    def pids(self):
        """Every process of this dockerd: dockerd, its containerd, the
        containerd shims (daemonized away from dockerd's tree, found by the
        exec root on their command line) and the containers under them."""
        roots = [self.pid] if self.alive() else []
        execroot = os.path.join(self.base, "exec") + "/"
        for pid in _all_pids():
            if execroot in pid_cmdline(pid) and "containerd-shim" in pid_cmdline(pid):
                roots.append(pid)
        return _with_descendants(roots)

    def power_off(self, timeout=10):
        """Power loss for this dockerd, as a reboot sees it.  Every process of
        it (``pids``) is stopped with SIGSTOP first, so none sees another die
        and reacts (dockerd would restart a ``--restart always`` container),
        then killed with SIGKILL, by pid.  Then what lives on tmpfs (/run) on
        a real host goes: the exec root (containerd's task state, Docker's
        netns files), the API socket and pid file, and the shims' sockets in
        /run/containerd/s (named by containerd as sha256(address/ns/id)) --
        left there, containerd at boot waits on the dead shims and dockerd
        gives up on it.  The data root stays, as a disk does.  Returns the
        pids; raises LabError when one survives."""
        pids = self.pids()
        shim_sockets = [_shim_socket(pid_cmdline(p)) for p in pids]
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while any(pid_alive(p) for p in pids):
            if time.monotonic() > deadline:
                raise LabError(f"processes of h{self.i}'s dockerd survived SIGKILL: "
                               f"{[p for p in pids if pid_alive(p)]}")
            time.sleep(0.05)
        if self.proc is not None:
            with contextlib.suppress(Exception):
                self.proc.wait(timeout=5)
        shutil.rmtree(os.path.join(self.base, "exec"), ignore_errors=True)
        for path in [self.sock, self.pidfile] + [s for s in shim_sockets if s]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        return pids

    def destroy(self):
        """Containers, dockerd, then every file (vfs keeps full copies)."""
        problems = []
        with contextlib.suppress(LabError):
            self.remove_containers()
        if not self.stop():
            problems.append(f"dockerd of h{self.i} survived")
        shutil.rmtree(self.base, ignore_errors=True)
        return problems


def import_busybox(dockerd, tag=IMAGE, rootfs=None):
    """A busybox image without a registry: a rootfs with busybox and its
    applet links, ``docker import``-ed.  ``rootfs``: a directory made by
    ``busybox_rootfs()`` to reuse (building it is the slow part)."""
    if dockerd.cli("image", "inspect", tag, check=False).returncode == 0:
        return tag
    own = rootfs is None
    rootfs = rootfs or busybox_rootfs()
    try:
        tar = subprocess.run(["tar", "-C", rootfs, "-c", "."], capture_output=True,
                             check=True).stdout
        p = subprocess.run([DOCKER, "-H", f"unix://{dockerd.sock}", "import", "-", tag],
                           input=tar, capture_output=True, timeout=120)
        if p.returncode != 0:
            raise LabError(f"docker import failed: {p.stderr.decode(errors='replace')}")
    finally:
        if own:
            shutil.rmtree(rootfs, ignore_errors=True)
    return tag


def busybox_rootfs(parent=None):
    """A directory holding a busybox root filesystem (the caller removes it)."""
    root = tempfile.mkdtemp(prefix="busybox-rootfs-", dir=parent)
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "tmp", "etc", "proc", "sys", "dev"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy2("/bin/busybox", os.path.join(root, "bin", "busybox"))
    sh(["chroot", root, "/bin/busybox", "--install", "-s"])
    return root


class Agent:
    """vpc-agent for lab host ``i``, serving ``dockerd``'s plugin directory."""

    def __init__(self, lab, i, dockerd, api_url, log_dir=None):
        self.lab, self.i, self.dockerd, self.api_url = lab, int(i), dockerd, api_url
        d = log_dir or dockerd.base
        self.log = os.path.join(d, "vpc-agent.log")
        self.pidfile = os.path.join(d, "vpc-agent.pid")
        self.sock = os.path.join(dockerd.plugins, "vpc.sock")
        self.proc = None

    def command(self):
        return [sys.executable, "-m", "vpcagent", "--host", self.lab.host_name(self.i),
                "--api", self.api_url, "--netns", self.lab.host_ns(self.i),
                "--ovs-rundir", self.lab.rundir(self.i), "--plugin-dir", self.dockerd.plugins,
                "--docker-socket", self.dockerd.sock,
                "--cni-socket", os.path.join(self.dockerd.base, "cni.sock"),
                "--state-dir", os.path.join(self.dockerd.base, "agent-state")]

    def start(self, timeout=20):
        if self.alive():
            return self
        start_mtime = os.stat(self.sock).st_mtime if os.path.exists(self.sock) else None
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [_repo()] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, start_new_session=True, env=env)
        with open(self.pidfile, "w") as f:
            f.write(f"{self.proc.pid}\n")
        wait_started(self.proc, lambda: os.path.exists(self.sock) and (
                         start_mtime is None or os.stat(self.sock).st_mtime != start_mtime),
                     f"vpc-agent of h{self.i}", "made no socket", timeout, self.tail, 0.05)
        return self

    def alive(self):
        pid = read_pidfile(self.pidfile)
        return bool(pid) and pid_alive(pid) and "vpcagent" in pid_cmdline(pid)

    def kill9(self):
        """SIGKILL, as a crash would: the socket file stays behind."""
        pid = read_pidfile(self.pidfile) or (self.proc.pid if self.proc else None)
        if pid and pid_alive(pid) and "vpcagent" in pid_cmdline(pid):
            os.kill(pid, 9)
            deadline = time.monotonic() + 5
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        if self.proc is not None:
            with contextlib.suppress(Exception):
                self.proc.wait(timeout=5)

    def stop(self):
        pid = read_pidfile(self.pidfile) or (self.proc.pid if self.proc else None)
        ok = kill_pid(pid, expect="vpcagent") if pid else True
        if self.proc is not None:
            with contextlib.suppress(Exception):
                self.proc.wait(timeout=5)
        return ok

    def tail(self, n=20):
        return _tail(self.log, n)


def agents_without_dockerd(lab, hosts, base_of, made):
    """Start a vpc-agent on each of ``hosts`` that serves no dockerd (CNI,
    DHCP and DNS only), into ``made`` ({i: Agent}, also returned): when one
    fails to start, the ones before it are in ``made`` for the caller to
    stop.  ``base_of(i)`` gives each its own directory (made if missing)."""
    for i in hosts:
        base = str(base_of(i))
        os.makedirs(os.path.join(base, "plugins"), exist_ok=True)
        where = types.SimpleNamespace(base=base, plugins=os.path.join(base, "plugins"),
                                      sock=os.path.join(base, "no-dockerd.sock"))
        made[i] = Agent(lab, i, where, lab.api_url)
        made[i].start()
    return made


def down_lab(lab):
    """Stop what ``Dockerd``/``Agent`` started for any host of ``lab`` (a
    demo, a crashed test), found through their pid files under each host's
    run directory: containers first (released through the agent while it and
    the controller still answer), then the agent, then dockerd, then the
    files.  Called by ``Lab.down()`` before anything else goes.  Returns
    problems (normally none)."""
    problems = []
    for base in sorted(glob.glob(os.path.join(lab.statedir, "h*", "docker"))):
        i = int(os.path.basename(os.path.dirname(base))[1:])
        d = Dockerd(lab, i, base=base)
        with contextlib.suppress(Exception):
            d.remove_containers()
        if not Agent(lab, i, d, api_url=None).stop():
            problems.append(f"vpc-agent of h{i} survived")
        problems += d.destroy()
    return problems


def _all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def _with_descendants(roots):
    """``roots`` and every process below them (by /proc/PID/stat's ppid)."""
    children = {}
    for pid in _all_pids():
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(pid)
    seen, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.append(pid)
            todo += children.get(pid, [])
    return seen


def _shim_socket(cmdline):
    """The socket file of the containerd-shim-runc-v2 with ``cmdline``
    (containerd 1.6: /run/containerd/s/ + sha256 of ADDRESS/NAMESPACE/ID),
    else None."""
    args = cmdline.split()
    if not args or not args[0].endswith("containerd-shim-runc-v2"):
        return None
    opt = dict(zip(args[1::2], args[2::2]))
    if not all(k in opt for k in ("-namespace", "-id", "-address")):
        return None
    key = f"{opt['-address']}/{opt['-namespace']}/{opt['-id']}"
    return "/run/containerd/s/" + hashlib.sha256(key.encode()).hexdigest()


def _tail(path, n):
    """The last ``n`` lines of a log, for error messages; "" when unreadable."""
    try:
        with open(path) as f:
            return "".join(f.readlines()[-n:]).strip()
    except OSError:
        return ""


def _repo():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def wait_started(proc, ready, name, failing, timeout, tail, interval):
    """Poll `ready()` until it is true; a process that exits first, or a
    deadline passed, is a LabError with the end of its log (dockerd and the
    agent start the same way: a child process and a socket to wait for)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise LabError(f"{name} exited ({proc.returncode}): {tail()}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise LabError(f"{name} {failing} in {timeout}s: {tail()}")
        time.sleep(interval)
