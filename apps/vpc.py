"""The VPC controller as an os-ken application:  osken-manager apps/vpc.py

Thin by design: it turns switch events into topology updates and reconcile
requests, and serves the REST API.  Everything that decides anything lives in
controller/ (model, store, compiler, reconciler) and topology/.
"""
import functools
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

from controller.compile.datapath import compile_datapath, overlay_peers
from controller.config import Config
from controller.ha.election import Roles
from controller.runtime.fabric import FabricRuntime
from controller.api.metrics import Metrics
from controller.model.state import State
from controller.southbound.ofsender import OFSession, parse_arp, use_cookie_flow_stats
from controller.reconcile.plan import SwitchSync
from controller.api.rest import RestApi
from controller.service.vpc import VpcService
from controller.store.base import StoreError
from controller.store.etcd_store import open_store
from controller.api.ui import UiApp
from topology.graph import Topology

LOG = logging.getLogger("vpc")
GATEWAY_ARP_INTERVAL = 30.0     # re-ARP for each host's external gateway
GATEWAY_ARP_RETRY = 1.0         # ... and this often while its MAC is unknown
OPENFLOW_BACKLOG = 1024         # pending switch connections the kernel queues for os-ken


class _Quiet:
    """eventlet.wsgi wants a file-like access log; send it to debug logging."""

    def write(self, line):
        LOG.debug("rest %s", line.rstrip())


