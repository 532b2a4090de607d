"""vpcctl's DNS/DHCP commands (`tenant dhcp-options`, `tenant dns-records`) and
port names (`port attach/update --name --alias`), against a recording fake of
the REST contract (issue 19): each command must send exactly the request the
contract describes and show the reply.  The round trip against the real
controller is in test_vpcctl.py's style once the controller serves them."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.jsonhttp import send_json
from tests.support.rest_server import Cli, lines, server, vpc, world  # noqa: F401

OPTIONS = {"tenant": "blue", "domain": "blue.internal", "resolvers": [], "lease_time": 3600,
           "ttl": 5}
PORT = {"id": "0c76ad1ee01a", "host": "h1", "port": "vweb0", "ip": "10.0.0.5",
        "mac": "02:00:0a:00:00:05", "prefixlen": 24, "gateway": "10.0.0.1", "mtu": 1450,
        "subnet": "10.0.0.0/24", "status": "up", "status_reason": None, "ofport": 3,
        "security_groups": ["default"], "port_security": True, "name": "web",
        "aliases": ["www", "api"],
        "dns": {"nameservers": ["10.0.0.1", "fd00:1::1"], "domain": "blue.internal",
                "search": ["blue.internal"]}}
RECORDS = [{"name": "db", "fqdn": "db.blue.internal", "ip": ["10.0.0.7"], "ip6": [],
            "ports": ["p3"]},
           {"name": "web", "fqdn": "web.blue.internal", "ip": ["10.0.0.5", "10.0.0.6"],
            "ip6": ["fd00:1::5"], "ports": ["p1", "p2"]}]


class FakeController:
    """Answers each (method, path) with a canned (status, body); records requests."""

    def __init__(self):
        self.replies = {}
        self.requests = []
        fake = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                body = json.loads(raw) if raw else None
                fake.requests.append((self.command, self.path, body))
                status, reply = fake.replies.get((self.command, self.path),
                                                 (404, {"error": {"code": "not_found",
                                                                  "message": "no such thing"}}))
                if callable(reply):
                    reply = reply(body)
                send_json(self, status, reply)

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake():
    f = FakeController()
    yield f
    f.stop()


@pytest.fixture
def cli(fake):
    return Cli(fake.url)


# --- tenant dhcp-options ---------------------------------------------------------------
def test_dhcp_options_without_flags_shows(fake, cli):
    fake.replies[("GET", "/v1/tenants/blue/dhcp-options")] = (200, OPTIONS)
    rows = lines(cli.ok("tenant", "dhcp-options", "blue"))
    assert ["domain", "blue.internal"] in rows
    assert ["lease_time", "3600"] in rows and ["ttl", "5"] in rows
    assert rows[2][:2] == ["resolvers", "-"] and "refused" in " ".join(rows[2])
    assert cli.json("tenant", "dhcp-options", "blue") == OPTIONS
    assert [(m, p) for m, p, _ in fake.requests] == [("GET", "/v1/tenants/blue/dhcp-options")] * 2


def test_dhcp_options_with_flags_patches_only_those_given(fake, cli):
    fake.replies[("PATCH", "/v1/tenants/blue/dhcp-options")] = (
        200, lambda body: dict(OPTIONS, **body))
    out = cli.json("tenant", "dhcp-options", "blue", "--domain", "corp.example",
                   "--resolver", "10.9.0.53", "--resolver", "[fd00::53]:5353",
                   "--resolver", "10.9.0.54:5353", "--lease-time", "600", "--ttl", "10")
    assert fake.requests[-1] == ("PATCH", "/v1/tenants/blue/dhcp-options",
                                 {"domain": "corp.example", "lease_time": 600, "ttl": 10,
                                  "resolvers": ["10.9.0.53", "[fd00::53]:5353",
                                                "10.9.0.54:5353"]})
    assert out["domain"] == "corp.example" and out["lease_time"] == 600
    rows = lines(cli.ok("tenant", "dhcp-options", "blue", "--ttl", "30"))
    assert fake.requests[-1][2] == {"ttl": 30}
    assert ["ttl", "30"] in rows
    cli.ok("tenant", "dhcp-options", "blue", "--no-resolvers")
    assert fake.requests[-1][2] == {"resolvers": []}


@pytest.mark.parametrize("args,words", [
    (["--lease-time", "59"], "60<=x<=86400"),
    (["--lease-time", "86401"], "60<=x<=86400"),
    (["--ttl", "0"], "1<=x<=3600"),
    (["--ttl", "3601"], "1<=x<=3600"),
    (["--resolver", "dns.example"], "a resolver is IP, IP:PORT or [IPV6]:PORT"),
    (["--resolver", "10.0.0.1:70000"], "a resolver is"),
    (["--resolver", "fd00::53:53"], None),             # an IPv6 address without port: fine
    (["--resolver", "1.1.1.1"] * 5, "at most 4 resolvers"),
    (["--resolver", "1.1.1.1", "--no-resolvers"], "exclude each other"),
])
def test_dhcp_options_bad_flags_exit_2_and_send_nothing(fake, cli, args, words):
    fake.replies[("PATCH", "/v1/tenants/blue/dhcp-options")] = (200, OPTIONS)
    if words is None:
        cli.ok("tenant", "dhcp-options", "blue", *args)
        assert fake.requests[-1][2] == {"resolvers": ["fd00::53:53"]}
        return
    err = cli.fail(2, "tenant", "dhcp-options", "blue", *args)
    assert words in err, err
    assert fake.requests == []


def test_dhcp_options_refusals_exit_1_with_the_controller_sentence(fake, cli):
    fake.replies[("PATCH", "/v1/tenants/blue/dhcp-options")] = (
        400, {"error": {"code": "bad_request", "message": "domain must be a DNS name"}})
    err = cli.fail(1, "tenant", "dhcp-options", "blue", "--domain", "a..b")
    assert err.strip() == "error: domain must be a DNS name (bad_request)"
    err = cli.fail(1, "tenant", "dhcp-options", "nope")
    assert "no such thing (not_found)" in err


# --- tenant dns-records -------------------------------------------------------------------
def test_dns_records_table_json_and_quiet(fake, cli):
    fake.replies[("GET", "/v1/tenants/blue/dns-records")] = (200, RECORDS)
    rows = lines(cli.ok("tenant", "dns-records", "blue"))
    assert rows[0] == ["NAME", "FQDN", "IP", "IP6", "PORTS"]
    assert rows[1] == ["db", "db.blue.internal", "10.0.0.7", "-", "p3"]
    assert rows[2] == ["web", "web.blue.internal", "10.0.0.5,10.0.0.6", "fd00:1::5", "p1,p2"]
    assert cli.json("tenant", "dns-records", "blue") == RECORDS
    assert cli.ok("tenant", "dns-records", "blue", "-q").split() == ["db", "web"]
    fake.replies[("GET", "/v1/tenants/blue/dns-records")] = (200, [])
    assert lines(cli.ok("tenant", "dns-records", "blue")) == [["NAME", "FQDN", "IP", "IP6",
                                                                "PORTS"]]


# --- port names -------------------------------------------------------------------------------
def test_port_attach_with_name_and_aliases(fake, cli):
    fake.replies[("POST", "/v1/tenants/blue/ports")] = (201, PORT)
    show = cli.ok("port", "attach", "blue", "--host", "h1", "--port", "vweb0", "--name", "web",
                  "--alias", "www", "--alias", "api", "--alias", "www")
    assert fake.requests[-1][2] == {"host": "h1", "port": "vweb0", "name": "web",
                                    "aliases": ["www", "api"]}
    rows = lines(show)
    assert ["name", "web"] in rows and ["aliases", "www,", "api"] in rows
    assert ["dns", "nameservers", "10.0.0.1", "fd00:1::1;", "domain", "blue.internal;",
            "search", "blue.internal"] in rows
    cli.ok("port", "attach", "blue", "--host", "h1", "--port", "vweb0")
    assert fake.requests[-1][2] == {"host": "h1", "port": "vweb0"}    # none given: none sent


@pytest.mark.parametrize("args,body", [
    (["--name", "web"], {"name": "web"}),
    (["--no-name"], {"name": None}),
    (["--alias", "a", "--alias", "b"], {"aliases": ["a", "b"]}),
    (["--no-aliases"], {"aliases": []}),
    (["--name", "web", "--no-aliases", "--security-groups", "web"],
     {"name": "web", "aliases": [], "security_groups": ["web"]}),
])
def test_port_update_patches_only_the_names_given(fake, cli, args, body):
    fake.replies[("PATCH", "/v1/tenants/blue/ports/p1")] = (200, PORT)
    assert cli.json("port", "update", "blue", "p1", *args) == PORT
    assert fake.requests == [("PATCH", "/v1/tenants/blue/ports/p1", body)]


@pytest.mark.parametrize("args,words", [
    ([], "nothing to change"),
    (["--name", "a", "--no-name"], "exclude each other"),
    (["--alias", "a", "--no-aliases"], "exclude each other"),
    (["--name", ""], "is not a DNS name"),
    (["--alias", "two words"], "is not a DNS name"),
])
def test_port_update_bad_name_flags_exit_2(fake, cli, args, words):
    assert words in cli.fail(2, "port", "update", "blue", "p1", *args)
    assert fake.requests == []


def test_port_list_shows_names_only_when_a_port_has_one(fake, cli):
    plain = {k: v for k, v in PORT.items() if k not in ("name", "aliases", "dns")}
    fake.replies[("GET", "/v1/tenants/blue/ports")] = (200, [dict(plain, id="p0")])
    assert lines(cli.ok("port", "list", "blue"))[0] == [
        "ID", "HOST", "PORT", "IP", "MAC", "SUBNET", "STATUS", "OFPORT", "GROUPS"]
    fake.replies[("GET", "/v1/tenants/blue/ports")] = (200, [
        dict(plain, id="p0", name=None, aliases=[]), dict(PORT, id="p1"),
        dict(PORT, id="p2", name=None, aliases=["www"])])
    rows = lines(cli.ok("port", "list", "blue"))
    assert rows[0] == ["ID", "HOST", "PORT", "NAME", "ALIASES", "IP", "MAC", "SUBNET", "STATUS",
                       "OFPORT", "GROUPS"]
    assert [r[3:5] for r in rows[1:]] == [["-", "-"], ["web", "www,api"], ["-", "www"]]


# --- against the real controller (tests/support/rest_server.py) -------------------------
def test_round_trip_with_the_controller(world):
    vpc = world
    opts = vpc.json("tenant", "dhcp-options", "red")
    assert opts["domain"] == "red.internal" and opts["resolvers"] == []
    opts = vpc.json("tenant", "dhcp-options", "red", "--domain", "corp.example",
                    "--resolver", "10.9.0.53", "--ttl", "9")
    assert (opts["domain"], opts["resolvers"], opts["ttl"]) == ("corp.example", ["10.9.0.53"], 9)
    assert vpc.json("tenant", "dhcp-options", "red", "--no-resolvers")["resolvers"] == []
    assert "(not_found)" in vpc.fail(1, "tenant", "dhcp-options", "nope")
    assert "DNS name" in vpc.fail(1, "tenant", "dhcp-options", "red", "--domain", "a..b")

    p2 = vpc.json("port", "attach", "red", "--host", "h2", "--port", "c2", "--name", "Web",
                  "--alias", "www")
    assert (p2["name"], p2["aliases"]) == ("web", ["www"])
    assert p2["dns"]["nameservers"] == ["10.0.0.1"] and p2["dns"]["domain"] == "corp.example"
    p1 = vpc.json("port", "update", "red", vpc.port["id"], "--alias", "www")
    assert (p1["name"], p1["aliases"]) == (None, ["www"])
    rows = lines(vpc.ok("port", "list", "red"))
    assert rows[0][3:5] == ["NAME", "ALIASES"]
    records = {r["name"]: r for r in vpc.json("tenant", "dns-records", "red")}
    assert sorted(records["www"]["ip"]) == sorted([p1["ip"], p2["ip"]])
    assert records["web"]["fqdn"] == "web.corp.example"
    assert "www" in vpc.ok("tenant", "dns-records", "red", "-q").split()
    p1 = vpc.json("port", "update", "red", vpc.port["id"], "--no-aliases")
    assert p1["aliases"] == []
    assert "DNS name" in vpc.fail(1, "port", "update", "red", vpc.port["id"], "--name", "-x")
