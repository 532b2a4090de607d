"""TLS in the lab: a lab CA, and hosts that reach the controller over ssl:.

Why a relay inside each host: OVS speaks SSL only on ``ssl:IP:PORT`` (TCP)
targets, never on ``unix:`` ones, and lab traffic may not touch an address
of the root namespace other than loopback.  So a host joined over TLS points
its bridge at ``ssl:127.0.0.1:6653`` -- the loopback of *its own* namespace
-- where a socat (started inside that namespace) hands each connection to
the host's existing unix-socket relay (lablib), which carries it to the
controller's SSL port on the root namespace's loopback.  Both relays copy
bytes: the TLS session is end to end between ovs-vswitchd and os-ken.

``Pki`` makes the certificates with scripts/pki (openssl): the CA, the
controller's (SAN 127.0.0.1 and localhost, for REST and OpenFlow) and one per
host.  A second ``Pki`` in another directory is a foreign CA.  Standard
library only.
"""
import contextlib
import os
import secrets
import sys
import time
import warnings

from vpclab.labsys import LabError, kill_pid, read_pidfile, sh

SCRIPTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts")
HOST_OF_PORT = 6653          # the ssl: target inside each host namespace


class Pki:
    """A CA and certificates in one directory (scripts/pki's layout)."""

    def __init__(self, directory):
        self.dir = str(directory)

    def _pki(self, *args):
        sh([sys.executable, os.path.join(SCRIPTS, "pki"), *args], timeout=60)

    def make(self, *names):
        """The CA, the controller's certificate and one for each name."""
        self._pki("init", self.dir)
        self._pki("cert", self.dir, "controller", "--ip", "127.0.0.1", "--dns", "localhost")
        for name in names:
            self.issue(name)
        return self

    def issue(self, name):
        if not os.path.exists(self.cert(name)):
            self._pki("cert", self.dir, name)
        return self.cert(name), self.key(name)

    @property
    def ca_cert(self):
        return self.cert("ca")

    def cert(self, name):
        return os.path.join(self.dir, f"{name}-cert.pem")

    def key(self, name):
        return os.path.join(self.dir, f"{name}-key.pem")


@contextlib.contextmanager
def trusting(ca_cert):
    """Python's default CA store is ``ca_cert`` while the block runs (restored
    after): scripts/attach and lablib's own checks verify an https controller
    with the default store, which does not know the lab CA."""
    old = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = ca_cert
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = old


@contextlib.contextmanager
def secured_lab(base, hosts=3, auth=False):
    """A controller speaking HTTPS and OpenFlow over SSL only (``auth``: tokens
    on too) and a lab of ``hosts`` (not joined yet), inside ``trusting`` the
    lab CA.  Yields ``(lab, ctl, pki, foreign)``: ``foreign`` is a second CA
    for refused bridges.  Lab and controller go when the block ends, also on
    failure."""
    from vpclab import lablib  # lablib imports nothing of this module
    from vpclab.labctl import Controller
    pki = Pki(os.path.join(base, "pki")).make()
    foreign = Pki(os.path.join(base, "foreign")).make()
    ctl = Controller(os.path.join(base, "ctl"), tls=pki, auth=auth)
    lab = lablib.Lab(name=f"vt{secrets.token_hex(2)}", hosts=hosts, of_port=ctl.of_port,
                     external=False)
    try:
        with trusting(pki.ca_cert):
            ctl.start()
            lab.up()
            yield lab, ctl, pki, foreign
    finally:
        problems = lab.down()
        ctl.stop()
        if problems:
            warnings.warn(f"lab {lab.name} teardown: {problems}")


def relay_pidfile(lab, i):
    return os.path.join(lab.rundir(i), "tls-relay.pid")


def start_host_relay(lab, i, port=HOST_OF_PORT):
    """socat in host i's namespace: TCP 127.0.0.1:port -> the host's unix relay.
    lab.down() stops it with everything else in the namespace."""
    pid = read_pidfile(relay_pidfile(lab, i))
    if pid and not kill_pid(pid, expect="TCP-LISTEN", group=True):
        raise LabError(f"old TLS relay {pid} of h{i} survived")
    with open(os.path.join(lab.rundir(i), "tls-relay.log"), "a") as log:
        proc = lab.spawn(lab.host_ns(i), "socat", "-d",
                         f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr",
                         f"UNIX-CONNECT:{lab.relay_sock(i)}", stdout=log, stderr=log)
    with open(relay_pidfile(lab, i), "w") as f:
        f.write(f"{proc.pid}\n")
    deadline = time.monotonic() + 5
    while f":{port} " not in lab.nsexec(lab.host_ns(i), "ss", "-ltnH", check=False).stdout:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise LabError(f"TLS relay of h{i} did not start; see {lab.rundir(i)}/tls-relay.log")
        time.sleep(0.05)
    return proc


def ssl_target(port=HOST_OF_PORT):
    return f"ssl:127.0.0.1:{port}"


def join_ssl(lab, i, api_url, pki, host_pki=None, extra=()):
    """scripts/host-join for host i over TLS: its relay, its certificate (from
    ``host_pki``, by default the lab CA), the lab CA for the controller, and
    --ca-file for the https API.  ``extra``: more flags (``--token-file F``)."""
    host_pki = host_pki or pki
    cert, key = host_pki.issue(lab.host_name(i))
    start_host_relay(lab, i)
    return lab.join(i, api_url, controller=ssl_target(),
                    extra=["--ssl-key", key, "--ssl-cert", cert, "--ssl-ca", pki.ca_cert,
                           "--ca-file", pki.ca_cert, *extra])


def ovs_connection_status(lab, i):
    """What host i's bridge says about its controller connection (for reports)."""
    p = lab.ovs_vsctl(i, "--format=csv", "--no-headings", "--columns=is_connected,status",
                      "list", "Controller", check=False)
    return p.strip() if isinstance(p, str) else p
