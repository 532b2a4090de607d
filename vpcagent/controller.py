"""What the agent asks the controller, in the drivers' terms.

Built on vpcctl's REST client (one client for the whole project); every
controller error becomes a ``ProtocolError`` carrying the controller's own
sentence, so Docker shows the user why.

The controller is the agent's memory: ports are found again by (tenant,
host, IP), never from a table the agent keeps.  Names are deterministic so a
retried request finds what the first attempt made instead of making a second
one:

    OVS port (host end)   "vd" + 11 hex of sha1(tenant/IP)   (13 chars; random
                          when the IP is the controller's choice, still unknown)
    container end         "vc" + the same 11 hex
    publish group         "pub-" + the OVS port name
"""
import hashlib
import ipaddress
import secrets

from vpcctl.client import ApiError, Client, Unreachable, cidr_segment, path, token_from
from vpcagent.server import ProtocolError

NETWORK_TYPES = ("vlan", "vxlan", "gre")
PUBLISH_PREFIX = "pub-"


def port_names(tenant, ip=None):
    """(host end, container end) for a port of ``tenant`` with this IP
    (random when the IP is still unknown)."""
    key = ip or secrets.token_hex(8)
    h = hashlib.sha1(f"{tenant}/{key}".lower().encode()).hexdigest()[:11]
    return "vd" + h, "vc" + h


def placeholder_name(tenant, ip6=None):
    """The name of the IPv6-only port the IPAM driver makes for an endpoint's
    IPv6 address until CreateEndpoint folds it into the endpoint's port
    (docker_ipam.py): "v6" + 11 hex, never an OVS port."""
    key = ip6 or secrets.token_hex(8)
    return "v6" + hashlib.sha1(f"{tenant}/{key}".lower().encode()).hexdigest()[:11]


def peer_name(host_end):
    return "vc" + host_end[2:] if host_end.startswith("vd") else host_end + "p"


