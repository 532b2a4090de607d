"""A small IPFIX (RFC 7011) decoder: what Open vSwitch's bridge exporter sends.

Why our own: the flow-log collector needs perhaps 80 lines of IPFIX (message
header, template sets, data sets decoded by their template) and no more; the
Python IPFIX packages are unmaintained or pull in a framework.  Templates are
kept per (observation domain, template id), as RFC 7011 says; a data set
whose template has not arrived yet is skipped (OVS re-sends templates
periodically, `template_interval`).
"""
import ipaddress
import struct

# Information elements we read (IANA ids); others decode as "ie<id>".
NAMES = {1: "octets", 2: "packets", 4: "proto", 7: "sport", 8: "src", 10: "in_if",
         61: "direction",
         11: "dport", 12: "dst", 14: "out_if", 32: "icmp_type_code", 56: "src_mac",
         58: "vlan", 80: "dst_mac", 85: "octets_total", 86: "packets_total",
         136: "end_reason", 150: "start_s", 151: "end_s", 152: "start_ms", 153: "end_ms",
         158: "start_delta_us", 159: "end_delta_us", 176: "icmp_type", 177: "icmp_code",
         352: "l2_octets", 353: "l2_octets_total"}
_ADDR4 = {8, 12, 225, 226}
_MAC = {56, 80}
VERSION = 10


class IpfixError(ValueError):
    pass


class Decoder:
    """Feed it IPFIX messages; get flow records (dicts) back."""

    def __init__(self):
        self.templates = {}     # (domain, template id) -> [(ie id, length)]

    def decode(self, data):
        """One IPFIX message -> (export time, [record dict])."""
        if len(data) < 16:
            raise IpfixError("short message")
        version, length, export_time, _seq, domain = struct.unpack_from("!HHIII", data)
        if version != VERSION or length > len(data):
            raise IpfixError(f"not IPFIX (version {version}, length {length})")
        records, off = [], 16
        while off + 4 <= length:
            set_id, set_len = struct.unpack_from("!HH", data, off)
            if set_len < 4 or off + set_len > length:
                raise IpfixError(f"bad set length {set_len}")
            body = data[off + 4:off + set_len]
            if set_id == 2:
                self._templates(domain, body)
            elif set_id >= 256:
                records += self._data(domain, set_id, body)
            off += set_len                 # 3 (options templates) and others: skipped
        return export_time, records

    def _templates(self, domain, body):
        off = 0
        while off + 4 <= len(body):
            tid, count = struct.unpack_from("!HH", body, off)
            off += 4
            fields = []
            for _ in range(count):
                ie, flen = struct.unpack_from("!HH", body, off)
                off += 4
                if ie & 0x8000:            # enterprise-specific: skip its number
                    off += 4
                    ie = -(ie & 0x7FFF)
                fields.append((ie, flen))
            self.templates[(domain, tid)] = fields

    def _data(self, domain, tid, body):
        fields = self.templates.get((domain, tid))
        if not fields:
            return []
        out, off = [], 0
        fixed = sum(flen for _, flen in fields if flen != 0xFFFF)
        while off + max(fixed, 1) <= len(body):
            rec = {}
            for ie, flen in fields:
                if flen == 0xFFFF:         # variable length
                    flen = body[off]
                    off += 1
                    if flen == 255:
                        flen = struct.unpack_from("!H", body, off)[0]
                        off += 2
                raw = body[off:off + flen]
                off += flen
                rec[NAMES.get(ie, f"ie{ie}")] = _value(ie, raw)
            out.append(rec)
        return out


def _value(ie, raw):
    if ie in _ADDR4 and len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    if ie in _MAC and len(raw) == 6:
        return ":".join(f"{b:02x}" for b in raw)
    if len(raw) <= 8:
        return int.from_bytes(raw, "big")
    return raw.hex()


def encode(domain, export_time, template_id, fields, records, seq=0):
    """An IPFIX message with one template set and one data set (tests, and
    replaying records).  `fields`: [(ie id, length)]; records: [[bytes]]."""
    tpl = struct.pack("!HH", template_id, len(fields)) + b"".join(
        struct.pack("!HH", ie, flen) for ie, flen in fields)
    data = b"".join(b"".join(r) for r in records)
    sets = struct.pack("!HH", 2, 4 + len(tpl)) + tpl + \
        struct.pack("!HH", template_id, 4 + len(data)) + data
    return struct.pack("!HHIII", VERSION, 16 + len(sets), export_time, seq, domain) + sets
