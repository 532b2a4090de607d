"""vpcctl: manage vpc-controller hosts, tenants, subnets, ports, NAT and security groups.

One command per REST resource and verb, shaped like `docker network` /
`openstack network`:  vpcctl [--url URL] [--json] GROUP VERB ARGS.

Exit status: 0 ok; 1 the controller refused the request (its message is
printed); 2 bad usage (click's own); 3 the controller cannot be reached.
"""
import click

from vpcctl import render
from vpcctl.cliutil import CONTEXT, AliasGroup, RootGroup, State, ca_file_option, check_url, \
    drop_none, json_option, listing, pass_state, quiet_option, show_obj, token_options
from vpcctl.client import DEFAULT_URL, cidr_segment, path
from vpcctl.secgroups import group_names, port_groups, security_group
from vpcctl.tokens import token
from vpcctl.trace import trace
from vpcctl.flowlogs import flow_logs
from vpcctl.names import NAME_COLUMNS, PORT_LABELS, dhcp_options, dns_records, name_options, \
    port_name_body


@click.group(cls=RootGroup, context_settings=CONTEXT)
@click.option("--url", default=DEFAULT_URL, envvar="VPC_URL", show_default=True,
              show_envvar=True, callback=check_url, metavar="URL",
              help="Base URL of the controller's REST API.")
@click.option("--json", "json_out", is_flag=True,
              help="Machine output: the API's JSON, for every command.")
