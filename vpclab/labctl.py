"""A controller process and its REST API, for the lab tests and the benchmarks.

``Controller`` runs ``osken-manager apps/vpc.py`` from the project venv with
REST and OpenFlow on free ports of 127.0.0.1 and its own state directory;
``Api`` is the JSON client the lab asserts with: ``(status, body)``, a thin
face of the project's one client (vpcctl/client.py).  Shared by
tests/lab/conftest.py (the fixtures) and bench/ (scripts that build their own
lab), so both start the controller the same way.  Standard library only.

With ``auth`` the controller runs with VPC_AUTH=on and ``api`` carries the
admin token it made (``admin_token``, read from ``admin_token_file``).

With ``tls`` (a ``vpclab.labtls.Pki``) the controller speaks HTTPS on REST
and OpenFlow over SSL only, requiring a client certificate from the lab CA;
``Api`` then verifies the controller against that CA.

``VPC_TEST_OSKEN_MANAGER`` and ``VPC_TEST_APP`` override the manager binary
and the app path (for developing the fixtures without the real app).
"""
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from vpcctl.client import Client, ca_context

REPO = Path(__file__).resolve().parents[1]

ACTIVE = []     # running controllers, for log tails in failure reports


class Api:
    """``(status, body)``; body is parsed JSON, text, or None.  HTTP errors are
    returned, not raised, so tests assert on them; no answer at all raises
    OSError.  The HTTP itself is vpcctl.client.Client's."""

    def __init__(self, url, timeout=10, ca_file=None, token=None):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.ca_file = ca_file
        self.token = token
        self.client = Client(self.url, timeout,
                             ssl_context=ca_context(ca_file) if ca_file else None, token=token)

    def request(self, method, path, json_body=None):
        return self.client.call(method, path, json_body)

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, json=None):
        return self.request("POST", path, json)

    def put(self, path, json=None):
        return self.request("PUT", path, json)

    def delete(self, path, json=None):
        return self.request("DELETE", path, json)

    def patch(self, path, json=None):
        return self.request("PATCH", path, json)


def free_port():
    """A TCP port free on 127.0.0.1 right now (bind port 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Controller:
    """osken-manager running apps/vpc.py, REST and OpenFlow on 127.0.0.1.

    Ports and state dir are fixed at construction, so ``restart()`` brings
    back the same controller (same URL, same persisted state) -- what a
    restart test needs.
    """

    def __init__(self, workdir, extra_env=None, tls=None, auth=False):
        self.workdir = Path(workdir)
        self.state_dir = self.workdir / "state"
        self.log = self.workdir / "controller.log"
        self.rest_port = free_port()
        self.of_port = free_port()
        self.tls = tls
        self.ca_file = tls.ca_cert if tls else None
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.rest_port}"
        self.api = Api(self.url, ca_file=self.ca_file)
        self.extra_env = dict(extra_env or {})
        # auth: VPC_AUTH=on; the controller makes its admin token in the state
        # dir on first start and self.api carries it once it is read
        self.auth = auth
        self.admin_token_file = self.state_dir / "admin.token"
        self.admin_token = None
        self.proc = None
        self.manager = os.environ.get("VPC_TEST_OSKEN_MANAGER") or \
            str(REPO / ".venv" / "bin" / "osken-manager")
        self.app = os.environ.get("VPC_TEST_APP") or "apps/vpc.py"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=30):
        if self.alive:
            return self
        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(VPC_REST_HOST="127.0.0.1", VPC_REST_PORT=str(self.rest_port),
                   VPC_STATE=str(self.state_dir), PYTHONUNBUFFERED="1")
        if self.auth:
            env["VPC_AUTH"] = "on"
        env.update(self.extra_env)
        listen = ["--ofp-tcp-listen-port", str(self.of_port)]
        if self.tls:
            env.update(VPC_REST_CERT=self.tls.cert("controller"),
                       VPC_REST_KEY=self.tls.key("controller"))
            listen = ["--ofp-ssl-listen-port", str(self.of_port),
                      "--ctl-privkey", self.tls.key("controller"),
                      "--ctl-cert", self.tls.cert("controller"), "--ca-certs", self.tls.ca_cert]
        cmd = [self.manager, *listen, "--ofp-listen-host", "127.0.0.1", self.app]
        with open(self.log, "a") as logf:
            logf.write(f"\n===== start {time.strftime('%H:%M:%S')}: {' '.join(cmd)}\n")
            logf.flush()
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=env,
                                         stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT,
                                         start_new_session=True)
        if self not in ACTIVE:
            ACTIVE.append(self)
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout=30):
        """Poll ``GET /v1/health`` until 200; fail early if the process dies."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"controller exited with {self.proc.returncode} "
                                   f"before answering /v1/health; log tail:\n{self.tail()}")
            if self.auth and self.admin_token is None:
                if not self.admin_token_file.exists():     # asking without it is a failure
                    time.sleep(0.1)                        # the limiter counts: wait for it
                    continue
                self.admin_token = self.admin_token_file.read_text().strip()
                self.api = Api(self.url, ca_file=self.ca_file, token=self.admin_token)
            try:
                status, _ = Api(self.url, timeout=2, ca_file=self.ca_file,
                                token=self.admin_token).get("/v1/health")
                if status == 200:
                    return
                last = f"HTTP {status}"
            except OSError as e:
                last = str(e)
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"controller not healthy after {timeout}s ({last}); "
                           f"log tail:\n{self.tail()}")

    def stop(self, timeout=10):
        """SIGTERM by pid, then SIGKILL after ``timeout``."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self in ACTIVE:
            ACTIVE.remove(self)

    def kill9(self):
        """Crash it: SIGKILL, no chance to clean up or flush state."""
        if self.alive:
            self.proc.kill()
            self.proc.wait(5)
        if self in ACTIVE:
            ACTIVE.remove(self)

    def restart(self, timeout=30):
        self.stop()
        return self.start(timeout)

    def tail(self, n=60):
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"
