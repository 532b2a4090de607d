"""Compiler, host services: a port's DHCP and DNS go to the host's agent.

Why on the host (OVN's pinctrl idea, without OpenFlow in the agent): a lease
or a lookup must not need the central controller -- it answers no packet of a
container, and a controller that is down must not stop renewals.  Each
host's agent (vpcagent/services/) answers DHCP (v4 and v6) and DNS for the
containers on that host from a view of the model it keeps, also on disk.

How packets reach it: the agent owns an OVS internal port on br-int,
pipeline.SERVICE_PORT.  A port's own requests, matched in PORT_SECURITY
above its normal traffic, leave for that port with eth_dst rewritten to the
port's tag MAC (pipeline.service_tag(serial)), which is how the agent knows
which port asked -- and so which tenant's names and which address to give --
without trusting anything in the packet.  Its answers come back to the tag
MAC; one flow per port in CLASSIFY turns the tag back into the port's MAC
and outputs to the port.  Answers bypass the pipeline as the ARP and NA
answers of flows do: they are ours, not a tenant's traffic.

What is steered, per local port (each only when the port has the address
family; matched with the port's own MAC and untagged, so an unknown client
MAC gets nothing and a spoofer's request never reaches the agent):
  DHCPv4     UDP 68 -> 67, any destination (DISCOVER is broadcast, a
             renewal is unicast to the server identifier, the gateway)
  DHCPv6     UDP 546 -> 547 from the port's link-local address
  DNS        UDP to the port's gateway:53 from the port's address (IPv4) and
             to its gateway6:53 from its ip6 (IPv6): the DNS server is the
             subnet's gateway, as the DHCP answer says.  DNS over TCP is not
             steered (docs/user-guide.md says so).
All of it through the port's service meter (meters.service_meter): one
container flooding DHCP spends its own budget, not its neighbours'.

No service port on the host (no agent, or one started without services):
no flows here, and DHCP floods in the tenant as any broadcast does.
"""
from controller.compile.flows import flow
from controller.compile.ipv6 import link_local
from controller.compile.meters import service_meter
from controller.compile.pipeline import (
    DHCP6_CLIENT_PORT, DHCP6_SERVER_PORT, DHCP_CLIENT_PORT, DHCP_SERVER_PORT, DNS_PORT,
    ETH_TYPE_IP, ETH_TYPE_IPV6, IP_PROTO, OFPVID_NONE, Prio, Table, service_tag)
from controller.model.state import subnet_key

UDP = IP_PROTO["udp"]


def service_flows(state, port, ofport, service_ofport, owner):
    """The port's requests to the agent and the agent's answers back to it;
    [] when the host has no service port."""
    if service_ofport is None:
        return []
    tag = service_tag(port.serial)
    to_agent = dict(actions=[("set_field", "eth_dst", tag), ("output", service_ofport)],
                    meter=service_meter(port.serial).meter_id, **owner)
    own = {"in_port": ofport, "eth_src": port.mac, "vlan_vid": OFPVID_NONE}
    out = [flow(Table.CLASSIFY, Prio.CLASSIFY.SERVICE_REPLY,
                {"in_port": service_ofport, "eth_dst": tag},
                actions=[("set_field", "eth_dst", port.mac), ("output", ofport)], **owner)]
    band = Prio.PORT_SECURITY.SERVICE
    if port.ip is not None:
        udp4 = {**own, "eth_type": ETH_TYPE_IP, "ip_proto": UDP}
        out.append(flow(Table.PORT_SECURITY, band,
                        {**udp4, "udp_src": DHCP_CLIENT_PORT, "udp_dst": DHCP_SERVER_PORT},
                        **to_agent))
        gateway = state.subnets[subnet_key(port.tenant, port.subnet)].gateway
        out.append(flow(Table.PORT_SECURITY, band,
                        {**udp4, "ipv4_src": port.ip, "ipv4_dst": gateway,
                         "udp_dst": DNS_PORT}, **to_agent))
    if port.ip6:
        udp6 = {**own, "eth_type": ETH_TYPE_IPV6, "ip_proto": UDP}
        out.append(flow(Table.PORT_SECURITY, band,
                        {**udp6, "ipv6_src": link_local(port.mac),
                         "udp_src": DHCP6_CLIENT_PORT, "udp_dst": DHCP6_SERVER_PORT},
                        **to_agent))
        gateway6 = state.subnets[subnet_key(port.tenant, port.subnet6)].gateway
        out.append(flow(Table.PORT_SECURITY, band,
                        {**udp6, "ipv6_src": port.ip6, "ipv6_dst": gateway6,
                         "udp_dst": DNS_PORT}, **to_agent))
    return out