@click.option("--timeout", default=10.0, show_default=True, envvar="VPC_TIMEOUT",
              type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Seconds to wait for the controller.")
@ca_file_option
@token_options
@click.version_option(package_name="vpc-controller", prog_name="vpcctl")
@click.pass_context
def cli(ctx, url, json_out, timeout):
    """Manage the vpc-controller: hosts, tenants (VPCs), subnets, ports, NAT, security groups.

    \b
    Examples:
      vpcctl tenant create blue --network vxlan
      vpcctl subnet create blue 10.0.0.0/24
      vpcctl port list blue
      vpcctl --json tenant show blue

    Verbs also answer to ls, inspect, rm and create/add; `sg` is security-group.
    Exit status: 0 ok, 1 the controller refused the request, 2 bad usage,
    3 controller unreachable.
    """
    ctx.obj = State(url, timeout, json_out)


# --- health, topology ---------------------------------------------------------------------
@cli.command(short_help="Controller status and counts.")
@json_option
@pass_state
def health(state):
    """Controller status: switches connected, object counts (GET /v1/health)."""
    show_obj(state, state.api.get(path("health")))


@cli.command(short_help="Hosts, datapaths, ports, tunnel mesh.")
@json_option
@pass_state
def topology(state):
    """Hosts, datapaths, ports and the tunnel mesh as the controller sees them.

    With --json: the networkx node-link JSON of GET /v1/topology.
    """
    state.emit(state.api.get(path("topology")), render.topology)


# --- hosts --------------------------------------------------------------------------------
HOST_COLUMNS = [("NAME", "name"), ("DPID", "dpid"), ("TUNNEL_IP", "tunnel_ip"),
                ("UPLINK", "uplink_port"), ("EXTERNAL_PORT", "external_port"),
                ("EXTERNAL_IP", "external_ip"), ("GATEWAY", "external_gateway"),
                ("CONNECTED", "connected")]


@cli.group(cls=AliasGroup, short_help="Hosts (OVS bridges): list, show, add, delete.")
def host():
    """Hosts (OVS bridges) the controller manages (/v1/hosts).

    Usually registered by scripts/host-join; `host add` registers one by hand.
    """


@host.command("list")
@quiet_option
@json_option
@pass_state
def host_list(state, quiet):
    """List hosts."""
    listing(state, state.api.get(path("hosts")), HOST_COLUMNS, quiet, "name")


@host.command("show")
@click.argument("name")
@json_option
@pass_state
def host_show(state, name):
    """Show one host."""
    show_obj(state, state.api.get(path("hosts", name)))


@host.command("add")
@click.argument("name")
@click.option("--dpid", required=True,
              help="Datapath id of the host's br-int, in hex as OVS shows it "
                   "(ovs-vsctl get bridge br-int datapath_id), e.g. 0000000000000001.")
@click.option("--tunnel-ip", required=True, metavar="IP",
              help="Underlay address of the host (VXLAN/GRE endpoint).")
@click.option("--uplink-port", metavar="PORT", help="OVS port towards the physical network.")
@click.option("--external-port", metavar="PORT",
              help="OVS port on the external network (for SNAT, port forwards, floating "
                   "IPs); needs --external-ip.")
@click.option("--external-ip", metavar="IP", help="The host's address on the external network.")
@click.option("--external-gateway", metavar="IP",
              help="Next hop on the external network (needed for NAT).")
@json_option
@pass_state
def host_add(state, name, dpid, tunnel_ip, uplink_port, external_port, external_ip,
             external_gateway):
    """Register host NAME (POST /v1/hosts)."""
    body = {"name": name, "dpid": dpid, "tunnel_ip": tunnel_ip}
    body.update(drop_none(uplink_port=uplink_port, external_port=external_port,
                           external_ip=external_ip, external_gateway=external_gateway))
    show_obj(state, state.api.post(path("hosts"), body))


@host.command("delete")
@click.argument("name")
@json_option
@pass_state
def host_delete(state, name):
    """Forget host NAME (refused while it has ports)."""
    state.api.delete(path("hosts", name))
    state.deleted("host", name)


# --- tenants --------------------------------------------------------------------------------
def _snat_range(ports):
    return f"{ports[0]}-{ports[1]}" if ports else "-"


TENANT_COLUMNS = [("NAME", "name"), ("NETWORK", "network"), ("SEGMENT", "segment"),
                  ("ID", "id"), ("SUBNETS", "subnets"), ("PORTS", "ports"), ("SNAT", "snat")]


@cli.group(cls=AliasGroup, short_help="Tenants (VPCs): list, show, create, delete, snat, "
                                       "dhcp-options, dns-records.")
def tenant():
    """Tenants: isolated networks, like VPCs (/v1/tenants)."""


@tenant.command("list")
@quiet_option
@json_option
@pass_state
def tenant_list(state, quiet):
    """List tenants."""
    listing(state, state.api.get(path("tenants")), TENANT_COLUMNS, quiet, "name")


@tenant.command("show")
@click.argument("name")
@json_option
@pass_state
def tenant_show(state, name):
    """Show one tenant."""
    show_obj(state, state.api.get(path("tenants", name)), {"snat_ports": _snat_range})


@tenant.command("create")
@click.argument("name")
@click.option("--network", required=True, type=click.Choice(["vlan", "vxlan", "gre"]),
              help="Isolation: VLAN tag, VXLAN VNI or GRE key.")
@click.option("--segment", type=int, metavar="N",
              help="VLAN id / VNI / GRE key (default: the lowest free one).")
@json_option
@pass_state
def tenant_create(state, name, network, segment):
    """Create tenant NAME (POST /v1/tenants)."""
    body = {"name": name, "network": network}
    body.update(drop_none(segment=segment))
    show_obj(state, state.api.post(path("tenants"), body), {"snat_ports": _snat_range})


@tenant.command("delete")
@click.argument("name")
@json_option
@pass_state
def tenant_delete(state, name):
    """Delete tenant NAME with its subnets and floating IPs (refused while it has ports)."""
    state.api.delete(path("tenants", name))
    state.deleted("tenant", name)


@tenant.command("snat")
@click.argument("name")
@click.argument("mode", type=click.Choice(["on", "off"], case_sensitive=False))
@json_option
@pass_state
def tenant_snat(state, name, mode):
    """Turn source NAT to the outside on or off for tenant NAME.

    Traffic leaves through the external port of each port's own host
    (PUT /v1/tenants/NAME/snat).  Prints the tenant.
    """
    data = state.api.put(path("tenants", name, "snat"), {"enabled": mode.lower() == "on"})
    show_obj(state, data, {"snat_ports": _snat_range})


# --- subnets ---------------------------------------------------------------------------------
SUBNET_COLUMNS = [("CIDR", "cidr"), ("GATEWAY", "gateway"), ("PORTS", "ports")]


@cli.group(cls=AliasGroup, short_help="Subnets of a tenant: list, show, create, delete.")
def subnet():
    """Subnets of a tenant (/v1/tenants/T/subnets).  CIDRs are written 10.0.0.0/24."""


@subnet.command("list")
@click.argument("tenant")
@quiet_option
@json_option
@pass_state
def subnet_list(state, tenant, quiet):
    """List the subnets of TENANT."""
    listing(state, state.api.get(path("tenants", tenant, "subnets")), SUBNET_COLUMNS, quiet,
             "cidr")


@subnet.command("show")
@click.argument("tenant")
@click.argument("cidr")
@json_option
@pass_state
def subnet_show(state, tenant, cidr):
    """Show subnet CIDR of TENANT."""
    show_obj(state, state.api.get(path("tenants", tenant, "subnets", cidr_segment(cidr))))


@subnet.command("create")
@click.argument("tenant")
@click.argument("cidr")
@click.option("--gateway", metavar="IP", help="Gateway address (default: the first usable).")
@json_option
@pass_state
def subnet_create(state, tenant, cidr, gateway):
    """Add subnet CIDR (e.g. 10.0.0.0/24) to TENANT."""
    body = {"cidr": cidr}
    body.update(drop_none(gateway=gateway))
    show_obj(state, state.api.post(path("tenants", tenant, "subnets"), body))


@subnet.command("delete")
@click.argument("tenant")
@click.argument("cidr")
@json_option
@pass_state
def subnet_delete(state, tenant, cidr):
    """Delete subnet CIDR of TENANT (refused while it has ports)."""
    state.api.delete(path("tenants", tenant, "subnets", cidr_segment(cidr)))
    state.deleted("subnet", cidr)


# --- ports ------------------------------------------------------------------------------------
PORT_COLUMNS = [("ID", "id"), ("HOST", "host"), ("PORT", "port"), ("IP", "ip"), ("MAC", "mac"),
                ("SUBNET", "subnet"), ("STATUS", "status"), ("OFPORT", "ofport"),
                ("GROUPS", port_groups)]
PORT_COLUMNS_V6 = PORT_COLUMNS[:4] + [("IP6", "ip6")] + PORT_COLUMNS[4:]


def port_columns(ports):
    """The IP6 column only when a port has an IPv6 address, NAME and ALIASES
    (DNS names) only when a port has one: a listing without them stays as it
    always was (scripts parse it)."""
    columns = PORT_COLUMNS_V6 if any(p.get("ip6") for p in ports) else PORT_COLUMNS
    if any(p.get("name") or p.get("aliases") for p in ports):
        columns = columns[:3] + NAME_COLUMNS + columns[3:]
    return columns


@cli.group(cls=AliasGroup, short_help="Ports of a tenant: list, show, attach, update, detach.")
def port():
    """Ports of a tenant: one per container interface (/v1/tenants/T/ports).

    To plug a container in, use scripts/attach (it creates the veth, calls the
    API and configures the container); `port attach` only registers the port.
    """


@port.command("list")
@click.argument("tenant")
@quiet_option
@json_option
@pass_state
def port_list(state, tenant, quiet):
    """List the ports of TENANT."""
    ports = state.api.get(path("tenants", tenant, "ports"))
    listing(state, ports, port_columns(ports), quiet, "id")


@port.command("show")
@click.argument("tenant")
@click.argument("port_id", metavar="ID")
@json_option
@pass_state
def port_show(state, tenant, port_id):
    """Show port ID of TENANT."""
    show_obj(state, state.api.get(path("tenants", tenant, "ports", port_id)), PORT_LABELS)


@port.command("attach")
@click.argument("tenant")
@click.option("--host", required=True, help="Registered host the port is on.")
@click.option("--port", "port_name", required=True, metavar="NAME",
              help="OVS port name on the host's br-int (it may not exist yet).")
@click.option("--ip", metavar="IP", help="Address to use (default: allocated).")
@click.option("--mac", metavar="MAC", help="MAC to use (default: allocated).")
@click.option("--subnet", metavar="CIDR", help="Subnet to allocate from (default: the first, "
                                               "or the one holding --ip).")
@click.option("--ip6", metavar="IP6", help="IPv6 address to use (default: allocated when "
                                              "the tenant has an IPv6 subnet).")
@click.option("--subnet6", metavar="CIDR6", help="IPv6 subnet to allocate from.")
@click.option("--family", type=click.Choice(["dual", "ipv4", "ipv6"]),
              help="Address families of the port (default: every family the tenant has).")
@click.option("--security-groups", metavar="A,B", callback=group_names,
              help="Security groups of the port (default: default).")
@click.option("--no-port-security", is_flag=True,
              help="No anti-spoofing and no security groups (routers, appliances).")
@name_options
@json_option
@pass_state
def port_attach(state, tenant, host, port_name, ip, mac, subnet, ip6, subnet6, family,
                security_groups, no_port_security, name, aliases):
    """Register a port of TENANT with the controller (POST .../ports).

    This only tells the controller about the port and allocates its IP and
    MAC; the port's flows appear once an OVS port of that name exists on the
    host.  To plug a Docker container or netns in, run scripts/attach instead.
    """
    body = {"host": host, "port": port_name}
    body.update(drop_none(ip=ip, mac=mac, subnet=subnet, ip6=ip6, subnet6=subnet6, family=family,
                          security_groups=security_groups,
                          port_security=False if no_port_security else None))
    body.update(port_name_body(name, aliases))
    show_obj(state, state.api.post(path("tenants", tenant, "ports"), body), PORT_LABELS)


@port.command("update")
@click.argument("tenant")
@click.argument("port_id", metavar="ID")
@click.option("--security-groups", metavar="A,B", callback=group_names,
              help="Replace the port's security groups ('' for none: nothing allowed).")
@click.option("--port-security/--no-port-security", default=None,
              help="Turn anti-spoofing and security groups on/off (on again: groups "
                   "default unless given).")
@name_options
@click.option("--no-name", is_flag=True, help="Remove the port's DNS name.")
@click.option("--no-aliases", is_flag=True, help="Remove all the port's aliases.")
@json_option
@pass_state
def port_update(state, tenant, port_id, security_groups, port_security, name, aliases,
                no_name, no_aliases):
    """Change the security groups, port security or DNS names of port ID of
    TENANT (PATCH: only what is given).  --alias replaces the aliases."""
    body = drop_none(security_groups=security_groups, port_security=port_security)
    body.update(port_name_body(name, aliases, no_name, no_aliases))
    if not body:
        raise click.UsageError("nothing to change: give --security-groups, "
                               "--port-security/--no-port-security, --name/--no-name or "
                               "--alias/--no-aliases")
    show_obj(state, state.api.patch(path("tenants", tenant, "ports", port_id), body),
             PORT_LABELS)


@port.command("detach")
@click.argument("tenant")
@click.argument("port_id", metavar="ID")
@json_option
@pass_state
def port_detach(state, tenant, port_id):
    """Remove port ID of TENANT (and its port forwards).

    The veth is not touched: scripts/detach removes both.
    """
    state.api.delete(path("tenants", tenant, "ports", port_id))
    state.deleted("port", port_id)


# --- port forwards -------------------------------------------------------------------------------
def _hostport(ip_key, port_key):
    return lambda r: f"{r.get(ip_key) or '-'}:{r.get(port_key)}"


FORWARD_COLUMNS = [("ID", "id"), ("PROTOCOL", "protocol"),
                   ("EXTERNAL", _hostport("external_ip", "external_port")),
                   ("INTERNAL", _hostport("internal_ip", "internal_port")),
                   ("PORT_ID", "port_id"), ("HOST", "host")]


@cli.group("port-forward", cls=AliasGroup,
           short_help="Port forwards (DNAT): list, show, add, delete.")
def port_forward():
    """Port forwards (DNAT) from a host's external IP to a port
    (/v1/tenants/T/port-forwards)."""


@port_forward.command("list")
@click.argument("tenant")
@quiet_option
@json_option
@pass_state
def forward_list(state, tenant, quiet):
    """List the port forwards of TENANT."""
    listing(state, state.api.get(path("tenants", tenant, "port-forwards")), FORWARD_COLUMNS,
             quiet, "id")


@port_forward.command("show")
@click.argument("tenant")
@click.argument("forward_id", metavar="ID")
@json_option
@pass_state
def forward_show(state, tenant, forward_id):
    """Show port forward ID of TENANT."""
    show_obj(state, state.api.get(path("tenants", tenant, "port-forwards", forward_id)))


@port_forward.command("add")
@click.argument("tenant")
@click.option("--port-id", required=True, metavar="ID", help="The tenant port to forward to.")
@click.option("--protocol", type=click.Choice(["tcp", "udp"], case_sensitive=False),
              default="tcp", show_default=True)
@click.option("--external-port", required=True, type=int, metavar="N",
              help="Port on the host's external IP (below the SNAT range, 32768).")
@click.option("--internal-port", required=True, type=int, metavar="N",
              help="Port inside the container.")
@json_option
@pass_state
def forward_add(state, tenant, port_id, protocol, external_port, internal_port):
    """Forward EXTERNAL_IP:N of the port's host to the port (POST .../port-forwards).

    The port's host must have an external network (host add --external-port
    --external-ip --external-gateway).
    """
    body = {"port_id": port_id, "protocol": protocol.lower(), "external_port": external_port,
            "internal_port": internal_port}
    show_obj(state, state.api.post(path("tenants", tenant, "port-forwards"), body))


@port_forward.command("delete")
@click.argument("tenant")
@click.argument("forward_id", metavar="ID")
@json_option
@pass_state
def forward_delete(state, tenant, forward_id):
    """Delete port forward ID of TENANT."""
    state.api.delete(path("tenants", tenant, "port-forwards", forward_id))
    state.deleted("port forward", forward_id)


# --- floating IPs -----------------------------------------------------------------------------
FIP_COLUMNS = [("ID", "id"), ("EXTERNAL_IP", "external_ip"), ("IP", "ip"),
               ("PORT_ID", "port_id"), ("HOST", "host")]


@cli.group("floating-ip", cls=AliasGroup,
           short_help="Floating IPs (1:1 NAT): list, show, add, delete.")
def floating_ip():
    """Floating IPs: a 1:1 external address for a tenant IP
    (/v1/tenants/T/floating-ips)."""


@floating_ip.command("list")
@click.argument("tenant")
@quiet_option
@json_option
@pass_state
def fip_list(state, tenant, quiet):
    """List the floating IPs of TENANT (PORT_ID '-': dormant, no port has the IP now)."""
    listing(state, state.api.get(path("tenants", tenant, "floating-ips")), FIP_COLUMNS, quiet,
             "id")


@floating_ip.command("show")
@click.argument("tenant")
@click.argument("fip_id", metavar="ID")
@json_option
@pass_state
def fip_show(state, tenant, fip_id):
    """Show floating IP ID of TENANT."""
    show_obj(state, state.api.get(path("tenants", tenant, "floating-ips", fip_id)))


@floating_ip.command("add")
@click.argument("tenant")
@click.option("--port-id", required=True, metavar="ID",
              help="The port whose IP gets the floating IP.")
@click.option("--external-ip", required=True, metavar="IP", help="The floating address.")
@json_option
@pass_state
def fip_add(state, tenant, port_id, external_ip):
    """Give the IP of a port of TENANT a floating IP (POST .../floating-ips).

    The floating IP stays with the tenant's private IP: it is dormant while no
    port has that IP.  The port's host needs an external network.
    """
    show_obj(state, state.api.post(path("tenants", tenant, "floating-ips"),
                               {"port_id": port_id, "external_ip": external_ip}))


@floating_ip.command("delete")
@click.argument("tenant")
@click.argument("fip_id", metavar="ID")
@json_option
@pass_state
def fip_delete(state, tenant, fip_id):
    """Release floating IP ID of TENANT."""
    state.api.delete(path("tenants", tenant, "floating-ips", fip_id))
    state.deleted("floating IP", fip_id)


tenant.add_command(dhcp_options)
tenant.add_command(dns_records)
cli.add_command(security_group)
cli.add_command(token)
cli.add_command(trace)
cli.add_command(flow_logs)


def main():
    cli(prog_name="vpcctl")


if __name__ == "__main__":
    main()
