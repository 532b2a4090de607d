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
of packet-in.  The one flow that punts traffic from a container is an IPv6
router solicitation (the RA answering it carries the tenant's prefixes and
is built by the controller, compile/ipv6.py), metered like the rest; ARP, NS,
flooding and routing are answered by flows.

Per port: the flood budget of each secured container port (`port_meter`).
Every group-addressed or unknown-unicast frame a port sends is replicated by
head-end replication to every local port of its tenant and to every remote
host over a tunnel; a container blasting broadcasts at full speed would
otherwise make the shared userspace datapath (and the CPU it shares with
everyone) do that work for each frame, slowing other tenants.  So the flows
that send a secured port's broadcast/multicast/ARP and unknown unicast
towards FLOOD go through that port's own meter (compile/host.py).  Its id is
PORT_METER_BASE + port serial, the same scheme as the ports' conntrack zones
(32768 + serial): it cannot clash with MeterId (all below 32768) and stays
below 65536.
"""
from dataclasses import dataclass
from enum import IntEnum, unique


@unique
class MeterId(IntEnum):
    """Meter ids on a bridge (OpenFlow meter ids start at 1)."""
    GATEWAY_ARP = 1     # EXT_IN: the external gateway's ARP replies -> controller
    LLDP = 2            # fabric switches: LLDP frames -> controller (link discovery)
    ROUTER_SOLICIT = 3  # ARP: IPv6 router solicitations -> controller (it answers an RA)


# Per-port meters: PORT_METER_BASE + port serial (1..pipeline.MAX_PORT_SERIAL)
# for the flood budget, SERVICE_METER_BASE + serial for the DHCP/DNS budget.
PORT_METER_BASE = 0x8000
PORT_METER_MAX = 0xFFFF
SERVICE_METER_BASE = 0x10000
SERVICE_METER_MAX = 0x1FFFF
assert max(MeterId) < PORT_METER_BASE


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
    # a container solicits a router a few times when its interface comes up
    MeterId.ROUTER_SOLICIT: Meter(MeterId.ROUTER_SOLICIT, rate=10, burst=20),
}


# A port's flood budget.  Why these figures: a container's legitimate
# group-addressed traffic (ARP for new neighbours, DHCP, mDNS, a cluster's
# discovery) is a few to a few hundred frames/s; 1000/s with a 2000-frame
# burst leaves any of them untouched, yet caps what one port can make the
# datapath replicate at 1000 x (local ports + remote hosts) copies/s instead
# of the ~50,000 frames/s a single Python flooder reaches.
PORT_FLOOD_RATE = 1000      # packets per second
PORT_FLOOD_BURST = 2000     # packets


# Each kind of per-port meter: (first id - 1, last id, rate, burst).
_PER_PORT = {"port": (PORT_METER_BASE, PORT_METER_MAX, PORT_FLOOD_RATE, PORT_FLOOD_BURST)}


def _per_port(kind, serial):
    base, last, rate, burst = _PER_PORT[kind]
    if not 0 < serial <= last - base:
        raise ValueError(f"no {kind} meter for serial {serial}")
    return Meter(base + serial, rate=rate, burst=burst)


def port_meter(serial):
    """The flood meter of the port with this serial."""
    return _per_port("port", serial)


# A port's DHCP/DNS budget (compile/services.py): what one container may make
# the host agent parse and answer.  Per port, so that one container flooding
# DHCP or DNS spends its own budget, not its neighbours' (their leases and
# lookups go on).  Why these figures: a DHCP client sends a handful of
# packets per lease; a busy container without a cache resolves a few dozen
# names a second; 200/s with a 400-packet burst leaves both untouched, and
# 200/s per flooding port is a few percent of a core for the agent.
SERVICE_RATE = 200          # packets per second
SERVICE_BURST = 400         # packets


_PER_PORT["service"] = (SERVICE_METER_BASE, SERVICE_METER_MAX, SERVICE_RATE, SERVICE_BURST)


def service_meter(serial):
    """The DHCP/DNS meter of the port with this serial."""
    return _per_port("service", serial)


def declared(meter_id):
    """The Meter a flow may name by this id, or None: a purpose meter of
    METERS, a port's flood meter or a port's service meter."""
    if meter_id in METERS:
        return METERS[meter_id]
    for kind, (base, last, _, _) in _PER_PORT.items():
        if base < meter_id <= last:
            return _per_port(kind, meter_id - base)
    return None


def meters_for(flows):
    """{meter id: Meter} of the meters these flows use (what the switch must hold)."""
    return {int(f.meter): declared(f.meter) for f in flows if f.meter is not None}
