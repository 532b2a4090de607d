"""Our own small LLDP: the frames we send, and which links are alive.

Why our own and not os-ken's topology service (``--observe-links``): that
service loses every link about 10 s after discovering it and never finds them
again (its ``lldp_loop`` can wait forever once all ports time out; LAB.md),
it discovers only links between datapaths it also manages through its own
switch list, and it brings a second view of ports and switches that would
have to be kept in step with ours.  What we need is small: one frame per port
per interval, one packet-in handler, and a table of last-seen times.  This
module is the pure part (no I/O, no clock of its own: callers pass ``now``);
controller/fabric_runtime.py sends and receives.

Frame: destination 01:80:c2:00:00:0e (nearest bridge: no 802.1D bridge, and
no OVS NORMAL bridge without ``other_config:forward-bpdu=true``, forwards it,
so what we learn is always a direct neighbour), EtherType 0x88cc, TLVs

    chassis id   subtype 7 (locally assigned)  "dpid:<16 hex digits>"
    port id      subtype 2 (port component)    the OpenFlow port number, 4 bytes
    ttl          seconds
    system name  "vpc-controller"
    end

(the chassis/port encoding os-ken's own LLDP uses, so packet dumps read the
same), padded to the 60-byte Ethernet minimum.
"""
import struct
from collections import namedtuple

LLDP_MAC = "01:80:c2:00:00:0e"
ETH_TYPE_LLDP = 0x88CC
SYSTEM_NAME = b"vpc-controller"
_CHASSIS, _PORT, _TTL, _SYSNAME, _END = 1, 2, 3, 5, 0
_CHASSIS_LOCAL, _PORT_COMPONENT = 7, 2
_CHASSIS_PREFIX = b"dpid:"
MIN_FRAME = 60

# One end of a link: a datapath and an OpenFlow port number.
End = namedtuple("End", "dpid port")


def _mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def _tlv(kind, value):
    if len(value) > 511:
        raise ValueError("LLDP TLV value longer than 511 bytes")
    return struct.pack("!H", (kind << 9) | len(value)) + value


def encode(dpid, port_no, src_mac, ttl=120):
    """The LLDP frame a datapath sends out of one port (bytes)."""
    if not 0 <= dpid < 1 << 64 or not 0 < port_no < 1 << 32:
        raise ValueError(f"bad dpid/port {dpid!r}/{port_no!r}")
    body = (_tlv(_CHASSIS, bytes([_CHASSIS_LOCAL]) + _CHASSIS_PREFIX + b"%016x" % dpid)
            + _tlv(_PORT, bytes([_PORT_COMPONENT]) + struct.pack("!I", port_no))
            + _tlv(_TTL, struct.pack("!H", max(1, min(int(ttl), 0xFFFF))))
            + _tlv(_SYSNAME, SYSTEM_NAME)
            + _tlv(_END, b""))
    frame = _mac_bytes(LLDP_MAC) + _mac_bytes(src_mac) + struct.pack("!H", ETH_TYPE_LLDP) + body
    return frame + bytes(max(0, MIN_FRAME - len(frame)))


def decode(data):
    """End(dpid, port) of the sender of one of our LLDP frames, else None.

    Never raises: a packet-in may carry anything.  Frames from other LLDP
    speakers (chassis id not ``dpid:``, port id not a port number) are None.
    """
    try:
        data = bytes(data)
        if len(data) < 14 or struct.unpack("!H", data[12:14])[0] != ETH_TYPE_LLDP:
            return None
        off, dpid, port = 14, None, None
        while off + 2 <= len(data):
            head, = struct.unpack("!H", data[off:off + 2])
            kind, length = head >> 9, head & 0x1FF
            value = data[off + 2:off + 2 + length]
            if len(value) != length:
                return None
            off += 2 + length
            if kind == _END:
                break
            if kind == _CHASSIS:
                if value[:1] != bytes([_CHASSIS_LOCAL]) or not value[1:].startswith(_CHASSIS_PREFIX):
                    return None
                text = value[1 + len(_CHASSIS_PREFIX):]
                if len(text) != 16:
                    return None
                dpid = int(text, 16)
            elif kind == _PORT:
                if value[:1] != bytes([_PORT_COMPONENT]) or len(value) != 5:
                    return None
                port, = struct.unpack("!I", value[1:])
        if dpid is None or not port:
            return None
        return End(dpid, port)
    except (ValueError, struct.error):
        return None


def canonical(a, b):
    """A link's key: its two ends in order (links are undirected)."""
    a, b = End(*a), End(*b)
    return (a, b) if a <= b else (b, a)


