"""Host plumbing through netlink (pyroute2): veth pairs, MTU, tx off, container
addressing.  Shared by the Docker driver, the CNI plugin and scripts/attach.

    host = Host("br-int", ovs_rundir=None, netns=None)
    host.create_port("vd0123456789a", "vc0123456789a", mtu=1450,
                     external_ids={"vpc-port-id": ..., "vpc-tenant": ..., "vpc-owner": ...})
    host.move_into("vc0123456789a", "/proc/1234/ns/net", "eth0")   # CNI / attach
    configure_container("/proc/1234/ns/net", "eth0", mac, "10.0.0.5/24", "10.0.0.1", 1450)
    host.delete_port("vd0123456789a")                              # idempotent

Why pyroute2 and not ``ip``: one netlink socket per namespace, errors as
errno values instead of parsed text, and no process per step (a Docker Join
is on the container's start path).

Why both ends get ``tx off`` *before* anything moves: the userspace datapath
does not complete offloaded TCP checksums (ping works, TCP stalls); Docker
keeps the setting when it moves the container end and renames it eth0, and a
container never needs the privilege to change it.  pyroute2's ethtool ioctl
does what ``ethtool -K DEV tx off`` does; its socket is created inside the
host namespace (``pyroute2.netns.create_socket``), because SIOCETHTOOL acts
in the namespace of the socket it is sent on.

``netns``: the namespace of the host side -- None on a real host (this
process's namespace); in the lab an emulated host is a network namespace
(``ip netns`` name or a path) while the agent itself stays in the root
namespace next to the controller's loopback address.
"""
import errno
import ipaddress
import os
import socket
import subprocess
import threading

from pyroute2 import IPRoute, netns as pnetns
from pyroute2.ethtool.ioctl import IoctlEthtool
from pyroute2.netlink.exceptions import NetlinkError

from vpcagent.ovs import Ovs, OvsError


class PlumbingError(Exception):
    """A host-side step failed; the message says which and why."""


def netns_path(target):
    """A netns given as ``ip netns`` name, path, or pid -> a path (None stays None)."""
    if target is None:
        return None
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return f"/proc/{int(target)}/ns/net"
    if "/" in target:
        return target
    return f"/run/netns/{target}"


def _ipr(path):
    """An IPRoute bound to namespace ``path`` (never creating one)."""
    if path is None:
        return IPRoute()
    if not os.path.exists(path):
        raise PlumbingError(f"network namespace {path} does not exist")
    return IPRoute(netns=path, flags=0)


def _ethtool(path):
    eth = IoctlEthtool()
    if path is not None:
        eth.sock.close()
        eth.sock = pnetns.create_socket(path, socket.AF_INET, socket.SOCK_DGRAM, flags=0)
    return eth


