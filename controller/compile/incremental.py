"""Incremental compile: a model change recompiles only the pieces it touches,
and the result is the flow delta since the previous compile.

Why: compiling a host's whole flow set (thousands of flows at 50 ports and 10
tenants) to send the few dozen flow-mods one attach needs made every POST cost
O(flows of every host of the tenant), so attach latency grew with the lab.

How: datapath.host_chunks() cuts a host's flows into pieces (per local port,
per tenant, the external port's) and names, with each piece, every input it is
computed from (its key).  Per datapath we keep each piece's key and flows; a
compile recomputes only the pieces whose key changed and turns the old and new
flows of those pieces into the delta.  The keys are the model records
themselves (immutable, replaced by State.apply on change), so deciding that a
piece is unchanged is mostly comparing identities: correct by construction,
with no list of "what an operation touches" to keep in step with the service.

Pieces that read only a tenant and its ports (ARP answers, the router, the
security-group rules: most of a tenant's flows) are the same on each of the
tenant's hosts: they are built once and shared, as the same Flow objects,
which the southbound also encodes once (southbound/flowmod.py).

The full compile (datapath.compile_datapath) stays the reference:
tests/unit/compile/test_incremental_property.py applies random REST-level
changes and topology events and checks, after every step, that every
datapath's incremental flow set equals a full recompile.  Pure like the rest
of compile/: no I/O, no clock; the caches are plain memoisation.
"""
import itertools
from dataclasses import dataclass, field

from controller.compile.datapath import base_flows, host_chunks
from controller.compile.flows import FlowError
from controller.compile.host import to_remote_port

_generations = itertools.count(1)


@dataclass
class Delta:
    """A host datapath's flows after a compile, and what changed since the
    previous compile of the same datapath by the same compiler.

    desired     {cookie: Flow}, the whole flow set (the compiler's own dict:
                read it, never change it)
    adds        Flows in `desired` that the previous compile did not have
    removes     Flows the previous compile had that are gone
    base        the generation of that previous compile (0: none, so adds
                is everything and nothing can be assumed about the switch)
    generation  this compile's; a reconciler that applied compile `base`
                may apply just adds/removes, anyone else diffs `desired`"""
    desired: dict
    adds: list = field(default_factory=list)
    removes: list = field(default_factory=list)
    base: int = 0
    generation: int = 0
    pieces_built: int = 0      # pieces recompiled (the rest were kept)

    def __len__(self):
        return len(self.desired)

    def __iter__(self):
        return iter(self.desired.values())


class _Datapath:
    """What we know of one datapath's last compile."""

    def __init__(self):
        self.pieces = {}           # slot -> (key, [Flow])
        self.count = {}            # cookie -> pieces holding it
        self.flows = {}            # cookie -> Flow (the desired set)
        self.by_key = {}           # OpenFlow key (table, priority, match) -> cookie
        self.generation = 0
        self.busy = False


