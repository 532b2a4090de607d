"""Several controllers, one leader: an etcd lease and OpenFlow roles.

`Election` campaigns for /vpc/election/leader with a lease (VPC_LEASE_TTL).
Winning is ONE transaction that also increments /vpc/election/generation, so
every term has a larger generation id than any before it, whoever wins.  The
leader keeps its lease alive every TTL/4; when it cannot (etcd says the lease
is gone, or etcd has been unreachable for a whole TTL) it steps down.

`Roles` is what the os-ken app talks to.  The leader sends every switch
OFPRoleRequest(MASTER, generation) -- on connect and on winning -- and is the
only one that runs SwitchSync (reconciles, sends flow-mods).  The others send
SLAVE (with the bridge's current generation, asked for with NOCHANGE first)
and never reconcile; they still watch the store and keep their model and
topology current, so a takeover starts from a warm state.

Why the generation id matters: a leader that froze (GC, SIGSTOP, partition)
and comes back still believing it leads is already SLAVE on every switch (the
switch demoted it when the new master claimed the role) and its flow-mods are
refused (error 1/10); a MASTER claim with its old generation is refused as
stale (11/0).  So an ex-leader can never overwrite the new leader's flows.

With the msgpack store there is no election: `Roles` says "standalone", the
controller is always the leader and sends no role requests at all.
"""
import json
import logging
import os
import socket
import threading
import time

from controller.store.base import StoreError

LOG = logging.getLogger(__name__)
LEADER_KEY = "/vpc/election/leader"
GEN_KEY = "/vpc/election/generation"
CAMPAIGN_INTERVAL = 0.2


class Election:
    def __init__(self, etcd, ident, ttl=5, on_change=None, info=None):
        self.etcd = etcd
        self.ident = ident
        self.ttl = int(ttl)
        self.on_change = on_change or (lambda leader: None)
        self.info = dict(info or {}, id=ident)
        self.is_leader = False
        self.leader = None          # id of the leader as last seen
        self.generation = 0
        self.lease = None
        self.terms = 0
        self._last_ok = 0.0
        self._stop = threading.Event()

    # --- one step at a time (the loop, and tests) ------------------------------------
    def step(self):
        if self.is_leader:
            self._keepalive()
        else:
            self._campaign()

    def run(self, sleep=time.sleep):
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as exc:      # etcd away: keep trying
                LOG.debug("election step: %s", exc)
                if self.is_leader and time.monotonic() - self._last_ok >= self.ttl:
                    self._lost("etcd unreachable for a whole lease TTL")
            sleep(self.ttl / 4 if self.is_leader else CAMPAIGN_INTERVAL)

    def stop(self, resign=True):
        self._stop.set()
        if resign and self.is_leader and self.lease:
            try:
                self.etcd.post("lease/revoke", {"ID": str(self.lease)})
            except StoreError:
                pass
            self.is_leader = False

    def _campaign(self):
        e = self.etcd
        gen_val, gen_mod = e.get(GEN_KEY)
        current, _ = e.get(LEADER_KEY)
        if current is not None:          # someone leads: no lease churn while they do
            self.leader = _leader_id(current)
            return False
        gen = int(gen_val or 0)
        lease = int(e.post("lease/grant", {"TTL": self.ttl, "ID": 0})["ID"])
        result = e.txn(compare=[e.compare(LEADER_KEY, "CREATE", 0),
                                e.compare(GEN_KEY, "MOD", gen_mod)],
                       success=[e.put_op(LEADER_KEY, json.dumps(self.info), lease),
                                e.put_op(GEN_KEY, str(gen + 1))])
        if not result.get("succeeded"):
            e.post("lease/revoke", {"ID": str(lease)})
            return False
        self.lease, self.generation = lease, gen + 1
        self.is_leader, self.leader = True, self.ident
        self._last_ok = time.monotonic()
        self.terms += 1
        LOG.warning("elected leader (generation %d, lease %x, TTL %ds)", self.generation,
                    lease, self.ttl)
        self.on_change(True)
        return True

    def _keepalive(self):
        result = self.etcd.post("lease/keepalive", {"ID": str(self.lease)}).get("result") or {}
        if int(result.get("TTL", 0) or 0) <= 0:
            self._lost("the lease expired")
            return
        self._last_ok = time.monotonic()

    def _lost(self, why):
        if not self.is_leader:
            return
        LOG.warning("no longer leader: %s", why)
        self.is_leader = False
        self.leader = None
        self.lease = None
        self.on_change(False)

    def bump_generation(self, at_least):
        """The bridge knows a larger generation (e.g. left from an older etcd):
        move the counter past it, only while we still hold the leadership."""
        e = self.etcd
        gen_val, gen_mod = e.get(GEN_KEY)
        new = max(int(gen_val or 0), at_least) + 1
        _, leader_mod = e.get(LEADER_KEY)
        result = e.txn(compare=[e.compare(GEN_KEY, "MOD", gen_mod),
                                e.compare(LEADER_KEY, "VALUE", json.dumps(self.info)),
                                e.compare(LEADER_KEY, "MOD", leader_mod)],
                       success=[e.put_op(GEN_KEY, str(new))])
        if result.get("succeeded"):
            self.generation = new
            return True
        return False


