"""The OpenAPI 3.1 document of REST API v1, served at GET /v1/openapi.json.

Built here in Python rather than kept as a JSON file so that the numbers in it
(segment ranges, port-forward ports, name patterns) come from the same
constants the validators use, and the operations from the same table
(routes.ROUTES) the server routes with.  `python -m controller.api.openapi`
prints it.

The contract the tests hold it to (tests/unit/api/test_openapi.py,
tests/unit/api/test_api_fuzz.py):
  - every route of RestApi is here and nothing else, with the same methods
    (both are generated from routes.ROUTES);
  - a request body the schema rejects is rejected by the server with a 4xx
    (the schema is never stricter than the validators: patterns below are
    exactly the language controller/service/validate.py accepts, or wider);
  - a schema-valid body may still get a 4xx for rules a schema cannot say
    (a gateway inside its subnet, external_port with external_ip, ...), and
    every such status is listed under the operation;
  - every response body matches its schema; 204s have none.
"""
import functools
import ipaddress
import json

from controller.api.body import MAX_BODY, MAX_DEPTH
from controller.api.openapi_names import name_schemas, port_name_props
from controller.api.routes import PARAMS, ROUTES
from controller.compile.pipeline import MAX_FORWARD_PORT, MAX_GROUPS, MAX_TENANT_ID, SNAT_PORTS
from controller.model.state import NETWORK_TYPES, SEGMENT_RANGE

# --- string languages, as JSON Schema (ECMA-262) patterns ----------------------
# Each one matches exactly what its validator in controller/service/validate.py
# accepts (or, where noted, a little more: the rest is a documented 400).
_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = rf"{_OCTET}(\.{_OCTET}){{3}}"           # ipaddress.IPv4Address: no leading zeros
NAME = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
IFNAME = "^[A-Za-z0-9_.:@-]{1,15}$"
MAC = "^[0-9a-fA-F][02468aceACE]([:-][0-9a-fA-F]{2}){5}$"    # unicast only
MAC_ZERO = "^00([:-]00){5}$"
# validate.dpid: drop every ':', drop a leading '0x', then 1-16 hex digits, not 0
DPID = "^:*(0:*[xX]:*)?([0-9a-fA-F]:*){1,16}$"
DPID_ZERO = "^:*(0:*[xX]:*)?(0:*)+$"


def _mask_pattern():
    """Prefix lengths 8..29 as ipaddress accepts them: digits (leading zeros
    allowed), a netmask or a hostmask."""
    masks = []
    for p in range(8, 30):
        net = ipaddress.IPv4Network(f"0.0.0.0/{p}")
        masks += [str(net.netmask), str(net.hostmask)]
    escaped = "|".join(m.replace(".", r"\.") for m in masks)
    return f"(0*([89]|[12][0-9])|{escaped})"


CIDR = f"^{IPV4}/{_mask_pattern()}$"
# IPv6 text is checked by validate.ipv6 / validate.cidr; the patterns only say
# "contains a ':'" (what tells the two families apart), the rest is a 400.
IPV6 = r"^[0-9a-fA-F:.]*:[0-9a-fA-F:.]*$"
CIDR6 = r"^[0-9a-fA-F:.]*:[0-9a-fA-F:.]*/[0-9]{1,3}$"

ERROR_CODES = [
    # 400
    "invalid", "unknown_field", "missing_field", "out_of_range", "bad_json",
    # 404
    "not_found", "unknown_host", "unknown_group",
    # 401, 403, 429 (authentication on: docs/security.md)
    "unauthorized", "forbidden", "rate_limited",
    # 405, 413, 415
    "method_not_allowed", "too_large", "unsupported_media_type",
    # 409
    "conflict", "duplicate", "in_use", "overlap", "exhausted", "no_subnet", "no_ipv4",
    "ip_in_use", "mac_in_use", "no_external", "busy",
    # 503 (the store: docs/ha.md)
    "store_unavailable", "outcome_unknown", "store_error",
]


