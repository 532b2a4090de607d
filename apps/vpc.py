"""The VPC controller as an os-ken application:  osken-manager apps/vpc.py

Thin by design: it turns switch events into topology updates and reconcile
requests, and serves the REST API.  Everything that decides anything lives in
controller/ (service, model, store, compile, reconcile, runtime, ha) and
topology/; every os-ken message is built or read in controller/southbound.
"""
import logging
import os
import sys
import time

import eventlet
import eventlet.wsgi
from eventlet.semaphore import Semaphore
from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib import hub
from os_ken.ofproto import ofproto_v1_3

from controller.api import tls
from controller.api.auth import Authenticator, admin_token
from controller.api.metrics import Metrics
from controller.api.rest import RestApi
from controller.api.ui import UiApp
from controller.compile.datapath import compile_datapath, overlay_peers
from controller.compile.incremental import IncrementalCompiler
from controller.config import Config, ConfigError
from controller.ha.roles import Roles
from controller.model.state import State
from controller.reconcile.plan import SwitchSync
from controller.runtime.fabric import FabricRuntime
from controller.runtime.gateway import GatewayMacs
from controller.runtime.router_adverts import RouterAdverts
from controller.runtime.startup import end_startup_grace
from controller.runtime.switches import Switches
from controller.service.vpc import VpcService
from controller.southbound import events, patches
from controller.southbound.session import OFSession
from controller.store.etcd_store import open_store
from topology.graph import Topology

LOG = logging.getLogger("vpc")


class _Quiet:
    """eventlet.wsgi wants a file-like access log; send it to debug logging."""

    def write(self, line):
        LOG.debug("rest %s", line.rstrip())


