"""vpcctl against a real REST server: RestApi over VpcService over a
MsgpackStore in tmp_path, served by wsgiref on 127.0.0.1:<free port> in a
thread (tests/unit/vpcctl_server.py).  The CLI runs through click's CliRunner
and talks real HTTP."""
import json
import socket
import urllib.request

from tests.support.rest_server import lines, server, vpc, world  # noqa: F401


# --- resources ---------------------------------------------------------------------------
def test_host_round_trip(vpc):
    out = vpc.ok("host", "add", "h1", "--dpid", "0x1", "--tunnel-ip", "198.18.0.11",
                 "--uplink-port", "patch-phy")
    assert "dpid" in out and "0000000000000001" in out and "patch-phy" in out
    h2 = vpc.json("host", "add", "h2", "--dpid", "00:00:00:00:00:00:00:02",
                  "--tunnel-ip", "198.18.0.12", "--external-port", "ext0",
                  "--external-ip", "203.0.113.12", "--external-gateway", "203.0.113.1")
    assert h2 == {"name": "h2", "dpid": "0000000000000002", "tunnel_ip": "198.18.0.12",
                  "uplink_port": None, "external_port": "ext0", "external_ip": "203.0.113.12",
                  "external_gateway": "203.0.113.1", "connected": False}
    table = lines(vpc.ok("host", "list"))
    assert table[0] == ["NAME", "DPID", "TUNNEL_IP", "UPLINK", "EXTERNAL_PORT", "EXTERNAL_IP",
                        "GATEWAY", "CONNECTED"]
    assert table[1] == ["h1", "0000000000000001", "198.18.0.11", "patch-phy", "-", "-", "-", "no"]
    assert vpc.ok("host", "list", "-q").split() == ["h1", "h2"]
    assert vpc.json("host", "show", "h2") == h2
    show = vpc.ok("host", "show", "h1")
    assert ["tunnel_ip", "198.18.0.11"] in lines(show)
    assert vpc.json("host", "delete", "h2") == {"deleted": "h2"}
    assert vpc.ok("host", "delete", "h1").strip() == "deleted host h1"
    assert vpc.json("host", "list") == []
    assert lines(vpc.ok("host", "list")) == [["NAME", "DPID", "TUNNEL_IP", "UPLINK",
                                              "EXTERNAL_PORT", "EXTERNAL_IP", "GATEWAY",
                                              "CONNECTED"]]


def test_tenant_round_trip_and_snat(world):
    vpc = world
    blue = vpc.json("tenant", "create", "blue", "--network", "vlan", "--segment", "100")
    assert (blue["network"], blue["segment"], blue["snat"]) == ("vlan", 100, False)
    rows = lines(vpc.ok("tenant", "list"))
    assert rows[0] == ["NAME", "NETWORK", "SEGMENT", "ID", "SUBNETS", "PORTS", "SNAT"]
    assert rows[1] == ["blue", "vlan", "100", "2", "-", "0", "no"]
    assert rows[2] == ["red", "vxlan", "1", "1", "10.0.0.0/24", "1", "no"]
    assert vpc.json("tenant", "show", "blue") == blue

    on = vpc.json("tenant", "snat", "red", "on")
    assert on["snat"] is True and len(on["snat_ports"]) == 2
    show = lines(vpc.ok("tenant", "show", "red"))
    assert ["snat", "yes"] in show
    assert ["snat_ports", f"{on['snat_ports'][0]}-{on['snat_ports'][1]}"] in show
    off = lines(vpc.ok("tenant", "snat", "red", "OFF"))
    assert ["snat", "no"] in off and ["snat_ports", "-"] in off
    assert vpc.json("tenant", "show", "red")["snat"] is False

    assert vpc.json("tenant", "delete", "blue") == {"deleted": "blue"}
    assert vpc.ok("tenant", "list", "-q").split() == ["red"]


def test_subnet_round_trip_takes_plain_cidrs(world):
    vpc = world
    s = vpc.json("subnet", "create", "red", "10.1.0.0/16", "--gateway", "10.1.255.254")
    assert s == {"tenant": "red", "cidr": "10.1.0.0/16", "gateway": "10.1.255.254", "ip_version": 4,
                 "ports": 0}
    assert lines(vpc.ok("subnet", "list", "red")) == [
        ["CIDR", "GATEWAY", "PORTS"], ["10.0.0.0/24", "10.0.0.1", "1"],
        ["10.1.0.0/16", "10.1.255.254", "0"]]
    assert vpc.json("subnet", "show", "red", "10.1.0.0/16") == s
    assert ["gateway", "10.0.0.1"] in lines(vpc.ok("subnet", "show", "red", "10.0.0.0/24"))
    assert vpc.json("subnet", "delete", "red", "10.1.0.0/16") == {"deleted": "10.1.0.0/16"}
    assert vpc.ok("subnet", "list", "red", "-q").split() == ["10.0.0.0/24"]
    err = vpc.fail(1, "subnet", "delete", "red", "10.0.0.0/24")
    assert err.startswith("error: subnet 10.0.0.0/24 still has 1 port(s) (in_use)")


