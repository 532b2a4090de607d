"""The integration bridge's pipeline, defined once, as data.

Every table, the tables each may go on to, what each does with a packet no
flow claims, its priority bands, the registers and metadata bits, and the
cookie layout live here, so that the compiler, the simulator, the docs and a
person reading `ovs-ofctl dump-flows` agree on one vocabulary.

The declaration is also a check (the Faucet/Antrea idea of a pipeline as
data): `flows.flow()` refuses a goto or a conntrack recirculation that its
table does not declare, and a priority band of another table; the table-miss
flows are generated from `HOST_PIPELINE` / `FABRIC_PIPELINE`, not written by
hand.  docs/pipeline.md describes the same tables in prose;
tests/unit/compile/test_pipeline_doc.py keeps the two in step.
"""
from dataclasses import dataclass
from enum import IntEnum, unique


@unique
class Table(IntEnum):
    """OpenFlow tables of a host's br-int, in the order a packet walks them.

    `goto` only goes forward, to a table HOST_PIPELINE declares; conntrack
    recirculation (`ct(table=N)`) may go anywhere it declares, which is how
    NAT'd packets re-enter at EXT_OUT / FROM_EXT.
    """
    CLASSIFY = 0        # in_port (+ VLAN / tun_id) -> tenant in metadata, or drop
    EXT_IN = 5          # from the external port: ARP, DNAT, un-SNAT of replies
    EXT_TRANSIT = 6     # after the shared zone's un-SNAT: the transit IP names the tenant
    PORT_SECURITY = 10  # a local port may only send from its own MAC/IP
    ARP = 20            # answer ARP and IPv6 NS for known IPs of the tenant from flows
    ND_ANSWER = 21      # an NS turned into an NA: its target link-layer address, out
    ACL = 30            # egress security: a port with security groups enters conntrack
    SG_OUT_REMOTE = 31  # REG_SG_REMOTE := security groups of the destination IP
    SG_OUT = 32         # egress rules (and replies allowed by ingress rules)
    L3 = 40             # the distributed router: routes, gateway ICMP, default route
    NAT_OUT = 42        # after un-NAT in the tenant zone: established, or SNAT it
    NAT_SHARED = 43     # SNAT stage 2: transit IP -> the host's external IP (shared zone)
    EXT_OUT = 44        # translated packets leave by the external port
    FROM_EXT = 47       # DNAT'd / un-SNAT'd packets enter the tenant
    L2 = 50             # destination MAC -> local port / remote host
    ACL_IN = 52         # ingress security: to a port with security groups, via conntrack
    SG_IN_REMOTE = 53   # REG_SG_REMOTE := security groups of the source IP
    SG_IN = 54          # ingress rules (and replies allowed by egress rules)
    DELIVER = 56        # REG_DELIVER_PORT -> output to that local port
    FLOOD = 60          # broadcast, multicast, unknown unicast


@unique
class FabricTable(IntEnum):
    """A fabric switch (a datapath that is no host's bridge) has one table."""
    FORWARD = 0         # LLDP to the controller; VLAN tenants on paths and one tree


