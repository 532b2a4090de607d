"""Shared helpers of the host-side scripts (host-join, attach, detach).

Standard library only: host-join runs on real hosts that have Open vSwitch and
iproute2 but not the project's venv.  attach and detach do their netlink work
through the agent's code (vpcagent.plumbing) and so need the venv:
``use_project_python`` re-executes them there.

Exit codes are a contract the scripts and their tests rely on:

* 2 -- refused before changing anything (bad argument, missing namespace,
  unreachable OVS database, ...).  ``UsageError`` carries these.
* 1 -- something failed after work had started, or the REST API said no.
  ``Failure`` carries these, ``ApiError`` is one of them.

Every message is a single line on stderr, prefixed with the script's name, so
that a human running the script and a test reading stderr see the same thing.
"""
import ipaddress
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

# Debian keeps ovs-vswitchd, ip and ethtool in sbin directories that a
# non-login shell or sudo may leave out of PATH.
for _d in ("/usr/local/sbin", "/usr/sbin", "/sbin"):
    if _d not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.environ.get("PATH", "") + os.pathsep + _d


NETNS_DIR = "/run/netns"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def use_project_python(prog):
    """attach/detach share the agent's netlink code (vpcagent.plumbing, on
    pyroute2), which lives in the project's venv.  Started by another Python
    (``python3 scripts/attach``, a shebang finding /usr/bin/python3), re-exec
    under ``<repo>/.venv/bin/python`` with the same arguments; without a venv,
    refuse (exit 2) with what to run.  host-join needs none of this: it stays
    standard-library only."""
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    try:
        import pyroute2  # noqa: F401
        return
    except ImportError:
        pass
    venv = os.path.join(REPO, ".venv", "bin", "python")
    if os.path.exists(venv) and not os.environ.get("VPC_SCRIPT_REEXEC"):
        os.environ["VPC_SCRIPT_REEXEC"] = "1"
        os.execv(venv, [venv] + sys.argv)
    print(f"{prog}: error: the Python module pyroute2 is missing; run scripts/setup "
          f"(it makes {venv}) or run {prog} with that interpreter", file=sys.stderr)
    sys.exit(2)


class UsageError(Exception):
    """Refused before any change: exit status 2."""
    code = 2


class Failure(Exception):
    """Failed while or after changing something: exit status 1."""
    code = 1


class ApiError(Failure):
    """The REST API answered with an error (or could not be reached)."""

    def __init__(self, message, status=None, code=None, body=None):
        super().__init__(message)
        self.status = status
        self.api_code = code
        self.body = body


class CmdError(Failure):
    """An external command exited non-zero; message holds its stderr."""

    def __init__(self, cmd, rc, stdout, stderr):
        self.cmd, self.rc, self.stdout, self.stderr = cmd, rc, stdout, stderr
        text = (stderr or stdout or "").strip().splitlines()
        detail = text[-1] if text else f"exit status {rc}"
        super().__init__(f"`{' '.join(cmd)}` failed: {detail}")


def main_wrapper(prog, fn):
    """Run ``fn()`` and turn our exceptions into one stderr line + exit code.

    Keeps tracebacks away from operators: every failure path a script knows
    about raises one of the classes above with a sentence that says what to do.
    """
    try:
        rc = fn()
    except (UsageError, Failure) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(e.code)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(rc or 0)


# --------------------------------------------------------------------------
# validation (pure: no commands run, so a bad argument never changes anything)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
IFNAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$")
MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
DPID_RE = re.compile(r"^[0-9a-fA-F]{16}$")


def check_name(value, what="name"):
    """Host and tenant names: 1-63 chars, letters/digits/``_.-``, not
    starting with punctuation (they end up in URLs and OVSDB external_ids)."""
    if not NAME_RE.match(value or ""):
        raise UsageError(f"invalid {what} {value!r}: use 1-63 letters, digits, "
                         f"'_', '.', '-', starting with a letter or digit")
    return value


def check_ifname(value, what="interface name"):
    """Linux interface names: at most 15 bytes, no '/', ':' or whitespace."""
    if not IFNAME_RE.match(value or "") or value in (".", ".."):
        raise UsageError(f"invalid {what} {value!r}: at most 15 characters "
                         f"of letters, digits, '_', '.', '-'")
    return value