def test_port_round_trip(world):
    vpc = world
    p = vpc.port
    assert (p["host"], p["port"], p["ip"], p["subnet"]) == ("h1", "c1", "10.0.0.2", "10.0.0.0/24")
    p2 = vpc.json("port", "attach", "red", "--host", "h2", "--port", "c2", "--ip", "10.0.0.50",
                  "--mac", "02:00:00:00:00:50", "--subnet", "10.0.0.0/24")
    assert (p2["ip"], p2["mac"], p2["status"]) == ("10.0.0.50", "02:00:00:00:00:50", "down")
    rows = lines(vpc.ok("port", "list", "red"))
    assert rows[0] == ["ID", "HOST", "PORT", "IP", "MAC", "SUBNET", "STATUS", "OFPORT", "GROUPS"]
    assert [p["id"], "h1", "c1", "10.0.0.2", p["mac"], "10.0.0.0/24", "down", "-",
            "default"] in rows
    assert sorted(vpc.ok("port", "ls", "red", "-q").split()) == sorted([p["id"], p2["id"]])
    assert vpc.json("port", "show", "red", p2["id"]) == p2
    assert ["mtu", str(p["mtu"])] in lines(vpc.ok("port", "show", "red", p["id"]))
    assert vpc.json("port", "detach", "red", p2["id"]) == {"deleted": p2["id"]}
    assert vpc.ok("port", "rm", "red", p["id"]).strip() == f"deleted port {p['id']}"
    assert vpc.json("port", "list", "red") == []
    vpc.ok("tenant", "delete", "red")
    assert "does not exist" in vpc.fail(1, "port", "list", "red")


def test_port_forward_and_floating_ip(world):
    vpc = world
    pid = vpc.port["id"]
    f = vpc.json("port-forward", "add", "red", "--port-id", pid, "--external-port", "2222",
                 "--internal-port", "22")
    assert (f["protocol"], f["external_ip"], f["internal_ip"]) == \
        ("tcp", "203.0.113.11", "10.0.0.2")
    u = vpc.json("port-forward", "add", "red", "--port-id", pid, "--protocol", "udp",
                 "--external-port", "5353", "--internal-port", "53")
    rows = lines(vpc.ok("port-forward", "list", "red"))
    assert rows[0] == ["ID", "PROTOCOL", "EXTERNAL", "INTERNAL", "PORT_ID", "HOST"]
    assert [f["id"], "tcp", "203.0.113.11:2222", "10.0.0.2:22", pid, "h1"] in rows
    assert [u["id"], "udp", "203.0.113.11:5353", "10.0.0.2:53", pid, "h1"] in rows
    assert vpc.json("port-forward", "show", "red", u["id"]) == u
    err = vpc.fail(1, "port-forward", "add", "red", "--port-id", pid, "--external-port", "2222",
                   "--internal-port", "80")
    assert "203.0.113.11 tcp/2222 already forwards" in err and "(duplicate)" in err
    assert vpc.json("port-forward", "delete", "red", u["id"]) == {"deleted": u["id"]}
    assert [x["id"] for x in vpc.json("port-forward", "list", "red")] == [f["id"]]

    fip = vpc.json("floating-ip", "add", "red", "--port-id", pid, "--external-ip",
                   "203.0.113.100")
    assert (fip["ip"], fip["port_id"], fip["host"]) == ("10.0.0.2", pid, "h1")
    rows = lines(vpc.ok("floating-ip", "list", "red"))
    assert rows == [["ID", "EXTERNAL_IP", "IP", "PORT_ID", "HOST"],
                    [fip["id"], "203.0.113.100", "10.0.0.2", pid, "h1"]]
    assert vpc.json("floating-ip", "show", "red", fip["id"]) == fip
    assert "is an address of host 'h1'" in vpc.fail(
        1, "floating-ip", "add", "red", "--port-id", pid, "--external-ip", "203.0.113.11")
    assert vpc.ok("floating-ip", "delete", "red", fip["id"]).strip() == \
        f"deleted floating IP {fip['id']}"
    assert vpc.json("floating-ip", "list", "red") == []


