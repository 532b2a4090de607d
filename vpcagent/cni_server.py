"""The agent's side of the CNI plugin: ADD, DEL, CHECK, GC and STATUS.

The plugin (cni_plugin.py) POSTs ``{"env": CNI_* variables, "config": the
network configuration}`` to ``/cni/<COMMAND>`` on the agent's --cni-socket
(served by server.py's HTTP-over-unix-socket machinery).  Every reply is
HTTP 200 with ``{"result": ...}`` or ``{"error": {"code", "msg", "details"}}``
in the spec's shape; the plugin prints either.  Input is checked again here
with the plugin's own code (cni_config.py): anything that can open the
socket may call it.

Nothing is remembered between requests.  The attachment (CNI_CONTAINERID,
CNI_IFNAME) names the OVS port (cni_config.port_names); the controller's
port list (host, port name) and OVSDB give everything back, so DEL, CHECK
and GC work after an agent restart, and DEL works when the namespace is gone
(deleting the host end of the veth removes the container end with it).

ADD, in the order that keeps a refusal free of side effects:
  1. the namespace exists and has no CNI_IFNAME yet (a second ADD without DEL
     is refused, as the reference bridge plugin does; nothing changes);
  2. tenant and subnet: created when the config names a ``network`` type,
     else they must exist; a disagreement is refused by the controller;
  3. the controller port (IP/MAC from its IPAM, ``runtimeConfig.ips``/``mac``
     or CNI_ARGS IP=/MAC= honoured); a retried ADD adopts it by name; its DNS
     name is CNI_ARGS K8S_POD_NAME, its aliases the configuration's
     ``aliases`` (the result's ``dns`` is the port's: gateways, domain);
  4. veth in the host namespace, MTU and tx off on both ends, host end on
     br-int with external_ids (vpc-owner=cni, container id, ifname, network);
  5. container end moved into CNI_NETNS, renamed, MAC/MTU/address/route set;
  6. runtimeConfig.portMappings -> controller port forwards on the host's
     external IP plus the port's publish group (controller.publish).
A failure after step 3 removes what was made, the controller port included.

A controller that does not answer turns into code 11 (try again later): the
runtime retries, and DEL's local cleanup has already happened by then.
"""
import ipaddress
import logging
import os

from vpcagent import cni_config as cc
from vpcagent.cni_config import CniError
from vpcagent.plumbing import PlumbingError, configure_container, link_info
from vpcagent.server import ProtocolError
from vpcctl.client import Unreachable, path

log = logging.getLogger("vpcagent")

COMMANDS = ("ADD", "DEL", "CHECK", "GC", "STATUS")


def register(router, agent):
    """Add the CNI routes to ``router`` (called by main.Agent.cni_router)."""
    handlers = CniHandlers(agent)
    for cmd in COMMANDS:
        router.add(f"/cni/{cmd}", handlers.endpoint(cmd), err_key="error", summary=_summary)
    return handlers


def _summary(body, reply):
    env = body.get("env") if isinstance(body, dict) else None
    env = env if isinstance(env, dict) else {}
    who = f"container={str(env.get('CNI_CONTAINERID', ''))[:12]} " \
          f"ifname={env.get('CNI_IFNAME', '')}"
    err = reply.get("error") if isinstance(reply, dict) else None
    if isinstance(err, dict):
        return f"{who} refused: code {err.get('code')}: {err.get('msg')}"
    return who