# --- priority bands ------------------------------------------------------------
class Prio:
    """Priority bands, one enum per table (`Prio.L2.PORT_MAC`).

    Why per table: OpenFlow compares priorities only within a table, so a band
    means something only there.  Every enum is @unique, so the name printed
    for a value is the one meant (a global enum had ROUTE = ALLOW = 100 and
    printed "ALLOW" for a route).  Within a table a more specific purpose has
    the higher number; bands whose matches never overlap still get distinct
    values, only so that each value names one purpose.  `flows.flow()`
    refuses a band of another table.
    """

    @unique
    class CLASSIFY(IntEnum):
        PORT_FLOOD = 110        # a secured port's group-addressed frames: as IN_PORT, metered
        SERVICE_REPLY = 105     # the host agent's DHCP/DNS answer (service port) -> its port
        IN_PORT = 100           # a port we know (+ its VLAN tag / tunnel key) names the tenant
        MISS = 0                # unknown in_port / VLAN / tun_id: drop

    @unique
    class EXT_IN(IntEnum):
        ARP = 110               # ARP about our external addresses (answer, learn the gateway)
        DNAT = 100              # a port forward or floating IP: DNAT into the tenant
        UN_SNAT = 50            # anything else to the external IP: the shared zone
        MISS = 0                # nothing we translate: drop

    @unique
    class EXT_TRANSIT(IntEnum):
        ESTABLISHED = 100       # a connection the shared zone knows, to a transit IP
        MISS = 0                # not a reply to any tenant's SNAT: drop

    @unique
    class PORT_SECURITY(IntEnum):
        ND_OWN = 120            # NS/NA about the port's own addresses and link-layer address,
                                # DAD NS and MLD reports from :: (IPv6 hosts send them first)
        ND_GUARD = 115          # any other NS/NA, RA, redirect from a secured port: drop
        DHCP_SERVER = 110       # a DHCP server reply (UDP from port 67) from a secured port: drop
        SERVICE = 105           # the port's DHCP request / DNS query to its gateway: metered,
                                # to the host agent by the service port (compile/services.py)
        OWN_SOURCE = 100        # the port's own MAC/IP(v6), untagged (any, with port security off)
        MISS = 0                # spoofed source, 802.1Q tag: drop

    @unique
    class ARP(IntEnum):
        DAD_OWNER = 120         # a port's DAD for its own IPv6 address: not answered (go on)
        DAD_TAKEN = 110         # DAD for an IPv6 address someone has: NA to all-nodes
        ROUTER_SOLICIT = 105    # an IPv6 RS: to the controller (metered), which answers an RA
        RESPOND = 100           # ARP request / IPv6 NS for an address of the tenant or a
                                # gateway: answered in place (NA built by set_field)
        MISS = 0                # not an ARP we answer: go on

    @unique
    class ND_ANSWER(IntEnum):
        FINISH = 100            # target link-layer option := the answer's MAC, out in_port
        MISS = 0                # (only ARP's RESPOND flows lead here)

    @unique
    class ACL(IntEnum):
        ND = 110                # neighbour discovery (NS/NA) is not filtered, as ARP is not
        SECURED_IP = 100        # IPv4/IPv6 from a port with security groups: into conntrack
        MISS = 0                # not from a secured port, or not IP: go on

    @unique
    class SG_OUT_REMOTE(IntEnum):
        MEMBER = 100            # the destination IP is a port with groups: load them
        MISS = 0                # destination in no group: go on

    # SG_OUT and SG_IN evaluate the same rules, each direction's own and the
    # other's reversed for replies, so they share one list of bands:
    #   INVALID   conntrack could not make sense of it: drop
    #   RELATED   ICMP errors about a tracked connection: pass
    #   RULE      one security-group rule (or its reply direction)
    #   MISS      no rule allows it: drop
    _SG_RULE_BANDS = (("INVALID", 200), ("RELATED", 100), ("RULE", 50), ("MISS", 0))
    SG_OUT = unique(IntEnum("SG_OUT", _SG_RULE_BANDS))

    @unique
    class L3(IntEnum):
        GATEWAY = 110           # echo request to a gateway: answered in place
        ROUTE = 100             # /32 route to a port of the tenant
        SUBNET_DROP = 90        # an address of a tenant subnet nobody has
        DEFAULT_ROUTE = 10      # off-subnet traffic -> ct(nat) -> NAT_OUT
        ROUTER_DROP = 1         # anything else sent to the router MAC
        MISS = 0                # not for the router: switch it

    @unique
    class NAT_OUT(IntEnum):
        ESTABLISHED = 100       # a connection conntrack knows that is already external
        NAT_FIP = 95            # new connection from a floating-IP port
        OUTBOUND = 90           # established outbound SNAT -> stage 2
        NAT_PORTS = 85          # new TCP/UDP connection -> SNAT stage 1 with ports
        NAT_OTHER = 80          # new other connection -> SNAT stage 1 (no ports)
        MISS = 0                # invalid, or no NAT allowed: drop

    @unique
    class NAT_SHARED(IntEnum):
        NAT_PORTS = 85          # TCP/UDP: stage 2 with ports
        NAT_OTHER = 80          # anything else: stage 2, address only
        MISS = 0                # no tenant here has SNAT: drop

    @unique
    class EXT_OUT(IntEnum):
        TRANSLATED = 100        # what conntrack translated: out to the gateway
        MISS = 0                # gateway MAC not known yet, or untranslated: drop

    @unique
    class FROM_EXT(IntEnum):
        TO_PORT = 100           # to a local port of the tenant: route it there
        MISS = 0                # not to a port of ours: drop

    @unique
    class L2(IntEnum):
        PORT_MAC = 100          # a port's MAC: deliver locally or carry to its host
        MULTICAST = 50          # group-bit destinations -> FLOOD
        PORT_UNKNOWN = 20       # from a secured local port, a MAC nobody has -> metered FLOOD
        UNKNOWN_UNICAST = 10    # from a local port, a MAC nobody has -> FLOOD
        MISS = 0                # from the network and not ours: drop

    @unique
    class ACL_IN(IntEnum):
        ND = 110                # NS/NA to a secured port: not filtered, deliver
        SECURED_IP = 100        # IPv4/IPv6 to a port with security groups: into conntrack
        NON_IP = 10             # ARP to a secured port: not filtered, deliver
        MISS = 0                # not to a secured local port: drop

    @unique
    class SG_IN_REMOTE(IntEnum):
        MEMBER = 100            # the source IP is a port with groups: load them
        MISS = 0                # source in no group: REG_SG_REMOTE := 0, go on

    SG_IN = unique(IntEnum("SG_IN", _SG_RULE_BANDS))

    @unique
    class DELIVER(IntEnum):
        PORT = 100              # REG_DELIVER_PORT names this port: output
        MISS = 0                # no such local port: drop

    @unique
    class FLOOD(IntEnum):
        ND = 120                # NS/NA reach every port, as ARP does
        IP = 110                # IP(v6) floods skip ports with security groups
        ALL = 100               # every local port (+ the network, from local ports)
        MISS = 0                # a tenant with nothing to flood to: drop

    @unique
    class FABRIC(IntEnum):
        LLDP = 1000             # LLDP to the controller, before anything
        STANDBY_DROP = 200      # what a host sends into its standby attachment: drop
        PATH = 100              # VLAN + a port's MAC -> towards its host
        TREE_FLOOD = 50         # VLAN + group address -> the tenant's part of the tree
        MISS = 0                # unknown unicast and anything else: drop