def check_ipv4(value, what="IP address"):
    """A plain unicast IPv4 address (no prefix)."""
    try:
        ip = ipaddress.IPv4Address(value)
    except (ipaddress.AddressValueError, ValueError):
        raise UsageError(f"invalid {what} {value!r}: expected an IPv4 address "
                         f"like 10.0.0.5") from None
    if ip.is_multicast or ip.is_unspecified or ip.is_loopback or \
            ip == ipaddress.IPv4Address("255.255.255.255"):
        raise UsageError(f"invalid {what} {value!r}: not a unicast host address")
    return str(ip)


def check_ipv6(value, what="IPv6 address"):
    """A global or unique-local unicast IPv6 address (no prefix), compressed."""
    try:
        ip = ipaddress.IPv6Address(value)
    except (ipaddress.AddressValueError, ValueError):
        raise UsageError(f"invalid {what} {value!r}: expected an IPv6 address "
                         f"like fd00:1::5") from None
    if ip.is_multicast or ip.is_unspecified or ip.is_loopback or ip.is_link_local:
        raise UsageError(f"invalid {what} {value!r}: not a unicast address a port can hold")
    return str(ip)


def check_ipv4_iface(value, what="tunnel IP", require_prefix=True):
    """An IPv4 address with prefix, e.g. 198.18.0.11/24.

    Rejects the network and broadcast address of the prefix: putting those on
    br-phy 'works' but breaks ARP for the whole underlay subnet.
    Returns an ``ipaddress.IPv4Interface``.
    """
    if require_prefix and "/" not in (value or ""):
        raise UsageError(f"invalid {what} {value!r}: give address/prefix, "
                         f"e.g. 198.18.0.11/24")
    try:
        iface = ipaddress.IPv4Interface(value)
    except (ipaddress.AddressValueError, ipaddress.NetmaskValueError, ValueError):
        raise UsageError(f"invalid {what} {value!r}: expected IPv4 address/prefix "
                         f"like 198.18.0.11/24") from None
    check_ipv4(str(iface.ip), what)
    net = iface.network
    if net.prefixlen < 31 and iface.ip in (net.network_address, net.broadcast_address):
        raise UsageError(f"invalid {what} {value!r}: that is the network or "
                         f"broadcast address of {net}")
    return iface


def check_mac(value):
    """A unicast, non-zero MAC in colon notation; returned lowercase."""
    if not MAC_RE.match(value or ""):
        raise UsageError(f"invalid MAC {value!r}: expected six hex pairs like "
                         f"02:00:00:00:00:01")
    first = int(value[:2], 16)
    if first & 1:
        raise UsageError(f"invalid MAC {value!r}: multicast bit set (first "
                         f"octet must be even)")
    if value.replace(":", "") == "0" * 12:
        raise UsageError(f"invalid MAC {value!r}: all zeros")
    return value.lower()


def check_dpid(value):
    """Exactly 16 hex digits (OVS other-config:datapath-id format), lowercased."""
    if not DPID_RE.match(value or ""):
        raise UsageError(f"invalid dpid {value!r}: expected exactly 16 hex "
                         f"digits, e.g. 00000000000000a1")
    if int(value, 16) == 0:
        raise UsageError("invalid dpid 0000000000000000: must not be zero")
    return value.lower()


def normalize_dpid(value):
    """Bring a dpid from OVS or the API (int, '0x..', 'aa:bb:..', quoted) to
    16 lowercase hex digits, so that comparisons are not fooled by format."""
    if value is None:
        return None
    if isinstance(value, int):
        return f"{value:016x}"
    s = str(value).strip().strip('"').replace(":", "").lower()
    if s.startswith("0x"):
        s = s[2:]
    try:
        return f"{int(s, 16):016x}"
    except ValueError:
        return s


def check_controller_target(value):
    """OpenFlow controller targets OVS accepts for an active connection:
    ``tcp:IP[:PORT]``, ``ssl:IP[:PORT]`` (IPv6 in brackets) or ``unix:/abs/path``.

    OVS would silently keep retrying a mistyped target forever, so we refuse
    it up front instead.
    """
    v = value or ""
    if v.startswith("unix:"):
        path = v[5:]
        if not path.startswith("/"):
            raise UsageError(f"invalid controller target {value!r}: unix: needs "
                             f"an absolute path")
        if not os.path.isdir(os.path.dirname(path) or "/"):
            raise UsageError(f"invalid controller target {value!r}: directory "
                             f"{os.path.dirname(path)} does not exist")
        return v
    m = re.match(r"^(tcp|ssl):(\[[^\]]+\]|[^:\[\]]+)(?::(\d+))?$", v)
    if not m:
        raise UsageError(f"invalid controller target {value!r}: expected "
                         f"tcp:IP[:PORT], ssl:IP[:PORT] or unix:/path")
    host = m.group(2).strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(f"invalid controller target {value!r}: {host!r} is not "
                         f"an IP address (OVS does not resolve names)") from None
    if m.group(3) is not None and not 0 < int(m.group(3)) < 65536:
        raise UsageError(f"invalid controller target {value!r}: bad port")
    return v


