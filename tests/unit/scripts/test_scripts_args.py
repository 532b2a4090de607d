"""The host scripts refuse bad arguments with exit status 2, one clear line
on stderr, and no change to anything.

Runs without root and without OVS: every external program the scripts may
call (ip, ovs-vsctl, docker, ethtool, nsenter) is replaced, through PATH, by
a fake that only records its command line.  So "no change" is checked
directly: a refused run must not have invoked any command that changes
state, and must not have talked to the REST API (it points at a closed port:
contacting it would end in exit 1, not 2).  attach and detach do their host
work through the agent's netlink code (vpcagent.plumbing), so they must not
run ``ip`` at all; their plumbing order is checked with a fake host.
"""
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPTS = REPO / "scripts"
sys.path.insert(0, str(SCRIPTS))
import vpcscript  # noqa: E402

FAKE = """#!{python}
import os, sys
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(os.path.basename(sys.argv[0]) + " " + " ".join(sys.argv[1:]) + "\\n")
sys.exit(1 if os.path.basename(sys.argv[0]) == "docker" else 0)
"""
MUTATING = ("add", "del", "set", "replace", "add-br", "add-port", "del-port",
            "del-br", "set-controller", "create", "-K", "up")


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def fakebin(tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    for tool in ("ip", "ovs-vsctl", "ovs-ofctl", "docker", "ethtool", "nsenter"):
        f = d / tool
        f.write_text(FAKE.format(python=sys.executable))
        f.chmod(f.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return d


@pytest.fixture
def run(fakebin, tmp_path):
    log = tmp_path / "calls.log"
    api = f"http://127.0.0.1:{closed_port()}"

    def run_script(name, *args, with_api=True):
        argv = [sys.executable, str(SCRIPTS / name)] + list(args)
        if with_api and name in ("host-join", "attach", "detach"):
            argv += ["--api", api]
        env = dict(os.environ, PATH=f"{fakebin}{os.pathsep}{os.environ.get('PATH', '')}",
                   FAKE_LOG=str(log))
        p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30)
        calls = log.read_text().splitlines() if log.exists() else []
        return p, calls

    return run_script


def assert_refused(p, calls, *needles):
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    err = p.stderr.strip()
    assert err, "no message on stderr"
    for n in needles:
        assert n in err, (n, err)
    for c in calls:
        words = c.split()[1:]
        assert not any(w in MUTATING for w in words if not w.startswith("--")), \
            f"refused run still ran a changing command: {c}"


JOIN_OK = ["--name", "h1", "--controller", "tcp:127.0.0.1:6653",
           "--tunnel-ip", "198.18.0.11/24", "--nic", "eth0"]


def join_args(**over):
    args = dict(zip(JOIN_OK[::2], JOIN_OK[1::2]))
    for k, v in over.items():
        key = "--" + k.replace("_", "-")
        if v is None:
            args.pop(key, None)
        else:
            args[key] = v
    return [x for kv in args.items() for x in kv]


@pytest.mark.parametrize("over, needle", [
    (dict(name="bad name!"), "invalid host name"),
    (dict(name="-x"), "error"),
    (dict(tunnel_ip="198.18.0.300/24"), "invalid tunnel IP"),
    (dict(tunnel_ip="198.18.0.11"), "address/prefix"),
    (dict(tunnel_ip="198.18.0.0/24"), "network or broadcast"),
    (dict(tunnel_ip="198.18.0.255/24"), "network or broadcast"),
    (dict(tunnel_ip="224.0.0.1/24"), "not a unicast"),
    (dict(dpid="xyz"), "invalid dpid"),
    (dict(dpid="123"), "invalid dpid"),
    (dict(dpid="00000000000000000a"), "invalid dpid"),
    (dict(dpid="0000000000000000"), "must not be zero"),
    (dict(controller="tcp:ctl.example.com:6653"), "not an IP address"),
    (dict(controller="6653"), "invalid controller target"),
    (dict(controller="tcp:127.0.0.1:70000"), "bad port"),
    (dict(controller="unix:relative/path"), "absolute path"),
    (dict(controller="unix:/tmp/of.sock"), "run directory"),
    (dict(nic="an-interface-name-too-long"), "invalid NIC name"),
    (dict(bridge="br/int"), "invalid bridge name"),
    (dict(datapath_type="kernel"), "invalid choice"),
    (dict(controller=None), "--controller"),
    (dict(tunnel_ip=None), "--tunnel-ip"),
    (dict(name=None), "--name"),
])
def test_host_join_rejects(run, over, needle):
    p, calls = run("host-join", *join_args(**over))
    assert_refused(p, calls, needle)
    assert calls == [], "syntax errors must be found before any command runs"


EXT_OK = dict(external_port="ext0", external_ip="203.0.113.11",
              external_gateway="203.0.113.1")


@pytest.mark.parametrize("over, needle", [
    (dict(external_port="ext0"), "missing --external-ip, --external-gateway"),
    (dict(external_ip="203.0.113.11"), "missing --external-port, --external-gateway"),
    (dict(external_port="ext0", external_ip="203.0.113.11"), "missing --external-gateway"),
    (dict(EXT_OK, external_port="bad/name"), "invalid external port name"),
    (dict(EXT_OK, external_port="eth0"), "clashes with --nic"),
    (dict(EXT_OK, external_port="vxlan0"), "clashes with a port this script creates"),
    (dict(EXT_OK, external_port="br-int"), "clashes"),
    (dict(EXT_OK, external_ip="203.0.113.300"), "invalid external IP"),
    (dict(EXT_OK, external_ip="203.0.113.11/24"), "invalid external IP"),
    (dict(EXT_OK, external_gateway="224.0.0.1"), "external gateway"),
    (dict(EXT_OK, external_gateway="203.0.113.11"), "are both 203.0.113.11"),
])
def test_host_join_rejects_external(run, over, needle):
    p, calls = run("host-join", *join_args(**over))
    assert_refused(p, calls, needle)
    assert calls == [], "syntax errors must be found before any command runs"


def test_host_join_missing_external_port(run, tmp_path):
    """The fake `ip` says every link exists; the check itself is covered by
    calling validate() with link_exists patched."""
    hj = load_script("host-join")
    a = hj.parse_args(join_args(**EXT_OK))
    hj.link_exists = lambda ifname, netns=None: ifname != "ext0"
    hj.require_tools = lambda *names: None
    with pytest.raises(vpcscript.UsageError, match="external port 'ext0' does not exist"):
        hj.validate(a)


def load_script(name):
    import importlib.machinery
    import importlib.util
    loader = importlib.machinery.SourceFileLoader(name.replace("-", "_"), str(SCRIPTS / name))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


class FakeOvs:
    def __init__(self):
        self.calls = []

    def vsctl(self, *args, **kw):
        self.calls.append(args)


def test_host_join_configures_the_external_port(capsys):
    hj = load_script("host-join")
    a = hj.parse_args(join_args(**EXT_OK, netns="lab-h1"))
    hj.check_external(a)
    a.ovs = FakeOvs()
    cmds = []

    def fake_run(cmd, netns=None, **kw):
        cmds.append((netns, cmd))
        out = "7: ext0    inet 192.0.2.5/24 scope global ext0\n" if "show" in cmd else ""
        return subprocess.CompletedProcess(cmd, 0, out, "")

    hj.run = fake_run
    hj.configure_external(a)
    assert a.ovs.calls == [("--may-exist", "add-port", "br-int", "ext0")]
    assert cmds[0] == ("lab-h1", ["ip", "link", "set", "ext0", "up"])
    assert cmds[-1] == ("lab-h1", ["ip", "-4", "addr", "flush", "dev", "ext0"])
    assert "warning: removing IPv4 address(es) 192.0.2.5/24 from ext0" in capsys.readouterr().err


def test_host_join_registers_external_fields(capsys):
    hj = load_script("host-join")
    a = hj.parse_args(join_args(**EXT_OK))
    a.api = "http://127.0.0.1:1"
    a.tunnel = vpcscript.check_ipv4_iface("198.18.0.11/24")
    hj.check_external(a)
    sent = []
    registered = {"name": "h1", "dpid": "00000000000000a1", "tunnel_ip": "198.18.0.11",
                  "uplink_port": "patch-phy", "external_port": "ext0",
                  "external_ip": "203.0.113.11", "external_gateway": "203.0.113.1"}

    def api(method, url, body=None):
        sent.append((method, url, body))
        if method == "POST":
            raise vpcscript.ApiError("exists", status=409)
        return 200, registered

    hj.api_call = api
    assert hj.register(a, "00000000000000a1", "patch-phy") == 0
    assert sent[0][2] == registered
    assert "already joined" in capsys.readouterr().out
    # a different external gateway is not "already joined"
    registered["external_gateway"] = "203.0.113.254"
    with pytest.raises(vpcscript.Failure, match="external_gateway is 203.0.113.254"):
        hj.register(a, "00000000000000a1", "patch-phy")
    # a host joined without NAT before, joining with it now: also different
    for key in ("external_port", "external_ip", "external_gateway"):
        registered.pop(key)
    with pytest.raises(vpcscript.Failure, match="external_port is None, we have ext0"):
        hj.register(a, "00000000000000a1", "patch-phy")


def test_host_join_without_external_sends_no_external_fields():
    hj = load_script("host-join")
    a = hj.parse_args(join_args())
    a.api = "http://127.0.0.1:1"
    a.tunnel = vpcscript.check_ipv4_iface("198.18.0.11/24")
    hj.check_external(a)
    sent = []
    hj.api_call = lambda method, url, body=None: sent.append(body) or (201, {})
    assert hj.register(a, "00000000000000a1", None) == 0
    assert sent == [{"name": "h1", "dpid": "00000000000000a1", "tunnel_ip": "198.18.0.11"}]


def test_host_join_rejects_bad_api_url(run):
    p, calls = run("host-join", *join_args(), "--api", "ftp://127.0.0.1:21", with_api=False)
    assert_refused(p, calls, "invalid API URL")


def test_host_join_missing_netns(run):
    p, calls = run("host-join", *join_args(), "--netns", "no-such-ns")
    assert_refused(p, calls, "no such network namespace")


def test_host_join_missing_rundir(run, tmp_path):
    missing = tmp_path / "nope"
    p, calls = run("host-join", *join_args(controller=f"unix:{missing}/of.sock"),
                   "--ovs-rundir", str(missing))
    assert_refused(p, calls)


def test_host_join_vswitchd_not_running(run, tmp_path):
    p, calls = run("host-join", *join_args(controller=f"unix:{tmp_path}/of.sock"),
                   "--ovs-rundir", str(tmp_path))
    assert_refused(p, calls, "ovs-vswitchd is not running")


ATTACH_OK = ["t1", "c1", "--host", "h1"]


@pytest.mark.parametrize("args, needle", [
    (["bad/tenant", "c1", "--host", "h1"], "invalid tenant name"),
    (["t1", "c1", "--host", "bad host"], "invalid host name"),
    (ATTACH_OK + ["--ip", "10.0.0.256"], "invalid IP address"),
    (ATTACH_OK + ["--ip", "10.0.0.0/24"], "invalid IP address"),
    (ATTACH_OK + ["--ip", "127.0.0.1"], "not a unicast"),
    (ATTACH_OK + ["--mac", "zz:00:00:00:00:01"], "invalid MAC"),
    (ATTACH_OK + ["--mac", "02:00:00:00:01"], "invalid MAC"),
    (ATTACH_OK + ["--mac", "01:00:5e:00:00:01"], "multicast"),
    (ATTACH_OK + ["--mac", "00:00:00:00:00:00"], "all zeros"),
    (ATTACH_OK + ["--port", "a-port-name-too-long"], "invalid port name"),
    (ATTACH_OK + ["--port", "eth0"], "reserved"),
    (ATTACH_OK + ["--bridge", "br int"], "invalid bridge name"),
    (["t1", "c1"], "--host"),
    (["t1", "--host", "h1"], "container"),
    ([], "tenant"),
])
def test_attach_rejects(run, args, needle):
    p, calls = run("attach", *args)
    assert_refused(p, calls, needle)
    assert calls == []


def test_attach_unknown_container(run):
    p, calls = run("attach", *ATTACH_OK)
    assert_refused(p, calls, "no network namespace or Docker container named 'c1'")


def test_attach_unknown_host_netns(run):
    p, calls = run("attach", *ATTACH_OK, "--host-netns", "nope")
    assert_refused(p, calls, "no such host network namespace")


@pytest.mark.parametrize("args, needle", [
    (["bad tenant", "abc"], "invalid tenant name"),
    (["t1", "../x"], "invalid port id"),
    (["t1"], "port_id"),
    ([], "tenant"),
])
def test_detach_rejects(run, args, needle):
    p, calls = run("detach", *args)
    assert_refused(p, calls, needle)
    assert calls == []


@pytest.mark.parametrize("args, needle", [
    (["--name", "Bad-Name", "up"], "invalid lab name"),
    (["up", "--name", "x" * 11], "invalid lab name"),
    (["up", "--hosts", "0"], "--hosts"),
    (["up", "--of-port", "0"], "--of-port"),
    (["frobnicate"], "invalid choice"),
])
def test_lab_cli_rejects(run, args, needle):
    p, calls = run("lab", *args)
    assert_refused(p, calls, needle)
    assert calls == []


# -- the validators themselves --------------------------------------------

def test_normalize_dpid_forms():
    want = "00000000000000a1"
    for v in (0xa1, "0xa1", "00:00:00:00:00:00:00:a1", '"00000000000000A1"', "a1"):
        assert vpcscript.normalize_dpid(v) == want


def test_default_port_name_is_stable_and_short():
    mod = load_script("attach")
    a = mod.default_port_name("t1", "c1")
    assert a == mod.default_port_name("t1", "c1") != mod.default_port_name("t2", "c1")
    assert len(a) == 13 and a.startswith("v")
    assert vpcscript.check_ifname(a) == a
    peer = mod.peer_name("a-15-char-name0")
    assert len(peer) <= 15 and peer != "a-15-char-name0"


# -- attach/detach share the agent's plumbing --------------------------------

@pytest.mark.parametrize("script, args", [
    ("attach", ATTACH_OK),
    ("attach", ATTACH_OK + ["--host-netns", "nope"]),
    ("detach", ["t1", "../x"]),
])
def test_attach_detach_never_run_ip(run, script, args):
    p, calls = run(script, *args)
    assert p.returncode == 2, p.stderr
    assert not [c for c in calls if c.split()[0] in ("ip", "ethtool", "nsenter")], calls


def test_attach_reexecs_under_the_venv_without_pyroute2(tmp_path):
    """A Python without pyroute2 (the system's) still gets the script's own
    answer: it re-executes under <repo>/.venv/bin/python."""
    venv = REPO / ".venv" / "bin" / "python"
    other = "/usr/bin/python3"
    probe = subprocess.run([other, "-c", "import pyroute2"], capture_output=True) \
        if os.path.exists(other) else None
    if not venv.exists() or probe is None or probe.returncode == 0:
        pytest.skip("needs the repo's .venv and a python3 without pyroute2")
    p = subprocess.run([other, str(SCRIPTS / "attach"), "bad/tenant", "c1", "--host", "h1"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "invalid tenant name" in p.stderr, p.stderr


class FakePlumbing:
    """Host + configure_container of vpcagent.plumbing, recording the order."""

    def __init__(self, fail_at=None):
        self.calls, self.fail_at = [], fail_at

    def __call__(self, *args, **kw):             # Host(bridge, rundir, netns)
        self.calls.append(("Host",) + args)
        return self

    def _step(self, name, *args, **kw):
        self.calls.append((name,) + args + tuple(sorted(kw.items())))
        if name == self.fail_at:
            from vpcagent.plumbing import PlumbingError
            raise PlumbingError(f"{name} failed")

    def create_port(self, *a, **kw):
        self._step("create_port", *a, **kw)

    def move_into(self, *a, **kw):
        self._step("move_into", *a, **kw)

    def delete_port(self, *a, **kw):
        self._step("delete_port", *a, **kw)

    def configure(self, *a, **kw):
        self._step("configure_container", *a, **kw)


PORT = {"id": "p1", "ip": "10.0.0.5", "mac": "02:00:0a:00:00:05", "prefixlen": 24,
        "gateway": "10.0.0.1", "mtu": 1450}


def attach_with(fail_at, monkeypatch, capsys):
    mod = load_script("attach")
    fake = FakePlumbing(fail_at)
    api = []
    monkeypatch.setattr(mod, "Host", fake)
    monkeypatch.setattr(mod, "configure_container", fake.configure)
    monkeypatch.setattr(mod, "validate", lambda a: setattr(a, "target", "/run/netns/c1"))
    monkeypatch.setattr(mod, "api_call", lambda m, url, body=None: api.append((m, url, body))
                        or (201, PORT))
    argv = ["t1", "c1", "--host", "h1", "--port", "vport1", "--host-netns", "lab-h1"]
    if fail_at:
        with pytest.raises(vpcscript.Failure, match=f"{fail_at} failed .rolled back."):
            mod.main(argv)
    else:
        assert mod.main(argv) == 0
        assert capsys.readouterr().out.strip() == "p1"
    return fake.calls, api, mod


def test_attach_plumbs_through_the_agent_code(monkeypatch, capsys):
    calls, api, mod = attach_with(None, monkeypatch, capsys)
    peer = mod.peer_name("vport1")
    assert [c[0] for c in calls] == ["Host", "create_port", "move_into", "configure_container"]
    assert calls[0] == ("Host", "br-int", None, "lab-h1")
    assert calls[1][:3] == ("create_port", "vport1", peer)
    assert ("external_ids", {"vpc-port-id": "p1", "vpc-tenant": "t1",
                             "vpc-owner": "attach"}) in calls[1]
    assert calls[2] == ("move_into", peer, "/run/netns/c1", "eth0")
    assert calls[3] == ("configure_container", "/run/netns/c1", "eth0", PORT["mac"],
                        "10.0.0.5/24", "10.0.0.1", 1450, None, None)    # no IPv6 address
    assert [m for m, _, _ in api] == ["POST"]


@pytest.mark.parametrize("fail_at", ["create_port", "move_into", "configure_container"])
def test_attach_rolls_back_the_host_side_and_the_port(fail_at, monkeypatch, capsys):
    calls, api, _ = attach_with(fail_at, monkeypatch, capsys)
    assert calls[-1][:2] == ("delete_port", "vport1")
    assert [m for m, _, _ in api] == ["POST", "DELETE"] and api[1][1].endswith("/ports/p1")


def test_check_ipv4_iface_accepts_p2p():
    assert str(vpcscript.check_ipv4_iface("10.0.0.0/31").ip) == "10.0.0.0"


def test_check_mac_lowercases():
    assert vpcscript.check_mac("02:AA:bb:00:00:01") == "02:aa:bb:00:00:01"


def test_demo_port_check_ignores_time_wait_but_not_a_listener():
    """A demo run right after another one: the old REST port only has
    connections in TIME_WAIT, which must not count as 'in use'."""
    from vpclab import demo
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    assert not demo.port_free(port)                  # something listens
    cli = socket.create_connection(("127.0.0.1", port))
    conn, _ = srv.accept()
    conn.close()                                     # the server side closes first:
    cli.close()                                      # its end goes to TIME_WAIT
    srv.close()
    assert demo.port_free(port)