# --- registers -------------------------------------------------------------
@dataclass(frozen=True)
class RegField:
    """A register with one meaning in the pipeline (Antrea's NewRegField idea).

    Compilers write `REG_SG_LOCAL.oxm`, never "reg3": what a register holds is
    said here once, and flows.MATCH_FIELDS accepts only registers declared in
    REGISTERS, so an undeclared one cannot creep into a flow."""
    oxm: str            # the OXM field name os-ken and Flow values use
    meaning: str
    bits: int = 32

    def has_bit(self, i):
        """Masked match value: bit i is set (group i, in the group registers)."""
        return (1 << i, 1 << i)


REG_SG_LOCAL = RegField(
    "reg3", "security groups of the local port (bit i = the tenant's group of index i): "
            "the sender's, written by CLASSIFY; the receiver's, written by L2 before ACL_IN")
REG_SG_REMOTE = RegField(
    "reg4", "security groups of the other end's IP (destination on egress, source on "
            "ingress), written by SG_OUT_REMOTE / SG_IN_REMOTE")
REG_DELIVER_PORT = RegField(
    "reg7", "the secured local port (ofport) a packet is about to be delivered to, "
            "written by L2, read by ACL_IN and DELIVER")
REGISTERS = (REG_SG_LOCAL, REG_SG_REMOTE, REG_DELIVER_PORT)
MAX_GROUPS = REG_SG_LOCAL.bits    # per tenant: one bit each in REG_SG_LOCAL / REG_SG_REMOTE


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


