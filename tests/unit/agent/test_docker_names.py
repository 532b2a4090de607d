"""vpcagent.docker_names: after a Join, the container's DNS names go to its
controller port and its resolv.conf to the tenant's DNS -- in the background,
best effort.  dockerd and the controller are fakes here (a docker APIClient
look-alike and a recording controller); the driver's side (Join starts it and
does not wait) is at the end."""
import hashlib
import os
import threading
import time

import docker.errors
import pytest

from vpcagent import docker_names as dn
from vpcagent.docker_driver import NetworkDriver
from vpcagent.server import ProtocolError, Router

NID = "450a9fd52032" + "0" * 52
EID = "2b36fadb45e6" + "1" * 52
SANDBOX = "/var/run/docker/netns/5a0e2a1b7c3d"
CID = "3f2a1b0c9d8e" + "2" * 52
IDS = {"vpc-port-id": "p1", "vpc-tenant": "blue", "vpc-gateway": "10.1.0.1",
       "vpc-gateway6": ""}
DOCKER_RC = "nameserver 127.0.0.11\noptions ndots:0\n"


def container(tmp_path, name="/web1", hostname="3f2a1b0c9d8e", aliases=("web", "3f2a1b0c9d8e"),
              running=True, sandbox=SANDBOX, dns=(), rc=DOCKER_RC):
    rc_path = tmp_path / "resolv.conf"
    if rc is not None:
        rc_path.write_text(rc)
    return {"Id": CID, "Name": name, "Config": {"Hostname": hostname},
            "State": {"Running": running},
            "HostConfig": {"Dns": list(dns), "DnsSearch": [], "DnsOptions": []},
            "ResolvConfPath": str(rc_path),
            "NetworkSettings": {"SandboxKey": sandbox, "Networks": {
                "blue": {"NetworkID": NID, "EndpointID": EID, "Aliases": list(aliases)}}}}


class FakeDocker:
    """containers() and inspect_container() of docker.APIClient; ``starts``
    inspects answer "not running yet" first."""

    def __init__(self, *infos, starts=0, list_error=None):
        self.infos = {i["Id"]: i for i in infos}
        self.starts = starts
        self.list_error = list_error
        self.inspected = []

    def containers(self, all=False, filters=None):
        if self.list_error:
            raise self.list_error
        return [{"Id": i, "State": "created", "Created": 1, "NetworkSettings": {"Networks": {}}}
                for i in self.infos]

    def inspect_container(self, cid):
        self.inspected.append(cid)
        if cid not in self.infos:
            raise docker.errors.NotFound("gone")
        info = dict(self.infos[cid])
        if self.starts > 0:
            self.starts -= 1
            info["State"] = {"Running": False}
        return info


class FakeController:
    def __init__(self, reply=None, refuse=None, options=None):
        self.calls = []
        self.reply, self.refuse, self.options = reply, refuse, options

    def call(self, method, p, body=None, missing_ok=False):
        self.calls.append((method, p, body))
        if self.refuse:
            raise ProtocolError(f"controller: {self.refuse}")
        return self.reply

    def get(self, *parts, missing_ok=False):
        self.calls.append(("GET", "/v1/" + "/".join(parts), None))
        return self.options


class FakeNetworks:
    def __init__(self, dns=None):
        self.dns = dns
        self.docker_socket = "/nonexistent/docker.sock"

    def get(self, nid):
        return {"tenant": "blue", "dns": self.dns}


PORT_REPLY = {"id": "p1", "name": "web1", "aliases": ["3f2a1b0c9d8e", "web"],
              "dns": {"nameservers": ["10.1.0.1", "fd00:1::1"], "domain": "blue.internal",
                      "search": ["blue.internal"]}}


def names(fake, ctl=None, dns=None, wait=2.0):
    return dn.ContainerNames(ctl or FakeController(PORT_REPLY), FakeNetworks(dns),
                             client_factory=lambda: fake, wait=wait, poll=0.01)


# --- names ------------------------------------------------------------------------------
@pytest.mark.parametrize("raw,want", [
    ("web", "web"), ("Web_1", "web_1"), ("web.blue.", "web.blue"), ("a-b", "a-b"),
    ("-web", None), ("web-", None), ("a..b", None), ("", None), ("x" * 64, None),
    ("has space", None), (None, None), ("ünï", None),
])
def test_dns_name(raw, want):
    assert dn.dns_name(raw) == want


def test_names_of_a_container(tmp_path):
    info = container(tmp_path, name="/Web1", hostname="web1",
                     aliases=("web", "3f2a1b0c9d8e", "WEB", "bad-", "api"))
    assert dn.names_of(info, NID) == ("web1", ["web", "3f2a1b0c9d8e", "api"], ["bad-"])
    # the hostname (default: the short id) comes first among the aliases
    info = container(tmp_path)
    assert dn.names_of(info, NID) == ("web1", ["3f2a1b0c9d8e", "web"], [])
    # a container name that is no DNS name: none, the aliases still
    info = container(tmp_path, name="/my-app-", aliases=("web",))
    assert dn.names_of(info, NID) == (None, ["3f2a1b0c9d8e", "web"], ["my-app-"])
    # the network entry by endpoint id when the network id differs
    assert dn.names_of(info, "other", EID)[1] == ["3f2a1b0c9d8e", "web"]
    assert dn.names_of(info, "other", "nope")[1] == ["3f2a1b0c9d8e"]


