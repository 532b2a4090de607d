"""Fabric switches change their flows in two phases, so no update ever loops.

Switches take their new flows at slightly different moments; between old tree
T1 and new tree T2, a switch still on T1 next to one already on T2 can close a
loop that neither tree has (a square whose two trees each miss a different
side).  So a fabric change is applied in two steps over all fabric switches:
first every switch keeps only the flows that are in both its old and its new
set (each switch's behaviour is a subset of the old one; a mix of old and
reduced switches is a subset of the old loop-free forwarding), and only when
all have done so does every switch get its new set (a mix of reduced and new
switches is a subset of the new forwarding).  Unicast path changes go through
the same two steps, so a unicast frame cannot ping-pong between an old and a
new next hop either.

The compiler stays pure: phase one is a filter the app applies to a fabric
switch's compiled flows (`filter`).  Who triggers an update (LLDP, switches
coming and going, model changes) is controller/runtime/fabric.py.
"""
import logging
import time

import eventlet

LOG = logging.getLogger(__name__)
PHASE_WAIT = 5.0               # per switch, before a phase goes on without it


class TwoPhaseFabric:
    def __init__(self, state, switches, clock=time.monotonic):
        self.state = state
        self.switches = switches       # the registry (controller/runtime/switches.py)
        self.clock = clock
        self.phase1 = False
        self._gen = self._done = 0
        self.busy = False
        self.stats = {"updates": 0, "last_update_ms": None}

    def is_fabric(self, dpid):
        return self.switches.connected(dpid) and self.state.host_by_dpid(dpid) is None

    def fabric_dpids(self):
        return sorted(d for d in self.switches.synced_dpids() if self.is_fabric(d))

    def changed(self):
        """The fabric's flows must change; done in the background, coalesced."""
        self._gen += 1
        self.phase1 = True
        if not self.busy:
            self.busy = True
            eventlet.spawn(self._update)

    def filter(self, dpid, flows):
        """In phase one a fabric switch gets only the flows it already holds
        that it will still hold."""
        if not self.phase1 or not self.is_fabric(dpid):
            return flows
        sync = self.switches.sync(dpid)
        if sync is None or sync.installed is None:
            return flows
        have = set(sync.installed)
        return frozenset(f for f in flows if f.cookie in have)

    def _update(self):
        start = self.clock()
        try:
            while self._done != self._gen:
                gen = self._gen
                self.phase1 = True
                self._reconcile_fabric()
                if gen != self._gen:
                    continue
                self.phase1 = False
                self._reconcile_fabric()
                self._done = gen
        except Exception:
            LOG.exception("fabric update failed")
            self._done = self._gen
        finally:
            self.phase1 = False
            self.busy = False
        ms = (self.clock() - start) * 1000
        self.stats["updates"] += 1
        self.stats["last_update_ms"] = round(ms, 1)
        if self.fabric_dpids():
            LOG.info("fabric flows updated in %.0f ms (two phases, %d fabric switches)",
                     ms, len(self.fabric_dpids()))

    def _reconcile_fabric(self):
        syncs = [s for s in map(self.switches.sync, self.fabric_dpids()) if s is not None]
        for sync in syncs:
            sync.request()
        deadline = time.monotonic() + PHASE_WAIT
        for sync in syncs:
            # a switch that left meanwhile (its sync stopped) is not waited for
            while self.switches.sync(sync.dpid) is sync and not sync.wait_idle(timeout=0):
                if time.monotonic() > deadline:
                    LOG.warning("dpid %016x: fabric update phase still running after %.0f s",
                                sync.dpid, PHASE_WAIT)
                    break
                eventlet.sleep(0.005)
