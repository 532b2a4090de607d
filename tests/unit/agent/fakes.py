"""What the agent's unit tests put in place of the host and of dockerd.

The controller is never faked: tests run the real REST app (tests.support.
rest_server).  The host side (veths, OVS) needs root and a running OVS, so the
unit tests use ``FakeHost``, which keeps links and OVS interfaces in dicts
with the same methods the drivers call; the lab tests run the real one.
``FakeDockerd`` answers the one dockerd call the agent makes (GET
/networks/ID) on a unix socket, through the docker SDK like the real thing.
"""
import os

from tests.support.jsonhttp import send_json
from vpcagent import server
from vpcagent.plumbing import PlumbingError


class FakeOvs:
    def __init__(self):
        self.ifaces = {}

    def find(self, **ids):
        return [{"name": n, "external_ids": dict(e), "link_state": "up"}
                for n, e in sorted(self.ifaces.items())
                if all(e.get(k) == v for k, v in ids.items())]

    def ports(self):
        return sorted(self.ifaces)


class FakeHost:
    def __init__(self):
        self.ovs = FakeOvs()
        self.links = set()
        self.mtu = {}
        self.fail_create = False

    def link_exists(self, name):
        return name in self.links

    def create_port(self, name, peer, mtu=None, external_ids=None):
        if self.fail_create:
            raise PlumbingError("create veth: Operation not permitted")
        self.links |= {name, peer}
        self.mtu[name] = self.mtu[peer] = mtu
        self.ovs.ifaces[name] = dict(external_ids or {})

    def delete_link(self, name):
        peer = "vc" + name[2:]
        found = name in self.links
        self.links -= {name, peer}
        return found

    def delete_port(self, name):
        self.ovs.ifaces.pop(name, None)
        self.delete_link(name)


class FakeDockerd:
    """GET /v1.41/networks/<id> -> the network as dockerd shows it."""

    def __init__(self, path):
        self.networks = {}
        router = server.Router()
        self.path = path
        self.srv = server.UnixHTTPServer(path, router)
        self.srv.RequestHandlerClass = _handler(self)
        import threading
        threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()
        if os.path.exists(self.path):
            os.unlink(self.path)


def _handler(fake):
    from http.server import BaseHTTPRequestHandler

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def address_string(self):
            return "unix"

        def do_GET(self):
            nid = self.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
            net = fake.networks.get(nid)
            status, body = (200, net) if net else (404, {"message": f"network {nid} not found"})
            send_json(self, status, body)

    return H
