"""The CNI plugin binary on its own: environment, configuration and version
checks answer with the spec's error codes before any agent is asked; the
agent's reply (result or error) is printed as it came; no agent answering is
"try again later" (11), or "not available" (50) for STATUS.  No root, no OVS:
the agent is absent or a stub Router on a unix socket."""
import json
import os
import subprocess
import sys

import pytest

from vpcagent import cni_config as cc
from vpcagent import cni_plugin, server

CONF = {"cniVersion": "1.0.0", "name": "blue", "type": "vpc", "tenant": "blue",
        "subnet": "10.1.0.0/24"}
ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c0ffee", "CNI_NETNS": "/run/netns/x",
       "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin"}


def run(env=None, conf=None, raw=None, sock="/nonexistent/cni.sock", **over):
    environ = dict(ENV, **(env or {}))
    environ = {k: v for k, v in environ.items() if v is not None}
    c = dict(CONF, **dict({"agentSocket": sock}, **over))
    c = {k: v for k, v in c.items() if v is not None}
    data = raw if raw is not None else json.dumps(conf if conf is not None else c).encode()
    return cni_plugin.run(environ, data)


def assert_error(status_out, code, *words):
    status, out = status_out
    assert status == 1, out
    assert set(out) == {"cniVersion", "code", "msg", "details"}, out
    assert out["code"] == code, out
    for w in words:
        assert w in out["msg"] + out["details"], (w, out)
    return out


# -- environment (code 4) ------------------------------------------------------------------
@pytest.mark.parametrize("env, var", [
    ({"CNI_COMMAND": None}, "CNI_COMMAND"),
    ({"CNI_COMMAND": "FROB"}, "CNI_COMMAND"),
    ({"CNI_CONTAINERID": None}, "CNI_CONTAINERID"),
    ({"CNI_CONTAINERID": "bad id!"}, "CNI_CONTAINERID"),
    ({"CNI_IFNAME": ""}, "CNI_IFNAME"),
    ({"CNI_IFNAME": "a-name-far-too-long"}, "CNI_IFNAME"),
    ({"CNI_IFNAME": "eth/0"}, "CNI_IFNAME"),
    ({"CNI_NETNS": ""}, "CNI_NETNS"),
    ({"CNI_NETNS": "relative/ns"}, "CNI_NETNS"),
    ({"CNI_COMMAND": "CHECK", "CNI_NETNS": None}, "CNI_NETNS"),
    ({"CNI_ARGS": "IgnoreUnknown"}, "CNI_ARGS"),
    ({"CNI_ARGS": "IP=10.1.0.999"}, "CNI_ARGS"),
    ({"CNI_ARGS": "MAC=zz"}, "CNI_ARGS"),
])
def test_bad_environment_is_code_4_naming_the_variable(env, var):
    out = assert_error(run(env), cc.E_ENV, var)
    assert out["cniVersion"] == "1.0.0"


