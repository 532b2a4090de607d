"""OpenFlow roles: which controller may program the switches.

The leader (controller/ha/election.py) sends every switch a MASTER role
request with its term's generation id -- on connect and on winning -- and is
the only one that runs SwitchSync (reconciles, sends flow-mods).  The others
send SLAVE (with the bridge's current generation, asked for with NOCHANGE
first) and never reconcile; they still watch the store and keep their model
and topology current, so a takeover starts from a warm state.

Why the generation id matters: a leader that froze (GC, SIGSTOP, partition)
and comes back still believing it leads is already SLAVE on every switch (the
switch demoted it when the new master claimed the role) and its flow-mods are
refused (error 1/10); a MASTER claim with its old generation is refused as
stale (11/0).  So an ex-leader can never overwrite the new leader's flows.

With the msgpack store there is no election: `Roles` says "standalone", the
controller is always the leader and sends no role requests at all.

Roles sees the switches only through the registry (controller/runtime/
switches.py) and sends role requests only through the southbound session.
"""
import logging
import os

from controller.ha.election import Election, controller_id
from controller.store.etcd_client import Etcd

LOG = logging.getLogger(__name__)
NO_GENERATION = 0xFFFF_FFFF_FFFF_FFFF   # a bridge's generation before any master claim


class Roles:
    """The app's side: role requests to switches, and who may reconcile."""

    def __init__(self, config, store, switches, spawn, on_remote_change=None):
        """store: the etcd store (watched for other controllers' writes);
        switches: the registry; on_remote_change: called after such a write
        (the app refreshes its model and learned gateway MACs)."""
        self.switches = switches
        self.on_remote_change = on_remote_change or (lambda: None)
        self.store_kind = config.store
        self.spawn = spawn
        self.started = {}       # dpid -> session whose ports were read (ready to sync)
        self.election = None
        if config.store != "etcd":
            return
        ident = controller_id(config)
        # its own client: a renewal must fail fast (a quarter lease), not wait
        # out the store's request timeout and budget while the lease runs out
        quick = Etcd(store.etcd.endpoints, timeout=min(1.0, max(0.2, config.lease_ttl / 4)),
                     budget=0)
        self.store = store
        self.election = Election(quick, ident, config.lease_ttl,
                                 on_change=self._changed,
                                 info={"rest": f"http://{config.rest_host}:{config.rest_port}",
                                       "pid": os.getpid()})
        store.watch(self._remote_change, spawn=spawn)
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
                "lease_ttl": e.granted, "store": self.store_kind}

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
                yield from roles._ha_families()

        registry.register(_Collector())

    def _ha_families(self):
        """Store faults and elections, counted (etcd store only)."""
        from prometheus_client.core import CounterMetricFamily
        e = self.election
        if e is None:
            return
        st = dict(self.store.etcd.stats, **self.store.stats)
        for name, key, text in (
                ("vpc_store_retries", "retries", "etcd calls retried after a transient error"),
                ("vpc_store_unavailable", "unavailable",
                 "etcd calls that ran out of their retry budget"),
                ("vpc_store_resent_commits", "resent_commits",
                 "commits sent again after an unanswered attempt"),
                ("vpc_store_recognised_commits", "recognised_commits",
                 "re-sent commits found already applied by their request id (not re-done)"),
                ("vpc_store_unknown_outcomes", "unknown_outcomes",
                 "commits whose outcome was unknown when the budget ran out"),
                ("vpc_store_conflicts", "conflicts", "commits refused: the model had changed"),
                ("vpc_store_conflict_retries", "conflict_retries",
                 "operations re-run after a conflict"),
                ("vpc_rest_unavailable_replies", "unavailable_replies",
                 "requests answered 503 because of the store")):
            c = CounterMetricFamily(name, text)
            c.add_metric([], st.get(key, 0))
            yield c
        for name, value, text in (
                ("vpc_leader_elected", e.stats["elected"], "terms this controller won"),
                ("vpc_leader_resumed", e.stats["resumed"],
                 "times it led on with its lease after a late renewal (no new term)"),
                ("vpc_leader_stepped_down", e.stats["stepped_down"],
                 "times it stopped leading"),
                ("vpc_leader_changes", e.stats["leader_changes"],
                 "times it saw another leader than before"),
                ("vpc_leaderless_seconds", e.leaderless_seconds(),
                 "seconds it saw no leader")):
            c = CounterMetricFamily(name, text)
            c.add_metric([], value)
            yield c

    def _remote_change(self):
        try:
            self.on_remote_change()
        except Exception as exc:
            LOG.warning("refresh from etcd failed: %s", exc)

    # --- switches -----------------------------------------------------------------------
    def switch_ready(self, session):
        """Ports read; may this controller reconcile the switch?  Sends the role."""
        self.started[session.dpid] = session
        if self.election is None:
            return True
        return self._claim(session, self.election.is_leader)

    def _claim(self, session, master, direct=False):
        """direct: claim MASTER with our generation at once (a takeover: our
        term's generation is larger than any earlier term's, so the bridge
        normally accepts it -- one round trip less before the first
        reconcile); only if the bridge refuses it as stale ask its generation
        (NOCHANGE) and move ours past it."""
        try:
            if master and direct:
                gen = self.election.generation
                try:
                    session.role("master", gen)
                    LOG.info("dpid %016x: MASTER with generation %d", session.dpid, gen)
                    return self.election.is_leader
                except Exception as exc:      # stale (11/0): the slow path below
                    LOG.info("dpid %016x: direct MASTER claim refused (%s)", session.dpid, exc)
            bridge_gen = session.role("nochange")
            if not master:
                session.role("slave", bridge_gen)
                return False
            gen = self.election.generation
            if bridge_gen != NO_GENERATION and _gen_ahead(bridge_gen, gen):
                if not self.election.bump_generation(bridge_gen):
                    return False
                gen = self.election.generation
            session.role("master", gen)
            LOG.info("dpid %016x: MASTER with generation %d", session.dpid, gen)
            return self.election.is_leader
        except Exception as exc:
            LOG.warning("dpid %016x: role request failed: %s", session.dpid, exc)
            return False

    def _changed(self, leader):
        sw = self.switches
        if leader:
            for dpid, session in list(self.started.items()):
                if sw.is_current(session) and not sw.syncing(dpid):
                    self.spawn(self._take, session)
        else:
            sw.stop_all_syncs()
            for dpid, session in list(self.started.items()):
                if sw.is_current(session):
                    self.spawn(self._claim, session, False)

    def _take(self, session):
        if self._claim(session, True, direct=True) and self.switches.is_current(session) \
                and not self.switches.syncing(session.dpid):
            self.switches.start_sync(session)


def _gen_ahead(a, b):
    """Is generation a strictly ahead of b, by OpenFlow's wrap-around rule?"""
    return 0 < ((a - b) & 0xFFFF_FFFF_FFFF_FFFF) < (1 << 63)