def test_nat_needs_an_external_host(world):
    vpc = world
    p2 = vpc.json("port", "attach", "red", "--host", "h2", "--port", "c2")
    err = vpc.fail(1, "port-forward", "add", "red", "--port-id", p2["id"], "--external-port",
                   "80", "--internal-port", "80")
    assert "has no external network" in err and "(no_external)" in err


def test_health_and_topology(world, server):
    vpc = world
    assert vpc.json("health") == {"status": "ok", "switches": 0, "hosts": 2}
    assert ["status", "ok"] in lines(vpc.ok("health"))
    # h1 and h2 connect; h1's bridge has two ports
    server.topo.datapath_up(1)
    server.topo.datapath_up(2)
    server.topo.port_added(1, "c1", 5)
    server.topo.port_added(1, "patch-phy", 1)
    raw = vpc.json("topology")
    assert {"nodes", "links"} <= set(raw)
    text = vpc.ok("topology")
    assert "HOSTS (2)" in text and "DATAPATHS (2)" in text and "TUNNEL MESH (1 edge between" in text
    rows = lines(text)
    assert ["h1", "0000000000000001", "198.18.0.11", "yes", "2"] in rows
    assert ["h2", "0000000000000002", "198.18.0.12", "yes", "0"] in rows
    assert ["0000000000000001", "h1", "yes", "2"] in rows
    assert ["h1", "h2", "198.18.0.11", "<->", "198.18.0.12"] in rows
    # the port is up now that the bridge has it
    assert vpc.json("port", "show", "red", vpc.port["id"])["ofport"] == 5
    server.topo.datapath_down(2)
    assert "TUNNEL MESH (0 edges between connected hosts)\n(none)" in vpc.ok("topology")


def test_topology_of_an_empty_controller(vpc):
    text = vpc.ok("topology")
    assert "HOSTS (0)\n(none)" in text and "DATAPATHS (0)\n(none)" in text


# --- machine output ---------------------------------------------------------------------------
def test_every_command_has_parseable_json(world):
    vpc = world
    pid = vpc.port["id"]
    fwd = vpc.json("port-forward", "add", "red", "--port-id", pid, "--external-port", "8080",
                   "--internal-port", "80")
    fip = vpc.json("floating-ip", "add", "red", "--port-id", pid, "--external-ip", "203.0.113.9")
    reads = [
        ["health"], ["topology"], ["host", "list"], ["host", "show", "h1"], ["tenant", "list"],
        ["tenant", "show", "red"], ["subnet", "list", "red"],
        ["subnet", "show", "red", "10.0.0.0/24"], ["port", "list", "red"],
        ["port", "show", "red", pid], ["port-forward", "list", "red"],
        ["port-forward", "show", "red", fwd["id"]], ["floating-ip", "list", "red"],
        ["floating-ip", "show", "red", fip["id"]],
    ]
    writes = [
        ["host", "add", "h3", "--dpid", "3", "--tunnel-ip", "198.18.0.13"],
        ["host", "delete", "h3"],
        ["tenant", "create", "t2", "--network", "gre"], ["tenant", "snat", "t2", "on"],
        ["tenant", "snat", "t2", "off"], ["tenant", "delete", "t2"],
        ["subnet", "create", "red", "10.9.0.0/24"], ["subnet", "delete", "red", "10.9.0.0/24"],
        ["port-forward", "delete", "red", fwd["id"]],
        ["floating-ip", "delete", "red", fip["id"]],
        ["port", "detach", "red", pid],
        ["port", "attach", "red", "--host", "h2", "--port", "c2"],
    ]
    for argv in reads:      # global --json and per-command --json print the same document
        doc = json.loads(vpc.ok("--json", *argv))
        assert json.loads(vpc.ok(*argv, "--json")) == doc
    for argv in writes:
        assert isinstance(json.loads(vpc.ok("--json", *argv)), dict)


def test_json_is_the_api_json(world, server):
    for path, argv in (("/v1/tenants/red/ports", ["port", "list", "red"]),
                       ("/v1/hosts/h1", ["host", "show", "h1"]),
                       ("/v1/tenants/red/subnets/10.0.0.0_24", ["subnet", "show", "red",
                                                                "10.0.0.0/24"])):
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with direct.open(server.url + path) as resp:
            assert world.json(*argv) == json.loads(resp.read())


