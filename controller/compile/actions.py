"""Action lists that more than one part of the compiler writes.

Why a module: the ARP responder (a port's IP, a gateway, the external IP, a
floating IP) and the ct action are built in host.py, nat.py and secgroups.py;
written once here, a fix to one (say, a field the reply must also set) is a
fix to all.
"""
from controller.compile.pipeline import ARP_REPLY


def arp_reply(mac, ip):
    """Turn an ARP request into the reply for (mac, ip), back out of in_port."""
    return [("move", "eth_src", "eth_dst"), ("set_field", "eth_src", mac),
            ("set_field", "arp_op", ARP_REPLY), ("move", "arp_sha", "arp_tha"),
            ("move", "arp_spa", "arp_tpa"), ("set_field", "arp_sha", mac),
            ("set_field", "arp_spa", ip), ("output", "in_port")]


def ct(commit, zone, table=None, nat=None):
    """The conntrack action (flows.py documents its fields): commit or not, in
    `zone`, recirculating to `table` (None: no recirculation), with `nat`."""
    return ("ct", commit, zone, None if table is None else int(table), nat)


def load(reg, value):
    """Write `value` into a pipeline register (a pipeline.RegField)."""
    return ("set_field", reg.oxm, value)