class VpcController(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.started = time.monotonic()
        patches.apply_all()   # cookie-only flow dumps, a deep OpenFlow listen backlog
        try:
            self.config = Config.from_env()
        except ConfigError as exc:      # e.g. VPC_AUTH=off beyond loopback: say why, stop
            LOG.error("cannot start: %s", exc)
            sys.exit(2)
        logging.getLogger("controller").setLevel(self.config.log_level)
        LOG.setLevel(self.config.log_level)
        self.store = open_store(self.config)      # msgpack, or etcd (VPC_STORE=etcd)
        collections = self.store.load()
        self.state = State(collections)
        self.topology = Topology()
        self._sync_hosts()
        # Until each registered host's bridge is back (or VPC_STARTUP_GRACE
        # passes) the compiler treats it as connected: a restart is hitless.
        self.topology.presume_connected(h.dpid for h in self.state.hosts.values())
        self._reconcile_slots = Semaphore(self.config.reconcile_parallel)
        self.switches = Switches(sync_factory=self._new_sync)
        # Learned, not desired: the external gateways' MACs (runtime/gateway.py).
        self.gateway = GatewayMacs(self.state, self.store, self.topology, self.switches,
                                   learned=collections.get("gateway_macs", {}))
        self.router_adverts = RouterAdverts(self.state, self.topology, self.switches,
                                            underlay_mtu=self.config.underlay_mtu)
        self.fabric = FabricRuntime(self.topology, self.state, self.switches,
                                    interval=self.config.lldp_interval,
                                    timeout=self.config.lldp_timeout)
        self.service = VpcService(self.state, self.store, topology=self,
                                  underlay_mtu=self.config.underlay_mtu,
                                  on_change=self._model_changed, lock=Semaphore())
        LOG.info("state loaded from %s: %d hosts, %d tenants, %d ports (%d journal records "
                 "replayed)", self.config.state_dir, len(self.state.hosts),
                 len(self.state.tenants), len(self.state.ports),
                 self.store.stats["records_replayed"])
        self.roles = Roles(self.config, self.store, self.switches, spawn=hub.spawn,
                           on_remote_change=self._remote_change)   # leader election (etcd)
        self.metrics = Metrics(store=self.config.store, counts=self._counts,
                               switches=self.switches.count, flows=self._flow_counts)
        self.roles.register_metrics(self.metrics.registry)
        self._desired = {}     # dpid -> flows of its last compile
        self.compiler = IncrementalCompiler()
        # Tokens (docs/security.md): on unless REST stays on loopback (VPC_AUTH)
        auth = Authenticator(self.state, admin_token(self.config)) if self.config.auth else None
        api = RestApi(self.service, topology_json=self.topology.node_link, health=self.health,
                      auth=auth)
        try:
            sock = eventlet.listen((self.config.rest_host, self.config.rest_port))
            if self.config.rest_cert:        # HTTPS only (VPC_REST_CERT/KEY)
                sock = tls.wrap_listener(sock, self.config.rest_cert, self.config.rest_key)
        except OSError as exc:      # ssl.SSLError too: a key that does not match, ...
            LOG.error("cannot serve REST on %s:%d: %s", self.config.rest_host,
                      self.config.rest_port, exc)
            sys.exit(1)
        web = self.metrics.wsgi(api, mounts={"/ui": UiApp()})   # + /metrics, /ui
        hub.spawn(eventlet.wsgi.server, sock, web, log=_Quiet(), log_output=False)
        hub.spawn(self.gateway.run)      # ARP for the external gateways
        hub.spawn(self.fabric.run)       # LLDP probes and link timeouts
        hub.spawn(end_startup_grace, self.topology, self.started, self.config.startup_grace,
                  self._request_peers)
        LOG.info("REST API on %s://%s:%d/v1 (metrics /metrics, topology page /ui)",
                 "https" if self.config.rest_cert else "http",
                 self.config.rest_host, self.config.rest_port)

    # --- facts the service shows in its views --------------------------------
    def host_connected(self, dpid):
        return self.switches.connected(dpid)

    def port_number(self, dpid, name):
        return self.topology.port_number(dpid, name)

    def port_link_down(self, dpid, name):
        return self.topology.port_link_down(dpid, name)

    def health(self):
        return {"status": "ok", "switches": self.switches.count(),
                "packet_ins": self.metrics.packet_ins(),
                "hosts": len(self.state.hosts), "tenants": len(self.state.tenants),
                "ports": len(self.state.ports), "pid": os.getpid(), **self.roles.health()}

    def _counts(self):
        return {"hosts": len(self.state.hosts), "tenants": len(self.state.tenants),
                "ports": len(self.state.ports)}

    def _flow_counts(self):
        """{dpid: (flows of the last compile, flows the reconciler's cache holds)}."""
        return {dpid: (self._desired.get(dpid),
                       None if sync.installed is None else len(sync.installed))
                for dpid, sync in list(self.switches.syncs.items())}

    # --- recompiling ---------------------------------------------------------------
    def _compile(self, dpid):
        # A host's bridge: only the pieces the change touched, as a delta
        # (compile/incremental.py).  A fabric switch: its whole (small) set.
        state, topo = self.state.snapshot(), self.topology.snapshot()
        flows = self.compiler.compile(state, topo, dpid, pause=_yield)
        if flows is None:
            flows = self.fabric.filter(dpid, compile_datapath(state, topo, dpid, pause=_yield))
        self._desired[dpid] = len(flows)
        return flows

    def _model_changed(self, host_names):
        # Only when a host changed: syncing rebuilds the whole tunnel mesh
        # (every pair of hosts) and invalidates the topology snapshot every
        # compile reads -- at 100 hosts that was most of an attach's POST.
        if self.state.hosts != self._hosts_synced:
            self._sync_hosts()
        for name in host_names:
            host = self.state.hosts.get(name)
            if host is not None:
                self.switches.request(host.dpid)
        self.fabric.model_changed()

    def _sync_hosts(self):
        self.topology.sync_hosts(self.state.hosts.values())
        self._hosts_synced = dict(self.state.hosts)

    def _remote_change(self):
        """Another controller wrote to the shared store (etcd)."""
        self.service.refresh()
        self.gateway.refresh_from_store()

    def _request_peers(self, dpid):
        """`dpid` connected or left: recompile the switches whose flows depend on
        that -- hosts sharing an overlay tenant with it, and fabric switches."""
        hosts = {h.dpid for h in self.state.hosts.values()}
        wanted = overlay_peers(self.state, dpid)
        for other in self.switches.synced_dpids():
            if other != dpid and (other in wanted or other not in hosts):
                self.switches.request(other)

    def _reconciled(self, sync, plan, seconds):
        self.metrics.reconciled(sync.dpid, plan, seconds)
        if not plan.empty or sync.runs == 1:
            LOG.info("dpid %016x reconciled in %.0f ms: %d added, %d removed, %d kept",
                     sync.dpid, seconds * 1000, len(plan.adds), len(plan.deletes), plan.kept)

    # --- switches come and go ----------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPStateChange, [MAIN_DISPATCHER, DEAD_DISPATCHER])
    def _state_change(self, ev):
        dp = ev.datapath
        if dp.id is None:
            return
        if ev.state == MAIN_DISPATCHER:
            host = self.state.host_by_dpid(dp.id)
            LOG.info("switch connected: dpid %016x from %s (%s)", dp.id, dp.address,
                     f"host {host.name}" if host else "no registered host")
            session = OFSession(dp)
            self.switches.connect(session)
            self.topology.datapath_up(dp.id)
            # Its peers' flows depend on it being connected -- unless it was
            # presumed connected since the start, and so changes nothing.
            if not self.topology.stop_presuming(dp.id):
                self._request_peers(dp.id)
            self.gateway.restore(dp.id)
            hub.spawn(self._start_switch, session)
        elif ev.state == DEAD_DISPATCHER:
            session = self.switches.disconnect(dp.id, dp)
            if session is None:
                return
            LOG.info("switch left: dpid %016x", dp.id)
            session.fail_all("switch disconnected")
            self.topology.datapath_down(dp.id)
            self.fabric.switch_down(dp.id)
            self._request_peers(dp.id)

    def _start_switch(self, session):
        try:
            ports = session.port_descriptions()
        except Exception as exc:
            LOG.warning("dpid %016x: reading ports failed: %s", session.dpid, exc)
            return
        if not self.switches.is_current(session):
            return
        self.topology.set_ports(session.dpid, {d.name: (d.port_no, d.hw_addr, d.down)
                                               for d in ports.values()})
        self.fabric.wait_settled(session.dpid, lambda: self.switches.is_current(session))
        if not self.switches.is_current(session):
            return
        if self.roles.switch_ready(session):     # only the leader reconciles
            self.switches.start_sync(session)

    def _new_sync(self, session):
        return SwitchSync(session, self._compile, self._reconciled,
                          limiter=self._reconcile_slots,
                          on_error=lambda sync, exc: self.metrics.reconcile_failed(sync.dpid))

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev):
        dpid = ev.msg.datapath.id
        st = events.port_status(ev.msg)
        port = st.port
        self.fabric.port_status(dpid, port.port_no, deleted=st.reason == events.DELETED,
                                down=port.down)
        if st.reason in (events.ADDED, events.MODIFIED):
            if self.topology.port_number(dpid, port.name) == port.port_no:
                if self.topology.set_port_link(dpid, port.name, port.down):
                    LOG.info("dpid %016x: port %s link %s", dpid, port.name,
                             "down" if port.down else "up")
                return
            LOG.info("dpid %016x: port %s is ofport %d", dpid, port.name, port.port_no)
            self.topology.port_added(dpid, port.name, port.port_no, port.hw_addr, port.down)
        elif st.reason == events.DELETED:
            LOG.info("dpid %016x: port %s removed", dpid, port.name)
            self.topology.port_deleted(dpid, port.name)
        self.switches.request(dpid)

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev):
        dpid, in_port, data = events.packet_in(ev.msg)
        if self.fabric.packet_in(dpid, in_port, data):
            self.metrics.packet_in("lldp")
        elif self.gateway.packet_in(dpid, data):
            self.metrics.packet_in("gateway_arp")
        elif self.router_adverts.packet_in(dpid, in_port, data):
            self.metrics.packet_in("router_solicit")
        else:
            self.metrics.packet_in("other")

    # --- replies go back to whoever waits for them -------------------------------
    def _reply(self, ev, more=False):
        session = self.switches.session(ev.msg.datapath.id)
        if session is not None:
            session.on_reply(ev.msg, more=more)

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN_DISPATCHER)
    def _port_desc_reply(self, ev):
        self._reply(ev, more=events.more_parts(ev.msg))

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def _flow_stats_reply(self, ev):
        self._reply(ev, more=events.more_parts(ev.msg))

    @set_ev_cls(ofp_event.EventOFPMeterConfigStatsReply, MAIN_DISPATCHER)
    def _meter_config_reply(self, ev):
        self._reply(ev, more=events.more_parts(ev.msg))

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _barrier_reply(self, ev):
        self._reply(ev)

    @set_ev_cls(ofp_event.EventONFBundleCtrlMsg, MAIN_DISPATCHER)
    def _bundle_reply(self, ev):
        self._reply(ev)

    @set_ev_cls(ofp_event.EventOFPRoleReply, MAIN_DISPATCHER)
    def _role_reply(self, ev):
        self._reply(ev)

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _error(self, ev):
        session = self.switches.session(ev.msg.datapath.id)
        if session is not None:
            session.on_error(ev.msg)
        else:
            LOG.warning("error from dpid %s: type=%s code=%s", ev.msg.datapath.id,
                        ev.msg.type, ev.msg.code)


YIELD_AFTER = 0.002        # seconds of compiling before other greenthreads get a turn
_resumed = [0.0]           # when a greenthread last came back from _yield


def _yield():
    """Let the other greenthreads (handshakes, replies, REST) run, once the
    compile has had the CPU for YIELD_AFTER.  Why not after every piece: an
    attach recompiles a few pieces on each of the tenant's hosts; yielding
    after each made those compiles run interleaved, so the new port's own host
    finished with the last of them (at 5,000 ports, 13 hosts: its reconcile
    took 3x as long as alone).  Now each small compile runs through and its
    bundle is on the wire while the next host compiles; a long one (a switch
    connecting) still gives way every 2 ms."""
    if time.monotonic() - _resumed[0] >= YIELD_AFTER:
        eventlet.sleep(0)
        _resumed[0] = time.monotonic()
