"""The integration bridge's pipeline, defined once.

Every table number, priority band, metadata bit and cookie field the controller
uses lives here, so that the compiler, the simulator, the docs and a person
reading `ovs-ofctl dump-flows` agree on one vocabulary.  docs/pipeline.md
describes the same tables in prose; tests/unit/test_pipeline_doc.py keeps the
two in step.
"""
from enum import IntEnum


class Table(IntEnum):
    """OpenFlow tables of br-int, in the order a packet walks them.

    `goto` only goes forward; conntrack recirculation (`ct(table=N)`) may go
    anywhere, which is how NAT'd packets re-enter at EXT_OUT / FROM_EXT.
    """
    CLASSIFY = 0        # in_port (+ VLAN / tun_id) -> tenant in metadata, or drop
    EXT_IN = 5          # from the external port: ARP, DNAT, un-SNAT of replies
    EXT_TRANSIT = 6     # after the shared zone's un-SNAT: the transit IP names the tenant
    PORT_SECURITY = 10  # a local port may only send from its own MAC/IP
    ARP = 20            # answer ARP for known IPs of the tenant from flows
    ACL = 30            # egress security: a port with security groups enters conntrack
    SG_OUT_REMOTE = 31  # reg4 := security groups of the destination IP
    SG_OUT = 32         # egress rules (and replies allowed by ingress rules)
    L3 = 40             # the distributed router: routes, gateway ICMP, default route
    NAT_OUT = 42        # after un-NAT in the tenant zone: established, or SNAT it
    NAT_SHARED = 43     # SNAT stage 2: transit IP -> the host's external IP (shared zone)
    EXT_OUT = 44        # translated packets leave by the external port
    FROM_EXT = 47       # DNAT'd / un-SNAT'd packets enter the tenant
    L2 = 50             # destination MAC -> local port / remote host
    ACL_IN = 52         # ingress security: to a port with security groups, via conntrack
    SG_IN_REMOTE = 53   # reg4 := security groups of the source IP
    SG_IN = 54          # ingress rules (and replies allowed by egress rules)
    DELIVER = 56        # reg7 -> output to that local port
    FLOOD = 60          # broadcast, multicast, unknown unicast


class Prio(IntEnum):
    """Named priority bands.  Within a table, a more specific purpose wins."""
    MISS = 0            # table default: drop or pass on
    ROUTER_DROP = 1     # L3: anything else sent to the router MAC
    FLOOD = 10          # unknown unicast -> flood table
    DEFAULT_ROUTE = 10  # L3: off-subnet traffic -> NAT
    MULTICAST = 50      # group-bit destinations -> flood table
    SG_RULE = 50        # SG_OUT / SG_IN: one security-group rule
    FLOOD_IP = 110      # FLOOD: IP floods skip ports with security groups
    NAT_OTHER = 80      # NAT_OUT: new non-TCP/UDP connection -> SNAT (no ports)
    NAT_PORTS = 85      # NAT_OUT: new TCP/UDP connection -> SNAT with ports
    UN_SNAT = 50        # EXT_IN: anything else to the external IP: the shared zone
    OUTBOUND = 90       # NAT_OUT: established outbound (SNAT) -> stage 2
    SUBNET_DROP = 90    # L3: a tenant subnet address nobody has
    NAT_FIP = 95        # NAT_OUT: new connection from a floating-IP port
    ALLOW = 100         # the ordinary, exact per-port / per-tenant flows
    RESPOND = 100       # ARP responder entries
    ROUTE = 100         # L3: /32 route to a port of the tenant
    ESTABLISHED = 100   # NAT_OUT / EXT_TRANSIT: a connection conntrack knows
    GATEWAY = 110       # L3: echo requests to the gateway answered in place
    DROP_SPOOF = 200    # explicit drops that must beat ALLOW
    LLDP = 1000         # fabric switches: LLDP to the controller, before anything


# --- metadata layout ------------------------------------------------------
# metadata[0:32]  tenant id (also the conntrack zone later: it fits 16 bits)
# metadata[32]    FROM_NET: the packet entered from the uplink or a tunnel.
#                 Packets from the network are delivered to local ports only
#                 (split horizon), which is what keeps a VLAN fabric or the
#                 tunnel mesh free of loops and duplicates.
TENANT_MASK = 0xFFFF_FFFF
FROM_NET = 1 << 32
METADATA_MASK = TENANT_MASK | FROM_NET
MAX_TENANT_ID = 0x7FFF   # tenant ids are the NAT conntrack zones: 1..32767
MAX_PORT_SERIAL = 0x7FFF  # port serials name the ports' conntrack zones: 32768 + serial