class Controller:
    def __init__(self, url, host, timeout=10.0, token=None, ssl_context=None):
        """`token`: the host's token (docs/security.md), else VPC_TOKEN or the
        file VPC_TOKEN_FILE names; none for a controller without authentication.
        `ssl_context`: how an https controller is verified (default: system CAs)."""
        self.client = Client(url, timeout=timeout, token=token or token_from(),
                             ssl_context=ssl_context)
        self.host = host

    # -- plumbing of errors ---------------------------------------------------
    def call(self, method, p, body=None, missing_ok=False):
        try:
            return self.client.request(method, p, body)
        except ApiError as e:
            if missing_ok and e.status == 404:
                return None
            raise ProtocolError(f"controller: {e.message}") from None
        except Unreachable as e:
            raise ProtocolError(f"{e}; nothing was changed") from None

    def get(self, *parts, missing_ok=False):
        return self.call("GET", path(*parts), missing_ok=missing_ok)

    # -- host --------------------------------------------------------------------
    def host_record(self):
        h = self.get("hosts", self.host, missing_ok=True)
        if h is None:
            raise ProtocolError(f"host {self.host!r} is not registered at the controller "
                                f"(run host-join first)")
        return h

    # -- tenants and subnets -------------------------------------------------------
    def tenant(self, name):
        return self.get("tenants", name, missing_ok=True)

    def subnet(self, tenant, cidr):
        return self.get("tenants", tenant, "subnets", cidr_segment(cidr), missing_ok=True)

    def check_pool(self, tenant, cidr, network=None):
        """Read-only: refuse a pool that disagrees with what the controller
        has (other network type, an overlapping but different subnet)."""
        t = self.tenant(tenant)
        if t is None:
            return None
        if network and t["network"] != network:
            raise ProtocolError(f"tenant {tenant!r} exists at the controller with network "
                                f"{t['network']}, not {network}; use -o vpc.network="
                                f"{t['network']} or another tenant")
        net = ipaddress.ip_network(cidr)
        for other in t.get("subnets", []):
            theirs = ipaddress.ip_network(other)       # a dual-stack tenant has both kinds
            if theirs.version == net.version and other != str(net) and theirs.overlaps(net):
                raise ProtocolError(f"tenant {tenant!r} already has subnet {other}, which "
                                    f"overlaps {net} without being equal; use --subnet "
                                    f"{other} to join it")
        return t

    def ensure_network(self, tenant, network, cidr, gateway=None):
        """Create the tenant and subnet when missing, adopt them when they
        agree, refuse (ProtocolError) when they disagree.  Returns the subnet."""
        t = self.check_pool(tenant, cidr, network)
        if t is None:
            try:
                self.client.post(path("tenants"), {"name": tenant, "network": network})
            except ApiError as e:
                if e.status != 409:                     # 409: another host was faster
                    raise ProtocolError(f"controller: {e.message}") from None
            except Unreachable as e:
                raise ProtocolError(f"{e}; nothing was changed") from None
            self.check_pool(tenant, cidr, network)
        s = self.subnet(tenant, cidr)
        if s is None:
            body = {"cidr": cidr}
            if gateway:
                body["gateway"] = gateway
            try:
                s = self.client.post(path("tenants", tenant, "subnets"), body)
            except ApiError as e:
                s = self.subnet(tenant, cidr) if e.status == 409 else None
                if s is None:
                    raise ProtocolError(f"controller: {e.message}") from None
            except Unreachable as e:
                raise ProtocolError(f"{e}; the tenant may exist now, nothing else "
                                    f"changed") from None
        if gateway and s["gateway"] != gateway:
            raise ProtocolError(f"subnet {cidr} of tenant {tenant!r} has gateway "
                                f"{s['gateway']} at the controller, not {gateway}; create "
                                f"the network with --gateway {s['gateway']} (or without "
                                f"--gateway)")
        return s

    # -- ports ---------------------------------------------------------------------
    def ports(self, tenant):
        return self.get("tenants", tenant, "ports", missing_ok=True) or []

    def port_by_ip(self, tenant, ip):
        """The tenant's port with this IP (on any host), or None."""
        for p in self.ports(tenant):
            if p["ip"] == ip:
                return p
        return None

    def port_by_ip6(self, tenant, ip6):
        """The tenant's port with this IPv6 address (on any host), or None."""
        for p in self.ports(tenant):
            if p.get("ip6") == ip6:
                return p
        return None

    def port(self, tenant, port_id):
        return self.get("tenants", tenant, "ports", port_id, missing_ok=True)

    def create_port(self, tenant, name, subnet, ip=None, mac=None, subnet6=None, ip6=None):
        """POST a port on this host.  A retry (same name, this host) adopts
        the port the first attempt made.  IPv6 only when asked for (`subnet6`:
        a dual-stack CNI network, a Docker network's IPv6 pool), so a port
        of a network without IPv6 gets no IPv6 address in a dual-stack tenant;
        `subnet` None: an IPv6-only port (the Docker IPAM's placeholder)."""
        body = {"host": self.host, "port": name,
                "family": "dual" if subnet and subnet6 else "ipv6" if subnet6 else "ipv4"}
        if subnet:
            body["subnet"] = subnet
        if subnet6:
            body["subnet6"] = subnet6
        if ip6:
            body["ip6"] = ip6
        if ip:
            body["ip"] = ip
        if mac:
            body["mac"] = mac
        try:
            return self.client.post(path("tenants", tenant, "ports"), body)
        except ApiError as e:
            if e.status == 409:
                for p in self.ports(tenant):
                    if p["host"] == self.host and p["port"] == name and \
                            (ip is None or p["ip"] == ip) and (mac is None or p["mac"] == mac) \
                            and (ip6 is None or p.get("ip6") == ip6):
                        return p
            raise ProtocolError(f"controller: {e.message}") from None
        except Unreachable as e:
            raise ProtocolError(f"{e}; nothing was changed") from None

    def remake_port(self, tenant, port, mac, ip6=None):
        """``port`` made again with ``mac`` (and ``ip6``) -- same host, OVS
        name, IP and groups -- and returned.  For a user's --mac-address, which
        reaches the agent only after the IPAM made the port with the
        controller's MAC, and for the endpoint's IPv6 address, which Docker
        asks the IPAM for separately; neither is patchable, so: delete, then
        create.  When the create is
        refused (the MAC is another port's), the port is made again as it was
        and the refusal raised, so nothing is lost or leaked."""
        body = {"host": port["host"], "port": port["port"], "subnet": port["subnet"],
                "ip": port["ip"], "security_groups": port["security_groups"],
                "port_security": port["port_security"], "family": "ipv4"}
        was = dict(body, mac=port["mac"])
        if port.get("ip6"):
            was.update(family="dual", ip6=port["ip6"])
        want = dict(was, mac=mac or port["mac"])
        if ip6:                      # the endpoint's IPv6 address joins the port
            want.update(family="dual", ip6=ip6)
        self.delete_port(tenant, port["id"])
        try:
            return self.call("POST", path("tenants", tenant, "ports"), want)
        except ProtocolError:
            self.call("POST", path("tenants", tenant, "ports"), was)
            raise

    def delete_port(self, tenant, port_id):
        self.call("DELETE", path("tenants", tenant, "ports", port_id), missing_ok=True)

    # -- published ports (-p): forwards plus a per-port security group --------------
    def forwards_of(self, tenant, port_id):
        return [f for f in self.get("tenants", tenant, "port-forwards", missing_ok=True) or []
                if f["port_id"] == port_id]

    def publish(self, tenant, port, bindings):
        """``bindings``: [(protocol, external_port, internal_port)].  Adds the
        forwards and a group ``pub-<port>`` admitting the internal ports from
        anywhere (the default group admits only members).  All or nothing."""
        made_fwd, group = [], PUBLISH_PREFIX + port["port"]
        have = {(f["protocol"], f["external_port"], f["internal_port"]): f
                for f in self.forwards_of(tenant, port["id"])}
        try:
            for proto, ext, internal in bindings:
                if (proto, ext, internal) in have:
                    continue
                f = self.call("POST", path("tenants", tenant, "port-forwards"),
                              {"port_id": port["id"], "protocol": proto,
                               "external_port": ext, "internal_port": internal})
                made_fwd.append(f["id"])
            rules = [{"direction": "ingress", "protocol": proto, "ports": str(internal),
                      "remote": "0.0.0.0/0"} for proto, _, internal in sorted(set(bindings))]
            if self.get("tenants", tenant, "security-groups", group, missing_ok=True):
                self.call("PUT", path("tenants", tenant, "security-groups", group),
                          {"rules": rules})
            else:
                self.call("POST", path("tenants", tenant, "security-groups"),
                          {"name": group, "rules": rules})
            groups = list(port.get("security_groups") or ["default"])
            if group not in groups and port.get("port_security", True):
                self.call("PATCH", path("tenants", tenant, "ports", port["id"]),
                          {"security_groups": groups + [group]})
        except ProtocolError:
            for fid in made_fwd:
                self.call("DELETE", path("tenants", tenant, "port-forwards", fid),
                          missing_ok=True)
            raise

    def unpublish(self, tenant, port):
        """Remove the port's forwards and its publish group.  Idempotent."""
        group = PUBLISH_PREFIX + port["port"]
        for f in self.forwards_of(tenant, port["id"]):
            self.call("DELETE", path("tenants", tenant, "port-forwards", f["id"]),
                      missing_ok=True)
        cur = self.port(tenant, port["id"])
        if cur and group in (cur.get("security_groups") or []):
            rest = [g for g in cur["security_groups"] if g != group]
            self.call("PATCH", path("tenants", tenant, "ports", port["id"]),
                      {"security_groups": rest or ["default"]})
        self.call("DELETE", path("tenants", tenant, "security-groups", group), missing_ok=True)
