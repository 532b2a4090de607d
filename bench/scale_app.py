"""apps/vpc.py for the scale benchmark's dummy datapaths:  osken-manager bench/scale_app.py

One ovs-vswitchd hosts all the emulated hosts' bridges, and OVS port names
are unique per database, not per bridge: bridge ``b012`` cannot have a port
called ``vxlan0`` when ``b011`` already has one.  bench/dummyovs.py therefore
names the ports ``b012-vxlan0``, ``b012-patch-phy``, ``b012-p07``, and this
wrapper strips the ``bNNN-`` prefix where port names are decoded from
OpenFlow (controller/southbound/events.name_of), so the controller sees
exactly the names a real host's br-int has.
Nothing else differs from apps/vpc.py: same class, same handlers, same
compiler and reconciler.
"""
import re

import apps.vpc as vpc
from controller.southbound import events

_PREFIX = re.compile(r"^b\d{3}-")
_decode = events.name_of


def _name(raw):
    return _PREFIX.sub("", _decode(raw), count=1)


events.name_of = _name      # port_desc() looks it up in its module at each call


class ScaleVpcController(vpc.VpcController):
    """apps.vpc.VpcController, loaded under this module's name."""
