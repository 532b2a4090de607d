"""OpenFlow meters: the packet-in budget of each path to the controller.

Why: a packet-in costs the controller a parse and a Python event; a switch
costs nothing to send one.  Whoever can make a bridge punt packets at line
rate (a hostile outside network answering ARP for the external IP, a
fabric port replaying LLDP) could otherwise saturate the controller's one
CPU and stall every other switch's reconcile.  So every flow that outputs to
the controller goes through a meter that drops above a fixed packets/s rate
(OVS's userspace datapath supports pktps meters with a burst), and
`flows.flow()` refuses to build such a flow without one.

Meters are desired state like flows: this module declares them (pure
values), a Flow names its meter by id, `meters_for(flows)` gives the meters a
datapath must hold, and the reconciler installs them before the flows that
use them (controller/reconcile/plan.py, controller/southbound/flowmod.py).

One meter per purpose per bridge: the bridge's whole budget for that kind
of packet-in.  No flow punts traffic that comes from a container (ARP,
flooding and routing are answered by flows), so there is no per-port meter;
a future DHCP/DNS punt from container ports would get one meter id per port
(METER_PORT_BASE + ofport) declared here.
"""
from dataclasses import dataclass
from enum import IntEnum, unique


@unique
class MeterId(IntEnum):
    """Meter ids on a bridge (OpenFlow meter ids start at 1)."""
    GATEWAY_ARP = 1     # EXT_IN: the external gateway's ARP replies -> controller
    LLDP = 2            # fabric switches: LLDP frames -> controller (link discovery)


@dataclass(frozen=True)
class Meter:
    """One pktps meter with a single drop band: above `rate` packets/s
    (after a burst of `burst` packets) the switch drops what the flow punts."""
    meter_id: int
    rate: int       # packets per second
    burst: int      # packets

    def __post_init__(self):
        if not (0 < self.meter_id <= 0xFFFF_0000 and self.rate > 0 and self.burst >= 0):
            raise ValueError(f"bad meter {self}")


# The budget per purpose.  Gateway ARP: the controller asks the gateway about
# once per few seconds per host, so 10/s is plenty for the replies.  LLDP: one
# frame per port per VPC_LLDP_INTERVAL (1 s): 100/s covers a 96-port switch.
METERS = {
    MeterId.GATEWAY_ARP: Meter(MeterId.GATEWAY_ARP, rate=10, burst=20),
    MeterId.LLDP: Meter(MeterId.LLDP, rate=100, burst=200),
}


def meters_for(flows):
    """{meter id: Meter} of the meters these flows use (what the switch must hold)."""
    return {int(f.meter): METERS[f.meter] for f in flows if f.meter is not None}
