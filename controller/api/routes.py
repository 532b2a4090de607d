"""Every operation of REST API v1, declared once.

rest.py serves this table (one mapper route per entry, the handler called with
the path parameters in order, then the JSON body when the entry has one);
openapi.py describes it (one OpenAPI operation per entry).  So a route cannot
be served without being documented, or documented without being served, and
the two cannot disagree on a path, a method or a success status.

Pure data: this module imports nothing of the controller, so both rest.py and
openapi.py can import it without importing each other.

An entry's `handler` names a method of the service (VpcService), or, with the
prefix "app.", an attribute of RestApi itself (health, topology, this
document).  Schema names refer to components of the OpenAPI document; "X[]"
is a JSON array of X.  `errors` lists the 4xx an operation can answer besides
the ones every body-taking operation can (400, 413, 415), which are added for
entries with a `body`.

An entry's `access` says who may call it once authentication is on
(docs/security.md; controller/api/policy.py enforces it, tests/unit/api/
test_auth_matrix.py tries every entry with every kind of token).  It has no
default: a new route cannot be added without deciding it.
  open     anyone, no token (this document)
  any      any valid token (health)
  admin    the admin token only (topology, hosts, tenant create/delete, tokens)
  host     admin, or the host token of the host the path (or the body's name) names
  tenants  GET /v1/tenants: admin and networks host tokens see all, a tenant
           token its own tenant only
  network  POST /v1/tenants: admin, or a host token made with networks
  tenant   admin, the tenant's own token, or a host token made with networks
  port     as tenant, and also a host token for ports on its own host
"""
import re
from dataclasses import dataclass

# Path parameters: (description, example, metric name).  The metric name is the
# parameter's name in the first routes of v1, kept in the `route` label of
# /metrics (Route.metric_route) so that series stay continuous across this
# table's introduction and dashboards keep matching.
PARAMS = {
    "host": ("Host name.", "h1", "name"),
    "tenant": ("Tenant name.", "red", "t"),
    "subnet": ("The subnet's CIDR with '_' for '/'.", "10.0.0.0_24", "c"),
    "port_id": ("Port id.", "3f2a9c1d7e4b", "pid"),
    "forward_id": ("Port forward id.", "9b1e0c2d4a6f", "i"),
    "fip_id": ("Floating IP id.", "5c7d9e1f3a2b", "i"),
    "group": ("Security group name.", "default", "g"),
    "rule_id": ("Rule id.", "4e5f6a7b", "rid"),
    "token_id": ("Token id (the public part of a token).", "0a1b2c3d4e5f", "tid"),
}
ACCESS = ("open", "any", "admin", "host", "tenants", "network", "tenant", "port")
_PARAM_RE = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: str
    op_id: str
    summary: str
    status: int              # the success status
    response: object         # schema name, "Name[]", an inline schema dict, or None (no body)
    response_text: str
    body: str = None         # schema name of the request body, None when it takes none
    errors: tuple = ()
    tag: str = ""
    description: str = None
    access: str = None       # one of ACCESS: who may call it (see the module's docstring)
    read_only: bool = False  # changes no desired state (a trace's POST is a question;
    #                          flow logs live in memory, not in the model)
    query: tuple = ()        # (name, description, JSON schema) of each optional query
    #                          parameter, passed to the handler by keyword (absent: None)

    @property
    def params(self):
        """Path parameter names, in path order (the handler's leading arguments)."""
        return tuple(_PARAM_RE.findall(self.path))

    @property
    def metric_route(self):
        """The path template as the `route` label of /metrics spells it."""
        return _PARAM_RE.sub(lambda m: "{" + PARAMS[m.group(1)][2] + "}", self.path)

    @property
    def writes(self):
        """Whether the operation may change the model (its handler commits)."""
        return self.method != "GET" and not self.read_only


def _collection(tag, singular, base, item, schema, create_body, handlers, create_errors,
                delete_errors, delete_text, access="tenant", owner="the tenant's"):
    """list + create on `base`, get + delete on `item`: four routes of one shape."""
    list_, create, get, delete = handlers
    return [
        Route("GET", base, list_, f"list{schema}s", f"List {owner} {singular}s.", 200,
              f"{schema}[]", f"The {singular}s.", errors=(404,), tag=tag, access=access),
        Route("POST", base, create, f"create{schema}", f"Create a {singular}.", 201, schema,
              f"The new {singular}.", body=create_body, errors=create_errors, tag=tag,
              access=access),
        Route("GET", item, get, f"get{schema}", f"One {singular}.", 200, schema, singular,
              errors=(404,), tag=tag, access=access),
        Route("DELETE", item, delete, f"delete{schema}", f"Delete a {singular}.", 204, None,
              "Deleted.", errors=delete_errors, tag=tag, description=delete_text,
              access=access),
    ]