def check_api_url(value):
    """``http(s)://host[:port]`` with nothing after it; returned without a
    trailing slash so that paths can be appended."""
    u = urllib.parse.urlsplit(value or "")
    if u.scheme not in ("http", "https") or not u.hostname or \
            (u.path not in ("", "/")) or u.query or u.fragment:
        raise UsageError(f"invalid API URL {value!r}: expected "
                         f"http://HOST:PORT, e.g. http://127.0.0.1:8080")
    try:
        u.port
    except ValueError:
        raise UsageError(f"invalid API URL {value!r}: bad port") from None
    return value.rstrip("/")


# --------------------------------------------------------------------------
# commands

def run(cmd, netns=None, env=None, check=True, timeout=30, input=None):
    """Run a command (optionally ``ip netns exec NETNS ...``); text output.

    ``env`` entries are added to the current environment, never replace it.
    Raises ``CmdError`` (a ``Failure``) on non-zero exit when ``check``.
    """
    cmd = [str(c) for c in cmd]
    if netns:
        cmd = ["ip", "netns", "exec", netns] + cmd
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update({k: str(v) for k, v in env.items()})
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=full_env,
                           timeout=timeout, input=input)
    except FileNotFoundError:
        raise Failure(f"command not found: {cmd[0]}") from None
    except subprocess.TimeoutExpired:
        raise Failure(f"`{' '.join(cmd)}` timed out after {timeout}s") from None
    if check and p.returncode != 0:
        raise CmdError(cmd, p.returncode, p.stdout, p.stderr)
    return p


def require_tools(*names):
    """Refuse (exit 2) when a needed program is not installed."""
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        raise UsageError(f"missing program(s): {', '.join(missing)} "
                         f"(install openvswitch-switch / iproute2 / ethtool)")


def list_netns():
    """Names of the network namespaces ``ip netns`` knows: the files in
    /run/netns, where ``ip netns add`` puts them (read directly: no process,
    and no answer faked by a test's PATH)."""
    try:
        return sorted(os.listdir(NETNS_DIR))
    except OSError:
        return []


def require_netns(name, what="network namespace"):
    if name not in list_netns():
        raise UsageError(f"no such {what} {name!r} (see `ip netns list`)")
    return name


def link_exists(ifname, netns=None, pid=None):
    """True when the interface exists in the given namespace (netns name, or
    the net namespace of ``pid``, or the current one)."""
    if pid is not None:
        cmd = ["nsenter", "-t", str(pid), "-n", "ip", "link", "show", "dev", ifname]
        return run(cmd, check=False).returncode == 0
    return run(["ip", "link", "show", "dev", ifname], netns=netns,
               check=False).returncode == 0


class Ovs:
    """ovs-vsctl against one OVS instance.

    ``rundir`` selects a private instance (the lab runs one per emulated host)
    by setting OVS_RUNDIR, which is where ovs-vsctl looks for ``db.sock`` and
    where ovs-vswitchd keeps its control and bridge management sockets.
    """

    def __init__(self, rundir=None, timeout=10):
        self.rundir = rundir
        self.timeout = timeout

    @property
    def env(self):
        return {"OVS_RUNDIR": self.rundir} if self.rundir else None

    @property
    def db(self):
        return f"unix:{self.rundir or '/var/run/openvswitch'}/db.sock"

    def vsctl(self, *args, check=True, no_wait=False):
        cmd = ["ovs-vsctl", f"--db={self.db}", f"--timeout={self.timeout}"]
        if no_wait:
            cmd.append("--no-wait")
        return run(cmd + list(args), env=self.env, check=check,
                   timeout=self.timeout + 5)

    def check_reachable(self):
        """Refuse (exit 2) unless the database answers and ovs-vswitchd has
        applied its configuration at least once (so later waits end)."""
        if self.rundir and not os.path.isdir(self.rundir):
            raise UsageError(f"OVS run directory {self.rundir} does not exist")
        p = self.vsctl("get", "Open_vSwitch", ".", "cur_cfg", check=False,
                       no_wait=True)
        if p.returncode != 0:
            lines = (p.stderr or "").strip().splitlines()
            raise UsageError(f"cannot reach the OVS database at {self.db}: "
                             f"{lines[-1] if lines else 'no answer'}")
        pidfile = os.path.join(self.rundir or "/var/run/openvswitch",
                               "ovs-vswitchd.pid")
        if not _pidfile_alive(pidfile):
            raise UsageError(f"ovs-vswitchd is not running (no live pid in "
                             f"{pidfile})")

    def br_exists(self, bridge):
        return self.vsctl("br-exists", bridge, check=False,
                          no_wait=True).returncode == 0

    def get(self, table, record, column):
        """One column's value, parsed from OVSDB's text form where simple."""
        p = self.vsctl("--if-exists", "get", table, record, column, no_wait=True)
        return p.stdout.strip()


