"""Docker's remote IPAM driver protocol, answered from the controller's IPAM.

    docker network create -d vpc --ipam-driver vpc --subnet 10.1.0.0/24 \
        --ipam-opt vpc.tenant=blue -o vpc.tenant=blue -o vpc.network=vxlan blue

* RequestPool: the pool is the subnet (``--subnet`` is required: the
  controller numbers tenants' subnets, Docker must not invent one).  It only
  checks that the controller does not disagree (tenant of another network
  type, an overlapping different subnet) -- the network driver's
  CreateNetwork, which alone knows the network type and the gateway, creates
  or adopts the tenant and subnet.  A refused request changes nothing.
  PoolID is ``TENANT/CIDR``: every later call carries it, so nothing needs
  remembering.
* RequestAddress for the gateway: the subnet's gateway at the controller
  (or ``--gateway``, or the first address, for a subnet still to be made).
* RequestAddress for a container: a controller port on this host, so the IP
  and MAC are the controller's (``--ip`` honoured).  The MAC is the
  controller's default, derived from tenant and IP, so a container restarted
  into the same IP keeps its MAC and peers' ARP caches stay right.  That is
  why the capability RequiresMACAddress is off: with it Docker invents a
  random MAC per start and sends it here.  A user's ``--mac-address`` reaches
  the network driver's CreateEndpoint instead, which re-makes the port with
  it.  With ``--ip`` the OVS port name is derived from tenant and IP
  (controller.port_names), so a retried request adopts the port of the first
  attempt instead of leaking it; without, the request carries nothing that
  would tell a retry from a second container.
* ReleaseAddress: the port goes (its forwards with it at the controller),
  with its OVS port, veth and publish group, if it is on this host.

IPv6 (``docker network create --ipv6 --subnet 10.1.0.0/24 --subnet
fd00:1::/64``): Docker asks for an endpoint's IPv4 and IPv6 addresses in two
separate requests that name no endpoint.  The IPv4 request makes the port as
above (IPv4 only); the IPv6 request makes a placeholder port holding just the
IPv6 address (``v6`` + 11 hex, never plumbed), so the controller has handed
it out once and for all.  CreateEndpoint, which gets both addresses, folds
the placeholder into the endpoint's port (docker_driver.py); ReleaseAddress
of an IPv6 address removes a placeholder still standing (the endpoint never
came), and leaves a folded one to its IPv4 release.

Errors are ``{"Error": sentence}`` (server.py explains why not ``Err``).
"""
import ipaddress
import logging

from vpcagent.controller import PUBLISH_PREFIX, placeholder_name, port_names
from vpcagent.server import ProtocolError
from vpcctl.client import path

log = logging.getLogger("vpcagent")

GATEWAY_REQUEST = "com.docker.network.gateway"
LOCAL_SPACE, GLOBAL_SPACE = "vpc-local", "vpc-global"
TENANT_OPTION, NETWORK_OPTION = "vpc.tenant", "vpc.network"


def tenant_name(value, where):
    """The controller's own rule for names, checked before asking it."""
    import re
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"the vpc driver needs the tenant: add {where}")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", value):
        raise ProtocolError(f"{value!r} is not a valid tenant name (letters, digits, "
                            f"'_', '.', '-'; at most 63)")
    return value


def ipv4_network(value, what):
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"{what} is missing")
    try:
        net = ipaddress.IPv4Network(value, strict=False)
    except ValueError:
        raise ProtocolError(f"{what} {value!r} is not an IPv4 CIDR") from None
    if net.prefixlen > 30:
        raise ProtocolError(f"{what} {net} is too small (at most /30)")
    return net


def ipv6_network(value, what):
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"{what} is missing")
    try:
        net = ipaddress.IPv6Network(value, strict=False)
    except ValueError:
        raise ProtocolError(f"{what} {value!r} is not an IPv6 CIDR") from None
    if not 64 <= net.prefixlen <= 120:
        raise ProtocolError(f"{what} {net}: an IPv6 subnet is /64 to /120")
    return net


