"""Process-wide adjustments of os-ken, made once by the app at start.

Each is a measured fix (docs/benchmarks.md), kept here so that what we change
in os-ken's behaviour is in one file:
  * flow-stats replies parsed for their cookies only (flowstats.py says why);
  * a deep OpenFlow listen backlog, for hundreds of switches reconnecting;
  * one clear log line for a switch refused by OpenFlow over TLS;
  * the two OVS match fields os-ken lacks that a Neighbor Advertisement built
    by flows needs (add_nd_fields; flowmod.py applies it when imported, as
    every encoder of our flows needs it, not only the app).
"""
import functools
import logging
import ssl
import struct

import eventlet
from os_ken.lib import hub
from os_ken.lib import type_desc
from os_ken.ofproto import ofproto_v1_3 as ofproto, ofproto_v1_3_parser as parser, oxm_fields

from controller.southbound.flowstats import CookieFlowStats

OPENFLOW_BACKLOG = 1024         # pending switch connections the kernel queues for os-ken
LOG = logging.getLogger("vpc")


class _EricssonOxm(oxm_fields._OxmClass):
    """OXM class 0x1000 (ERICOXM_OF_*), where OVS 2.11+ keeps nd_reserved and
    nd_options_type (`man ovs-fields`)."""
    _class = 0x1000


ND_FIELDS = (("nd_reserved", 1, type_desc.Int4), ("nd_options_type", 2, type_desc.Int1))


def add_nd_fields():
    """Teach os-ken's OpenFlow 1.3 codec nd_reserved (the NA flags R/S/O) and
    nd_options_type (1 = source, 2 = target link-layer address option).

    Why: an NS turned into an NA in place must set the NA's flags and turn the
    NS's source-link-layer option into a target-link-layer one; OVS has both
    fields, os-ken knows neither.  Adding them to oxm_types and regenerating
    the module's codec functions is what os-ken itself does for its own
    classes at import (oxm_fields.generate).  Idempotent."""
    names = {f.name for f in ofproto.oxm_types}
    if all(name in names for name, _, _ in ND_FIELDS):
        return
    ofproto.oxm_types += [_EricssonOxm(name, num, td) for name, num, td in ND_FIELDS
                          if name not in names]
    oxm_fields.generate(ofproto.__name__)


def use_cookie_flow_stats():
    """Parse flow-stats replies into CookieFlowStats (see there).  Only the
    controller's edge calls this; nothing in it reads more of a flow dump."""
    parser.OFPFlowStatsReply.cls_stats_body_cls = CookieFlowStats
    generic = _GENERIC_MULTIPART_PARSER

    def multipart_reply(datapath, version, msg_type, msg_len, xid, buf):
        # a flow dump: the same message os-ken builds, its body read by
        # CookieFlowStats.parse_all; any other multipart reply: os-ken's own
        type_, flags = _MULTIPART_HEAD.unpack_from(buf, ofproto.OFP_HEADER_SIZE)
        if type_ != ofproto.OFPMP_FLOW or \
                parser.OFPFlowStatsReply.cls_stats_body_cls is not CookieFlowStats:
            return generic(datapath, version, msg_type, msg_len, xid, buf)
        msg = super(parser.OFPMultipartReply, parser.OFPFlowStatsReply).parser(
            datapath, version, msg_type, msg_len, xid, buf)
        msg.type, msg.flags = type_, flags
        msg.body = CookieFlowStats.parse_all(msg.buf, ofproto.OFP_MULTIPART_REPLY_SIZE, msg_len)
        return msg

    # os-ken dispatches by the parser registered at import, not the class's
    parser._MSG_PARSERS[ofproto.OFPT_MULTIPART_REPLY] = multipart_reply


_GENERIC_MULTIPART_PARSER = parser._MSG_PARSERS[ofproto.OFPT_MULTIPART_REPLY]
_MULTIPART_HEAD = struct.Struct(ofproto.OFP_MULTIPART_REPLY_PACK_STR)


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
