"""The tenant's DNS at its gateway address: local names, PTR, forwarding (dnslib).

Each query is answered in the asking port's tenant only -- the index is per
tenant (view.Tenant), so another tenant's names simply do not exist here.

* ``NAME.`` and ``NAME.<domain>.`` (any case): A/AAAA of every port with that
  name or alias, rotated one step per query (round robin, as Docker's
  ``--net-alias``); other types of a known name: NODATA with the SOA.
* PTR of a tenant address -> ``<first name>.<domain>.``; an address inside a
  tenant subnet without a port: NXDOMAIN.
* an unknown name under ``<domain>`` or any single-label name: NXDOMAIN,
  authoritative, with an SOA whose minimum is the tenant's TTL (RFC 2308: a
  negative answer is cached no longer than a positive one, so a container
  that appears resolves within seconds).
* anything else goes to the tenant's resolvers (forward.py); none set:
  REFUSED, with an Extended DNS Error (RFC 8914) saying how to set one when
  the query had EDNS.

Only UDP: DNS over TCP to the gateway is not answered.  An answer larger
than the client can take (512 bytes without EDNS) is cut with TC set.
"""
import ipaddress
import logging
import struct

from dnslib import (AAAA, CLASS, DNSError, DNSHeader, DNSRecord, EDNS0, EDNSOption, PTR,
                    QTYPE, RCODE, RR, SOA, A)

from vpcagent.services import frames

log = logging.getLogger("vpc-agent.services")

PORT = 53
EDNS_UDP = 1232               # what we advertise (the DNS flag day 2020 figure)
EDE_OPTION = 15
EDE_NOT_AUTHORITATIVE = 20
OP_QUERY = 0


def refused_text(tenant):
    return (f"tenant {tenant} has no DNS resolver set: vpcctl tenant dhcp-options "
            f"{tenant} --resolver IP")


def _edns(query):
    opts = [r for r in query.ar if r.rtype == QTYPE.OPT]
    return opts[0] if opts else None


def client_limit(query, mtu, version):
    """The largest answer this client takes over UDP."""
    opt = _edns(query) if query is not None else None
    if opt is None:
        return 512
    room = (mtu or 1500) - (48 if version == 6 else 28)
    return max(512, min(opt.rclass, room, 65535))


def _header(query, rcode, aa, ra):
    return DNSHeader(id=query.header.id, qr=1, opcode=query.header.opcode, aa=int(aa),
                     tc=0, rd=query.header.rd, ra=int(ra), rcode=rcode)


def _reply(query, rcode=RCODE.NOERROR, aa=True, ra=False, ede=None):
    r = DNSRecord(_header(query, rcode, aa, ra), questions=list(query.questions))
    if _edns(query) is not None:
        opts = [EDNSOption(EDE_OPTION, struct.pack("!H", ede[0]) + ede[1].encode())] \
            if ede else []
        r.add_ar(EDNS0(udp_len=EDNS_UDP, opts=opts))
    return r


def fit(record, limit):
    """``record`` packed, cut to ``limit`` bytes with TC set when larger
    (answers dropped from the end first, then authority, then additional
    records other than OPT)."""
    data = record.pack()
    if len(data) <= limit:
        return data
    record.header.tc = 1
    for section in (record.rr, record.auth):
        while section and len(data) > limit:
            section.pop()
            data = record.pack()
    record.ar = [r for r in record.ar if r.rtype == QTYPE.OPT]
    data = record.pack()
    if len(data) > limit:
        record.questions = []
        data = record.pack()
    return data


def soa(zone, ttl):
    name = zone.rstrip(".") + "."
    host = "ns." + name if name != "." else "ns.vpc."
    mail = "hostmaster." + name if name != "." else "hostmaster.vpc."
    return RR(name, QTYPE.SOA, ttl=ttl,
              rdata=SOA(host, mail, (1, 3600, 600, 86400, ttl)))