class IncrementalCompiler:
    """Compiles host datapaths piece by piece, keeping what did not change.

    One per controller.  `compile(state, topo, dpid)` gives a Delta for a host
    bridge; fabric switches are not compiled here (datapath.compile_datapath:
    they are few and small).  `forget(dpid)` drops a datapath's pieces (it
    left, or an error means nothing about it can be trusted): its next compile
    is a full one (base 0)."""

    def __init__(self):
        self._dps = {}
        self._state = None         # the State the per-state memo below is for
        self._inputs = {}          # tenant name -> its inputs in self._state
        self._shared = {}          # (tenant name, piece) -> (inputs, [Flow])
        self._base = base_flows()
        self._remote = {}          # (port id, egress) -> (records..., Flow)

    def forget(self, dpid=None):
        if dpid is None:
            self._dps.clear()
        else:
            self._dps.pop(dpid, None)

    def known(self, dpid):
        return dpid in self._dps

    # --- memo used by datapath.host_chunks ----------------------------------------
    def tenant_inputs(self, state, tenant):
        """Everything of the model a tenant's shared pieces read, once per
        State: the tenant, its ports, subnets and security groups."""
        if state is not self._state:
            self._state, self._inputs = state, {}
            for slot in [k for k in self._shared if k[0] not in state.tenants]:
                del self._shared[slot]            # a deleted tenant's pieces
        got = self._inputs.get(tenant.name)
        if got is None or got[0] is not tenant:
            got = self._inputs[tenant.name] = (
                tenant, tuple(state.ports_of(tenant.name)), tuple(state.subnets_of(tenant.name, version=None)),
                tuple(state.groups_of(tenant.name)))
        return got

    def shared(self, state, tenant, piece, build):
        """A piece that is the same on every host of the tenant: built once
        for its inputs, the same Flow objects for each host."""
        inputs = self.tenant_inputs(state, tenant)
        slot = (tenant.name, piece)
        got = self._shared.get(slot)
        if got is None or got[0] != inputs:
            got = self._shared[slot] = (inputs, build())
        return got[1]

    def remote_port_flow(self, tenant, port, remote_host, egress):
        """host.to_remote_port, built once per (tenant, port, remote host,
        egress): each of a tenant's hosts sends to a port on another host with
        the same flow when its tunnel (or uplink) port has the same number, as
        it usually has.  Kept while the very same model records come again
        (records are replaced, never changed, when the model changes)."""
        slot = (port.id, egress)
        got = self._remote.get(slot)
        if got is not None and got[0] is tenant and got[1] is port and got[2] is remote_host:
            return got[3]
        if len(self._remote) > self._REMOTE_LIMIT:
            self._remote.clear()         # ports that went: start over
        f = to_remote_port(tenant, port, remote_host, egress)
        self._remote[slot] = (tenant, port, remote_host, f)
        return f

    _REMOTE_LIMIT = 1 << 18

    # --- compiling ---------------------------------------------------------------
    def compile(self, state, topo, dpid, pause=None):
        """The Delta of host datapath `dpid` (None when dpid is no host's).

        `state` must not change once compiled from: a changed model comes as
        another State object (State.snapshot(), which the app passes), since
        what is remembered per State (tenant_inputs) is keyed by identity."""
        host = state.host_by_dpid(dpid)
        if host is None:
            self._dps.pop(dpid, None)
            return None
        dp = self._dps.get(dpid)
        if dp is None or dp.busy:
            # busy: a compile of this datapath is paused midway (an old
            # reconciler of a switch that reconnected): start afresh rather
            # than interleave two compiles on one record
            dp = self._dps[dpid] = _Datapath()
        dp.busy = True
        try:
            return self._compile(dp, state, topo, host, pause)
        except BaseException:
            # half-applied: nothing about this datapath can be trusted any more
            if self._dps.get(dpid) is dp:
                del self._dps[dpid]
            raise
        finally:
            dp.busy = False

    def _compile(self, dp, state, topo, host, pause):
        old_pieces = dp.pieces
        new_pieces = {("base",): (None, self._base)}
        gone, came = [], []
        if ("base",) not in old_pieces:
            came.append(self._base)
        built = 0
        for chunk in host_chunks(state, topo, host, memo=self):
            old = old_pieces.get(chunk.slot)
            if old is not None and old[0] == chunk.key:
                new_pieces[chunk.slot] = old
                continue
            flows = chunk.build()
            built += 1
            new_pieces[chunk.slot] = (chunk.key, flows)
            if old is not None:
                gone.append(old[1])
            came.append(flows)
            if pause is not None:
                pause()
        for slot, old in old_pieces.items():
            if slot not in new_pieces:
                gone.append(old[1])
        dp.pieces = new_pieces
        adds, removes = self._apply(dp, came, gone)
        base, dp.generation = dp.generation, next(_generations)
        return Delta(dp.flows, adds, removes, base, dp.generation, built)

    @staticmethod
    def _apply(dp, came, gone):
        """Count the pieces' flows in and out; a cookie is added when its
        first holder comes and removed when its last goes (two pieces may
        hold the same flow)."""
        count, flows = dp.count, dp.flows
        before = {}
        for piece in came:
            for f in piece:
                c = f.cookie
                n = count.get(c, 0)
                before.setdefault(c, n)
                count[c] = n + 1
                if n == 0 and c not in flows:
                    flows[c] = f
        for piece in gone:
            for f in piece:
                c = f.cookie
                n = count[c]
                before.setdefault(c, n)
                count[c] = n - 1
        adds, removes = [], []
        for c, n in before.items():
            now = count[c]
            if now == 0:
                del count[c]
                f = flows.pop(c)
                if n > 0:
                    removes.append(f)         # else: came and went in this compile
            elif n == 0:
                adds.append(flows[c])
        by_key = dp.by_key
        for f in removes:
            k = f.key
            if by_key.get(k) == f.cookie:
                del by_key[k]
        for f in adds:
            other = by_key.setdefault(f.key, f.cookie)
            if other != f.cookie and flows[other] != f:
                raise FlowError(f"two flows share table/priority/match {f.key}: "
                                f"{flows[other]} vs {f}")
        return adds, removes
