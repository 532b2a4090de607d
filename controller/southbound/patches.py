"""Process-wide adjustments of os-ken, made once by the app at start.

Each is a measured fix (docs/benchmarks.md), kept here so that what we change
in os-ken's behaviour is in one file:
  * flow-stats replies parsed for their cookies only (flowstats.py says why);
  * a deep OpenFlow listen backlog, for hundreds of switches reconnecting;
  * one clear log line for a switch refused by OpenFlow over TLS.
"""
import functools
import logging
import ssl

import eventlet
from os_ken.lib import hub
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.southbound.flowstats import CookieFlowStats

OPENFLOW_BACKLOG = 1024         # pending switch connections the kernel queues for os-ken
LOG = logging.getLogger("vpc")


def use_cookie_flow_stats():
    """Parse flow-stats replies into CookieFlowStats (see there).  Only the
    controller's edge calls this; nothing in it reads more of a flow dump."""
    parser.OFPFlowStatsReply.cls_stats_body_cls = CookieFlowStats


def deepen_openflow_backlog():
    """os-ken listens for switches with eventlet's default backlog of 50.  When
    more switches than that reconnect at once (every host after a controller
    restart), the kernel drops the SYNs it cannot queue and each of those
    switches waits for its TCP retransmit (1, 3, 7 s...).  os-ken creates its
    server after the apps are built, through os_ken.lib.hub.listen, so this
    takes effect when called from the app's __init__."""
    if getattr(hub.listen, "vpc_backlog", None) != OPENFLOW_BACKLOG:
        listen = functools.partial(eventlet.listen, backlog=OPENFLOW_BACKLOG)
        listen.vpc_backlog = OPENFLOW_BACKLOG
        hub.listen = listen


class _TlsLoggingServer(hub.StreamServer):
    """os-ken's StreamServer, whose TLS handshake failures (a switch without
    a certificate, or one from another CA) are logged as one warning naming
    the peer and OpenSSL's reason, instead of a "hub: uncaught exception"
    traceback per attempt."""

    def __init__(self, listen_info, handle=None, backlog=None, spawn="default", **ssl_args):
        super().__init__(listen_info, handle, backlog, spawn, **ssl_args)
        if ssl_args:
            inner = self.handle

            def handle_tls(sock, addr):
                try:
                    inner(sock, addr)
                except ssl.SSLError as exc:      # the handshake (os-ken's own
                    # session loop catches the SSL errors of a live connection)
                    LOG.warning("OpenFlow TLS connection from %s refused: %s",
                                addr[0] if addr else "?", getattr(exc, "reason", None) or exc)
                    sock.close()
            self.handle = handle_tls


def log_refused_tls_switches():
    """os-ken builds its OpenFlow server from the name StreamServer in
    os_ken.controller.controller after the apps exist: swap it for ours.
    (Imported here: importing that module first thing is circular in os-ken.)"""
    from os_ken.controller import controller as of_controller
    of_controller.StreamServer = _TlsLoggingServer


def apply_all():
    use_cookie_flow_stats()
    deepen_openflow_backlog()
    log_refused_tls_switches()