def test_at_most_32_aliases(tmp_path):
    info = container(tmp_path, aliases=[f"a{i}" for i in range(40)])
    _, aliases, skipped = dn.names_of(info, NID)
    assert len(aliases) == 32 and aliases[0] == "3f2a1b0c9d8e"
    assert skipped == [f"a{i}" for i in range(31, 40)]


# --- resolv.conf ------------------------------------------------------------------------
def test_resolv_conf_content():
    text = dn.resolv_conf(PORT_REPLY["dns"])
    assert text.splitlines()[1:] == ["nameserver 10.1.0.1", "nameserver fd00:1::1",
                                     "search blue.internal", "options ndots:0"]
    assert text.startswith(dn.MARK)
    assert "search x.internal" in dn.resolv_conf({"nameservers": ["10.0.0.1"],
                                                  "domain": "x.internal"})


def test_whose_resolv_conf():
    assert dn.whose(DOCKER_RC) == "docker"
    assert dn.whose(dn.resolv_conf(PORT_REPLY["dns"])) == "ours"
    host_rc = "nameserver 192.0.2.53\n"
    assert dn.whose(host_rc) is None
    digest = "sha256:" + hashlib.sha256(host_rc.encode()).hexdigest()
    assert dn.whose(host_rc, digest + "\n") == "docker"         # Docker's, by its hash file
    assert dn.whose(host_rc, "sha256:0000") is None             # changed since Docker wrote it


def test_rewrite_is_in_place_and_only_for_dockers_file(tmp_path):
    rc = tmp_path / "resolv.conf"
    rc.write_text(DOCKER_RC + "# a long tail that must not survive\n" * 5)
    inode = os.stat(rc).st_ino
    new = dn.resolv_conf(PORT_REPLY["dns"])
    assert dn.rewrite_resolv_conf(str(rc), new) == (True, None)
    assert rc.read_text() == new and os.stat(rc).st_ino == inode
    assert dn.rewrite_resolv_conf(str(rc), new) == (True, None)     # ours: again, fine
    rc.write_text("nameserver 192.0.2.53\n")                        # the user's own
    written, why = dn.rewrite_resolv_conf(str(rc), new)
    assert not written and "192.0.2.53" in why
    assert rc.read_text() == "nameserver 192.0.2.53\n"


# --- the work after Join --------------------------------------------------------------------
def test_names_the_port_and_points_resolv_conf_at_the_gateways(tmp_path):
    info = container(tmp_path)
    ctl = FakeController(PORT_REPLY)
    inode = os.stat(info["ResolvConfPath"]).st_ino
    fake = FakeDocker(info, starts=3)                  # not running for three looks
    done = names(fake, ctl).run(NID, EID, SANDBOX, IDS)
    assert ctl.calls == [("PATCH", "/v1/tenants/blue/ports/p1",
                          {"name": "web1", "aliases": ["3f2a1b0c9d8e", "web"]})]
    assert done == {"container": "web1", "name": "web1", "aliases": ["3f2a1b0c9d8e", "web"],
                    "resolv_conf": "10.1.0.1 fd00:1::1"}
    text = open(info["ResolvConfPath"]).read()
    assert "nameserver 10.1.0.1\nnameserver fd00:1::1\nsearch blue.internal\n" \
           "options ndots:0\n" in text
    assert os.stat(info["ResolvConfPath"]).st_ino == inode
    assert len(fake.inspected) == 4


def test_the_container_is_found_by_its_sandbox_among_others(tmp_path):
    (tmp_path / "x").mkdir()
    other = dict(container(tmp_path / "x", sandbox="/var/run/docker/netns/other"), Id="0" * 64)
    mine = container(tmp_path)
    done = names(FakeDocker(other, mine)).run(NID, EID, SANDBOX, IDS)
    assert done["container"] == "web1"
    assert open(os.path.join(tmp_path, "x", "resolv.conf")).read() == DOCKER_RC


def test_docker_dns_option_keeps_dockers_resolver(tmp_path):
    info = container(tmp_path)
    ctl = FakeController(PORT_REPLY)
    done = names(FakeDocker(info), ctl, dns="docker").run(NID, EID, SANDBOX, IDS)
    assert done["resolv_conf"].startswith("docker's")
    assert ctl.calls[0][0] == "PATCH"                  # the names still go to the port
    assert open(info["ResolvConfPath"]).read() == DOCKER_RC


