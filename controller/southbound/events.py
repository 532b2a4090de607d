"""os-ken event messages -> plain values the rest of the controller reads.

apps/vpc.py receives os-ken events; what they mean (a port came, went or lost
its link; a packet-in's port and bytes; whether a multipart reply has more
parts) is decoded here, so no other module reads os-ken message fields.
"""
from dataclasses import dataclass

from os_ken.ofproto import ofproto_v1_3 as ofp

ADDED, DELETED, MODIFIED = "added", "deleted", "modified"
_REASONS = {ofp.OFPPR_ADD: ADDED, ofp.OFPPR_DELETE: DELETED, ofp.OFPPR_MODIFY: MODIFIED}


@dataclass(frozen=True)
class PortDesc:
    name: str
    port_no: int
    hw_addr: str
    link_down: bool       # no carrier (OFPPS_LINK_DOWN): e.g. the veth's peer is gone
    admin_down: bool      # administratively down (OFPPC_PORT_DOWN)

    @property
    def down(self):
        return self.link_down or self.admin_down


@dataclass(frozen=True)
class PortStatus:
    reason: str           # ADDED, DELETED or MODIFIED
    port: PortDesc


def name_of(raw):
    """Port names are bytes in os-ken 3.1.1 (LAB.md)."""
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def port_desc(p):
    return PortDesc(name=name_of(p.name), port_no=p.port_no, hw_addr=p.hw_addr,
                    link_down=bool(p.state & ofp.OFPPS_LINK_DOWN),
                    admin_down=bool(p.config & ofp.OFPPC_PORT_DOWN))


def port_status(msg):
    """An OFPPortStatus message as a PortStatus."""
    return PortStatus(reason=_REASONS.get(msg.reason, MODIFIED), port=port_desc(msg.desc))


def packet_in(msg):
    """(dpid, in_port or None, frame bytes) of an OFPPacketIn."""
    return msg.datapath.id, msg.match.get("in_port"), msg.data


def more_parts(msg):
    """Does a multipart reply announce further parts (OFPMPF_REPLY_MORE)?"""
    return bool(msg.flags & ofp.OFPMPF_REPLY_MORE)