def _leader_id(raw):
    try:
        return json.loads(raw).get("id")
    except (ValueError, AttributeError):
        return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


def controller_id(config):
    return os.environ.get("VPC_CONTROLLER_ID") or \
        f"{socket.gethostname()}:{config.rest_port}:{os.getpid()}"


class Roles:
    """The app's side: role requests to switches, and who may reconcile."""

    def __init__(self, app, config, spawn):
        self.app = app
        self.store_kind = config.store
        self.spawn = spawn
        self.started = {}       # dpid -> session whose ports were read (ready to sync)
        self.election = None
        if config.store != "etcd":
            return
        ident = controller_id(config)
        self.election = Election(app.store.etcd, ident, config.lease_ttl,
                                 on_change=self._changed,
                                 info={"rest": f"http://{config.rest_host}:{config.rest_port}",
                                       "pid": os.getpid()})
        app.store.watch(self._remote_change, spawn=spawn)
        spawn(self.election.run)

    @property
    def is_leader(self):
        return self.election is None or self.election.is_leader

    def health(self):
        if self.election is None:
            return {"role": "standalone", "leader": None, "store": self.store_kind}
        e = self.election
        return {"role": "master" if e.is_leader else "slave", "leader": e.leader,
                "id": e.ident, "generation": e.generation, "terms": e.terms,
                "store": self.store_kind}

    def register_metrics(self, registry):
        """vpc_controller_leader (1 leads or standalone, 0 follows) and
        vpc_leader_generation, scraped from this object."""
        roles = self

        class _Collector:
            def describe(self):
                return []

            def collect(self):
                from prometheus_client.core import GaugeMetricFamily
                g = GaugeMetricFamily("vpc_controller_leader",
                                      "1 when this controller reconciles the switches "
                                      "(leader, or standalone), else 0",
                                      labels=["role", "store"])
                role = roles.health()["role"]
                g.add_metric([role, roles.store_kind], 1 if roles.is_leader else 0)
                yield g
                e = roles.election
                gen = GaugeMetricFamily("vpc_leader_generation",
                                        "OpenFlow role generation id of this leader's term")
                gen.add_metric([], e.generation if e else 0)
                yield gen

        registry.register(_Collector())

    def _remote_change(self):
        try:
            self.app.service.refresh()
            self._gateway_macs()
        except Exception as exc:
            LOG.warning("refresh from etcd failed: %s", exc)

    def _gateway_macs(self):
        """Gateway MACs learned by the leader (only it gets packet-ins): keep
        them, so that a new leader does not withdraw NAT egress until its own
        ARP finds them again."""
        app = self.app
        for name, mac in dict(app.store.collection("gateway_macs")).items():
            if app.gateway_macs.get(name) == mac:
                continue
            app.gateway_macs[name] = mac
            host = app.state.hosts.get(name)
            if host is not None and host.dpid in app.sessions and \
                    app.topology.set_gateway_mac(host.dpid, mac) and host.dpid in app.syncs:
                app.syncs[host.dpid].request()

    # --- switches -----------------------------------------------------------------------
    def switch_ready(self, session):
        """Ports read; may this controller reconcile the switch?  Sends the role."""
        self.started[session.dpid] = session
        if self.election is None:
            return True
        return self._claim(session, self.election.is_leader)

    def _claim(self, session, master):
        parser, ofp = session.dp.ofproto_parser, session.dp.ofproto
        try:
            now = session.call(parser.OFPRoleRequest(session.dp, ofp.OFPCR_ROLE_NOCHANGE, 0))
            bridge_gen = now[0].generation_id if now else 0
            if not master:
                session.call(parser.OFPRoleRequest(session.dp, ofp.OFPCR_ROLE_SLAVE, bridge_gen))
                return False
            gen = self.election.generation
            if bridge_gen != 0xFFFF_FFFF_FFFF_FFFF and _gen_ahead(bridge_gen, gen):
                if not self.election.bump_generation(bridge_gen):
                    return False
                gen = self.election.generation
            session.call(parser.OFPRoleRequest(session.dp, ofp.OFPCR_ROLE_MASTER, gen))
            LOG.info("dpid %016x: MASTER with generation %d", session.dpid, gen)
            return self.election.is_leader
        except Exception as exc:
            LOG.warning("dpid %016x: role request failed: %s", session.dpid, exc)
            return False

    def _changed(self, leader):
        if leader:
            for dpid, session in list(self.started.items()):
                if self.app.sessions.get(dpid) is session and dpid not in self.app.syncs:
                    self.spawn(self._take, session)
        else:
            for dpid in list(self.app.syncs):
                sync = self.app.syncs.pop(dpid, None)
                if sync:
                    sync.stop()
            for dpid, session in list(self.started.items()):
                if self.app.sessions.get(dpid) is session:
                    self.spawn(self._claim, session, False)

    def _take(self, session):
        if self._claim(session, True) and self.app.sessions.get(session.dpid) is session \
                and session.dpid not in self.app.syncs:
            self.app._begin_sync(session)


def _gen_ahead(a, b):
    """Is generation a strictly ahead of b, by OpenFlow's wrap-around rule?"""
    return 0 < ((a - b) & 0xFFFF_FFFF_FFFF_FFFF) < (1 << 63)
