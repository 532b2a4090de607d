"""Process-wide adjustments of os-ken, made once by the app at start.

Each is a measured fix (docs/benchmarks.md), kept here so that what we change
in os-ken's behaviour is in one file:
  * flow-stats replies parsed for their cookies only (flowstats.py says why);
  * a deep OpenFlow listen backlog, for hundreds of switches reconnecting.
"""
import functools

import eventlet
from os_ken.lib import hub
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.southbound.flowstats import CookieFlowStats

OPENFLOW_BACKLOG = 1024         # pending switch connections the kernel queues for os-ken


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


def apply_all():
    use_cookie_flow_stats()
    deepen_openflow_backlog()