# -- configuration (codes 1, 2, 5, 6, 7) -------------------------------------------------------
@pytest.mark.parametrize("over, code, word", [
    (dict(cniVersion="0.3.1"), cc.E_VERSION, "0.3.1"),
    (dict(cniVersion="2.0.0"), cc.E_VERSION, "supports"),
    (dict(cniVersion=None), cc.E_CONFIG, "cniVersion"),
    (dict(ipam={"type": "host-local"}), cc.E_FIELD, "ipam"),
    (dict(bridge="br0"), cc.E_FIELD, "bridge"),
    (dict(name="bad name"), cc.E_CONFIG, "name"),
    (dict(type="bridge"), cc.E_CONFIG, "type"),
    (dict(tenant="no/such"), cc.E_CONFIG, "tenant"),
    (dict(subnet=None), cc.E_CONFIG, "subnet is missing"),
    (dict(subnet="10.1.0.1/24"), cc.E_CONFIG, "host bits"),
    (dict(subnet="10.1.0.0/31"), cc.E_CONFIG, "too small"),
    (dict(subnet="fd00::/64"), cc.E_CONFIG, "IPv4"),
    (dict(subnet6="10.1.0.0/24"), cc.E_CONFIG, "IPv6"),
    (dict(subnet6="fd00::/48"), cc.E_CONFIG, "/64 to /120"),
    (dict(runtimeConfig={"ips": ["fd00::5"]}), cc.E_CONFIG, "no subnet6"),
    (dict(runtimeConfig={"ips": ["10.1.0.5", "10.1.0.6"]}), cc.E_CONFIG, "at most one IPv4"),
    (dict(network="flat"), cc.E_CONFIG, "vlan, vxlan or gre"),
    (dict(mtu=100), cc.E_CONFIG, "mtu"),
    (dict(mtu="1500"), cc.E_CONFIG, "mtu"),
    (dict(dns=["8.8.8.8"]), cc.E_CONFIG, "dns"),
    (dict(agentSocket="relative.sock"), cc.E_CONFIG, "agentSocket"),
    (dict(runtimeConfig={"portMappings": [{"hostPort": 80}]}), cc.E_CONFIG, "containerPort"),
    (dict(runtimeConfig={"portMappings": [{"hostPort": 40000, "containerPort": 80}]}),
     cc.E_CONFIG, "hostPort"),
    (dict(runtimeConfig={"portMappings": [{"hostPort": 80, "containerPort": 80,
                                           "protocol": "sctp"}]}), cc.E_CONFIG, "sctp"),
    (dict(runtimeConfig={"portMappings": [{"hostPort": 80, "containerPort": 80,
                                           "hostIP": "10.0.0.1"}]}), cc.E_CONFIG, "hostIP"),
    (dict(runtimeConfig={"portMappings": [{"hostPort": 80, "containerPort": 80},
                                          {"hostPort": 80, "containerPort": 81}]}),
     cc.E_CONFIG, "twice"),
    (dict(runtimeConfig={"ips": ["10.2.0.5/24"]}), cc.E_CONFIG, "not in subnet"),
    (dict(runtimeConfig={"ips": ["x"]}), cc.E_CONFIG, "not an IP address"),
    (dict(runtimeConfig={"mac": "02:00"}), cc.E_CONFIG, "MAC"),
])
def test_bad_config_is_refused_with_the_spec_code(over, code, word):
    assert_error(run(**over), code, word)


def test_undecodable_input_is_code_6_and_missing_input_code_5():
    assert_error(run(raw=b"{not json"), cc.E_DECODE, "not JSON")
    assert_error(run(raw=b"[1, 2]"), cc.E_DECODE, "object")
    assert_error(cni_plugin.run(ENV, None), cc.E_IO, "stdin")


def test_gc_and_status_need_1_1_and_check_the_attachment_list():
    assert_error(run({"CNI_COMMAND": "GC"}), cc.E_VERSION, "1.1.0")
    assert_error(run({"CNI_COMMAND": "STATUS"}), cc.E_VERSION, "1.1.0")
    bad = dict(CONF, cniVersion="1.1.0", **{"cni.dev/valid-attachments": [{"id": 1}]})
    assert_error(run({"CNI_COMMAND": "GC"}, conf=bad), cc.E_CONFIG, "valid-attachments")


def test_version_needs_no_config_and_no_agent():
    status, out = cni_plugin.run({"CNI_COMMAND": "VERSION"}, b"")
    assert status == 0
    assert out == {"cniVersion": cc.LATEST, "supportedVersions": list(cc.SUPPORTED_VERSIONS)}
    status, out = cni_plugin.run({"CNI_COMMAND": "VERSION"}, b'{"cniVersion": "1.0.0"}')
    assert (status, out["cniVersion"]) == (0, "1.0.0")