class VpcController(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.started = time.monotonic()
        use_cookie_flow_stats()     # a flow dump is read for its cookies only
        _deepen_openflow_backlog()  # hundreds of switches reconnecting together
        self.config = Config.from_env()
        logging.getLogger("controller").setLevel(self.config.log_level)
        LOG.setLevel(self.config.log_level)
        self.store = open_store(self.config)      # msgpack, or etcd (VPC_STORE=etcd)
        collections = self.store.load()
        self.state = State(collections)
        # Learned, not desired: the external gateways' MACs.  Kept in the store
        # so a restart does not withdraw NAT egress until ARP finds them again.
        self.gateway_macs = dict(collections.get("gateway_macs", {}))
        self.topology = Topology()
        self.topology.sync_hosts(self.state.hosts.values())
        # Until each registered host's bridge is back (or VPC_STARTUP_GRACE
        # passes) the compiler treats it as connected: a restart is hitless.
        self.topology.presume_connected(h.dpid for h in self.state.hosts.values())
        self.sessions = {}   # dpid -> OFSession
        self.syncs = {}      # dpid -> SwitchSync
        self._reconcile_slots = Semaphore(self.config.reconcile_parallel)
        self.fabric = FabricRuntime(self.topology, self.state, self.sessions, self.syncs,
                                    interval=self.config.lldp_interval,
                                    timeout=self.config.lldp_timeout)
        self.service = VpcService(self.state, self.store, topology=self,
                                  underlay_mtu=self.config.underlay_mtu,
                                  on_change=self._model_changed, lock=Semaphore())
        LOG.info("state loaded from %s: %d hosts, %d tenants, %d ports (%d journal records "
                 "replayed)", self.config.state_dir, len(self.state.hosts),
                 len(self.state.tenants), len(self.state.ports),
                 self.store.stats["records_replayed"])
        self.roles = Roles(self, self.config, spawn=hub.spawn)   # leader election (etcd)
        self.metrics = Metrics(store=self.config.store, counts=self._counts,
                               switches=lambda: len(self.sessions), flows=self._flow_counts)
        self.roles.register_metrics(self.metrics.registry)
        self._desired = {}     # dpid -> flows of its last compile
        api = RestApi(self.service, topology_json=self.topology.node_link, health=self.health)
        try:
            sock = eventlet.listen((self.config.rest_host, self.config.rest_port))
        except OSError as exc:
            LOG.error("cannot serve REST on %s:%d: %s", self.config.rest_host,
                      self.config.rest_port, exc)
            sys.exit(1)
        web = self.metrics.wsgi(api, mounts={"/ui": UiApp()})   # + /metrics, /ui
        hub.spawn(eventlet.wsgi.server, sock, web, log=_Quiet(), log_output=False)
        hub.spawn(self._gateway_arp_loop)
        hub.spawn(self.fabric.run)       # LLDP probes and link timeouts
        hub.spawn(self._end_startup_grace)
        LOG.info("REST API on http://%s:%d/v1 (metrics /metrics, topology page /ui)",
                 self.config.rest_host, self.config.rest_port)

    # --- facts the service shows in its views --------------------------------
    def host_connected(self, dpid):
        return dpid in self.sessions

    def port_number(self, dpid, name):
        return self.topology.port_number(dpid, name)

    def health(self):
        return {"status": "ok", "switches": len(self.sessions),
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
                for dpid, sync in list(self.syncs.items())}

    # --- recompiling ---------------------------------------------------------------
    def _compile(self, dpid):
        flows = self.fabric.filter(dpid, compile_datapath(self.state.snapshot(),
                                                          self.topology.snapshot(),
                                                          dpid, pause=_yield))
        self._desired[dpid] = len(flows)
        return flows

    def _model_changed(self, host_names):
        self.topology.sync_hosts(self.state.hosts.values())
        for name in host_names:
            host = self.state.hosts.get(name)
            if host is not None and host.dpid in self.syncs:
                self.syncs[host.dpid].request()
        self.fabric.model_changed()

    def _request_peers(self, dpid):
        """`dpid` connected or left: recompile the switches whose flows depend on
        that -- hosts sharing an overlay tenant with it, and fabric switches."""
        hosts = {h.dpid for h in self.state.hosts.values()}
        wanted = overlay_peers(self.state, dpid)
        for other, sync in list(self.syncs.items()):
            if other != dpid and (other in wanted or other not in hosts):
                sync.request()

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
            old = self.syncs.pop(dp.id, None)
            if old:
                old.stop()
            session = self.sessions[dp.id] = OFSession(dp)
            self.topology.datapath_up(dp.id)
            # Its peers' flows depend on it being connected -- unless it was
            # presumed connected since the start, and so changes nothing.
            if not self.topology.stop_presuming(dp.id):
                self._request_peers(dp.id)
            if host is not None and host.name in self.gateway_macs:
                self.topology.set_gateway_mac(dp.id, self.gateway_macs[host.name])
            hub.spawn(self._start_switch, session)
        elif ev.state == DEAD_DISPATCHER:
            session = self.sessions.get(dp.id)
            if session is None or session.dp is not dp:
                return
            LOG.info("switch left: dpid %016x", dp.id)
            del self.sessions[dp.id]
            session.fail_all("switch disconnected")
            sync = self.syncs.pop(dp.id, None)
            if sync:
                sync.stop()
            self.topology.datapath_down(dp.id)
            self.fabric.switch_down(dp.id)
            self._request_peers(dp.id)

    def _start_switch(self, session):
        parser = session.dp.ofproto_parser
        try:
            replies = session.call(parser.OFPPortDescStatsRequest(session.dp, 0))
        except Exception as exc:
            LOG.warning("dpid %016x: reading ports failed: %s", session.dpid, exc)
            return
        if self.sessions.get(session.dpid) is not session:
            return
        ports = {}
        for reply in replies:
            for p in reply.body:
                ports[_name(p.name)] = (p.port_no, p.hw_addr)
        self.topology.set_ports(session.dpid, ports)
        self.fabric.wait_settled(session.dpid, lambda: self.sessions.get(session.dpid) is session)
        if self.sessions.get(session.dpid) is not session:
            return
        if self.roles.switch_ready(session):     # only the leader reconciles
            self._begin_sync(session)

    def _end_startup_grace(self):
        """Hosts still not back VPC_STARTUP_GRACE after start are taken for gone
        (see Topology.presume_connected): their overlay peers drop them now."""
        eventlet.sleep(max(0.0, self.started + self.config.startup_grace - time.monotonic()))
        gone = sorted(self.topology.stop_presuming())
        if gone:
            LOG.info("%d registered host(s) not back %.0f s after start: %s", len(gone),
                     self.config.startup_grace,
                     ", ".join(f"{d:016x}" for d in gone[:10]) + (" ..." if len(gone) > 10 else ""))
        for dpid in gone:
            self._request_peers(dpid)

    def _begin_sync(self, session):
        old = self.syncs.get(session.dpid)
        if old is not None and old.session is session:   # already (leader won meanwhile)
            return
        self.syncs[session.dpid] = SwitchSync(
            session, self._compile, self._reconciled, limiter=self._reconcile_slots,
            on_error=lambda sync, exc: self.metrics.reconcile_failed(sync.dpid))
        self.syncs[session.dpid].request(full=True)

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev):
        msg, dp = ev.msg, ev.msg.datapath
        ofp = dp.ofproto
        name = _name(msg.desc.name)
        self.fabric.port_status(dp.id, msg.desc.port_no, deleted=msg.reason == ofp.OFPPR_DELETE,
                                down=bool(msg.desc.state & ofp.OFPPS_LINK_DOWN or
                                          msg.desc.config & ofp.OFPPC_PORT_DOWN))
        if msg.reason in (ofp.OFPPR_ADD, ofp.OFPPR_MODIFY):
            if self.topology.port_number(dp.id, name) == msg.desc.port_no:
                return
            LOG.info("dpid %016x: port %s is ofport %d", dp.id, name, msg.desc.port_no)
            self.topology.port_added(dp.id, name, msg.desc.port_no, msg.desc.hw_addr)
        elif msg.reason == ofp.OFPPR_DELETE:
            LOG.info("dpid %016x: port %s removed", dp.id, name)
            self.topology.port_deleted(dp.id, name)
        if dp.id in self.syncs:
            self.syncs[dp.id].request()

    # --- the external gateway's MAC, for NAT'd traffic ---------------------------
    def _gateway_arp_loop(self):
        """ARP for every connected host's external gateway: often until its MAC
        is known, then now and then to notice a change.  The replies come back
        as packet-ins (the only packet-ins the pipeline makes)."""
        last = {}
        while True:
            now = time.monotonic()
            live = set(self.sessions.values())
            last = {s: t for s, t in last.items() if s in live}
            for dpid, session in list(self.sessions.items()):
                host = self.state.host_by_dpid(dpid)
                if host is None or not host.has_external or not host.external_gateway:
                    continue
                known = self.topology.snapshot().gateway_mac(dpid) is not None
                wait = GATEWAY_ARP_INTERVAL if known else GATEWAY_ARP_RETRY
                if now - last.get(session, -1e9) < wait:      # a new session ARPs at once
                    continue
                port_no = self.topology.port_number(dpid, host.external_port)
                mac = self.topology.snapshot().port_mac(dpid, host.external_port)
                if port_no is None or mac is None:
                    continue
                last[session] = now
                session.arp_probe(port_no, mac, host.external_ip, host.external_gateway)
            eventlet.sleep(GATEWAY_ARP_RETRY)

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev):
        msg = ev.msg
        dpid = msg.datapath.id
        if self.fabric.packet_in(dpid, msg.match.get("in_port"), msg.data):
            self.metrics.packet_in("lldp")
            return
        parsed = parse_arp(msg.data)
        host = self.state.host_by_dpid(dpid)
        reason = "gateway_arp" if parsed and parsed[0] == 2 else "other"
        self.metrics.packet_in(reason)
        if reason != "gateway_arp" or host is None:
            return
        _, mac, sender_ip, target_ip = parsed
        if sender_ip == host.external_gateway and target_ip == host.external_ip:
            if self.gateway_macs.get(host.name) != mac:
                try:
                    self.store.commit([("put", "gateway_macs", host.name, mac)])
                    self.gateway_macs[host.name] = mac
                except StoreError as exc:   # e.g. a conflict on etcd: the next reply retries
                    LOG.warning("gateway MAC of %s not stored: %s", host.name, exc)
            if self.topology.set_gateway_mac(dpid, mac):
                LOG.info("dpid %016x: external gateway %s is at %s", dpid, sender_ip, mac)
                if dpid in self.syncs:
                    self.syncs[dpid].request()

    # --- replies go back to whoever waits for them -------------------------------
    def _reply(self, ev, more=False):
        session = self.sessions.get(ev.msg.datapath.id)
        if session is not None:
            session.on_reply(ev.msg, more=more)

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN_DISPATCHER)
    def _port_desc_reply(self, ev):
        self._reply(ev, more=bool(ev.msg.flags & ev.msg.datapath.ofproto.OFPMPF_REPLY_MORE))

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def _flow_stats_reply(self, ev):
        self._reply(ev, more=bool(ev.msg.flags & ev.msg.datapath.ofproto.OFPMPF_REPLY_MORE))

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
        session = self.sessions.get(ev.msg.datapath.id)
        if session is not None:
            session.on_error(ev.msg)
        else:
            LOG.warning("error from dpid %s: type=%s code=%s", ev.msg.datapath.id,
                        ev.msg.type, ev.msg.code)


def _deepen_openflow_backlog():
    """os-ken listens for switches with eventlet's default backlog of 50.  When
    more switches than that reconnect at once (every host after a controller
    restart), the kernel drops the SYNs it cannot queue and each of those
    switches waits for its TCP retransmit (1, 3, 7 s...).  os-ken creates its
    server after the apps are built, through os_ken.lib.hub.listen, so this
    takes effect when called from __init__."""
    if getattr(hub.listen, "vpc_backlog", None) != OPENFLOW_BACKLOG:
        listen = functools.partial(eventlet.listen, backlog=OPENFLOW_BACKLOG)
        listen.vpc_backlog = OPENFLOW_BACKLOG
        hub.listen = listen


def _yield():
    """Let the other greenthreads (handshakes, replies, REST) run."""
    eventlet.sleep(0)


def _name(raw):
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