def _error_text(max_body):
    return {
        "400": "Bad input: not JSON, not an object, an unknown or missing field, a value out of "
               "range or not of its kind, or a rule between fields (see the operation).",
        "404": "The tenant, host or object in the path (or a host/subnet named in the body) "
               "does not exist.",
        "409": "Duplicate, in use, overlapping, or nothing free left; `busy`: the model kept "
               "changing under the request (several controllers), try again.",
        "401": "No token, or a token that is unknown, revoked or expired (authentication on).",
        "403": "A valid token that may not do this (authentication on).",
        "413": f"Request body over {max_body} bytes.",
        "415": "Content-Type is not application/json.",
        "429": "Too many failed authentications from this address; see Retry-After.",
        "503": "The store did not answer within the request's budget (etcd electing a leader, "
               "members down); see Retry-After. `store_unavailable`: nothing was written; "
               "`outcome_unknown`: the change may have been made, read before retrying "
               "(docs/ha.md).",
    }


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema):
    return {"oneOf": [schema, {"type": "null"}]}


def _obj(props, required=(), closed=True, **extra):
    out = {"type": "object", "properties": props, "required": list(required)}
    if closed:
        out["additionalProperties"] = False
    out.update(extra)
    return out


def _schemas():
    ipv4 = {"type": "string", "format": "ipv4", "pattern": f"^{IPV4}$",
            "example": "198.18.0.11"}
    s = {
        "Error": _obj({"error": _obj({
            "code": {"type": "string", "enum": ERROR_CODES,
                     "description": "A stable word for programs."},
            "message": {"type": "string", "minLength": 1,
                        "description": "A sentence for people."}},
            ("code", "message"))}, ("error",),
            example={"error": {"code": "duplicate", "message": "tenant 'red' already exists"}}),
        "Name": {"type": "string", "pattern": NAME, "example": "red",
                 "description": "1-63 of letters, digits, '_', '.', '-', starting with a "
                                "letter or digit."},
        "IfName": {"type": "string", "pattern": IFNAME, "not": {"enum": [".", ".."]},
                   "example": "vethc1",
                   "description": "An OVS port / Linux interface name: 1-15 of letters, "
                                  "digits, '_.:@-'."},
        "IPv4": ipv4,
        "Cidr": {"type": "string", "pattern": CIDR, "example": "10.0.0.0/24",
                 "description": "An IPv4 network, prefix /8 to /29, host bits zero (a "
                                "network with host bits set is a 400)."},
        "IPv6": {"type": "string", "format": "ipv6", "pattern": IPV6, "example": "fd00:1::5",
                 "description": "A global or unique-local unicast IPv6 address (multicast, "
                                "link-local, loopback, :: and IPv4-mapped are a 400); "
                                "returned in compressed form."},
        "Cidr6": {"type": "string", "pattern": CIDR6, "example": "fd00:1::/64",
                  "description": "An IPv6 network, prefix /64 (typical) to /120, host bits "
                                 "zero, global or unique-local unicast (400 otherwise)."},
        "AnyCidr": {"oneOf": [{"$ref": "#/components/schemas/Cidr"},
                              {"$ref": "#/components/schemas/Cidr6"}]},
        "AnyIP": {"oneOf": [{"$ref": "#/components/schemas/IPv4"},
                            {"$ref": "#/components/schemas/IPv6"}]},
        "Mac": {"type": "string", "pattern": MAC, "not": {"pattern": MAC_ZERO},
                "example": "02:00:00:aa:bb:cc",
                "description": "A unicast MAC, ':' or '-' separated, any case; returned "
                               "lowercase with ':'."},
        "Dpid": {"oneOf": [
            {"type": "integer", "minimum": 1, "maximum": 2 ** 64 - 1},
            {"type": "string", "pattern": DPID, "not": {"pattern": DPID_ZERO},
             "description": "Up to 16 hex digits, optionally '0x' and ':' separated."}],
            "example": "00000000000000a1"},
        "DpidOut": {"type": "string", "pattern": "^[0-9a-f]{16}$",
                    "example": "00000000000000a1"},
        "Network": {"type": "string", "enum": list(NETWORK_TYPES)},
    }
    s["Health"] = _obj({
        "status": {"type": "string", "enum": ["ok"]},
        "switches": {"type": "integer", "minimum": 0,
                     "description": "Switches connected over OpenFlow."},
        "packet_ins": {"type": "object", "additionalProperties": {"type": "integer"}},
        "hosts": {"type": "integer", "minimum": 0},
        "tenants": {"type": "integer", "minimum": 0},
        "ports": {"type": "integer", "minimum": 0},
        "pid": {"type": "integer", "minimum": 1}}, ("status",), closed=False,
        description="Open: the controller may add counters.")
    s["Topology"] = _obj({
        "directed": {"type": "boolean"}, "multigraph": {"type": "boolean"},
        "graph": {"type": "object"},
        "nodes": {"type": "array", "items": {"type": "object", "required": ["id"]}},
        "links": {"type": "array", "items": {"type": "object",
                                             "required": ["source", "target"]}}},
        closed=False, description="networkx node-link JSON of hosts, datapaths, ports and "
                                  "the tunnel mesh.")
    s["HostCreate"] = _obj({
        "name": _ref("Name"), "dpid": _ref("Dpid"), "tunnel_ip": _ref("IPv4"),
        "uplink_port": _nullable(_ref("IfName")),
        "external_port": _nullable(_ref("IfName")),
        "external_ip": _nullable(_ref("IPv4")),
        "external_gateway": _nullable(_ref("IPv4"))}, ("name", "dpid", "tunnel_ip"),
        description="external_port and external_ip go together; external_gateway needs them "
                    "and differs from external_ip; uplink_port differs from external_port "
                    "(each a 400). null means absent.",
        example={"name": "h1", "dpid": "00000000000000a1", "tunnel_ip": "198.18.0.11",
                 "uplink_port": "patch-phy"})
    s["Host"] = _obj({
        "name": _ref("Name"), "dpid": _ref("DpidOut"), "tunnel_ip": _ref("IPv4"),
        "uplink_port": _nullable(_ref("IfName")),
        "external_port": _nullable(_ref("IfName")),
        "external_ip": _nullable(_ref("IPv4")),
        "external_gateway": _nullable(_ref("IPv4")),
        "connected": {"type": "boolean",
                      "description": "Its bridge is connected to this controller now."}},
        ("name", "dpid", "tunnel_ip", "uplink_port", "external_port", "external_ip",
         "external_gateway", "connected"))
    variants = []
    for network in NETWORK_TYPES:
        lo, hi = SEGMENT_RANGE[network]
        variants.append(_obj({
            "name": _ref("Name"), "network": {"const": network},
            "segment": _nullable({"type": "integer", "minimum": lo, "maximum": hi})},
            ("name", "network"), title=f"{network} tenant"))
    s["TenantCreate"] = {
        "oneOf": variants,
        "description": "segment: VLAN id 1-4094, VXLAN VNI 1-16777215 or GRE key "
                       "1-4294967295; allocated (lowest free) when absent or null.",
        "example": {"name": "red", "network": "vxlan"}}
    s["Tenant"] = _obj({
        "name": _ref("Name"), "network": _ref("Network"),
        "segment": {"type": "integer", "minimum": 1, "maximum": SEGMENT_RANGE["gre"][1]},
        "id": {"type": "integer", "minimum": 1, "maximum": MAX_TENANT_ID,
               "description": "Internal id: metadata value, cookie owner, conntrack zone."},
        "subnets": {"type": "array", "items": _ref("AnyCidr"),
                    "description": "IPv4 subnets first, then IPv6 ones."},
        "ports": {"type": "integer", "minimum": 0},
        "router_mac": {"type": "string", "pattern": "^[0-9a-f]{2}(:[0-9a-f]{2}){5}$"},
        "snat": {"type": "boolean"},
        "snat_ports": _nullable({"type": "array", "minItems": 2, "maxItems": 2,
                                 "items": {"type": "integer", "minimum": SNAT_PORTS[0],
                                           "maximum": SNAT_PORTS[1]},
                                 "description": "First and last source port SNAT uses on "
                                                "each host's external IP."})},
        ("name", "network", "segment", "id", "subnets", "ports", "router_mac", "snat",
         "snat_ports"))
    s["SubnetCreate"] = _obj({"cidr": _ref("AnyCidr"), "gateway": _nullable(_ref("AnyIP"))},
                             ("cidr",),
                             description="An IPv4 or an IPv6 subnet (a tenant may hold both: "
                                         "dual-stack). gateway: a usable address of cidr, of "
                                         "its family (400 otherwise); the first one when "
                                         "absent. No overlap with the tenant's other subnets "
                                         "of the same family (409).",
                             example={"cidr": "10.0.0.0/24"})
    s["Subnet"] = _obj({"tenant": _ref("Name"), "cidr": _ref("AnyCidr"),
                        "gateway": _ref("AnyIP"),
                        "ip_version": {"type": "integer", "enum": [4, 6]},
                        "ports": {"type": "integer", "minimum": 0}},
                       ("tenant", "cidr", "gateway", "ip_version", "ports"))
    names = port_name_props()
    s["PortCreate"] = _obj({
        "host": _ref("Name"), "port": _ref("IfName"),
        "ip": _nullable(_ref("IPv4")), "mac": _nullable(_ref("Mac")),
        "subnet": _nullable(_ref("Cidr")),
        "ip6": _nullable(_ref("IPv6")), "subnet6": _nullable(_ref("Cidr6")),
        "family": _nullable({"type": "string", "enum": ["dual", "ipv4", "ipv6"]}),
        "security_groups": _nullable({"type": "array", "items": {"type": "string"}}),
        "port_security": {"type": "boolean"}, **names}, ("host", "port"),
        description="The port gets an address from each family its tenant has a subnet of "
                    "(dual-stack), or from the one `family` names (409 no_subnet when the "
                    "tenant has none of it). ip / ip6: inside one of the tenant's subnets "
                    "of that family (or `subnet` / `subnet6`), not its network, broadcast, "
                    "subnet-router anycast or gateway address (400); allocated when absent. "
                    "mac: derived from the tenant and the address when absent. security_groups: names of the "
                    "tenant's groups (404 unknown_group), ['default'] when absent; "
                    "port_security false (no anti-spoofing, no groups) takes no groups (400). "
                    "name / aliases: the port's DNS names in its tenant (docs/user-guide.md).",
        example={"host": "h1", "port": "vethc1"})
    s["Port"] = _obj({
        "id": {"type": "string"}, "tenant": _ref("Name"), "host": _ref("Name"),
        "port": _ref("IfName"), "ip": _nullable(_ref("IPv4")),
        "mac": {"type": "string", "pattern": "^[0-9a-f]{2}(:[0-9a-f]{2}){5}$"},
        "prefixlen": _nullable({"type": "integer", "minimum": 8, "maximum": 29}),
        "gateway": _nullable(_ref("IPv4")), "subnet": _nullable(_ref("Cidr")),
        "ip6": _ref("IPv6"), "prefixlen6": {"type": "integer", "minimum": 64, "maximum": 120},
        "gateway6": _ref("IPv6"), "subnet6": _ref("Cidr6"),
        "mtu": {"type": "integer", "minimum": 1},
        "status": {"type": "string", "enum": ["up", "down"],
                   "description": "up while the host's bridge is connected and its OVS port "
                                  "exists with a link; otherwise down, and status_reason "
                                  "says which of those is missing."},
        "status_reason": _nullable({"type": "string"}),
        "ofport": _nullable({"type": "integer", "minimum": 1}),
        "security_groups": {"type": "array", "items": _ref("Name")},
        "port_security": {"type": "boolean"}, **names, "dns": _ref("PortDns")},
        ("id", "tenant", "host", "port", "ip", "mac", "prefixlen", "gateway", "subnet", "mtu",
         "status", "status_reason", "ofport", "security_groups", "port_security", "name",
         "aliases", "dns"))
    s["PortUpdate"] = _obj({
        "security_groups": _nullable({"type": "array", "items": {"type": "string"}}),
        "port_security": {"type": "boolean"}, **names}, (),
        description="Change a port's security groups, port security, DNS name or aliases; "
                    "absent fields keep their value.",
        example={"security_groups": ["default", "web"]})
    ports = {"oneOf": [
        {"type": "integer", "minimum": 1, "maximum": 65535},
        {"type": "string", "pattern": "^[0-9]{1,5}(-[0-9]{1,5})?$",
         "description": "'22' or '8000-8080', 1 <= first <= last <= 65535 (400 otherwise)."},
        {"type": "null"}]}
    s["RuleCreate"] = _obj({
        "direction": {"type": "string", "enum": ["ingress", "egress"]},
        "protocol": {"type": "string", "enum": ["tcp", "udp", "icmp", "any"],
                     "description": "any when absent."},
        "ports": ports,
        "remote": {"type": "string",
                   "description": "An IPv4 CIDR (host bits are dropped) or 'sg:<group>' (the "
                                  "members of that group of the tenant: 404 unknown_group if "
                                  "there is none); 0.0.0.0/0 when absent."}},
        ("direction",),
        description="An allow rule. ports only with protocol tcp or udp (400).",
        example={"direction": "ingress", "protocol": "tcp", "ports": "22",
                 "remote": "10.0.0.0/24"})
    s["Rule"] = _obj({
        "id": {"type": "string"}, "direction": {"type": "string", "enum": ["ingress", "egress"]},
        "protocol": {"type": "string", "enum": ["tcp", "udp", "icmp", "any"]},
        "ports": _nullable({"type": "string", "pattern": "^[0-9]{1,5}(-[0-9]{1,5})?$"}),
        "remote": {"type": "string"}}, ("id", "direction", "protocol", "ports", "remote"))
    s["SecurityGroupCreate"] = _obj({
        "name": _ref("Name"), "rules": {"type": "array", "items": _ref("RuleCreate")}},
        ("name",), description=f"At most {MAX_GROUPS} groups per tenant (409 exhausted).",
        example={"name": "web", "rules": [{"direction": "ingress", "protocol": "tcp",
                                           "ports": "80", "remote": "0.0.0.0/0"}]})
    s["SecurityGroupRules"] = _obj({"rules": {"type": "array", "items": _ref("RuleCreate")}},
                                   ("rules",), example={"rules": []})
    s["SecurityGroup"] = _obj({
        "tenant": _ref("Name"), "name": _ref("Name"),
        "index": {"type": "integer", "minimum": 0, "maximum": MAX_GROUPS - 1},
        "rules": {"type": "array", "items": _ref("Rule")},
        "ports": {"type": "array", "items": {"type": "string"},
                  "description": "Ids of the ports in the group."}},
        ("tenant", "name", "index", "rules", "ports"))
    s["SnatSet"] = _obj({"enabled": {"type": "boolean"}}, ("enabled",),
                        example={"enabled": True})
    s["PortForwardCreate"] = _obj({
        "port_id": {"type": "string"},
        "protocol": {"type": "string", "enum": ["tcp", "udp"]},
        "external_port": {"type": "integer", "minimum": 1, "maximum": MAX_FORWARD_PORT,
                          "description": "Below the SNAT source-port space."},
        "internal_port": {"type": "integer", "minimum": 1, "maximum": 65535}},
        ("port_id", "protocol", "external_port", "internal_port"),
        description="The port's host needs an external network (409 no_external); "
                    "(host, protocol, external_port) is unique (409 duplicate).",
        example={"port_id": "3f2a9c1d7e4b", "protocol": "tcp", "external_port": 2222,
                 "internal_port": 22})
    s["PortForward"] = _obj({
        "id": {"type": "string"}, "tenant": _ref("Name"), "port_id": {"type": "string"},
        "protocol": {"type": "string", "enum": ["tcp", "udp"]},
        "external_ip": _nullable(_ref("IPv4")),
        "external_port": {"type": "integer", "minimum": 1, "maximum": MAX_FORWARD_PORT},
        "internal_ip": _nullable(_ref("IPv4")),
        "internal_port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "host": _nullable(_ref("Name"))},
        ("id", "tenant", "port_id", "protocol", "external_ip", "external_port", "internal_ip",
         "internal_port", "host"))
    s["FloatingIPCreate"] = _obj({"port_id": {"type": "string"}, "external_ip": _ref("IPv4")},
                                 ("port_id", "external_ip"),
                                 description="external_ip is unique and no host's address "
                                             "(409); one per private IP (409).",
                                 example={"port_id": "3f2a9c1d7e4b",
                                          "external_ip": "203.0.113.100"})
    s["FloatingIP"] = _obj({
        "id": {"type": "string"}, "tenant": _ref("Name"), "external_ip": _ref("IPv4"),
        "ip": _ref("IPv4"), "port_id": _nullable({"type": "string"}),
        "host": _nullable(_ref("Name"))},
        ("id", "tenant", "external_ip", "ip", "port_id", "host"),
        description="port_id and host are null while no port holds the private IP.")
    expiry = {
        "expires_in": _nullable({"type": "integer", "minimum": 1, "maximum": 315360000,
                                 "description": "Seconds from now."}),
        "expires_at": _nullable({"type": "string", "format": "date-time",
                                 "description": "ISO 8601, UTC when no offset is given."})}
    s["TenantTokenCreate"] = _obj(dict(name=_ref("Name"), **expiry), ("name",),
                                  description="Never expires when neither expires_in nor "
                                              "expires_at is given (not both: 400).",
                                  example={"name": "ci", "expires_in": 86400})
    s["HostTokenCreate"] = _obj(dict(name=_ref("Name"), **expiry, networks={
        "type": "boolean", "description": "Also create tenants and subnets and publish "
                                          "ports (the Docker driver). false when absent."}),
        ("name",), example={"name": "join"})
    token = {
        "id": {"type": "string", "pattern": "^[0-9a-f]{12}$"},
        "kind": {"type": "string", "enum": ["tenant", "host"]},
        "name": _ref("Name"), "tenant": _ref("Name"), "host": _ref("Name"),
        "created_at": {"type": "string", "format": "date-time"},
        "expires_at": _nullable({"type": "string", "format": "date-time"}),
        "expired": {"type": "boolean"}, "networks": {"type": "boolean"}}
    s["Token"] = _obj(token, ("id", "kind", "name", "created_at", "expires_at", "expired"),
                      description="A token without its secret; `tenant` or `host` names "
                                  "its scope.")
    s["TokenCreated"] = _obj(dict(token, token={
        "type": "string", "pattern": "^vpc_[th]_[0-9a-f]{12}_[0-9a-f]{64}$",
        "description": "The bearer token. Shown only in this reply: only its hash is kept."}),
        ("id", "kind", "name", "created_at", "expires_at", "expired", "token"))
    s.update(_trace_schemas(ipv4))
    s.update(name_schemas())
    return s


def _trace_schemas(ipv4):
    """POST /v1/tenants/{t}/trace (controller/trace): the question and the answer.
    The answer's parts are open objects: a trace may learn to say more."""
    l4 = {"type": "integer", "minimum": 1, "maximum": 65535}
    verdict = _obj({
        "action": {"type": "string",
                   "enum": ["delivered", "forwarded", "dropped", "not_sent", "error"]},
        "code": {"type": "string", "description": "A stable word: delivered, answered, "
                                                  "outside, spoof, security_group, no_route, "
                                                  "not_in_tenant, nat_miss, port_down, ..."},
        "reason": {"type": "string", "minLength": 1, "description": "The verdict in words."}},
        ("action", "code", "reason"), closed=False)
    step = _obj({"table": {"type": "integer"}, "table_name": {"type": "string"},
                 "flow": _nullable({"type": "string"}), "text": {"type": "string"},
                 "owner": {"type": "object"}}, ("table", "table_name", "flow"), closed=False)
    hop = _obj({"host": _ref("Name"), "in_port": {"type": "integer"},
                "steps": {"type": "array", "items": step},
                "outputs": {"type": "array", "items": {"type": "object"}},
                "dropped": {"type": "boolean"}}, ("host", "in_port", "steps", "outputs"),
               closed=False)
    record = _obj({
        "tenant": _ref("Name"), "port_id": {"type": "string"}, "host": _ref("Name"),
        "direction": {"type": "string", "enum": ["egress", "ingress"]},
        "proto": {"type": "string", "enum": ["tcp", "udp", "icmp"]},
        "src": ipv4, "dst": ipv4, "sport": _nullable({"type": "integer"}),
        "dport": _nullable({"type": "integer"}), "icmp_type": _nullable({"type": "integer"}),
        "packets": {"type": "integer", "minimum": 0}, "bytes": {"type": "integer", "minimum": 0},
        "reply_packets": {"type": "integer", "minimum": 0},
        "reply_bytes": {"type": "integer", "minimum": 0},
        "start": {"type": "number", "description": "Unix seconds."},
        "end": {"type": "number", "description": "Unix seconds."},
        "action": {"type": "string", "enum": ["ACCEPT", "REJECT"]},
        "rule": _nullable({"type": "object"}), "reason": _nullable({"type": "string"}),
        "basis": {"type": "string"}},
        ("tenant", "port_id", "direction", "proto", "src", "dst", "packets", "bytes", "start",
         "end", "action"), closed=False)
    raw = {"type": "object", "required": ["src", "dst", "proto"],
           "properties": {k: {"type": "number" if k in ("start", "end") else "integer"}
                          for k in ("proto", "sport", "dport", "icmp_type", "icmp_code",
                                    "packets", "bytes", "start", "end")}}
    return {
        "FlowLogsSet": _obj({"enabled": {"type": "boolean"}}, ("enabled",),
                            example={"enabled": True}),
        "FlowLogs": _obj({"tenant": _ref("Name"), "enabled": {"type": "boolean"},
                          "since": _nullable({"type": "number"}),
                          "records": {"type": "array", "items": record}},
                         ("tenant", "enabled", "since")),
        "HostFlowLogs": _obj({"host": _ref("Name"), "enabled": {"type": "boolean"},
                              "sampling": {"type": "integer", "minimum": 1},
                              "interval": {"type": "integer", "minimum": 1}},
                             ("host", "enabled", "sampling", "interval")),
        "FlowLogBatch": _obj({"records": {"type": "array", "items": raw, "maxItems": 5000}},
                             ("records",), example={"records": []},
                             description="IPFIX flow records as vpcagent/flowlogs.py sends "
                                         "them: src, dst, proto, ports or ICMP type/code, "
                                         "packets, bytes, start, end, src_mac, dst_mac."),
        "FlowLogIngest": _obj({"host": _ref("Name"), "taken": {"type": "integer"},
                               "ignored": {"type": "integer"}}, ("host", "taken", "ignored")),
        "TraceRequest": _obj({
            "from": {"type": "string", "minLength": 1,
                     "description": "The id (or unique OVS port name) of the tenant's port "
                                    "the packet leaves."},
            "to": {"type": "string", "minLength": 1,
                   "description": "An IPv4 address, or the id (or OVS port name) of a port "
                                  "of the tenant."},
            "proto": {"type": "string", "enum": ["tcp", "udp", "icmp"],
                      "description": "icmp (an echo request) when absent."},
            "dport": _nullable(dict(l4, description="Needed for tcp and udp (400 without; "
                                                    "400 with icmp).")),
            "sport": _nullable(dict(l4, description="tcp/udp source port, 40000 when absent.")),
            "src_ip": _nullable(ipv4),
            "live": {"type": "boolean", "description": "Also trace on the real switches."}},
            ("from", "to"),
            example={"from": "3f2a9c1d7e4b", "to": "10.0.0.3", "proto": "tcp", "dport": 22}),
        "Trace": _obj({
            "tenant": _ref("Name"), "packet": {"type": "object"},
            "arp": _nullable({"type": "object"}),
            "hops": {"type": "array", "items": hop}, "verdict": verdict,
            "path": {"type": "array", "items": {"type": "string"},
                     "description": "Node ids of GET /v1/topology along the way."},
            "simulated": {"type": "object"}, "live": {"type": "object"}},
            ("tenant", "packet", "arp", "hops", "verdict", "path", "simulated"), closed=False),
    }


def _json(schema, description):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes):
    return {str(c): {"$ref": f"#/components/responses/E{c}"} for c in codes}