# --- errors --------------------------------------------------------------------------------------
def test_api_errors_exit_1_with_the_message(world):
    vpc = world
    err = vpc.fail(1, "subnet", "create", "red", "10.0.0.0/33")
    assert err.startswith("error: cidr '10.0.0.0/33' is not a valid network") and "(invalid)" in err
    err = vpc.fail(1, "tenant", "show", "nope")
    assert err == "error: tenant 'nope' does not exist (not_found)\n"
    err = vpc.fail(1, "tenant", "create", "red", "--network", "vlan")
    assert err == "error: tenant 'red' already exists (duplicate)\n"
    err = vpc.fail(1, "tenant", "create", "x", "--network", "vlan", "--segment", "5000")
    assert "between" in err and "(out_of_range)" in err
    err = vpc.fail(1, "host", "add", "h9", "--dpid", "xyz", "--tunnel-ip", "198.18.0.99")
    assert "dpid must be up to 16 hex digits" in err
    err = vpc.fail(1, "tenant", "delete", "red")
    assert "still has 1 port(s)" in err and "(in_use)" in err
    err = vpc.fail(1, "port", "attach", "red", "--host", "ghost", "--port", "c9")
    assert "host 'ghost' is not registered" in err and "(unknown_host)" in err
    # --json does not change where errors go: stderr, nothing on stdout
    r = vpc.run("--json", "tenant", "show", "nope")
    assert r.exit_code == 1 and r.stdout == "" and "does not exist" in r.stderr


def test_usage_errors_exit_2(vpc):
    assert "Missing option '--network'" in vpc.fail(2, "tenant", "create", "x")
    assert "'ipx'" in vpc.fail(2, "tenant", "create", "x", "--network", "ipx")
    assert "'maybe'" in vpc.fail(2, "tenant", "snat", "x", "maybe")
    assert "not a valid integer" in vpc.fail(2, "port-forward", "add", "t", "--port-id", "p",
                                             "--external-port", "http", "--internal-port", "80")
    assert "No such command" in vpc.fail(2, "tenant", "frobnicate")
    assert "not a controller URL" in vpc.fail(2, "--url", "ftp://x", "health", url=False)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_controller_exits_3(vpc):
    url = f"http://127.0.0.1:{_free_port()}"
    r = vpc.run("--url", url, "tenant", "list", url=False)
    assert r.exit_code == 3 and r.stdout == ""
    assert f"error: cannot reach the controller at {url}: connection refused" in r.stderr
    assert "--url" in r.stderr and "VPC_URL" in r.stderr
    r = vpc.run("tenant", "list", url=False, env={"VPC_URL": url})
    assert r.exit_code == 3 and url in r.stderr


def test_silent_controller_times_out_with_exit_3(vpc):
    with socket.socket() as s:          # accepts connections (backlog), never answers
        s.bind(("127.0.0.1", 0))
        s.listen(5)
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        r = vpc.run("--url", url, "--timeout", "0.3", "health", url=False)
    assert r.exit_code == 3 and "timed out" in r.stderr and url in r.stderr


def test_url_flag_and_env(server, vpc):
    vpc.ok("tenant", "create", "red", "--network", "vlan")
    by_env = vpc.run("tenant", "list", "-q", url=False, env={"VPC_URL": server.url})
    assert by_env.exit_code == 0 and by_env.stdout.split() == ["red"]
    bare = server.url.removeprefix("http://") + "/"         # host:port/ is fine too
    assert vpc.ok("--url", bare, "tenant", "ls", "-q", url=False).split() == ["red"]
    # --url wins over VPC_URL
    dead = f"http://127.0.0.1:{_free_port()}"
    assert vpc.ok("tenant", "list", "-q", env={"VPC_URL": dead}).split() == ["red"]
    assert vpc.fail(3, "tenant", "list", url=False, env={"VPC_URL": dead})


def test_aliases_and_help(vpc):
    out = vpc.ok("--help", url=False)
    for group in ("health", "topology", "host", "tenant", "subnet", "port", "port-forward",
                  "floating-ip"):
        assert f"\n  {group} " in out
    assert "scripts/attach" in vpc.ok("port", "attach", "--help")
    vpc.ok("tenant", "add", "t1", "--network", "vxlan")       # add -> create
    vpc.ok("host", "create", "h1", "--dpid", "1", "--tunnel-ip", "198.18.0.1")   # create -> add
    assert vpc.json("tenant", "inspect", "t1")["name"] == "t1"
    assert vpc.json("tenant", "rm", "t1") == {"deleted": "t1"}
    assert vpc.json("host", "ls") and vpc.json("host", "remove", "h1") == {"deleted": "h1"}
