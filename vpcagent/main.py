"""vpc-agent: the per-host agent (Docker network + IPAM driver ``vpc``).

    vpc-agent --host NAME --api URL [--token-file FILE] [--ca-file PEM]
              [--bridge br-int] [--ovs-rundir DIR]
              [--netns NS] [--plugin-dir /run/docker/plugins]
              [--cni-socket /run/vpc/cni.sock] [--docker-socket PATH]
              [--no-services] [--state-dir /var/lib/vpc-agent]

Exit status: 2 bad flags, an unreadable token or CA file (nothing started); 1 the host is not ready (no
bridge, no namespace, the socket cannot be made); 0 after SIGTERM/SIGINT.

The controller may be down when the agent starts (it is ordered before
docker.service at boot): that is only a warning; every request asks the
controller anew.

By default it also answers DHCP and DNS for this host's containers
(vpcagent/services: the vpc-svc port on the bridge, the controller's
services view kept in --state-dir); --no-services turns that off.

``Agent`` holds what request handlers share (controller client, host
plumbing, Docker network options) and builds the routers; the CNI socket
server (vpcagent.cni_server, written separately) registers its routes on
the CNI router through the same ``Agent`` when that module is present.
"""
import argparse
import logging
import os
import re
import signal
import ssl
import sys
import threading

from vpcagent import server
from vpcagent.controller import Controller
from vpcagent.docker_driver import NetworkDriver
from vpcagent.docker_ipam import IpamDriver
from vpcagent.dockernet import NetworkOptions
from vpcagent.plumbing import Host, PlumbingError, netns_path
from vpcctl.client import ca_context, normalize_url, token_from

log = logging.getLogger("vpcagent")

PLUGIN_NAME = "vpc"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
IFNAME_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")