def _param(name):
    description, example, _metric_name = PARAMS[name]
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string"}, "example": example}


def _schema(response):
    """A route's response: a component name, "Name[]" for an array of it, or inline."""
    if isinstance(response, str) and response.endswith("[]"):
        return {"type": "array", "items": _ref(response[:-2])}
    return _ref(response) if isinstance(response, str) else response


def operation(route):
    """The OpenAPI operation object of one entry of routes.ROUTES."""
    responses = {str(route.status): {"description": route.response_text}
                 if route.response is None else _json(_schema(route.response),
                                                      route.response_text)}
    codes = set(route.errors)
    if route.body is not None:
        codes |= {400, 413, 415}
    if route.access != "open":
        codes |= {401, 429} | ({403} if route.access != "any" else set())
    if route.writes:
        codes |= {409, 503}
    responses.update(_errors(*sorted(codes)))
    op = {"operationId": route.op_id, "summary": route.summary,
          "tags": [route.tag] if route.tag else [], "responses": responses}
    if route.description:
        op["description"] = route.description
    if route.access == "open":
        op["security"] = []
    else:
        op["x-access"] = route.access
    if route.params or route.query:
        op["parameters"] = [_param(name) for name in route.params] + [
            {"name": name, "in": "query", "required": False, "description": text,
             "schema": schema} for name, text, schema in route.query]
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": _ref(route.body)}}}
    return op


@functools.lru_cache(maxsize=1)
def document():
    paths = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "vpc-controller REST API", "version": "1",
            "description": "AWS-VPC-like networks for containers on Open vSwitch. JSON in and "
                           "out. Every accepted change is on disk before the reply; a "
                           f"rejected request changes nothing. Bodies: at most {MAX_BODY} "
                           f"bytes, nested at most {MAX_DEPTH} deep. With authentication on, "
                           "every operation but this document wants `Authorization: Bearer "
                           "<token>`; `x-access` says which tokens may call it "
                           "(docs/security.md).",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "The admin token, a tenant token or a host token. Needed only "
                               "when the controller runs with authentication on (VPC_AUTH; "
                               "always when REST listens beyond loopback)."}},
            "schemas": _schemas(),
            "responses": {f"E{code}": _json(_ref("Error"), text)
                          for code, text in _error_text(MAX_BODY).items()},
        },
    }


if __name__ == "__main__":
    print(json.dumps(document(), indent=1))