def metadata_for(tenant_id, from_net=False):
    """The metadata value a packet of this tenant carries after CLASSIFY."""
    return (tenant_id & TENANT_MASK) | (FROM_NET if from_net else 0)


# --- the table graph ---------------------------------------------------------
@dataclass(frozen=True)
class Miss:
    """What a table does with a packet no other flow claims: drop it (goto
    None), or go on to `goto`, zeroing `clear` first (a value left by an earlier
    table must not be read as this packet's)."""
    goto: object = None
    clear: tuple = ()           # RegFields set to 0


DROP = Miss()


@dataclass(frozen=True)
class TableSpec:
    """One table as data: its priority bands, where its flows may go, its miss.

    `next_tables` are the tables a flow here may goto (always later ones);
    `recirculates_to` the tables a ct(table=N) here may resume in."""
    table: IntEnum
    bands: type
    miss: Miss
    next_tables: frozenset = frozenset()
    recirculates_to: frozenset = frozenset()


def _spec(table, miss=DROP, next_tables=(), recirculates_to=()):
    return TableSpec(table, getattr(Prio, table.name), miss, frozenset(next_tables),
                     frozenset(recirculates_to))


T = Table
HOST_PIPELINE = {s.table: s for s in (
    _spec(T.CLASSIFY, next_tables=(T.PORT_SECURITY, T.L2, T.EXT_IN)),
    _spec(T.EXT_IN, recirculates_to=(T.FROM_EXT, T.EXT_TRANSIT)),
    _spec(T.EXT_TRANSIT, recirculates_to=(T.FROM_EXT,)),
    _spec(T.PORT_SECURITY, next_tables=(T.ARP,)),
    _spec(T.ARP, Miss(T.ACL), next_tables=(T.ND_ANSWER, T.ACL)),
    _spec(T.ND_ANSWER),
    _spec(T.ACL, Miss(T.L3), next_tables=(T.L3,), recirculates_to=(T.SG_OUT_REMOTE,)),
    _spec(T.SG_OUT_REMOTE, Miss(T.SG_OUT), next_tables=(T.SG_OUT,)),
    _spec(T.SG_OUT, next_tables=(T.L3,)),
    _spec(T.L3, Miss(T.L2), next_tables=(T.L2,), recirculates_to=(T.NAT_OUT,)),
    _spec(T.NAT_OUT, next_tables=(T.NAT_SHARED, T.EXT_OUT),
          recirculates_to=(T.NAT_SHARED, T.EXT_OUT)),
    _spec(T.NAT_SHARED, recirculates_to=(T.EXT_OUT,)),
    _spec(T.EXT_OUT),
    _spec(T.FROM_EXT, next_tables=(T.L2,)),
    _spec(T.L2, next_tables=(T.ACL_IN, T.FLOOD)),
    _spec(T.ACL_IN, next_tables=(T.DELIVER,), recirculates_to=(T.SG_IN_REMOTE,)),
    _spec(T.SG_IN_REMOTE, Miss(T.SG_IN, clear=(REG_SG_REMOTE,)), next_tables=(T.SG_IN,)),
    _spec(T.SG_IN, next_tables=(T.DELIVER,)),
    _spec(T.DELIVER),
    _spec(T.FLOOD),
)}
FABRIC_PIPELINE = {FabricTable.FORWARD: TableSpec(FabricTable.FORWARD, Prio.FABRIC, DROP)}
del T


