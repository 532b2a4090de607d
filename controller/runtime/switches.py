"""The connected switches and their reconcilers, behind one narrow interface.

Why: leader election (controller/ha/roles.py), the fabric's LLDP and two-phase
updates (controller/runtime/fabric.py) and the gateway ARP loop all need to
know "which switches are connected now", "is this session still the current
one" and "recompile that switch".  They used to reach into the app's private
dicts; now they share this registry and the app is the only one that creates
sessions and reconcilers (through `sync_factory`).
"""


class Switches:
    def __init__(self, sync_factory=None):
        self.sessions = {}     # dpid -> southbound session of the current connection
        self.syncs = {}        # dpid -> SwitchSync, only while this controller reconciles it
        self.sync_factory = sync_factory    # session -> SwitchSync (set by the app)

    # --- connections ----------------------------------------------------------------
    def connected(self, dpid):
        return dpid in self.sessions

    def session(self, dpid):
        return self.sessions.get(dpid)

    def items(self):
        """[(dpid, session)] of every connected switch, a copy safe to iterate."""
        return list(self.sessions.items())

    def count(self):
        return len(self.sessions)

    def is_current(self, session):
        """Is this session still its switch's connection (not replaced, not gone)?"""
        return self.sessions.get(session.dpid) is session

    def connect(self, session):
        """A switch (re)connected: its old reconciler, if any, stops."""
        self.stop_sync(session.dpid)
        self.sessions[session.dpid] = session

    def disconnect(self, dpid, dp=None):
        """The switch left; returns its session, or None when `dp` is not the
        current connection's datapath (a stale event of an old connection)."""
        session = self.sessions.get(dpid)
        if session is None or (dp is not None and session.dp is not dp):
            return None
        del self.sessions[dpid]
        self.stop_sync(dpid)
        return session

    # --- reconcilers ----------------------------------------------------------------
    def syncing(self, dpid):
        return dpid in self.syncs

    def sync(self, dpid):
        return self.syncs.get(dpid)

    def synced_dpids(self):
        return list(self.syncs)

    def start_sync(self, session):
        """Begin reconciling a connected switch (once per session)."""
        old = self.syncs.get(session.dpid)
        if old is not None and old.session is session:
            return old
        sync = self.syncs[session.dpid] = self.sync_factory(session)
        sync.request(full=True)
        return sync

    def stop_sync(self, dpid):
        sync = self.syncs.pop(dpid, None)
        if sync is not None:
            sync.stop()

    def stop_all_syncs(self):
        for dpid in list(self.syncs):
            self.stop_sync(dpid)

    def request(self, dpid):
        """Recompile and reconcile one switch, if this controller reconciles it."""
        sync = self.syncs.get(dpid)
        if sync is not None:
            sync.request()
        return sync is not None