def _pidfile_alive(path):
    try:
        with open(path) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        return True
    except (OSError, ValueError):
        return False


# --------------------------------------------------------------------------
# REST

def ca_context(ca_file):
    """An ssl context that trusts only the CA in ``ca_file`` (PEM), for an
    ``https://`` API signed by the deployment's own CA (scripts/pki), or None
    for the system's CAs.  UsageError when the file cannot be loaded."""
    if not ca_file:
        return None
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as e:
        raise UsageError(f"--ca-file {ca_file}: {e}") from None


TOKEN = None       # sent by api_call as Authorization: Bearer (use_token sets it)
CONTEXT = None     # ssl context api_call uses unless given one (use_token sets it)


def add_token_args(p):
    """--token / --token-file (else VPC_TOKEN / VPC_TOKEN_FILE): the API token,
    a host token for host-join, attach and detach (docs/security.md); and
    --ca-file (else VPC_CA_FILE), the CA an https:// API is verified with."""
    p.add_argument("--token", help="API token (default: $VPC_TOKEN)")
    p.add_argument("--token-file", metavar="FILE",
                   help="file holding the API token (default: $VPC_TOKEN_FILE)")
    p.add_argument("--ca-file", metavar="PEM",
                   help="CA to verify an https:// API with (default: $VPC_CA_FILE, "
                        "else the system's)")


def use_token(a):
    """Read the token once, before any change: an unreadable file is a UsageError."""
    global TOKEN
    token, path = a.token, a.token_file          # a flag wins over the environment
    if not token and not path:
        token, path = os.environ.get("VPC_TOKEN"), os.environ.get("VPC_TOKEN_FILE")
    if not token and path:
        try:
            with open(path) as f:
                token = (f.read().strip().splitlines() or [""])[0].strip()
        except OSError as e:
            raise UsageError(f"--token-file {path}: {e.strerror or e}") from None
        if not token:
            raise UsageError(f"--token-file {path} is empty")
    TOKEN = (token or "").strip() or None
    global CONTEXT
    CONTEXT = ca_context(getattr(a, "ca_file", None) or os.environ.get("VPC_CA_FILE"))


def api_call(method, url, body=None, timeout=10, context=None):
    """One JSON request.  Returns ``(status, parsed_body_or_None)`` for 2xx.

    Any 4xx/5xx becomes ``ApiError`` whose message is the API's own
    ``error.message`` (the API promises ``{"error":{"code","message"}}``);
    409 is the one status callers often want to handle, so it is raised too
    but with ``.status`` set for them to inspect.
    """
    data = None
    headers = {"Accept": "application/json"}
    if TOKEN:
        headers["Authorization"] = f"Bearer {TOKEN}"
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout,
                                    context=context or CONTEXT) as resp:
            raw = resp.read()
            return resp.status, _parse_json(raw)
    except urllib.error.HTTPError as e:
        raw = e.read()
        parsed = _parse_json(raw)
        code, msg = None, None
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            code = parsed["error"].get("code")
            msg = parsed["error"].get("message")
        if not msg:
            text = raw.decode(errors="replace").strip()[:200]
            msg = f"HTTP {e.code} {e.reason}" + (f": {text}" if text else "")
        raise ApiError(f"{method} {url}: {msg}", status=e.code, code=code,
                       body=parsed) from None
    except urllib.error.URLError as e:
        raise ApiError(f"cannot reach the API at {url}: {e.reason}") from None
    except (OSError, TimeoutError) as e:
        raise ApiError(f"cannot reach the API at {url}: {e}") from None


def _parse_json(raw):
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