class Agent:
    """The pieces every protocol handler shares; no state of its own."""

    def __init__(self, host, api, bridge="br-int", ovs_rundir=None, netns=None,
                 docker_socket=None, timeout=10.0, token=None, ssl_context=None):
        self.host_name = host
        self.controller = Controller(api, host, timeout=timeout, token=token,
                                     ssl_context=ssl_context)
        self.host = Host(bridge, ovs_rundir, netns)
        self.networks = NetworkOptions(docker_socket)

    def docker_router(self):
        router = server.Router()
        router.add("/Plugin.Activate",
                   lambda body: {"Implements": ["NetworkDriver", "IpamDriver"]},
                   needs_body=False)
        NetworkDriver(self.controller, self.host, self.networks).register(router)
        IpamDriver(self.controller, self.host, self.networks).register(router)
        return router

    def cni_router(self):
        """The CNI plugin's routes, or None while vpcagent.cni_server does not exist."""
        try:
            from vpcagent import cni_server
        except ImportError:
            return None
        router = server.Router()
        cni_server.register(router, self)
        return router


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="vpc-agent", description="Per-host agent of the VPC "
                                "controller: Docker network + IPAM driver 'vpc'.")
    p.add_argument("--host", required=True, help="this host's name at the controller")
    p.add_argument("--api", required=True, help="controller REST URL, e.g. "
                   "http://10.0.0.1:8080")
    p.add_argument("--token-file", metavar="FILE", help="file holding this host's token "
                   "(docs/security.md; default: $VPC_TOKEN, else the file $VPC_TOKEN_FILE)")
    p.add_argument("--ca-file", metavar="PEM", help="CA certificate that signed an https "
                   "controller's certificate (default: the system's CAs)")
    p.add_argument("--bridge", default="br-int", help="integration bridge (default br-int)")
    p.add_argument("--ovs-rundir", help="OVS run directory (db.sock); default: the system's")
    p.add_argument("--netns", help="network namespace of the host side (lab: an emulated "
                   "host); default: this process's")
    p.add_argument("--plugin-dir", default="/run/docker/plugins",
                   help="where dockerd looks for plugin sockets (vpc.sock is made here)")
    p.add_argument("--cni-socket", default="/run/vpc/cni.sock",
                   help="socket for the CNI plugin (served once the CNI part is installed)")
    p.add_argument("--docker-socket", default="/var/run/docker.sock",
                   help="dockerd's API socket (network options after an agent restart)")
    p.add_argument("--flow-logs", action="store_true",
                   help="run the flow-log collector: IPFIX from the bridge while a tenant "
                        "here has flow logs on (vpcagent/flowlogs.py)")
    p.add_argument("--flow-logs-port", type=int, default=4739, metavar="PORT",
                   help="UDP port on 127.0.0.1 (in --netns) the bridge exports IPFIX to")
    p.add_argument("--no-services", dest="services", action="store_false",
                   help="do not answer DHCP and DNS for this host's containers "
                        "(vpcagent/services; on by default)")
    p.add_argument("--state-dir", default="/var/lib/vpc-agent", metavar="DIR",
                   help="where the DHCP/DNS view is saved to survive a controller outage "
                        "(services-HOST.json)")
    p.add_argument("--timeout", type=float, default=10.0, help="controller timeout, seconds")
    p.add_argument("--log-level", default="INFO",
                   choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    a = p.parse_args(argv)
    if not NAME_RE.match(a.host):
        p.error(f"--host {a.host!r}: letters, digits, '_', '.', '-' (at most 63)")
    try:
        a.api = normalize_url(a.api)
    except ValueError as e:
        p.error(f"--api: {e}")
    if not IFNAME_RE.match(a.bridge):
        p.error(f"--bridge {a.bridge!r} is not an interface name")
    if a.timeout <= 0:
        p.error("--timeout must be positive")
    if a.netns and not os.path.exists(netns_path(a.netns)):
        p.error(f"--netns {a.netns}: no such network namespace")
    if a.ovs_rundir and not os.path.isdir(a.ovs_rundir):
        p.error(f"--ovs-rundir {a.ovs_rundir}: no such directory")
    # read both now: a file that cannot be read is a usage error, not a 401 later
    try:
        a.token = token_from(token_file=a.token_file)
    except OSError as e:
        where = f"--token-file {a.token_file}" if a.token_file else \
            f"VPC_TOKEN_FILE {os.environ.get('VPC_TOKEN_FILE')}"
        p.error(f"{where}: {e.strerror or e}")
    a.ssl_context = None
    if a.ca_file:
        try:
            a.ssl_context = ca_context(a.ca_file)
        except (OSError, ssl.SSLError) as e:
            p.error(f"--ca-file {a.ca_file}: {e.strerror or e}")
    return a


def main(argv=None):
    a = parse_args(argv)
    logging.basicConfig(level=a.log_level, stream=sys.stderr,
                        format="%(asctime)s vpc-agent %(levelname)s %(message)s")
    agent = Agent(a.host, a.api, a.bridge, a.ovs_rundir, a.netns, a.docker_socket, a.timeout,
                  token=a.token, ssl_context=a.ssl_context)
    try:
        agent.host.check()
    except PlumbingError as e:
        print(f"vpc-agent: error: {e}", file=sys.stderr)
        return 1
    try:
        agent.controller.host_record()
    except Exception as e:                          # noqa: BLE001 -- a warning only
        log.warning("controller not ready yet (%s); serving anyway", e)
    servers = []
    try:
        sock = os.path.join(a.plugin_dir, f"{PLUGIN_NAME}.sock")
        servers.append(server.serve(sock, agent.docker_router()))
        log.info("Docker network + IPAM driver %r on %s (host %s, controller %s)",
                 PLUGIN_NAME, sock, a.host, a.api)
        cni = agent.cni_router()
        if cni is not None:
            servers.append(server.serve(a.cni_socket, cni))
            log.info("CNI requests on %s", a.cni_socket)
    except OSError as e:
        print(f"vpc-agent: error: cannot serve: {e}", file=sys.stderr)
        for s in servers:
            server.stop(s)
        return 1
    collector = None
    if a.flow_logs:
        from vpcagent import flowlogs
        try:
            collector = flowlogs.start(agent.controller, a.bridge, a.ovs_rundir, a.netns,
                                       a.flow_logs_port)
        except OSError as e:
            log.warning("flow logs: cannot listen on 127.0.0.1:%d: %s", a.flow_logs_port, e)
    services = None
    if a.services:
        from vpcagent import services as svc
        try:
            services = svc.start(agent.controller, a.bridge, a.ovs_rundir, a.netns,
                                 a.state_dir)
        except Exception as e:                      # noqa: BLE001 -- the drivers still run
            log.warning("DHCP and DNS not started: %s", e)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    log.info("stopping")
    if services is not None:
        services.stop()
    if collector is not None:
        collector[1].set()
        collector[0].join(10)
    for s in servers:
        server.stop(s)
    agent.host.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