def _check_pipeline():
    """Refuse, at import, a declaration that could not be right."""
    assert set(HOST_PIPELINE) == set(Table), "every host table needs a TableSpec"
    for spec in (*HOST_PIPELINE.values(), *FABRIC_PIPELINE.values()):
        assert spec.bands.MISS == 0, f"{spec.table.name}: its miss band must be 0"
        for nxt in spec.next_tables | ({spec.miss.goto} - {None}):
            assert nxt > spec.table, f"{spec.table.name} -> {nxt.name}: goto only goes forward"
        assert spec.miss.goto is None or spec.miss.goto in spec.next_tables, spec.table.name


_check_pipeline()


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
# The one layout of a flow's 64-bit cookie:
#   cookie[56:64]  kind of flow (CookieKind)
#   cookie[32:56]  owner id, whose meaning the kind fixes (COOKIE_OWNER)
#   cookie[0:32]   hash of the flow's content (table, priority, match, actions)
#
# The content hash makes the switch itself remember which version of a flow it
# holds: the reconciler reads cookies back and never has to parse matches or
# actions, and it deletes a stale flow by its exact cookie.
COOKIE_KIND_SHIFT = 56
COOKIE_OWNER_SHIFT = 32
OWNER_MASK = 0xFF_FFFF
COOKIE_HASH_BYTES = 4
COOKIE_HASH_MASK = (1 << (8 * COOKIE_HASH_BYTES)) - 1


@unique
class CookieKind(IntEnum):
    BASE = 0x01         # table defaults, shared by every tenant
    PORT = 0x02         # flows of one local port (classify, security, delivery)
    TENANT = 0x03       # per-tenant flows (flood lists, uplink/tunnel classify)
    REMOTE = 0x04       # unicast towards a port on another host
    ARP = 0x05          # ARP responder entries
    ROUTER = 0x06       # a tenant's distributed router
    NAT = 0x07          # a tenant's NAT decisions and deliveries
    EXTERNAL = 0x08     # the host's external port plumbing
    FORWARD = 0x09      # one port forward
    FLOATING = 0x0A     # one floating IP
    SECGROUP = 0x0B     # one security group's rules
    FABRIC = 0x0C       # a fabric switch's flows
    SG_LOOKUP = 0x0D    # a port's IP -> its security groups (remote-group lookups)


# What the owner field holds, per kind: one meaning each.
COOKIE_OWNER = {
    CookieKind.BASE: "0",
    CookieKind.PORT: "port serial",
    CookieKind.TENANT: "tenant id",
    CookieKind.REMOTE: "port serial (the remote port)",
    CookieKind.ARP: "port serial (the port whose IP is answered)",
    CookieKind.ROUTER: "tenant id",
    CookieKind.NAT: "tenant id",
    CookieKind.EXTERNAL: "0",
    CookieKind.FORWARD: "port forward serial",
    CookieKind.FLOATING: "floating IP serial",
    CookieKind.SECGROUP: "(tenant id << 5) + group index",
    CookieKind.FABRIC: "tenant id (0: the switch's own flows)",
    CookieKind.SG_LOOKUP: "port serial (the port whose IP is looked up)",
}
assert set(COOKIE_OWNER) == set(CookieKind)


def cookie_prefix(kind, owner):
    """High 32 bits of a cookie: who owns the flow."""
    if not 0 <= owner <= OWNER_MASK:
        raise ValueError(f"cookie owner {owner} does not fit {OWNER_MASK.bit_length()} bits")
    return ((int(kind) & 0xFF) << COOKIE_KIND_SHIFT) | (owner << COOKIE_OWNER_SHIFT)


def cookie_of(prefix, content_hash):
    """The whole cookie: owner prefix and the flow content's hash."""
    return prefix | (content_hash & COOKIE_HASH_MASK)