def test_a_container_with_its_own_dns_keeps_it(tmp_path):
    info = container(tmp_path, dns=["192.0.2.53"])
    done = names(FakeDocker(info)).run(NID, EID, SANDBOX, IDS)
    assert "--dns" in done["resolv_conf"]
    assert open(info["ResolvConfPath"]).read() == DOCKER_RC


def test_a_refused_patch_is_logged_and_the_resolver_still_set(tmp_path, caplog):
    info = container(tmp_path)
    ctl = FakeController(refuse="name must be a DNS name",
                         options={"domain": "corp.example"})
    done = names(FakeDocker(info), ctl).run(NID, EID, SANDBOX, IDS)
    assert "keeps no DNS name" in caplog.text and "name must be a DNS name" in caplog.text
    assert done["resolv_conf"] == "10.1.0.1"           # from the port's gateway
    text = open(info["ResolvConfPath"]).read()
    assert "nameserver 10.1.0.1\nsearch corp.example\n" in text
    assert ("GET", "/v1/tenants/blue/dhcp-options", None) in ctl.calls


def test_no_such_container_gives_up_after_the_wait(tmp_path, caplog):
    info = container(tmp_path, sandbox="/var/run/docker/netns/other")
    ctl = FakeController(PORT_REPLY)
    t0 = time.monotonic()
    assert names(FakeDocker(info), ctl, wait=0.2).run(NID, EID, SANDBOX, IDS) is None
    assert 0.2 <= time.monotonic() - t0 < 2
    assert ctl.calls == [] and f"no container has sandbox {SANDBOX}" in caplog.text


def test_a_container_that_never_runs_is_left_alone(tmp_path, caplog):
    info = container(tmp_path, running=False)
    ctl = FakeController(PORT_REPLY)
    assert names(FakeDocker(info), ctl, wait=0.1).run(NID, EID, SANDBOX, IDS) is None
    assert ctl.calls == [] and "did not run" in caplog.text


def test_dockerd_errors_end_it_quietly(tmp_path, caplog):
    fake = FakeDocker(list_error=docker.errors.APIError("500 Server Error"))
    assert names(fake).run(NID, EID, SANDBOX, IDS) is None
    assert "cannot list containers" in caplog.text

    def broken():
        raise docker.errors.DockerException("no socket")
    n = dn.ContainerNames(FakeController(), FakeNetworks(), client_factory=broken)
    assert n.run(NID, EID, SANDBOX, IDS) is None and "no socket" in caplog.text


def test_an_unwritable_resolv_conf_is_only_a_log_line(tmp_path, caplog):
    info = container(tmp_path, rc=None)                 # the file is not there
    done = names(FakeDocker(info)).run(NID, EID, SANDBOX, IDS)
    assert done["name"] == "web1" and done["resolv_conf"] == "unchanged (error)"
    assert "cannot rewrite" in caplog.text


# --- the driver: Join starts it and does not wait -------------------------------------------
class _Ovs:
    def __init__(self, ids):
        self.ids = ids

    def find(self, **match):
        return [{"name": "vd0123456789a", "external_ids": dict(self.ids)}]


class _Host:
    def __init__(self, ids):
        self.ovs = _Ovs(ids)

    def link_exists(self, name):
        return True


def test_join_answers_at_once_and_names_in_the_background(tmp_path):
    info = container(tmp_path)
    ctl = FakeController(PORT_REPLY)
    release = threading.Event()
    fake = FakeDocker(info)

    def slow_client():
        release.wait(10)                                # dockerd busy starting the container
        return fake
    worker = dn.ContainerNames(ctl, FakeNetworks(), client_factory=slow_client, poll=0.01)
    threads = []
    orig = worker.joined
    worker.joined = lambda *a: threads.append(orig(*a)) or threads[-1]
    driver = NetworkDriver(ctl, _Host(IDS), FakeNetworks(), names=worker)
    router = Router()
    driver.register(router)
    t0 = time.monotonic()
    status, reply = router.dispatch("/NetworkDriver.Join", (
        '{"NetworkID": "%s", "EndpointID": "%s", "SandboxKey": "%s", "Options": {}}'
        % (NID, EID, SANDBOX)).encode())
    assert status == 200 and reply["Gateway"] == "10.1.0.1", reply
    assert time.monotonic() - t0 < 1 and ctl.calls == []
    release.set()
    threads[0].join(5)
    assert ctl.calls[0] == ("PATCH", "/v1/tenants/blue/ports/p1",
                            {"name": "web1", "aliases": ["3f2a1b0c9d8e", "web"]})
    assert "nameserver 10.1.0.1" in open(info["ResolvConfPath"]).read()


def test_join_survives_a_names_worker_that_cannot_start():
    class Broken:
        def joined(self, *a):
            raise RuntimeError("can't start new thread")
    driver = NetworkDriver(FakeController(), _Host(IDS), FakeNetworks(), names=Broken())
    reply = driver.join({"NetworkID": NID, "EndpointID": EID, "SandboxKey": SANDBOX})
    assert reply["InterfaceName"]["SrcName"] == "vc0123456789a"