# -- no agent ------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK"])
def test_no_agent_is_try_again_later(command):
    assert_error(run({"CNI_COMMAND": command}), cc.E_TRY_AGAIN, "/nonexistent/cni.sock")


def test_del_needs_no_netns_and_status_without_agent_is_unavailable():
    assert_error(run({"CNI_COMMAND": "DEL", "CNI_NETNS": None}), cc.E_TRY_AGAIN)
    status_conf = dict(CONF, cniVersion="1.1.0", agentSocket="/nonexistent/cni.sock")
    assert_error(run({"CNI_COMMAND": "STATUS", "CNI_CONTAINERID": None, "CNI_IFNAME": None,
                      "CNI_NETNS": None}, conf=status_conf), cc.E_UNAVAILABLE)


# -- with a stub agent --------------------------------------------------------------------------
@pytest.fixture
def stub_agent(tmp_path):
    """A Router on a unix socket answering like the agent; records requests."""
    seen = []
    router = server.Router()

    def reply_for(command):
        def fn(body):
            seen.append((command, body))
            if body["config"].get("name") == "fails":
                return {"error": {"code": 100, "msg": "controller: no", "details": "x"}}
            return {"result": {"cniVersion": "1.0.0", "ips": []} if command == "ADD" else None}
        return fn
    for cmd in ("ADD", "DEL", "CHECK", "GC", "STATUS"):
        router.add(f"/cni/{cmd}", reply_for(cmd), err_key="error")
    path = str(tmp_path / "cni.sock")
    srv = server.serve(path, router)
    yield path, seen
    server.stop(srv)


def test_forwards_env_and_config_and_prints_the_agent_reply(stub_agent):
    sock, seen = stub_agent
    status, out = run(sock=sock, env={"CNI_ARGS": "K8S_POD_NAME=web;IP=10.1.0.9"})
    assert (status, out) == (0, {"cniVersion": "1.0.0", "ips": []})
    command, body = seen[-1]
    assert command == "ADD"
    assert body["env"]["CNI_CONTAINERID"] == "c0ffee" and body["env"]["CNI_ARGS"].endswith("9")
    assert body["config"]["tenant"] == "blue"
    assert run({"CNI_COMMAND": "DEL", "CNI_NETNS": ""}, sock=sock) == (0, None)
    assert_error(run(sock=sock, name="fails"), 100, "controller: no")


def test_the_console_script_prints_json_and_exits_1_on_error(stub_agent, tmp_path):
    sock, _ = stub_agent
    env = dict(os.environ, **ENV)
    p = subprocess.run([sys.executable, "-m", "vpcagent.cni_plugin"], env=env,
                       input=json.dumps(dict(CONF, agentSocket=sock)).encode(),
                       capture_output=True, timeout=30)
    assert p.returncode == 0 and json.loads(p.stdout)["cniVersion"] == "1.0.0"
    p = subprocess.run([sys.executable, "-m", "vpcagent.cni_plugin"], env=env,
                       input=b"nope", capture_output=True, timeout=30)
    assert p.returncode == 1 and json.loads(p.stdout)["code"] == cc.E_DECODE


# -- names and results -------------------------------------------------------------------------
def test_port_names_are_deterministic_distinct_and_short():
    a = cc.port_names("c1", "eth0")
    assert a == cc.port_names("c1", "eth0")
    assert a != cc.port_names("c1", "net1") != cc.port_names("c2", "eth0")
    assert all(len(n) == 13 for n in a) and a[0].startswith("vn") and a[1].startswith("vq")


PORT = {"ip": "10.1.0.5", "prefixlen": 24, "mac": "02:00:0a:01:00:05", "gateway": "10.1.0.1"}