class LinkTable:
    """Which links are alive, from LLDP sightings and port events.

    A link between two switches that both punt LLDP is up once frames were
    seen crossing it both ways within ``timeout`` seconds, and stays up while
    both directions keep being refreshed: a link that fails one way (no port
    event tells) goes down after the timeout and does not come back on its
    working direction alone.  A link observed ``one_way`` (a host's uplink:
    hosts send LLDP up it but do not punt what comes down) is up from its
    first frame and lives on that direction.  Either kind goes down at once
    when one of its ports goes down or away.  A port that went down ignores
    frames until it comes back up, so a frame already in flight when the
    cable was pulled cannot bring the link back.  Ports are point-to-point:
    a frame from a new neighbour on a port replaces the old link of that port.

    Down links are remembered (``down()``) so the topology can show them,
    until one of their ports or datapaths goes away.
    """

    def __init__(self, timeout=3.0):
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.timeout = float(timeout)
        self._seen = {}        # canonical link -> {sending End: last time}, up or not yet
        self._one_way = set()  # links observed one_way
        self._up = set()
        self._down = {}        # canonical link -> time it went down
        self._dead_ports = set()

    # --- sightings -------------------------------------------------------
    def observe(self, src, dst, now, one_way=False):
        """A frame sent by ``src`` arrived at ``dst``.  Returns the links
        that changed state: [(link, "up"|"down")]."""
        src, dst = End(*src), End(*dst)
        if src == dst or src in self._dead_ports or dst in self._dead_ports:
            return []
        link = canonical(src, dst)
        changes = []
        for other in [lk for lk in self._seen if lk != link and (src in lk or dst in lk)]:
            changes += self._take_down(other, now)
        dirs = self._seen.setdefault(link, {})
        dirs[src] = now
        if one_way:
            self._one_way.add(link)
        if link not in self._up and self._alive(link, now):
            self._up.add(link)
            self._down.pop(link, None)
            changes.append((link, "up"))
        return changes

    def _alive(self, link, now):
        dirs = self._seen.get(link, {})
        if link in self._one_way:
            return bool(dirs) and now - max(dirs.values()) <= self.timeout
        return len(dirs) == 2 and now - min(dirs.values()) <= self.timeout

    def expire(self, now):
        """Links not refreshed (both ways, unless one-way) within the timeout
        go down; half-seen candidates that went quiet are forgotten."""
        changes = []
        for link in list(self._seen):
            if link in self._up:
                if not self._alive(link, now):
                    changes += self._take_down(link, now)
            elif now - max(self._seen[link].values()) > self.timeout:
                self._drop(link)
        return changes

    # --- port and datapath events -------------------------------------------
    def port_down(self, end, now):
        end = End(*end)
        self._dead_ports.add(end)
        return self._take_down_where(lambda lk: end in lk, now)

    def port_up(self, end):
        self._dead_ports.discard(End(*end))

    def port_gone(self, end, now):
        """The port was deleted: its links go, and are not remembered."""
        end = End(*end)
        self._dead_ports.discard(end)
        changes = self._take_down_where(lambda lk: end in lk, now)
        self._forget(lambda lk: end in lk)
        return changes

    def datapath_gone(self, dpid, now):
        changes = self._take_down_where(lambda lk: dpid in (lk[0].dpid, lk[1].dpid), now)
        self._forget(lambda lk: dpid in (lk[0].dpid, lk[1].dpid))
        self._dead_ports = {e for e in self._dead_ports if e.dpid != dpid}
        return changes

    # --- queries -----------------------------------------------------------------
    def up(self):
        """Links alive now, sorted: [(End, End)]."""
        return sorted(self._up)

    def down(self):
        return sorted(self._down)

    def directions(self, link):
        """The ends whose frames were seen crossing ``link`` (for display)."""
        return sorted(self._seen.get(canonical(*link), {}))

    # --- internals ------------------------------------------------------------------
    def _drop(self, link):
        self._seen.pop(link, None)
        self._one_way.discard(link)
        was_up = link in self._up
        self._up.discard(link)
        return was_up

    def _take_down(self, link, now):
        if not self._drop(link):
            return []
        self._down[link] = now
        return [(link, "down")]

    def _take_down_where(self, pred, now):
        changes = []
        for link in [lk for lk in self._seen if pred(lk)]:
            changes += self._take_down(link, now)
        return changes

    def _forget(self, pred):
        for link in [lk for lk in self._down if pred(lk)]:
            del self._down[link]
