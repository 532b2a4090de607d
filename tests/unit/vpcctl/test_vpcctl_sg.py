"""vpcctl security-group / sg and port security, against the in-process REST
server of tests/unit/vpcctl_server.py."""
import json
import urllib.request

import pytest

from tests.support.rest_server import lines, server, vpc, world  # noqa: F401
from vpcctl.secgroups import parse_rule

RULE_HEAD = ["ID", "DIRECTION", "PROTOCOL", "PORTS", "REMOTE"]


def section(text, title):
    """The lines of one blank-line-separated section starting with `title`."""
    for block in text.strip().split("\n\n"):
        if block.startswith(title):
            return lines(block)[1:]
    raise AssertionError(f"no section {title!r} in:\n{text}")


# --- the SPEC parser ------------------------------------------------------------------------
@pytest.mark.parametrize("spec, rule", [
    ("in:tcp:22:0.0.0.0/0", {"direction": "ingress", "protocol": "tcp", "ports": "22",
                             "remote": "0.0.0.0/0"}),
    ("out:any", {"direction": "egress", "protocol": "any"}),
    ("in:icmp::sg:web", {"direction": "ingress", "protocol": "icmp", "remote": "sg:web"}),
    ("ingress:UDP:8000-8080", {"direction": "ingress", "protocol": "udp", "ports": "8000-8080"}),
    ("egress", {"direction": "egress"}),
    ("in:::10.1.2.3/8", {"direction": "ingress", "remote": "10.1.2.3/8"}),
])
def test_rule_spec_parses(spec, rule):
    assert parse_rule(spec) == rule