def ip_network(value, what):
    """An IPv4 or IPv6 pool, by its spelling."""
    return (ipv6_network if isinstance(value, str) and ":" in value else ipv4_network)(
        value, what)


def parse_pool_id(pool_id):
    if not isinstance(pool_id, str) or "/" not in pool_id:
        raise ProtocolError(f"PoolID {pool_id!r} is not one of the vpc driver's "
                            f"(TENANT/CIDR)")
    tenant, cidr = pool_id.split("/", 1)
    return tenant_name(tenant, "--ipam-opt vpc.tenant=NAME"), \
        ip_network(cidr, "the pool of PoolID")


def _options(body, key="Options"):
    opts = body.get(key) or {}
    if not isinstance(opts, dict):
        raise ProtocolError(f"{key} must be an object")
    return opts


class IpamDriver:
    def __init__(self, controller, host, networks=None):
        self.c = controller
        self.host = host
        self.nets = networks

    def register(self, router):
        r = "IpamDriver."
        router.add(f"/{r}GetCapabilities", self.get_capabilities, needs_body=False,
                   err_key="Error")
        router.add(f"/{r}GetDefaultAddressSpaces", self.default_spaces, needs_body=False,
                   err_key="Error")
        router.add(f"/{r}RequestPool", self.request_pool, err_key="Error",
                   summary=lambda b, r: r.get("PoolID", ""))
        router.add(f"/{r}ReleasePool", self.release_pool, err_key="Error")
        router.add(f"/{r}RequestAddress", self.request_address, err_key="Error",
                   summary=lambda b, r: r.get("Address", ""))
        router.add(f"/{r}ReleaseAddress", self.release_address, err_key="Error")

    def get_capabilities(self, body):
        return {"RequiresMACAddress": False, "RequiresRequestReplay": False}

    def default_spaces(self, body):
        return {"LocalDefaultAddressSpace": LOCAL_SPACE,
                "GlobalDefaultAddressSpace": GLOBAL_SPACE}

    def request_pool(self, body):
        v6 = bool(body.get("V6"))
        opts = _options(body)
        tenant = tenant_name(opts.get(TENANT_OPTION), "--ipam-opt vpc.tenant=NAME")
        if not body.get("Pool"):
            raise ProtocolError("the vpc IPAM driver needs the subnet: docker network create "
                                + ("--ipv6 --subnet IPV4-CIDR --subnet IPV6-CIDR ..." if v6 else
                                   "--subnet CIDR ..."))
        net = (ipv6_network if v6 else ipv4_network)(body.get("Pool"), "--subnet")
        sub = body.get("SubPool")
        if sub and ip_network(sub, "--ip-range") != net:
            raise ProtocolError("the vpc IPAM driver does not support --ip-range (the "
                                "controller allocates from the whole subnet)")
        network = opts.get(NETWORK_OPTION)
        if network is not None and network not in ("vlan", "vxlan", "gre"):
            raise ProtocolError(f"--ipam-opt vpc.network must be vlan, vxlan or gre, not "
                                f"{network!r}")
        unknown = sorted(k for k in opts if k not in (TENANT_OPTION, NETWORK_OPTION))
        if unknown:
            raise ProtocolError(f"unknown IPAM option(s) {', '.join(unknown)} (the vpc driver "
                                f"knows vpc.tenant and vpc.network)")
        self.c.check_pool(tenant, str(net), network)
        return {"PoolID": f"{tenant}/{net}", "Pool": str(net), "Data": {}}

    def release_pool(self, body):
        # The tenant and subnet belong to the VPC (other hosts use them too).
        parse_pool_id(body.get("PoolID"))
        return {}

    def request_address(self, body):
        tenant, net = parse_pool_id(body.get("PoolID"))
        opts = _options(body)
        want = body.get("Address") or None
        if want is not None:
            try:
                ip = ipaddress.ip_address(want)
            except ValueError:
                raise ProtocolError(f"{want!r} is not an IP address") from None
            if ip not in net:
                raise ProtocolError(f"{ip} is not inside the network's subnet {net}")
            want = str(ip)
        if opts.get("RequestAddressType") == GATEWAY_REQUEST:
            s = self.c.subnet(tenant, str(net))
            if s is not None:
                if want and want != s["gateway"]:
                    raise ProtocolError(f"subnet {net} of tenant {tenant!r} has gateway "
                                        f"{s['gateway']} at the controller, not {want}")
                want = s["gateway"]
            gw = want or str(next(net.hosts()))
            return {"Address": f"{gw}/{net.prefixlen}", "Data": {}}
        if self.c.tenant(tenant) is None or self.c.subnet(tenant, str(net)) is None:
            raise ProtocolError(f"tenant {tenant!r} has no subnet {net} at the controller; "
                                f"was the network created with -d vpc?")
        if net.version == 6:
            port = self.c.create_port(tenant, placeholder_name(tenant, want), None,
                                      subnet6=str(net), ip6=want)
            return {"Address": f"{port['ip6']}/{port['prefixlen6']}", "Data": {}}
        if want:
            self._claim(tenant, want)
        name = port_names(tenant, ip=want)[0]
        port = self.c.create_port(tenant, name, str(net), ip=want)
        return {"Address": f"{port['ip']}/{port['prefixlen']}", "Data": {}}

    def _claim(self, tenant, ip):
        """Before asking for ``ip``: the port that already holds it, if it is
        one of ours on this host.  With --ip its name is the one this request
        gets, so the controller would hand it back as a retry's adoption --
        right only for a retry (no endpoint plumbed yet).  A port whose
        endpoint dockerd no longer lists (its container stopped while the
        agent was down, so Leave/ReleaseAddress never reached us) is freed; a
        port whose endpoint is live is refused."""
        p = self.c.port_by_ip(tenant, ip)
        if p is None or p["host"] != self.c.host or not p["port"].startswith("vd"):
            return                     # free, or the controller's refusal will speak
        rows = [r for r in self.host.ovs.find(**{"vpc-port-id": p["id"]})
                if r["external_ids"].get("vpc-endpoint-id")]
        if not rows:
            return                     # no endpoint yet: a retried request adopts it
        ids = rows[0]["external_ids"]
        if self.nets is None or \
                ids["vpc-endpoint-id"] in self.nets.endpoints(ids.get("vpc-network-id", "")):
            raise ProtocolError(f"{ip} is already used by port {p['id']} of tenant "
                                f"{tenant!r} (Docker endpoint "
                                f"{ids['vpc-endpoint-id'][:12]} on this host)")
        log.info("freeing stale port %s (%s %s): its endpoint %s is gone from dockerd",
                 p["id"], tenant, ip, ids["vpc-endpoint-id"][:12])
        self._release(tenant, p)

    def release_address(self, body):
        tenant, net = parse_pool_id(body.get("PoolID"))
        addr = body.get("Address")
        try:
            ip = str(ipaddress.ip_address((addr or "").split("/")[0]))
        except ValueError:
            raise ProtocolError(f"Address {addr!r} is not an IP address") from None
        if net.version == 6:
            p = self.c.port_by_ip6(tenant, ip)
            if p is not None and p["host"] == self.c.host and p.get("ip") is None \
                    and p["port"].startswith("v6"):
                self.c.delete_port(tenant, p["id"])      # a placeholder the endpoint never took
            return {}                  # a folded one goes with the endpoint's IPv4 address
        p = self.c.port_by_ip(tenant, ip)
        if p is None:
            return {}                    # the gateway, or already released
        if p["host"] != self.c.host:
            log.info("not releasing %s of %s: it is on host %s", ip, tenant, p["host"])
            return {}
        self._release(tenant, p)
        return {}

    def _release(self, tenant, p):
        self.host.delete_port(p["port"])
        self.c.delete_port(tenant, p["id"])
        self.c.call("DELETE", path("tenants", tenant, "security-groups",
                                   PUBLISH_PREFIX + p["port"]), missing_ok=True)