class CniHandlers:
    def __init__(self, agent):
        self.c = agent.controller
        self.host = agent.host

    # -- plumbing of requests and errors -------------------------------------------------
    def endpoint(self, command):
        fn = {"ADD": self.add, "DEL": self.delete, "CHECK": self.check, "GC": self.gc,
              "STATUS": self.status}[command]

        def handle(body):
            version = cc.LATEST
            try:
                environ, conf = body.get("env"), body.get("config")
                if not isinstance(environ, dict) or not isinstance(conf, dict):
                    raise CniError(cc.E_DECODE, "the request needs \"env\" and \"config\" "
                                   "objects")
                environ = dict(environ, CNI_COMMAND=command)
                version = conf.get("cniVersion") if isinstance(conf.get("cniVersion"), str) \
                    else version
                env = cc.parse_env(environ)
                cfg = cc.parse_config(conf, command)
                return {"result": fn(env, cfg)}
            except CniError as e:
                return {"error": e.to_json(version)}
            except ProtocolError as e:
                return {"error": self.controller_error(e).to_json(version)}
            except PlumbingError as e:
                return {"error": CniError(cc.E_PLUMBING, str(e)).to_json(version)}
        return handle

    def controller_error(self, e):
        """A refused controller step: code 11 when the controller does not answer
        at all (transient), else 100 with the controller's sentence."""
        try:
            self.c.client.get("/v1/health")
        except Unreachable as u:
            return CniError(cc.E_TRY_AGAIN, f"{u}; try again later", "controller unreachable")
        except Exception:                                    # noqa: BLE001 -- it answered
            pass
        return CniError(cc.E_CONTROLLER, str(e))

    def my_ports(self, tenant):
        return [p for p in self.c.ports(tenant) if p["host"] == self.c.host]

    def find_port(self, tenant, name):
        """This host's port of ``tenant`` with OVS port name ``name``, or None."""
        return next((p for p in self.my_ports(tenant) if p["port"] == name), None)

    # -- ADD -------------------------------------------------------------------------------
    def add(self, env, cfg):
        cid, ifname, netns = env["containerID"], env["ifname"], env["netns"]
        ip, mac = cc.requested_address(cfg, env)
        if not os.path.exists(netns):
            raise CniError(cc.E_UNKNOWN_CONTAINER, f"network namespace {netns} does not exist")
        if link_info(netns, ifname) is not None:
            raise CniError(cc.E_EXISTS, f"{netns} already has an interface {ifname}: container "
                           f"{cid[:12]} is attached already (ADD twice without DEL?); nothing "
                           f"was changed", ifname)
        tenant = cfg["tenant"]
        self.network(cfg)
        host_if, peer = cc.port_names(cid, ifname)
        port = self.c.create_port(tenant, host_if, cfg["subnet"], ip=ip, mac=mac,
                                  subnet6=cfg.get("subnet6"), ip6=cfg.get("ip6"))
        try:
            port = self.name_port(tenant, port, env, cfg)
            mtu = self.mtu(cfg, port)
            ids = {"vpc-port-id": port["id"], "vpc-tenant": tenant, "vpc-owner": "cni",
                   "vpc-cni-network": cfg["name"], "vpc-container-id": cid,
                   "vpc-ifname": ifname}
            self.host.create_port(host_if, peer, mtu=mtu, external_ids=ids)
            self.host.move_into(peer, netns, ifname)
            configure_container(netns, ifname, port["mac"],
                                f"{port['ip']}/{port['prefixlen']}", port.get("gateway"), mtu,
                                port.get("ip6") and f"{port['ip6']}/{port['prefixlen6']}",
                                port.get("gateway6"))
            if cfg["portMappings"]:
                self.c.publish(tenant, port, cfg["portMappings"])
        except (CniError, ProtocolError, PlumbingError) as e:
            problems = self.remove(tenant, port, host_if)
            if problems:
                log.warning("ADD %s/%s rollback incomplete: %s", cid[:12], ifname,
                            "; ".join(problems))
            if isinstance(e, PlumbingError):
                raise CniError(cc.E_PLUMBING, f"cannot plumb {host_if} into {netns}: {e} "
                               f"(rolled back)") from None
            raise
        host_link = link_info(self.host.netns, host_if) or {}
        return cc.result(cfg, port, host_if, host_link.get("mac"), netns, ifname)

    def name_port(self, tenant, port, env, cfg):
        """The port's DNS names: ``name`` = CNI_ARGS K8S_POD_NAME, ``aliases`` =
        the configuration's ``aliases``; the port as the controller then has it."""
        name, aliases = cc.pod_name(env), cfg.get("aliases") or []
        raw = (env.get("cniArgs") or {}).get("K8S_POD_NAME")
        if raw and name is None:
            log.info("ADD %s: K8S_POD_NAME %r is not a DNS name; the pod gets none",
                     env["containerID"][:12], raw)
        if name is None and not aliases:
            return port
        return self.c.call("PATCH", path("tenants", tenant, "ports", port["id"]),
                           {"name": name, "aliases": aliases})

    def network(self, cfg):
        """The tenant's subnet at the controller, created when the config names a
        network type; refused (code 7) when missing otherwise."""
        tenant, subnet = cfg["tenant"], cfg["subnet"]
        if cfg["network"]:
            if cfg.get("subnet6"):
                self.c.ensure_network(tenant, cfg["network"], cfg["subnet6"])
            return self.c.ensure_network(tenant, cfg["network"], subnet)
        if self.c.tenant(tenant) is None:
            raise CniError(cc.E_CONFIG, f"tenant {tenant!r} does not exist at the controller: "
                           f"create it (vpcctl tenant create {tenant} --network vxlan) or add "
                           f"\"network\": \"vxlan\" to the network configuration")
        for want in (subnet, cfg.get("subnet6")):
            if want and self.c.subnet(tenant, want) is None:
                raise CniError(cc.E_CONFIG, f"tenant {tenant!r} has no subnet {want} at the "
                               f"controller (vpcctl subnet create {tenant} {want})")
        return self.c.subnet(tenant, subnet)

    @staticmethod
    def mtu(cfg, port):
        if cfg["mtu"] and port.get("mtu") and cfg["mtu"] > port["mtu"]:
            raise CniError(cc.E_CONFIG, f"mtu {cfg['mtu']} is larger than the {port['mtu']} "
                           f"the tenant's network carries; leave mtu out or lower it")
        return cfg["mtu"] or port.get("mtu")

    def remove(self, tenant, port, host_if):
        """Undo an attachment (ADD rollback, DEL, GC): publish group and forwards,
        the controller port, the OVS port and veth.  Returns what failed."""
        problems = []
        if port is not None:
            try:
                self.c.unpublish(tenant, port)
                self.c.delete_port(tenant, port["id"])
            except ProtocolError as e:
                problems.append(str(e))
        try:
            self.host.delete_port(host_if)
        except PlumbingError as e:
            problems.append(str(e))
        return problems

    # -- DEL ---------------------------------------------------------------------------------
    def delete(self, env, cfg):
        """Idempotent; needs no namespace.  The local side goes even when the
        controller does not answer (then code 11, and the runtime retries)."""
        host_if, _ = cc.port_names(env["containerID"], env["ifname"])
        ctl_error = None
        try:
            port = self.find_port(cfg["tenant"], host_if)
        except ProtocolError as e:
            port, ctl_error = None, e
        if port is not None:
            try:
                self.c.unpublish(cfg["tenant"], port)
                self.c.delete_port(cfg["tenant"], port["id"])
            except ProtocolError as e:
                ctl_error = e
        self.host.delete_port(host_if)
        if ctl_error is not None:
            raise ctl_error
        return None

    # -- CHECK -------------------------------------------------------------------------------
    def check(self, env, cfg):
        cid, ifname, netns = env["containerID"], env["ifname"], env["netns"]
        host_if, _ = cc.port_names(cid, ifname)

        def differ(msg):
            raise CniError(cc.E_CHECK, f"CHECK {cid[:12]}/{ifname}: {msg}")

        port = self.find_port(cfg["tenant"], host_if)
        if port is None:
            differ(f"the controller has no port {host_if} of tenant {cfg['tenant']!r} on host "
                   f"{self.c.host}")
        addresses = cc.port_addresses(port)
        cidrs = [a for _, a, _ in addresses]
        prev = cc.prev_addresses(cfg)
        if prev is not None and sorted(prev) != sorted(cidrs):
            differ(f"prevResult has {', '.join(prev) or 'no address'}, the controller's port "
                   f"has {', '.join(cidrs)}")
        if port.get("status") == "down":
            differ(f"the controller reports port {host_if} down"
                   f"{': ' + port['reason'] if port.get('reason') else ''}")
        if not self.host.link_exists(host_if):
            differ(f"the host end {host_if} of the veth is missing")
        if host_if not in self.host.ovs.ports():
            differ(f"{host_if} is not a port of the integration bridge")
        inside = link_info(netns, ifname)
        if inside is None:
            differ(f"{netns} has no interface {ifname}")
        if (inside["mac"] or "").lower() != port["mac"].lower():
            differ(f"{ifname} has MAC {inside['mac']}, the controller's port {port['mac']}")
        for cidr in cidrs:
            if cidr not in inside["addresses"]:
                differ(f"{ifname} lacks address {cidr} "
                       f"(has {', '.join(inside['addresses']) or 'none'})")
        if not inside["up"]:
            differ(f"{ifname} is down")
        for version, _, gateway in addresses:
            have = inside["gateway" if version == "4" else "gateway6"]
            if gateway and have != gateway:
                differ(f"the IPv{version} default route is via {have}, not {gateway}")
        return None

    # -- GC ----------------------------------------------------------------------------------
    def gc(self, env, cfg):
        """Remove this network's attachments on this host that the runtime no longer
        lists in cni.dev/valid-attachments: controller ports named like ours
        inside the config's subnet, and OVS ports marked with this network."""
        valid = {cc.port_names(cid, ifn)[0] for cid, ifn in cfg["validAttachments"]}
        net = ipaddress.IPv4Network(cfg["subnet"])
        rows = {r["name"]: r["external_ids"] for r in self.host.ovs.find(**{"vpc-owner": "cni"})}
        removed, problems = [], []
        for p in self.my_ports(cfg["tenant"]):
            name = p["port"]
            if name in valid or not _ours(name) or ipaddress.IPv4Address(p["ip"]) not in net:
                continue
            other = rows.get(name, {}).get("vpc-cni-network")
            if other not in (None, cfg["name"]):
                continue                       # another network's attachment
            problems += self.remove(cfg["tenant"], p, name)
            removed.append(name)
        for name, ids in rows.items():
            if ids.get("vpc-cni-network") == cfg["name"] and name not in valid \
                    and name not in removed:
                problems += self.remove(cfg["tenant"], None, name)
                removed.append(name)
        if removed:
            log.info("GC %s removed %s", cfg["name"], ", ".join(sorted(removed)))
        if problems:
            raise CniError(cc.E_PLUMBING, f"GC could not remove everything: "
                           f"{'; '.join(problems)}")
        return None

    # -- STATUS ------------------------------------------------------------------------------
    def status(self, env, cfg):
        """Ready for ADD: the controller answers and knows this host, the tenant is
        there (or the config may create it), and the bridge exists (else 51:
        existing containers lose connectivity)."""
        try:
            self.c.client.get("/v1/health")
        except Unreachable as e:
            raise CniError(cc.E_UNAVAILABLE, f"{e}: ADD cannot work now",
                           "controller unreachable") from None
        except Exception as e:                               # noqa: BLE001
            raise CniError(cc.E_UNAVAILABLE, f"the controller's health check failed: {e}") \
                from None
        try:
            self.c.host_record()
        except ProtocolError as e:
            raise CniError(cc.E_UNAVAILABLE, str(e)) from None
        try:
            self.host.check()
        except PlumbingError as e:
            raise CniError(cc.E_LIMITED, str(e)) from None
        if not cfg["network"] and self.c.tenant(cfg["tenant"]) is None:
            raise CniError(cc.E_UNAVAILABLE, f"tenant {cfg['tenant']!r} does not exist at the "
                           f"controller and the configuration does not create it")
        return None



def _ours(name):
    return len(name) == 13 and name.startswith(cc.HOST_PREFIX)