def reverse_address(labels):
    """The address a full in-addr.arpa / ip6.arpa name stands for, or None."""
    try:
        if labels[-2:] == (b"in-addr", b"arpa") and len(labels) == 6:
            octets = [int(x) for x in reversed(labels[:4])]
            if all(0 <= o <= 255 and x.isdigit() for o, x in zip(octets, reversed(labels[:4]))):
                return ipaddress.IPv4Address(bytes(octets))
        if labels[-2:] == (b"ip6", b"arpa") and len(labels) == 34:
            nibbles = [x.decode() for x in reversed(labels[:32])]
            if all(len(n) == 1 and n in "0123456789abcdef" for n in nibbles):
                return ipaddress.IPv6Address(int("".join(nibbles), 16))
    except (ValueError, UnicodeDecodeError):
        pass
    return None


def reverse_zone(net):
    """The reverse zone (octet/nibble aligned) a subnet falls in."""
    if net.version == 4:
        n = net.prefixlen // 8
        parts = [str(b) for b in net.network_address.packed[:n]]
        return ".".join(reversed(parts)) + (".in-addr.arpa" if parts else "in-addr.arpa")
    n = net.prefixlen // 4
    hexs = net.network_address.exploded.replace(":", "")[:n]
    return ".".join(reversed(hexs)) + (".ip6.arpa" if hexs else "ip6.arpa")


def _fqdn(tenant, name):
    return f"{name}.{tenant.domain}." if tenant.domain else f"{name}."


def local(query, tenant):
    """A dnslib reply from the tenant's names, or None: not ours (forward)."""
    q = query.questions[0]
    labels = tuple(bytes(x).lower() for x in q.qname.label)
    ra = bool(tenant.resolvers)
    ttl = tenant.ttl
    if labels[-1:] == (b"arpa",):
        addr = reverse_address(labels)
        if addr is None:
            return None
        zone = next((reverse_zone(s) for s in tenant.subnets
                     if s.version == addr.version and addr in s), None)
        name = tenant.by_addr.get(addr)
        if name is None and zone is None:
            return None
        zone = zone or reverse_zone(ipaddress.ip_network(f"{addr}/{addr.max_prefixlen}"))
        if name is None:
            r = _reply(query, RCODE.NXDOMAIN, ra=ra)
            r.add_auth(soa(zone, ttl))
            return r
        r = _reply(query, ra=ra)
        if q.qtype == QTYPE.PTR:
            r.add_answer(RR(q.qname, QTYPE.PTR, ttl=ttl, rdata=PTR(_fqdn(tenant, name))))
        else:
            r.add_auth(soa(zone, ttl))
        return r
    dom = tuple(tenant.domain.encode().split(b".")) if tenant.domain else ()
    if dom and labels[-len(dom):] == dom:
        rel = labels[:-len(dom)]
    elif len(labels) == 1:
        rel = labels
    else:
        return None
    zone = tenant.domain or "."
    if not rel:                                   # the zone apex itself
        r = _reply(query, ra=ra)
        if q.qtype == QTYPE.SOA:
            r.add_answer(soa(zone, ttl))
        else:
            r.add_auth(soa(zone, ttl))
        return r
    members = tenant.names.get(b".".join(rel).decode(errors="replace"))
    if not members:
        r = _reply(query, RCODE.NXDOMAIN, ra=ra)
        r.add_auth(soa(zone, ttl))
        return r
    r = _reply(query, ra=ra)
    if q.qtype in (QTYPE.A, QTYPE.AAAA):
        v4 = q.qtype == QTYPE.A
        addrs = [m[0] if v4 else m[1] for m in members]
        addrs = list(dict.fromkeys(a for a in addrs if a is not None))
        if addrs:
            k = tenant.rotation((rel, q.qtype), len(addrs))
            for a in addrs[k:] + addrs[:k]:
                r.add_answer(RR(q.qname, q.qtype, ttl=ttl,
                                rdata=A(str(a)) if v4 else AAAA(str(a))))
            return r
    r.add_auth(soa(zone, ttl))
    return r


