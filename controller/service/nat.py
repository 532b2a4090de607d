"""NAT operations: SNAT on/off, port forwards, floating IPs.

A mixin of VpcService (same lock, same commit path), kept apart so each file
has one purpose.  The rules a user can trip over, checked here:
  - a port forward lives on its port's host: that host needs an external
    network, and (external IP, protocol, external port) is unique;
  - external ports of forwards stay below the SNAT source-port space;
  - a floating IP is unique, is nobody's host IP, and one private IP has at
    most one.
"""
import uuid

from controller.compile.pipeline import MAX_FORWARD_PORT
from controller.model import ipam
from controller.model.state import FloatingIP, PortForward, record
from controller.service import validate as v
from controller.service.errors import bad_request, conflict, not_found
from controller.service.mutator import mutator


class NatOperations:
    def _external_host(self, port, what):
        if port.ip is None:          # NAT is IPv4 (docs/pipeline.md); an IPv6-only port has none
            raise conflict(f"port {port.id} has no IPv4 address, so it cannot carry a {what} "
                           f"(the external network is IPv4)", code="no_ipv4")
        host = self.state.hosts[port.host]
        if not host.has_external or not host.external_gateway:
            raise conflict(f"host {host.name!r} of port {port.id} has no external network "
                           f"(register it with external_port, external_ip and "
                           f"external_gateway) so it cannot carry a {what}",
                           code="no_external")
        return host

    # --- SNAT -------------------------------------------------------------
    @mutator
    def set_snat(self, tenant_name, body):
        v.body_fields(body, required=("enabled",))
        enabled = v.boolean(body["enabled"], "enabled")
        with self.lock:
            t = self._tenant(tenant_name)
            if enabled == t.snat:
                return self.tenant_view(t)
            new = record(t) | {"snat": enabled}
            self._commit([("put", "tenants", t.name, new)], self._tenant_hosts(t.name))
            return self.tenant_view(self.state.tenants[t.name])

    # --- port forwards ------------------------------------------------------
    @mutator
    def create_forward(self, tenant_name, body):
        v.body_fields(body, required=("port_id", "protocol", "external_port", "internal_port"))
        protocol = v.choice(body["protocol"], "protocol", ("tcp", "udp"))
        ext = v.integer(body["external_port"], "external_port", 1, MAX_FORWARD_PORT)
        internal = v.integer(body["internal_port"], "internal_port", 1, 65535)
        if not isinstance(body["port_id"], str):
            raise bad_request("port_id must be a string")
        with self.lock:
            port = self._port(tenant_name, body["port_id"])
            host = self._external_host(port, "port forward")
            for f in self.state.port_forwards.values():
                other = self.state.ports.get(f.port_id)
                if other and other.host == host.name and f.protocol == protocol \
                        and f.external_port == ext:
                    raise conflict(f"{host.external_ip} {protocol}/{ext} already forwards to "
                                   f"port {f.port_id} (tenant {f.tenant!r})", code="duplicate")
            try:
                serial = ipam.lowest_free({f.serial for f in self.state.port_forwards.values()},
                                          1, 0xFF_FFFF)
            except ipam.Exhausted:
                raise conflict("no free port-forward serial left", code="exhausted") from None
            fwd = PortForward(uuid.uuid4().hex[:12], tenant_name, port.id, protocol, ext,
                              internal, serial)
            self._commit([("put", "port_forwards", fwd.id, record(fwd))], {host.name})
            return self.forward_view(fwd)

    def _forward(self, tenant_name, fid):
        self._tenant(tenant_name)
        f = self.state.port_forwards.get(fid)
        if f is None or f.tenant != tenant_name:
            raise not_found(f"tenant {tenant_name!r} has no port forward {fid!r}")
        return f

    def get_forward(self, tenant_name, fid):
        return self.forward_view(self._forward(tenant_name, fid))

    def list_forwards(self, tenant_name):
        self._tenant(tenant_name)
        return [self.forward_view(f) for f in self.state.forwards_of(tenant_name)]

    @mutator
    def delete_forward(self, tenant_name, fid):
        with self.lock:
            f = self._forward(tenant_name, fid)
            port = self.state.ports.get(f.port_id)
            self._commit([("del", "port_forwards", f.id)], {port.host} if port else set())

    # --- floating IPs ---------------------------------------------------------
    @mutator
    def create_fip(self, tenant_name, body):
        v.body_fields(body, required=("port_id", "external_ip"))
        ext_ip = v.ipv4(body["external_ip"], "external_ip")
        if not isinstance(body["port_id"], str):
            raise bad_request("port_id must be a string")
        with self.lock:
            port = self._port(tenant_name, body["port_id"])
            self._external_host(port, "floating IP")
            for h in self.state.hosts.values():
                if ext_ip in (h.external_ip, h.tunnel_ip, h.external_gateway):
                    raise conflict(f"{ext_ip} is an address of host {h.name!r}", code="in_use")
            for f in self.state.floating_ips.values():
                if f.external_ip == ext_ip:
                    raise conflict(f"floating IP {ext_ip} already exists (tenant {f.tenant!r})",
                                   code="duplicate")
                if f.tenant == tenant_name and f.ip == port.ip:
                    raise conflict(f"{port.ip} already has floating IP {f.external_ip}",
                                   code="duplicate")
            try:
                serial = ipam.lowest_free({f.serial for f in self.state.floating_ips.values()},
                                          1, 0xFF_FFFF)
            except ipam.Exhausted:
                raise conflict("no free floating-IP serial left", code="exhausted") from None
            fip = FloatingIP(uuid.uuid4().hex[:12], tenant_name, ext_ip, port.ip, serial)
            self._commit([("put", "floating_ips", fip.id, record(fip))], {port.host})
            return self.fip_view(fip)

    def _fip(self, tenant_name, fid):
        self._tenant(tenant_name)
        f = self.state.floating_ips.get(fid)
        if f is None or f.tenant != tenant_name:
            raise not_found(f"tenant {tenant_name!r} has no floating IP {fid!r}")
        return f

    def get_fip(self, tenant_name, fid):
        return self.fip_view(self._fip(tenant_name, fid))

    def list_fips(self, tenant_name):
        self._tenant(tenant_name)
        return [self.fip_view(f) for f in self.state.fips_of(tenant_name)]

    @mutator
    def delete_fip(self, tenant_name, fid):
        with self.lock:
            f = self._fip(tenant_name, fid)
            port = self.state.port_with_ip(f.tenant, f.ip)
            self._commit([("del", "floating_ips", f.id)], {port.host} if port else set())