@pytest.mark.parametrize("spec, message", [
    ("up:tcp", "direction must be in or out"),
    ("in:sctp", "protocol must be one of"),
    ("in:tcp:ssh", "ports must look like 22 or 8000-8080"),
    ("in:icmp:22", "need protocol tcp or udp"),
    ("in::22", "need protocol tcp or udp"),
    ("in:tcp:22:web", "remote must be an IPv4 or IPv6 CIDR"),
    ("in:any::sg:", "needs a group name"),
    ("", "direction must be"),
])
def test_rule_spec_rejects(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_rule(spec)


# --- groups round trip --------------------------------------------------------------------
def test_group_round_trip(world):
    vpc = world
    pid = vpc.port["id"]
    rows = lines(vpc.ok("security-group", "list", "red"))
    assert rows == [["NAME", "INDEX", "RULES", "PORTS"], ["default", "0", "2", "1"]]

    web = vpc.json("sg", "create", "red", "web", "--rule", "in:tcp:80", "--rule",
                   "in:tcp:8000-8080:10.1.2.3/8", "--rule", "in:icmp::sg:web",
                   "--rule", "out:any")
    assert (web["name"], web["index"], web["ports"]) == ("web", 1, [])
    assert [(r["direction"], r["protocol"], r["ports"], r["remote"]) for r in web["rules"]] == [
        ("ingress", "tcp", "80", "0.0.0.0/0"), ("ingress", "tcp", "8000-8080", "10.0.0.0/8"),
        ("ingress", "icmp", None, "sg:web"), ("egress", "any", None, "0.0.0.0/0")]
    assert vpc.json("security-group", "show", "red", "web") == web
    assert vpc.ok("sg", "ls", "red", "-q").split() == ["default", "web"]

    # show: fields, the rules as a table, the member ports
    text = vpc.ok("sg", "show", "red", "default")
    assert ["name", "default"] in lines(text) and ["index", "0"] in lines(text)
    rules = section(text, "RULES (2)")
    assert rules[0] == RULE_HEAD
    assert [r[1:] for r in rules[1:]] == [["egress", "any", "-", "0.0.0.0/0"],
                                          ["ingress", "any", "-", "sg:default"]]
    assert section(text, "MEMBER PORTS (1)") == [[pid]]
    assert "MEMBER PORTS (0)\n(none)" in vpc.ok("sg", "show", "red", "web")

    # rule add / list / delete
    rule = vpc.json("sg", "rule", "add", "red", "web", "--direction", "ingress", "--protocol",
                    "UDP", "--ports", "53", "--remote", "sg:default")
    assert {k: rule[k] for k in ("direction", "protocol", "ports", "remote")} == \
        {"direction": "ingress", "protocol": "udp", "ports": "53", "remote": "sg:default"}
    text = vpc.ok("sg", "rule", "add", "red", "web", "--direction", "egress")
    assert ["protocol", "any"] in lines(text) and ["remote", "0.0.0.0/0"] in lines(text)
    egress_id = dict((r[0], r[1]) for r in lines(text) if len(r) == 2)["id"]
    listed = lines(vpc.ok("sg", "rule", "list", "red", "web"))
    assert listed[0] == RULE_HEAD and len(listed) == 7
    assert [rule["id"], "ingress", "udp", "53", "sg:default"] in listed
    assert vpc.json("sg", "rule", "ls", "red", "web") == \
        vpc.json("sg", "show", "red", "web")["rules"]
    assert vpc.json("sg", "rule", "delete", "red", "web", rule["id"]) == {"deleted": rule["id"]}
    assert vpc.ok("sg", "rule", "rm", "red", "web", egress_id).strip() == \
        f"deleted rule {egress_id}"
    assert vpc.ok("sg", "rule", "list", "red", "web", "-q").split() == \
        [r["id"] for r in web["rules"]]

    # set-rules replaces them all; no --rule empties the group
    g = vpc.json("sg", "set-rules", "red", "web", "--rule", "in:tcp:443", "--rule", "out:any")
    assert [(r["direction"], r["protocol"], r["ports"]) for r in g["rules"]] == \
        [("ingress", "tcp", "443"), ("egress", "any", None)]
    assert not {r["id"] for r in g["rules"]} & {r["id"] for r in web["rules"]}
    text = vpc.ok("sg", "set-rules", "red", "web")
    assert "RULES (0)\n(none)" in text
    assert lines(vpc.ok("sg", "list", "red"))[2] == ["web", "1", "0", "0"]

    assert vpc.json("sg", "delete", "red", "web") == {"deleted": "web"}
    vpc.ok("sg", "create", "red", "db")
    assert vpc.ok("security-group", "rm", "red", "db").strip() == "deleted security group db"
    assert vpc.ok("sg", "list", "red", "-q").split() == ["default"]


def test_json_is_the_api_json(world, server):
    world.ok("sg", "create", "red", "web", "--rule", "in:tcp:22")
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for url_path, argv in (("/v1/tenants/red/security-groups", ["sg", "list", "red"]),
                           ("/v1/tenants/red/security-groups/web", ["sg", "show", "red", "web"])):
        with direct.open(server.url + url_path) as resp:
            doc = json.loads(resp.read())
        assert world.json(*argv) == doc
        assert json.loads(world.ok(*argv, "--json")) == doc


# --- ports and their groups -------------------------------------------------------------------
def test_port_attach_and_update_groups(world):
    vpc = world
    pid = vpc.port["id"]
    assert (vpc.port["security_groups"], vpc.port["port_security"]) == (["default"], True)
    vpc.ok("sg", "create", "red", "web", "--rule", "in:tcp:80")
    p2 = vpc.json("port", "attach", "red", "--host", "h2", "--port", "c2",
                  "--security-groups", "web, default")
    assert p2["security_groups"] == ["web", "default"]
    p3 = vpc.json("port", "attach", "red", "--host", "h2", "--port", "c3", "--no-port-security")
    assert (p3["security_groups"], p3["port_security"]) == ([], False)

    rows = lines(vpc.ok("port", "list", "red"))
    assert rows[0][-1] == "GROUPS"
    groups = {r[0]: r[-1] for r in rows[1:]}
    assert groups == {pid: "default", p2["id"]: "web,default", p3["id"]: "(off)"}
    show = lines(vpc.ok("port", "show", "red", p2["id"]))
    assert ["security_groups", "web,", "default"] in show and ["port_security", "yes"] in show
    assert section(vpc.ok("sg", "show", "red", "web"), "MEMBER PORTS (1)") == [[p2["id"]]]

    p = vpc.json("port", "update", "red", pid, "--security-groups", "web")
    assert (p["id"], p["security_groups"]) == (pid, ["web"])
    assert ["security_groups", "web"] in lines(vpc.ok("port", "update", "red", pid,
                                                      "--security-groups", "web"))
    p = vpc.json("port", "update", "red", pid, "--no-port-security")
    assert (p["security_groups"], p["port_security"]) == ([], False)
    p = vpc.json("port", "update", "red", pid, "--port-security")
    assert (p["security_groups"], p["port_security"]) == (["default"], True)
    p = vpc.json("port", "update", "red", pid, "--security-groups", "")
    assert (p["security_groups"], p["port_security"]) == ([], True)
    assert {r[0]: r[-1] for r in lines(vpc.ok("port", "list", "red"))[1:]}[pid] == "-"
    # only p2 is a member now: pid is in no group, p3 has no port security
    assert lines(vpc.ok("sg", "list", "red"))[1:] == [["default", "0", "2", "1"],
                                                      ["web", "1", "1", "1"]]


# --- errors ---------------------------------------------------------------------------------------
def test_bad_specs_and_options_exit_2(world):
    vpc = world
    err = vpc.fail(2, "sg", "create", "red", "web", "--rule", "up:tcp")
    assert "Invalid value for '--rule'" in err and "'up:tcp': direction must be in or out" in err
    err = vpc.fail(2, "sg", "set-rules", "red", "default", "--rule", "in:tcp:ssh")
    assert "ports must look like 22 or 8000-8080" in err
    assert "remote must be an IPv4 or IPv6 CIDR" in vpc.fail(2, "sg", "create", "red", "x", "--rule",
                                                     "in:tcp:22:web")
    err = vpc.fail(2, "sg", "rule", "add", "red", "default", "--direction", "ingress",
                   "--protocol", "icmp", "--ports", "22")
    assert "ports 22 need protocol tcp or udp" in err
    assert "Missing option '--direction'" in vpc.fail(2, "sg", "rule", "add", "red", "default")
    assert "'sideways'" in vpc.fail(2, "sg", "rule", "add", "red", "default", "--direction",
                                    "sideways")
    assert "remote must be" in vpc.fail(2, "sg", "rule", "add", "red", "default",
                                        "--direction", "egress", "--remote", "nowhere")
    assert "nothing to change" in vpc.fail(2, "port", "update", "red", vpc.port["id"])
    # nothing reached the controller
    assert vpc.ok("sg", "list", "red", "-q").split() == ["default"]
    assert len(vpc.json("sg", "show", "red", "default")["rules"]) == 2


def test_api_errors_exit_1(world):
    vpc = world
    pid = vpc.port["id"]
    vpc.ok("sg", "create", "red", "web")
    assert vpc.fail(1, "sg", "create", "red", "web") == \
        "error: security group 'web' already exists (duplicate)\n"
    assert vpc.fail(1, "sg", "show", "red", "nope") == \
        "error: tenant 'red' has no security group 'nope' (not_found)\n"
    assert "does not exist" in vpc.fail(1, "sg", "list", "ghost")
    err = vpc.fail(1, "sg", "create", "red", "db", "--rule", "in:tcp:22:sg:nope")
    assert "has no security group 'nope'" in err and "(unknown_group)" in err
    assert "need 1 <= first <= last <= 65535" in vpc.fail(
        1, "sg", "rule", "add", "red", "web", "--direction", "ingress", "--protocol", "tcp",
        "--ports", "90-80")
    assert "has no rule 'abc'" in vpc.fail(1, "sg", "rule", "delete", "red", "web", "abc")
    assert "(in_use)" in vpc.fail(1, "sg", "delete", "red", "default")
    vpc.ok("port", "update", "red", pid, "--security-groups", "web")
    err = vpc.fail(1, "sg", "delete", "red", "web")
    assert f"is used by port(s) {pid}" in err and "(in_use)" in err
    err = vpc.fail(1, "port", "update", "red", pid, "--security-groups", "web,nope")
    assert "has no security group 'nope'" in err and "(unknown_group)" in err
    err = vpc.fail(1, "port", "attach", "red", "--host", "h2", "--port", "c9",
                   "--security-groups", "web", "--no-port-security")
    assert "port_security false has no security groups" in err
    assert "(not_found)" in vpc.fail(1, "port", "update", "red", "nope", "--port-security")
    r = vpc.run("--json", "sg", "show", "red", "nope")
    assert r.exit_code == 1 and r.stdout == "" and "no security group" in r.stderr


def test_help_and_alias(vpc):
    out = vpc.ok("--help", url=False)
    assert "\n  security-group " in out and "alias sg" in out
    assert vpc.ok("sg", "--help", url=False) == vpc.ok("security-group", "--help", url=False)
    text = vpc.ok("sg", "create", "--help", url=False)
    assert "DIR[:PROTO[:PORTS[:REMOTE]]]" in text and "in:icmp::sg:web" in text
    assert "DIR[:PROTO[:PORTS[:REMOTE]]]" in vpc.ok("sg", "set-rules", "-h", url=False)
    assert "--no-port-security" in vpc.ok("port", "attach", "--help", url=False)
    assert "--port-security / --no-port-security" in vpc.ok("port", "update", "--help",
                                                            url=False)