def describe_cookie(cookie):
    """Human reading of a cookie, for logs and `vpcctl` debugging."""
    kind = (cookie >> COOKIE_KIND_SHIFT) & 0xFF
    owner = (cookie >> COOKIE_OWNER_SHIFT) & OWNER_MASK
    try:
        name = CookieKind(kind).name.lower()
    except ValueError:
        name = "foreign"
    return {"kind": name, "owner": owner, "hash": cookie & COOKIE_HASH_MASK}


# --- protocols and encapsulation -------------------------------------------------
OFPVID_PRESENT = 0x1000
OFPVID_NONE = 0x0000        # vlan_vid matching an untagged frame only
ETH_TYPE_IP = 0x0800
ETH_TYPE_ARP = 0x0806
ETH_TYPE_VLAN = 0x8100
ETH_TYPE_IPV6 = 0x86DD
ARP_REQUEST = 1
ARP_REPLY = 2
ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
MULTICAST_BIT = ("01:00:00:00:00:00", "01:00:00:00:00:00")
IP_PROTO = {"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58}
# ICMPv6 (RFC 4443) and neighbour discovery (RFC 4861) message types
ICMPV6_ECHO_REQUEST = 128
ICMPV6_ECHO_REPLY = 129
MLDV2_REPORT = 143
ND_ROUTER_SOLICIT = 133
ND_ROUTER_ADVERT = 134
ND_NEIGHBOR_SOLICIT = 135
ND_NEIGHBOR_ADVERT = 136
ND_REDIRECT = 137
# NA flags, as nd_reserved holds them (the first 32 bits after the checksum)
ND_FLAG_ROUTER = 0x8000_0000
ND_FLAG_SOLICITED = 0x4000_0000
ND_FLAG_OVERRIDE = 0x2000_0000
ND_OPT_TARGET_LL = 2        # nd_options_type of a Target Link-Layer Address option
MAC_NONE = "00:00:00:00:00:00"  # nd_sll / nd_tll of an NS/NA without that option
IPV6_UNSPECIFIED = "::"
L4_SRC_FIELD = {"tcp": "tcp_src", "udp": "udp_src"}     # OXM field of a protocol's ports
L4_DST_FIELD = {"tcp": "tcp_dst", "udp": "udp_dst"}
DHCP_SERVER_PORT = 67       # UDP source port of DHCP server replies
DHCP_CLIENT_PORT = 68
DHCP6_CLIENT_PORT = 546
DHCP6_SERVER_PORT = 547
DNS_PORT = 53

# The host agent's DHCP/DNS responder (compile/services.py, vpcagent/services/)
# reads and answers on this OVS internal port of br-int.  A frame on it names
# the container port by a tag MAC in eth_dst: SERVICE_TAG_PREFIX + the port's
# serial (16 bits), both ways -- the steering flow writes it, the agent
# answers to it, and the reply flow turns it back into the port's MAC.  The
# agent keeps its own copy of both (it runs on hosts without controller code).
SERVICE_PORT = "vpc-svc"
SERVICE_TAG_PREFIX = "02:76:70:73"     # "vps"


def service_tag(serial):
    """The tag MAC naming the port with this serial on the service port."""
    if not 0 < serial <= 0xFFFF:
        raise ValueError(f"no service tag for serial {serial}")
    return f"{SERVICE_TAG_PREFIX}:{serial >> 8:02x}:{serial & 0xFF:02x}"

# The flow-based tunnel port of each overlay on br-int (remote_ip=flow key=flow).
# scripts/host-join creates them; it runs on hosts from a copy of scripts/ alone,
# so it keeps its own copy, which tests/unit/compile/test_tunnel_ports.py checks.
TUNNEL_PORTS = {"vxlan": "vxlan0", "gre": "gre0"}

# IPv4 outer-header overhead, subtracted from the underlay MTU.
ENCAP_OVERHEAD = {"vlan": 0, "vxlan": 50, "gre": 42}

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