def parse_query(payload):
    """(query, None) for a well-formed query; (None, error reply bytes) for a
    malformed one whose header parses; (None, None): drop it."""
    if len(payload) < 12:
        return None, None
    qid, flags = struct.unpack_from("!HH", payload)
    if flags & 0x8000:
        return None, None                        # a response: never answer those
    opcode = (flags >> 11) & 0xF
    try:
        query = DNSRecord.parse(payload)
    except (DNSError, ValueError, IndexError, struct.error, UnicodeError):
        query = None
    if opcode != OP_QUERY or query is None or len(query.questions) != 1 or \
            query.rr or len([r for r in query.ar if r.rtype == QTYPE.OPT]) > 1:
        rcode = RCODE.NOTIMP if opcode != OP_QUERY else RCODE.FORMERR
        h = DNSHeader(id=qid, qr=1, opcode=opcode, rd=(flags >> 8) & 1, rcode=rcode)
        return None, DNSRecord(h).pack()
    return query, None


class Dns:
    """Answers one tenant's DNS queries; ``send(frame)`` writes a frame into
    the service port (used for answers that come back from a resolver)."""

    def __init__(self, forwarder, send, counters=None):
        self.forwarder = forwarder
        self.send = send
        self.counters = counters if counters is not None else {}

    def _count(self, key):
        self.counters[key] = self.counters.get(key, 0) + 1

    def answer(self, pkt, port, tenant):
        """The reply frame, or None (dropped, or forwarded: the answer is
        sent later from a worker)."""
        if pkt.version == 4:
            ok = port.ip is not None and pkt.src == str(port.ip) and \
                pkt.dst == str(port.gateway)
        else:
            ok = port.ip6 is not None and pkt.src == str(port.ip6) and \
                pkt.dst == str(port.gateway6)
        if not ok:
            self._count("dns_bad_address")
            return None
        query, err = parse_query(pkt.payload)
        if query is None:
            self._count("dns_malformed")
            return self.frame(pkt, port, tenant, err) if err else None
        limit = client_limit(query, port.mtu, pkt.version)
        if query.questions[0].qclass not in (CLASS.IN, 255):       # IN or ANY
            return self.frame(pkt, port, tenant, fit(_reply(query, RCODE.REFUSED, aa=False),
                                                     limit))
        opt = _edns(query)
        if opt is not None and (opt.ttl >> 16) & 0xFF:        # EDNS version > 0
            r = DNSRecord(_header(query, 0, False, False), questions=list(query.questions))
            r.add_ar(EDNS0(udp_len=EDNS_UDP, ext_rcode=1))      # BADVERS
            return self.frame(pkt, port, tenant, r.pack())
        r = local(query, tenant)
        if r is not None:
            self._count("dns_local")
            return self.frame(pkt, port, tenant, fit(r, limit))
        if not tenant.resolvers:
            self._count("dns_refused")
            r = _reply(query, RCODE.REFUSED, aa=False,
                       ede=(EDE_NOT_AUTHORITATIVE, refused_text(tenant.name)))
            return self.frame(pkt, port, tenant, fit(r, limit))

        def done(answer):
            if answer is None:
                self._count("dns_servfail")
                data = fit(_reply(query, RCODE.SERVFAIL, aa=False, ra=True), limit)
            else:
                self._count("dns_forwarded")
                data = answer if len(answer) <= limit else self._cut(answer, query, limit)
            self.send(self.frame(pkt, port, tenant, data))

        if not self.forwarder.submit(pkt.payload, tenant.resolvers, done):
            self._count("dns_forward_overflow")
            return self.frame(pkt, port, tenant,
                              fit(_reply(query, RCODE.SERVFAIL, aa=False, ra=True), limit))
        return None

    @staticmethod
    def _cut(answer, query, limit):
        try:
            return fit(DNSRecord.parse(answer), limit)
        except (DNSError, ValueError, IndexError, struct.error, UnicodeError):
            r = _reply(query, RCODE.NOERROR, aa=False, ra=True)
            r.header.tc = 1
            r.header.id = struct.unpack("!H", answer[:2])[0]
            return r.pack()

    @staticmethod
    def frame(pkt, port, tenant, data):
        return frames.build(port.serial, tenant.router_mac, pkt.dst, pkt.src, PORT,
                            pkt.sport, data)

