"""scripts/attach --name / --alias / --dhcp (issue 19), with the host side
faked as in tests/unit/scripts/test_scripts_args.py (whose helpers this
reuses): the port gets its DNS names in the POST, and --dhcp leaves the
container's IPv4 address and route to DHCP while MAC, MTU and IPv6 are set
as always."""
import pytest

from tests.unit.scripts.test_scripts_args import PORT, FakePlumbing, load_script, run  # noqa: F401
from tests.unit.scripts.test_scripts_args import fakebin  # noqa: F401

PORT6 = dict(PORT, ip6="fd00:1::5", prefixlen6=64, gateway6="fd00:1::1")


def attach(monkeypatch, capsys, *extra, port=PORT):
    mod = load_script("attach")
    fake = FakePlumbing()
    api = []
    monkeypatch.setattr(mod, "Host", fake)
    monkeypatch.setattr(mod, "configure_container", fake.configure)
    monkeypatch.setattr(mod, "validate", lambda a: setattr(a, "target", "/run/netns/c1"))
    monkeypatch.setattr(mod, "api_call", lambda m, url, body=None: api.append((m, url, body))
                        or (201, port))
    argv = ["t1", "c1", "--host", "h1", "--port", "vport1", *extra]
    assert mod.main(argv) == 0
    assert capsys.readouterr().out.strip() == "p1"
    return fake.calls, api


def test_name_and_aliases_go_in_the_post(monkeypatch, capsys):
    _, api = attach(monkeypatch, capsys, "--name", "web", "--alias", "www", "--alias", "api",
                    "--alias", "www")
    assert api == [("POST", "http://127.0.0.1:8080/v1/tenants/t1/ports",
                    {"host": "h1", "port": "vport1", "name": "web", "aliases": ["www", "api"]})]
    _, api = attach(monkeypatch, capsys)
    assert api[0][2] == {"host": "h1", "port": "vport1"}


def test_dhcp_sets_mac_and_mtu_but_no_ipv4(monkeypatch, capsys):
    calls, _ = attach(monkeypatch, capsys, "--dhcp")
    assert calls[-1] == ("configure_container", "/run/netns/c1", "eth0", PORT["mac"],
                         None, None, 1450, None, None)


def test_dhcp_keeps_ipv6_as_it_is(monkeypatch, capsys):
    calls, _ = attach(monkeypatch, capsys, "--dhcp", port=PORT6)
    assert calls[-1] == ("configure_container", "/run/netns/c1", "eth0", PORT["mac"],
                         None, None, 1450, "fd00:1::5/64", "fd00:1::1")
    calls, _ = attach(monkeypatch, capsys, port=PORT6)                 # without: both
    assert calls[-1][4:] == ("10.0.0.5/24", "10.0.0.1", 1450, "fd00:1::5/64", "fd00:1::1")


@pytest.mark.parametrize("args", [["--name=-web"], ["--alias", "a..b"], ["--alias", "web-"],
                                  ["--alias", "x" * 64], ["--name", "web site"]])
def test_bad_names_are_refused_before_anything_changes(run, args):  # noqa: F811
    p, calls = run("attach", "t1", "c1", "--host", "h1", *args)
    assert p.returncode == 2 and "invalid DNS name" in p.stderr, p.stderr
    assert calls == []