def _tokens(owner, base, handlers, text, list_errors, create_errors):
    """list + create on `base`, revoke on `base/{token_id}`: the admin's."""
    list_, create, delete = handlers
    name = owner.capitalize() + "Token"
    return [
        Route("GET", base, list_, f"list{name}s", f"List the {owner}'s tokens (no secrets).",
              200, "Token[]", "The tokens.", errors=list_errors, tag="tokens", access="admin"),
        Route("POST", base, create, f"create{name}", f"Make a {owner} token.", 201,
              "TokenCreated", "The new token: `token` is shown this once.",
              body=name + "Create", errors=create_errors, tag="tokens", access="admin",
              description=text),
        Route("DELETE", base + "/{token_id}", delete, f"delete{name}", "Revoke a token.", 204,
              None, "Revoked: the token is refused from now on.", errors=(404,),
              tag="tokens", access="admin"),
    ]


_T = "/v1/tenants/{tenant}"
_SG = _T + "/security-groups"

ROUTES = (
    Route("GET", "/v1/health", "app.health", "health", "Liveness and counts.", 200, "Health",
          "The controller is up.", tag="meta", access="any"),
    Route("GET", "/v1/topology", "app.topology_json", "topology",
          "The learned topology graph.", 200, "Topology", "networkx node-link JSON.",
          tag="meta", access="admin"),
    Route("GET", "/v1/openapi.json", "app.openapi", "openapi", "This document.", 200,
          {"type": "object"}, "OpenAPI 3.1.", tag="meta", access="open"),
    # hosts
    Route("GET", "/v1/hosts", "list_hosts", "listHosts", "List hosts.", 200, "Host[]",
          "All hosts, by name.", tag="hosts", access="admin"),
    Route("POST", "/v1/hosts", "create_host", "createHost",
          "Register a host (its br-int's dpid and tunnel IP).", 201, "Host", "The new host.",
          body="HostCreate", errors=(409,), tag="hosts", access="host"),
    Route("GET", "/v1/hosts/{host}", "get_host", "getHost", "One host.", 200, "Host",
          "The host.", errors=(404,), tag="hosts", access="host"),
    Route("DELETE", "/v1/hosts/{host}", "delete_host", "deleteHost", "Forget a host.", 204,
          None, "Deleted.", errors=(404, 409), tag="hosts",
          description="Refused (409 in_use) while ports are attached on it.", access="admin"),
    # tenants
    Route("GET", "/v1/tenants", "list_tenants", "listTenants", "List tenants.", 200,
          "Tenant[]", "All tenants (a tenant token: its own).", tag="tenants", access="tenants"),
    Route("POST", "/v1/tenants", "create_tenant", "createTenant", "Create a tenant (a VPC).",
          201, "Tenant", "The new tenant.", body="TenantCreate", errors=(409,), tag="tenants",
          access="network"),
    Route("GET", _T, "get_tenant", "getTenant", "One tenant.", 200, "Tenant", "The tenant.",
          errors=(404,), tag="tenants", access="tenant"),
    Route("DELETE", _T, "delete_tenant", "deleteTenant",
          "Delete a tenant, its subnets and floating IPs.", 204, None, "Deleted.",
          errors=(404, 409), tag="tenants", description="Refused (409 in_use) while it has ports. "
                                                         "Its tokens go with it.",
          access="admin"),
    Route("PUT", _T + "/snat", "set_snat", "setSnat",
          "Turn SNAT to the outside on or off for a tenant.", 200, "Tenant", "The tenant.",
          body="SnatSet", errors=(404,), tag="nat", access="tenant"),
    # subnets, ports
    *_collection("subnets", "subnet", _T + "/subnets", _T + "/subnets/{subnet}", "Subnet",
                 "SubnetCreate", ("list_subnets", "create_subnet", "get_subnet",
                                  "delete_subnet"),
                 (404, 409), (404, 409), "Refused (409 in_use) while ports use it."),
    *_collection("ports", "port", _T + "/ports", _T + "/ports/{port_id}", "Port", "PortCreate",
                 ("list_ports", "create_port", "get_port", "delete_port"),
                 (404, 409), (404,), "Also deletes the port's port forwards.", access="port"),
    Route("PATCH", _T + "/ports/{port_id}", "update_port", "updatePort",
          "Change a port's security groups or port security.", 200, "Port", "The port.",
          body="PortUpdate", errors=(404,), tag="ports", access="tenant"),
    # security groups
    *_collection("security-groups", "security group", _SG, _SG + "/{group}", "SecurityGroup",
                 "SecurityGroupCreate", ("list_groups", "create_group", "get_group",
                                         "delete_group"),
                 (404, 409), (404, 409),
                 "Refused (409 in_use) for the default group, a group ports use, and a group "
                 "other groups' rules name as remote."),
    Route("PUT", _SG + "/{group}", "replace_rules", "replaceRules",
          "Replace a security group's rules.", 200, "SecurityGroup", "The group.",
          body="SecurityGroupRules", errors=(404,), tag="security-groups", access="tenant"),
    Route("POST", _SG + "/{group}/rules", "add_rule", "addRule",
          "Add a rule to a security group.", 201, "Rule", "The new rule.", body="RuleCreate",
          errors=(404,), tag="security-groups", access="tenant"),
    Route("DELETE", _SG + "/{group}/rules/{rule_id}", "delete_rule", "deleteRule",
          "Delete a rule.", 204, None, "Deleted.", errors=(404,), tag="security-groups",
          access="tenant"),
    # NAT
    *_collection("port-forwards", "port forward", _T + "/port-forwards",
                 _T + "/port-forwards/{forward_id}", "PortForward", "PortForwardCreate",
                 ("list_forwards", "create_forward", "get_forward", "delete_forward"),
                 (404, 409), (404,), None),
    *_collection("floating-ips", "floating IP", _T + "/floating-ips",
                 _T + "/floating-ips/{fip_id}", "FloatingIP", "FloatingIPCreate",
                 ("list_fips", "create_fip", "get_fip", "delete_fip"),
                 (404, 409), (404,), None),
    # troubleshooting (docs/user-guide.md#troubleshooting)
    Route("POST", _T + "/trace", "trace", "tracePacket",
          "Trace a packet from a port of the tenant through the desired flows.", 200, "Trace",
          "Every host and table the packet passes, whose flow it hits, and the verdict.",
          body="TraceRequest", errors=(404,), tag="troubleshooting", access="tenant",
          read_only=True,
          description="Read-only: nothing changes. The packet (the first of a new "
                      "connection) is run through the flows the controller wants on each "
                      "host, with the flow simulator; with `live` also through "
                      "`ofproto/trace` on the real switches, and differences are reported."),
    # flow logs (docs/user-guide.md#flow-logs): in memory, not desired state
    Route("PUT", _T + "/flow-logs", "set_flow_logs", "setFlowLogs",
          "Turn a tenant's flow logs on or off.", 200, "FlowLogs",
          "The tenant's flow-log setting.", body="FlowLogsSet", errors=(404,),
          tag="troubleshooting", access="tenant", read_only=True,
          description="Off by default, and again after a controller restart (flow logs are "
                      "kept in memory). Off drops the tenant's records."),
    Route("GET", _T + "/flow-logs", "get_flow_logs", "getFlowLogs",
          "The tenant's flow logs: accepted and rejected connections per port.", 200,
          "FlowLogs", "The setting and the records, oldest first.", errors=(404,),
          tag="troubleshooting", access="tenant"),
    Route("GET", "/v1/hosts/{host}/flow-logs", "host_flow_logs", "getHostFlowLogs",
          "Whether the host's agent is to export IPFIX flow records now.", 200,
          "HostFlowLogs", "What to export.", errors=(404,), tag="troubleshooting",
          access="host"),
    Route("POST", "/v1/hosts/{host}/flow-logs", "post_host_flow_logs", "postHostFlowLogs",
          "Hand in flow records the host's bridge exported (the agent).", 200,
          "FlowLogIngest", "How many records belong to a tenant with flow logs on.",
          body="FlowLogBatch", errors=(404,), tag="troubleshooting", access="host",
          read_only=True),
    # DHCP and DNS (docs/user-guide.md#addresses-and-names), answered on each host
    Route("GET", _T + "/dhcp-options", "get_dhcp_options", "getDhcpOptions",
          "The tenant's DHCP options: DNS domain, upstream resolvers, lease time, TTL.", 200,
          "DhcpOptions", "The options (defaults filled in).", errors=(404,), tag="dns",
          access="tenant"),
    Route("PATCH", _T + "/dhcp-options", "set_dhcp_options", "setDhcpOptions",
          "Change the tenant's DHCP options (any subset).", 200, "DhcpOptions",
          "The options now.", body="DhcpOptionsSet", errors=(404,), tag="dns",
          access="tenant",
          description="Containers get the new domain and lease time at their next DHCP "
                      "renewal; DNS answers change within seconds. `null` restores a default; "
                      "`resolvers: []` means names outside the tenant are refused."),
    Route("GET", _T + "/dns-records", "dns_records", "listDnsRecords",
          "The tenant's DNS names and what they answer.", 200, "DnsRecord[]",
          "Every name (port names, aliases, ip-a-b-c-d), sorted.", errors=(404,), tag="dns",
          access="tenant"),
    Route("GET", "/v1/hosts/{host}/services", "host_services", "getHostServices",
          "What the host's agent answers DHCP and DNS from (long poll).", 200,
          "HostServices", "The view: the host's ports, their tenants' options and names.",
          errors=(400, 404), tag="dns", access="host",
          query=(("since", "An etag this route gave: wait until the view differs.",
                  {"type": "string", "maxLength": 64}),
                 ("wait", "With since: the longest wait, seconds (0-30).",
                  {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$"}))),
    # tokens (docs/security.md)
    *_tokens("tenant", _T + "/tokens", ("list_tenant_tokens", "create_tenant_token",
                                         "delete_tenant_token"),
             "A tenant token sees and changes this tenant only; it goes with the tenant.",
             (404,), (404, 409)),
    *_tokens("host", "/v1/hosts/{host}/tokens", ("list_host_tokens", "create_host_token",
                                                  "delete_host_token"),
             "A host token registers its own host and attaches/detaches ports on it; with "
             "networks it also creates tenants and subnets and publishes ports (the Docker "
             "driver). The host need not be registered yet.", (), (409,)),
)