def _index(ipr, name):
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def _nl(what, fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except NetlinkError as e:
        raise PlumbingError(f"{what}: {os.strerror(e.code)}") from None


class Host:
    """The host side of one host: its integration bridge and netns."""

    def __init__(self, bridge="br-int", ovs_rundir=None, netns=None):
        self.ovs = Ovs(bridge, ovs_rundir)
        self.netns = netns_path(netns)
        self._lock = threading.RLock()
        self._ipr_handle = None
        self._eth_handle = None

    # -- handles, opened once: netlink sockets into a namespace cost a fork --
    def _ipr(self):
        if self._ipr_handle is None:
            self._ipr_handle = _ipr(self.netns)
        return self._ipr_handle

    def _eth(self):
        if self._eth_handle is None:
            self._eth_handle = _ethtool(self.netns)
        return self._eth_handle

    def close(self):
        with self._lock:
            for h in (self._ipr_handle, self._eth_handle):
                if h is not None:
                    h.close()
            self._ipr_handle = self._eth_handle = None

    def check(self):
        """PlumbingError unless the namespace and the bridge are there."""
        if self.netns and not os.path.exists(self.netns):
            raise PlumbingError(f"host network namespace {self.netns} does not exist")
        try:
            self.ovs.check()
        except OvsError as e:
            raise PlumbingError(str(e)) from None

    # -- links ---------------------------------------------------------------
    def link_exists(self, name):
        with self._lock:
            return _index(self._ipr(), name) is not None

    def links(self):
        with self._lock:
            return [ln.get("ifname") for ln in self._ipr().get_links()]

    def tx_off(self, name):
        """``ethtool -K name tx off`` in the host namespace."""
        with self._lock:
            eth = self._eth()
            eth.change_ifname(name)
            try:
                eth.set_offload_flag("tx-checksumming", 0)
            except OSError as e:
                raise PlumbingError(f"tx off on {name}: {e.strerror or e}") from None

    def create_port(self, name, peer, mtu=None, external_ids=None):
        """veth ``name`` (host end, OVS port) <-> ``peer`` (container end, still
        in the host namespace).  MTU and tx off on both.  Idempotent: an existing
        ``name`` is kept and re-checked.  On failure nothing is left behind."""
        with self._lock:
            ipr = self._ipr()
            made = False
            if _index(ipr, name) is None:
                if _index(ipr, peer) is not None:
                    _nl(f"remove stale {peer}", ipr.link, "del", index=_index(ipr, peer))
                _nl(f"create veth {name}/{peer}", ipr.link, "add", ifname=name, kind="veth",
                    peer={"ifname": peer})
                made = True
            try:
                for ifname in (name, peer):
                    idx = _index(ipr, ifname)
                    if idx is None:
                        continue            # the peer already went into a container
                    if mtu:
                        _nl(f"set MTU {mtu} on {ifname}", ipr.link, "set", index=idx,
                            mtu=int(mtu))
                    self.tx_off(ifname)
                _nl(f"set {name} up", ipr.link, "set", index=_index(ipr, name), state="up")
                self.ovs.add_port(name, external_ids or {})
            except (PlumbingError, OvsError) as e:
                if made:
                    self.delete_port(name)
                raise PlumbingError(str(e)) from None

    def delete_port(self, name):
        """Remove the OVS port and the veth pair; missing pieces are fine."""
        with self._lock:
            try:
                self.ovs.del_port(name)
            except OvsError as e:
                raise PlumbingError(str(e)) from None
            self.delete_link(name)

    def delete_link(self, name):
        with self._lock:
            ipr = self._ipr()
            idx = _index(ipr, name)
            if idx is None:
                return False
            try:
                ipr.link("del", index=idx)
            except NetlinkError as e:
                if e.code != errno.ENODEV:
                    raise PlumbingError(f"delete {name}: {os.strerror(e.code)}") from None
            return True

    def move_into(self, peer, target, ifname="eth0"):
        """Move ``peer`` from the host namespace into ``target`` (name, path or
        pid) and rename it ``ifname`` there (CNI and scripts/attach; Docker
        moves it itself)."""
        path = netns_path(target)
        if not os.path.exists(path):
            raise PlumbingError(f"network namespace {path} does not exist")
        with self._lock:
            ipr = self._ipr()
            idx = _index(ipr, peer)
            if idx is None:
                raise PlumbingError(f"interface {peer} is not in the host namespace")
            fd = os.open(path, os.O_RDONLY)
            try:
                _nl(f"move {peer} into {path}", ipr.link, "set", index=idx, net_ns_fd=fd)
            finally:
                os.close(fd)
        with _ipr(path) as cipr:
            cidx = _index(cipr, peer)
            if ifname != peer:
                if _index(cipr, ifname) is not None:
                    raise PlumbingError(f"{path} already has an interface {ifname}")
                _nl(f"rename {peer} to {ifname}", cipr.link, "set", index=cidx, ifname=ifname)


IFA_F_NODAD = 0x02


def configure_container(target, ifname, mac, cidr, gateway, mtu=None, cidr6=None,
                        gateway6=None):
    """Inside the container's namespace: MAC, MTU, address(es), up, default route(s).

    ``cidr`` / ``cidr6`` are ``ip/prefixlen`` (either may be None: an IPv6-only
    or IPv4-only port).  With an IPv6 address, IPv6 is switched on for the
    interface with an EUI-64 link-local address (what port security allows:
    compile/ipv6.py) and no autoconfiguration from RAs; the address is added
    without DAD (the controller hands out each address once).  Re-running it
    is harmless (addresses and routes are replaced, not added twice)."""
    path = netns_path(target)
    if cidr6:
        ipv6_sysctls(path, ifname)
    with _ipr(path) as ipr:
        idx = _index(ipr, ifname)
        if idx is None:
            raise PlumbingError(f"{path} has no interface {ifname}")
        _nl(f"{ifname} down", ipr.link, "set", index=idx, state="down")
        attrs = {"address": mac} if mac else {}
        if mtu:
            attrs["mtu"] = int(mtu)
        if attrs:
            _nl(f"set {ifname} MAC/MTU", ipr.link, "set", index=idx, **attrs)
        _nl(f"set {ifname} up", ipr.link, "set", index=idx, state="up")
        lo = _index(ipr, "lo")
        if lo is not None:
            _nl("set lo up", ipr.link, "set", index=lo, state="up")
        if cidr:
            iface = ipaddress.IPv4Interface(cidr)
            _nl(f"address {cidr} on {ifname}", ipr.addr, "replace", index=idx,
                address=str(iface.ip), prefixlen=iface.network.prefixlen)
            if gateway:
                _nl(f"default route via {gateway}", ipr.route, "replace", dst="0.0.0.0/0",
                    gateway=str(gateway), oif=idx)
        if cidr6:
            iface6 = ipaddress.IPv6Interface(cidr6)
            _nl(f"address {cidr6} on {ifname}", ipr.addr, "replace", index=idx,
                address=str(iface6.ip), prefixlen=iface6.network.prefixlen,
                family=socket.AF_INET6, flags=IFA_F_NODAD)
            if gateway6:
                _nl(f"default route via {gateway6}", ipr.route, "replace", dst="::/0",
                    gateway=str(gateway6), oif=idx, family=socket.AF_INET6)


IPV6_SYSCTLS = (("disable_ipv6", "0"), ("addr_gen_mode", "0"), ("accept_ra", "0"),
                ("autoconf", "0"), ("accept_dad", "0"))


def ipv6_sysctls(path, ifname):
    """IPv6 on for `ifname` in namespace `path`: a container runtime (and the
    lab) may have switched it off; EUI-64 link-local (addr_gen_mode 0), no
    RA-driven addresses or routes, no DAD delay.  Sysctls have no netlink
    call, so this enters the namespace with nsenter (util-linux)."""
    args = []
    for key, value in IPV6_SYSCTLS:
        args += ["-w", f"net.ipv6.conf.{ifname}.{key}={value}"]
    cmd = (["nsenter", f"--net={path}"] if path else []) + ["sysctl", "-q", *args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise PlumbingError(f"IPv6 settings of {ifname}: {e}") from None
    if p.returncode != 0:
        raise PlumbingError(f"IPv6 settings of {ifname}: {p.stderr.strip() or p.returncode}")


def link_info(target, ifname):
    """Read-only view of ``ifname`` in namespace ``target`` (None: this
    process's): ``{"index", "mac", "mtu", "up", "addresses": ["ip/len"],
    "gateway", "gateway6"}`` (addresses: IPv4 and global IPv6; a gateway: of
    a default route through it), or None when the interface (or the
    namespace) is not there.  For CNI CHECK and results."""
    path = netns_path(target)
    if path is not None and not os.path.exists(path):
        return None
    with _ipr(path) as ipr:
        idx = _index(ipr, ifname)
        if idx is None:
            return None
        link = ipr.get_links(idx)[0]
        addrs = [f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}"
                 for a in ipr.get_addr(index=idx, family=socket.AF_INET)]
        addrs += [f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}"
                  for a in ipr.get_addr(index=idx, family=socket.AF_INET6)
                  if not a.get("IFA_ADDRESS", "").startswith("fe80:")]
        gateways = {}
        for family in (socket.AF_INET, socket.AF_INET6):
            for r in ipr.get_routes(family=family, oif=idx):
                if r["dst_len"] == 0 and r.get("RTA_GATEWAY"):
                    gateways[family] = r.get("RTA_GATEWAY")
        return {"index": idx, "mac": link.get("IFLA_ADDRESS"), "mtu": link.get("IFLA_MTU"),
                "up": bool(link["flags"] & 1), "addresses": addrs,
                "gateway": gateways.get(socket.AF_INET),
                "gateway6": gateways.get(socket.AF_INET6)}
