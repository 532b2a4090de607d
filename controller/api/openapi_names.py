"""OpenAPI schemas of DHCP options, DNS names and the agents' services view.

Apart from openapi.py only to keep that file readable; the patterns come from
the validators' own constants (controller/service/names.py)."""
from controller.service.names import (DNS_NAME_PATTERN, LEASE_RANGE, MAX_ALIASES,
                                      MAX_RESOLVERS, TTL_RANGE)

RESOLVER = r"^(\[[0-9A-Fa-f:.]+\]:[0-9]{1,5}|[0-9.]+(:[0-9]{1,5})?|[0-9A-Fa-f:.]+)$"


def _obj(props, required=(), **extra):
    return {"type": "object", "properties": props, "required": list(required),
            "additionalProperties": False, **extra}


def _nullable(schema):
    return {"oneOf": [schema, {"type": "null"}]}


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def port_name_props():
    """The name fields of PortCreate, PortUpdate and Port."""
    return {"name": _nullable(_ref("DnsName")),
            "aliases": {"type": "array", "maxItems": MAX_ALIASES, "items": _ref("DnsName")}}


def name_schemas():
    dns_name = {"type": "string", "pattern": DNS_NAME_PATTERN, "maxLength": 254,
                "example": "web",
                "description": "A DNS name: labels of letters, digits, '-' and '_' (1-63 "
                               "each, not starting or ending with '-'), dots between, at "
                               "most 253; kept lowercase."}
    resolvers = {"type": "array", "maxItems": MAX_RESOLVERS,
                 "items": {"type": "string", "pattern": RESOLVER,
                           "example": "10.9.9.9:53"}}
    lease = {"type": "integer", "minimum": LEASE_RANGE[0], "maximum": LEASE_RANGE[1]}
    ttl = {"type": "integer", "minimum": TTL_RANGE[0], "maximum": TTL_RANGE[1]}
    addresses = {"type": "array", "items": {"type": "string"}}
    nullable_str = _nullable({"type": "string"})
    return {
        "DnsName": dns_name,
        "PortDns": _obj({"nameservers": addresses, "domain": {"type": "string"},
                         "search": addresses}, ("nameservers", "domain", "search"),
                        description="What the container is told (DHCP, the CNI result, "
                                    "the Docker driver): its gateway(s) as DNS server."),
        "DhcpOptions": _obj({"tenant": _ref("Name"), "domain": {"type": "string"},
                             "resolvers": resolvers, "lease_time": lease, "ttl": ttl},
                            ("tenant", "domain", "resolvers", "lease_time", "ttl")),
        "DhcpOptionsSet": _obj(
            {"domain": _nullable(dns_name), "resolvers": resolvers,
             "lease_time": _nullable(lease), "ttl": _nullable(ttl)},
            example={"domain": "blue.example", "resolvers": ["10.9.9.9"]},
            description="domain: the tenant's DNS domain (default <tenant>.internal); "
                        "resolvers: where names outside the tenant are forwarded ('ip', "
                        "'ip:port', '[ipv6]:port'; none: refused); lease_time: DHCP lease "
                        "seconds (default 3600); ttl: of the tenant's own answers "
                        "(default 5). null restores a default."),
        "DnsRecord": _obj({"name": {"type": "string"}, "fqdn": {"type": "string"},
                           "ip": addresses, "ip6": addresses, "ports": addresses},
                          ("name", "fqdn", "ip", "ip6", "ports")),
        "HostServices": _obj({
            "host": _ref("Name"), "etag": {"type": "string"},
            "service_port": {"type": "string"},
            "ports": {"type": "array", "items": _obj({
                "serial": {"type": "integer"}, "id": {"type": "string"},
                "tenant": _ref("Name"), "mac": {"type": "string"}, "name": nullable_str,
                "ip": nullable_str, "prefixlen": _nullable({"type": "integer"}),
                "gateway": nullable_str, "ip6": nullable_str,
                "prefixlen6": _nullable({"type": "integer"}), "gateway6": nullable_str,
                "mtu": {"type": "integer"}})},
            "tenants": {"type": "object", "additionalProperties": _obj({
                "router_mac": {"type": "string"}, "router_ll6": {"type": "string"},
                "domain": {"type": "string"}, "resolvers": addresses, "lease_time": lease,
                "ttl": ttl, "subnets": addresses,
                "records": {"type": "array", "items": _obj({
                    "names": addresses, "ip": nullable_str, "ip6": nullable_str})}})}},
            ("host", "etag", "service_port", "ports", "tenants"),
            description="The agent's view (docs/agent.md): this host's ports and, for each "
                        "of their tenants, its options and every name of the tenant."),
    }
