"""The integration bridge's pipeline, defined once.

Every table number, priority band, metadata bit and cookie field the controller
uses lives here, so that the compiler, the simulator, the docs and a person
reading `ovs-ofctl dump-flows` agree on one vocabulary.  docs/pipeline.md
describes the same tables in prose; tests/unit/test_pipeline_doc.py keeps the
two in step.
"""
from enum import IntEnum


class Table(IntEnum):
    """OpenFlow tables of br-int, in the order a packet walks them."""
    CLASSIFY = 0        # in_port (+ VLAN / tun_id) -> tenant in metadata, or drop
    PORT_SECURITY = 10  # a local port may only send from its own MAC/IP
    ARP = 20            # answer ARP for known IPs of the tenant from flows
    ACL = 30            # security groups (pass-through until they exist)
    L3 = 40             # routing / NAT (pass-through until they exist)
    L2 = 50             # destination MAC -> local port / remote host
    FLOOD = 60          # broadcast, multicast, unknown unicast


class Prio(IntEnum):
    """Named priority bands.  Within a table, a more specific purpose wins."""
    MISS = 0            # table default: drop or pass on
    FLOOD = 10          # unknown unicast -> flood table
    MULTICAST = 50      # group-bit destinations -> flood table
    ALLOW = 100         # the ordinary, exact per-port / per-tenant flows
    RESPOND = 100       # ARP responder entries
    DROP_SPOOF = 200    # explicit drops that must beat ALLOW


# --- metadata layout ------------------------------------------------------
# metadata[0:32]  tenant id (also the conntrack zone later: it fits 16 bits)
# metadata[32]    FROM_NET: the packet entered from the uplink or a tunnel.
#                 Packets from the network are delivered to local ports only
#                 (split horizon), which is what keeps a VLAN fabric or the
#                 tunnel mesh free of loops and duplicates.
TENANT_MASK = 0xFFFF_FFFF
FROM_NET = 1 << 32
METADATA_MASK = TENANT_MASK | FROM_NET
MAX_TENANT_ID = 0xFFFF   # ids are conntrack zones later; keep them 16-bit


def metadata_for(tenant_id, from_net=False):
    """The metadata value a packet of this tenant carries after CLASSIFY."""
    return (tenant_id & TENANT_MASK) | (FROM_NET if from_net else 0)


# --- cookies ----------------------------------------------------------------
# cookie[56:64]  kind of flow (CookieKind)
# cookie[32:56]  owner id: tenant id, or port serial, or 0 for the base pipeline
# cookie[0:32]   hash of the flow's content (table, priority, match, actions)
#
# The content hash makes the switch itself remember which version of a flow it
# holds: the reconciler reads cookies back and never has to parse matches or
# actions, and it deletes a stale flow by its exact cookie.
class CookieKind(IntEnum):
    BASE = 0x01         # table defaults, shared by every tenant
    PORT = 0x02         # flows of one local port (classify, security, delivery)
    TENANT = 0x03       # per-tenant flows (flood lists, uplink/tunnel classify)
    REMOTE = 0x04       # flows towards a port on another host
    ARP = 0x05          # ARP responder entries


OWNER_MASK = 0xFF_FFFF


def cookie_prefix(kind, owner):
    """High 32 bits of a cookie: who owns the flow."""
    return ((int(kind) & 0xFF) << 56) | ((owner & OWNER_MASK) << 32)


def describe_cookie(cookie):
    """Human reading of a cookie, for logs and `vpcctl` debugging."""
    kind = (cookie >> 56) & 0xFF
    owner = (cookie >> 32) & OWNER_MASK
    try:
        name = CookieKind(kind).name.lower()
    except ValueError:
        name = "foreign"
    return {"kind": name, "owner": owner, "hash": cookie & 0xFFFF_FFFF}


# --- encapsulation ----------------------------------------------------------
OFPVID_PRESENT = 0x1000
ETH_TYPE_IP = 0x0800
ETH_TYPE_ARP = 0x0806
ETH_TYPE_VLAN = 0x8100
ARP_REQUEST = 1
ARP_REPLY = 2
MULTICAST_BIT = ("01:00:00:00:00:00", "01:00:00:00:00:00")

# IPv4 outer-header overhead, subtracted from the underlay MTU.
ENCAP_OVERHEAD = {"vlan": 0, "vxlan": 50, "gre": 42}