def port_zone(serial):
    """The conntrack zone of a port's security groups (apart from NAT zones)."""
    return 0x8000 | serial


# --- registers ---------------------------------------------------------------------
# reg3  security groups of the local port (bit i = the tenant's group of index i)
# reg4  security groups of the remote address (source on ingress, destination on egress)
# reg7  the local port a packet is about to be delivered to (ACL_IN .. DELIVER)
MAX_GROUPS = 32           # per tenant: one bit each in reg3 / reg4


def metadata_for(tenant_id, from_net=False):
    """The metadata value a packet of this tenant carries after CLASSIFY."""
    return (tenant_id & TENANT_MASK) | (FROM_NET if from_net else 0)


# --- conntrack -------------------------------------------------------------
# ct_state bits (OVS's CS_* values; os-ken defines none).  A packet that never
# went through a ct action has ct_state 0: match (0, CT_TRK) for "-trk".
CT_NEW = 0x01       # a new connection (or one not yet answered)
CT_EST = 0x02       # part of an established connection
CT_REL = 0x04       # related to an established connection (not modelled)
CT_RPL = 0x08       # in the reply direction
CT_INV = 0x10       # conntrack could not make sense of it
CT_TRK = 0x20       # went through a ct action
CT_SNAT = 0x40      # its source was translated by this ct
CT_DNAT = 0x80      # its destination was translated by this ct
# NXActionNAT flags for the OpenFlow sender (os-ken defines none either).
NAT_SRC, NAT_DST, NAT_PERSISTENT, NAT_PROTO_HASH, NAT_PROTO_RANDOM = 1, 2, 4, 8, 16


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
    ROUTER = 0x06       # a tenant's distributed router (owner: tenant id)
    NAT = 0x07          # a tenant's NAT decisions and deliveries (owner: tenant id)
    EXTERNAL = 0x08     # the host's external port plumbing
    FORWARD = 0x09      # one port forward (owner: its serial)
    FLOATING = 0x0A     # one floating IP (owner: its serial)
    SECGROUP = 0x0B     # one security group's rules (owner: tenant id << 5 | group index)
    FABRIC = 0x0C       # a fabric switch's flows (owner: tenant id, 0 for its base)


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

# --- routing and NAT -------------------------------------------------------------
# Each tenant's distributed router answers its gateways with one virtual MAC.
ROUTER_MAC_PREFIX = "02:76:70:63"      # "vpc"


def router_mac(tenant_id):
    return f"{ROUTER_MAC_PREFIX}:{(tenant_id >> 8) & 0xFF:02x}:{tenant_id & 0xFF:02x}"


# SNAT shares a host's external IP between tenants, in two stages (as
# carrier-grade NAT does).  Stage 1, in the tenant's zone: private address ->
# the tenant's transit address (unique per tenant, RFC 6598 shared space, never
# seen outside), full port range: identical private tuples of two tenants
# become distinct.  Stage 2, in one zone shared by all tenants of the host:
# transit -> the host's external IP, ports from SNAT_PORTS, so conntrack keeps
# every tenant's translations unique, like Linux's MASQUERADE.  A reply is
# un-NAT'd in the shared zone; its transit address names the tenant's zone,
# where it is un-NAT'd again.
SHARED_NAT_ZONE = 0x8000                 # between tenant zones and port zones
SNAT_PORTS = (32768, 65535)              # stage-2 source ports: the "ephemeral" half
TRANSIT_PORTS = (1024, 65535)            # stage-1 source ports
MAX_FORWARD_PORT = SNAT_PORTS[0] - 1     # port forwards live below the SNAT ports


def transit_ip(tenant_id):
    """The tenant's SNAT transit address: 100.64.0.0/10 + tenant id."""
    n = (100 << 24) | (64 << 16) | tenant_id
    return ".".join(str(n >> s & 0xFF) for s in (24, 16, 8, 0))


# IPv4 outer-header overhead, subtracted from the underlay MTU.
ENCAP_OVERHEAD = {"vlan": 0, "vxlan": 50, "gre": 42}
