"""A pure-Python OpenFlow 1.3 flow-table simulator, as Open vSwitch applies it.

Why it exists: the compiler's output is a set of plain `Flow` values, and the
cheapest way to know they do what we mean (isolation between tenants, ARP
answered from flows, no loops over the fabric or the tunnel mesh) is to run
packets through them without a switch.  Faucet's clib/fakeoftable.py showed
the value of this; this is our own, smaller take on it, fitted to flows.py.

Two layers of checking, both aimed at compiler bugs:

* `install_check(flow)` refuses what ovs-vswitchd would refuse at flow-mod
  time (missing prerequisites, value bits outside the mask, unmaskable fields
  masked, set_field vlan_vid without OFPVID_PRESENT, pop_vlan or set_field
  vlan_vid on a flow that cannot be tagged, dec_ttl on non-IP...).  A flow the
  switch rejects would otherwise "work" here and fail in the lab.
* At run time, two flows of one priority matching the same packet raise
  SimError: OpenFlow leaves the choice undefined, so it is always a bug.

Packets are dicts of OXM field names (flows.MATCH_FIELDS, plus ip_ttl and
icmp_id) in the canonical value forms flows.py uses.  As in OVS, the pipeline
fields metadata, the registers (pipeline.REGISTERS), tunnel_id, tun_ipv4_*, ct_state, ct_zone, ct_mark
read as 0 when absent, and an absent vlan_vid is OFPVID_NONE (0), so
`vlan_vid=0` matches untagged packets.  Any other absent field never matches
(this is how prerequisites behave at run time).

Conntrack (the ct action, see flows.py) is modelled on OVS 3.1's userspace
conntrack (lib/conntrack.c), which is what the netdev datapath runs; see
`Conntrack` for what is and is not modelled.  Each Simulator owns one
Conntrack that persists across run() calls (`sim.conntrack` lists entries).
"""
from controller.flowsim.conntrack import MAX_RECIRC, Conntrack
from controller.flowsim.fields import (SimError, format_flow, format_packet,
                                       from_bits, install_check, to_bits)
from controller.flowsim.network import Delivery, Hop, Lost, Network, PacketIn
from controller.flowsim.switch import FlowTable, Result, Simulator, check_packet

__all__ = ["Conntrack", "Delivery", "FlowTable", "Hop", "Lost", "MAX_RECIRC", "Network",
           "PacketIn", "Result", "SimError", "Simulator", "check_packet", "format_flow",
           "format_packet", "from_bits", "install_check", "to_bits"]