def test_result_format_1_0():
    cfg = cc.parse_config(dict(CONF, dns={"nameservers": ["10.1.0.2"]}), "ADD")
    r = cc.result(cfg, PORT, "vnabc", "aa:bb:cc:dd:ee:ff", "/run/netns/x", "eth0")
    assert r == {"cniVersion": "1.0.0",
                 "interfaces": [{"name": "vnabc", "mac": "aa:bb:cc:dd:ee:ff"},
                                {"name": "eth0", "mac": PORT["mac"], "sandbox": "/run/netns/x"}],
                 "ips": [{"address": "10.1.0.5/24", "gateway": "10.1.0.1", "interface": 1}],
                 "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}],
                 "dns": {"nameservers": ["10.1.0.2"]}}


def test_result_format_0_4_has_ip_version():
    cfg = cc.parse_config(dict(CONF, cniVersion="0.4.0"), "ADD")
    r = cc.result(cfg, PORT, "vnabc", "aa:bb:cc:dd:ee:ff", "/run/netns/x", "eth0")
    assert r["cniVersion"] == "0.4.0" and r["ips"][0]["version"] == "4" and r["dns"] == {}


def test_requested_address_from_runtime_config_then_cni_args():
    env = cc.parse_env(dict(ENV, CNI_ARGS="IgnoreUnknown=1;IP=10.1.0.7;MAC=02:AA:00:00:00:01"))
    cfg = cc.parse_config(CONF, "ADD")
    assert cc.requested_address(cfg, env) == ("10.1.0.7", "02:aa:00:00:00:01")
    cfg = cc.parse_config(dict(CONF, runtimeConfig={"ips": ["10.1.0.8/24"]}), "ADD")
    assert cc.requested_address(cfg, env)[0] == "10.1.0.8"


# --- DNS: aliases, the pod's name, the result's dns (issue 19) -------------------------
@pytest.mark.parametrize("aliases,word", [
    ("web", "aliases must be a list"),
    ([f"a{i}" for i in range(33)], "at most 32"),
    (["web", "-bad"], "'-bad' is not a DNS name"),
    ([7], "7 is not a DNS name"),
])
def test_bad_aliases_are_refused_with_code_7(aliases, word):
    assert_error(run(aliases=aliases), cc.E_CONFIG, word)


def test_aliases_are_lowercased_and_deduplicated():
    cfg = cc.parse_config(dict(CONF, aliases=["Web", "web.", "api"]), "ADD")
    assert cfg["aliases"] == ["web", "api"]
    assert cc.parse_config(CONF, "ADD")["aliases"] == []


def test_pod_name_from_cni_args():
    env = cc.parse_env(dict(ENV, CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;"
                                          "K8S_POD_NAME=Web-7f9c;K8S_POD_INFRA_CONTAINER_ID=x"))
    assert cc.pod_name(env) == "web-7f9c"
    assert cc.pod_name(cc.parse_env(ENV)) is None
    assert cc.pod_name(cc.parse_env(dict(ENV, CNI_ARGS="K8S_POD_NAME=bad-"))) is None


PORT_DNS = dict(PORT, dns={"nameservers": ["10.1.0.1"], "domain": "blue.internal",
                           "search": ["blue.internal"]})


def test_result_dns_is_the_ports_and_the_config_overrides_it_key_by_key():
    cfg = cc.parse_config(CONF, "ADD")
    r = cc.result(cfg, PORT_DNS, "vnabc", "aa:bb:cc:dd:ee:ff", "/run/netns/x", "eth0")
    assert r["dns"] == {"nameservers": ["10.1.0.1"], "domain": "blue.internal",
                        "search": ["blue.internal"]}
    cfg = cc.parse_config(dict(CONF, dns={"search": ["svc.cluster.local"],
                                          "options": ["ndots:5"]}), "ADD")
    r = cc.result(cfg, PORT_DNS, "vnabc", "aa:bb:cc:dd:ee:ff", "/run/netns/x", "eth0")
    assert r["dns"] == {"nameservers": ["10.1.0.1"], "domain": "blue.internal",
                        "search": ["svc.cluster.local"], "options": ["ndots:5"]}
