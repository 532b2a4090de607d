"""A real vpc-controller REST server for vpcctl tests, and a CliRunner wrapper.

RestApi over VpcService over a MsgpackStore in tmp_path, served by wsgiref on
127.0.0.1:<free port> in a thread; the CLI runs through click's CliRunner and
talks real HTTP.  Test modules import the fixtures:

    from tests.support.rest_server import lines, server, vpc, world  # noqa: F401
"""
import json
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from click.testing import CliRunner

from controller.model.state import State
from controller.api.rest import RestApi
from controller.service.vpc import VpcService
from controller.store.msgpack_store import MsgpackStore
from topology.graph import Topology
from vpcctl.main import cli


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class _TopoFacts:
    """What the app tells the service: is a host's bridge connected, port numbers."""

    def __init__(self, topo):
        self.topo = topo

    def host_connected(self, dpid):
        return self.topo.connected(dpid)

    def port_number(self, dpid, name):
        return self.topo.port_number(dpid, name)

    def port_link_down(self, dpid, name):
        return self.topo.port_link_down(dpid, name)


class Server:
    def __init__(self, tmp_path):
        self.store = MsgpackStore(tmp_path)
        self.state = State(self.store.load())
        self.topo = Topology()
        self.service = VpcService(self.state, self.store, topology=_TopoFacts(self.topo),
                                  on_change=lambda hosts: self.topo.sync_hosts(
                                      self.state.hosts.values()))
        app = RestApi(self.service, topology_json=self.topo.node_link,
                      health=lambda: {"status": "ok", "switches": 0,
                                      "hosts": len(self.state.hosts)})
        self.httpd = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
        self.store.close()


def _runner():
    try:
        return CliRunner(mix_stderr=False)      # click < 8.2
    except TypeError:
        return CliRunner()                      # click >= 8.2: stdout/stderr always apart


class Cli:
    def __init__(self, url):
        self.url = url
        self.runner = _runner()

    def run(self, *args, url=True, env=None):
        argv = (["--url", self.url] if url else []) + [str(a) for a in args]
        env = {"VPC_URL": None, **(env or {})}
        result = self.runner.invoke(cli, argv, env=env, prog_name="vpcctl")
        assert "Traceback" not in result.stdout + result.stderr
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    def ok(self, *args, **kw):
        r = self.run(*args, **kw)
        assert r.exit_code == 0, (args, r.stdout, r.stderr)
        return r.stdout

    def json(self, *args):
        return json.loads(self.ok("--json", *args))

    def fail(self, code, *args, **kw):
        r = self.run(*args, **kw)
        assert r.exit_code == code, (args, r.exit_code, r.stdout, r.stderr)
        return r.stderr


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path)
    yield s
    s.stop()


@pytest.fixture
def vpc(server):
    return Cli(server.url)


EXT = ["--external-port", "ext0", "--external-gateway", "203.0.113.1"]


@pytest.fixture
def world(vpc):
    vpc.ok("host", "add", "h1", "--dpid", "0000000000000001", "--tunnel-ip", "198.18.0.11",
           "--external-ip", "203.0.113.11", *EXT)
    vpc.ok("host", "add", "h2", "--dpid", "2", "--tunnel-ip", "198.18.0.12")
    vpc.ok("tenant", "create", "red", "--network", "vxlan")
    vpc.ok("subnet", "create", "red", "10.0.0.0/24")
    vpc.port = vpc.json("port", "attach", "red", "--host", "h1", "--port", "c1")
    return vpc


def lines(text):
    return [line.split() for line in text.strip().splitlines()]
