"""The startup grace: a restart withdraws nothing from hosts that come back.

Overlay flows towards a host exist only while it is connected, and after a
controller restart the switches come back one by one.  Until each registered
host's bridge is back, or VPC_STARTUP_GRACE passes, the compiler treats it as
connected (topology.presume_connected), so reconciles start at once and
remove nothing.  Hosts still not back when the grace ends are taken for gone.
"""
import logging
import time

import eventlet

LOG = logging.getLogger(__name__)


def end_startup_grace(topology, started, grace, on_gone):
    """Sleep until `started + grace` (monotonic), then stop presuming the
    missing hosts connected and call on_gone(dpid) for each (their overlay
    peers recompile)."""
    eventlet.sleep(max(0.0, started + grace - time.monotonic()))
    gone = sorted(topology.stop_presuming())
    if gone:
        LOG.info("%d registered host(s) not back %.0f s after start: %s", len(gone), grace,
                 ", ".join(f"{d:016x}" for d in gone[:10]) + (" ..." if len(gone) > 10 else ""))
    for dpid in gone:
        on_gone(dpid)
