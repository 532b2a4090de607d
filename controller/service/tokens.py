"""API tokens: make, list and revoke them; check a presented one.

Why this shape (AWS access keys, Kubernetes service-account tokens, Keystone
application credentials are the references):
  - a token is ``vpc_<t|h>_<id>_<secret>``: the id is public (listed, named in
    the audit log, used to revoke), the secret is 32 random bytes shown once in
    the reply that makes it;
  - the store keeps only sha256(secret): a leaked state directory or etcd
    keyspace gives no usable token;
  - a check compares digests with hmac.compare_digest, and compares against a
    dummy digest when the id is unknown, so timing tells nothing about ids or
    secrets;
  - tokens are model records (kind "tokens"), so msgpack and etcd both carry
    them and every controller of an etcd cluster accepts the same ones.

A tenant token dies with its tenant (a tenant made again under the old name
is a new tenant).  A host token is bound to a host *name*, not to a record:
it is made before the host joins (host-join needs it to register), and it
survives DELETE /v1/hosts/{name} so the host can join again.

A mixin of VpcService (like NatOperations): the handlers the route table names.
"""
import hashlib
import hmac
import re
import secrets
import time
from datetime import datetime, timezone

from controller.model.state import Token, record
from controller.service import validate as v
from controller.service.errors import bad_request, conflict, not_found
from controller.service.mutator import mutator

PREFIX = {"tenant": "vpc_t_", "host": "vpc_h_"}
TOKEN_RE = re.compile(r"^vpc_([th])_([0-9a-f]{12})_([0-9a-f]{64})$")
MAX_LIFETIME = 10 * 365 * 86400          # ten years: longer is "never" (omit it)
MAX_PER_SCOPE = 64                       # tokens per tenant or host: bounds the store
_DUMMY = hashlib.sha256(b"no such token").hexdigest()


def digest(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(text):
    """(kind, id, secret) of a well-formed token string, else None."""
    m = TOKEN_RE.match(text or "")
    if m is None:
        return None
    return ("tenant" if m.group(1) == "t" else "host"), m.group(2), m.group(3)


def verify(state, text, now):
    """The Token record `text` proves, or None (unknown, wrong secret, expired).
    Constant time in the secret; the same work whether the id exists or not."""
    parsed = parse(text)
    kind, tid, secret = parsed if parsed else ("", "", "")
    tok = state.tokens.get(tid) if parsed else None
    ok = hmac.compare_digest(digest(secret), tok.hash if tok else _DUMMY)
    if not ok or tok is None or tok.kind != kind:
        return None
    if tok.expires_at is not None and now >= tok.expires_at:
        return None
    return tok


def iso(ts):
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def _expiry(body, now):
    """expires_in (seconds from now) or expires_at (RFC 3339 / ISO 8601 UTC), or None."""
    if body.get("expires_in") is not None and body.get("expires_at") is not None:
        raise bad_request("give expires_in or expires_at, not both")
    if body.get("expires_in") is not None:
        return now + v.integer(body["expires_in"], "expires_in (seconds)", 1, MAX_LIFETIME)
    at = body.get("expires_at")
    if at is None:
        return None
    if not isinstance(at, str):
        raise bad_request(f"expires_at must be a date-time string like "
                          f"2027-01-31T00:00:00Z; got {at!r}")
    try:
        when = datetime.fromisoformat(at.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise bad_request(f"expires_at is not an ISO 8601 date-time: {at!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    ts = when.timestamp()
    if not now < ts <= now + MAX_LIFETIME:
        raise bad_request(f"expires_at {at} must be in the future and within ten years")
    return ts


class TokenOperations:
    clock = staticmethod(time.time)

    def token_view(self, t):
        view = {"id": t.id, "kind": t.kind, "name": t.name, t.kind: t.scope,
                "created_at": iso(t.created_at), "expires_at": iso(t.expires_at),
                "expired": t.expires_at is not None and self.clock() >= t.expires_at}
        if t.kind == "host":
            view["networks"] = t.networks
        return view

    def _make_token(self, kind, scope, body, optional):
        v.body_fields(body, required=("name",), optional=optional)
        name = v.name(body["name"], "token name")
        networks = v.boolean(body.get("networks", False), "networks")
        now = self.clock()
        expires = _expiry(body, now)
        with self.lock:
            if kind == "tenant":
                self._tenant(scope)
            mine = self.state.tokens_of(kind, scope)
            if any(t.name == name for t in mine):
                raise conflict(f"{kind} {scope!r} already has a token named {name!r}",
                               code="duplicate")
            if len(mine) >= MAX_PER_SCOPE:
                raise conflict(f"{kind} {scope!r} has {MAX_PER_SCOPE} tokens; revoke some "
                               f"first", code="exhausted")
            tid = secrets.token_hex(6)
            while tid in self.state.tokens:
                tid = secrets.token_hex(6)
            secret = secrets.token_hex(32)
            tok = Token(tid, kind, scope, name, digest(secret), now, expires, networks)
            self._commit([("put", "tokens", tid, record(tok))], ())
            return dict(self.token_view(tok), token=PREFIX[kind] + tid + "_" + secret)

    def _token(self, kind, scope, token_id):
        t = self.state.tokens.get(token_id)
        if t is None or t.kind != kind or t.scope != scope:
            raise not_found(f"{kind} {scope!r} has no token {token_id!r}")
        return t

    # --- tenant tokens ---------------------------------------------------------
    @mutator
    def create_tenant_token(self, tenant, body):
        return self._make_token("tenant", tenant, body, ("expires_in", "expires_at"))

    def list_tenant_tokens(self, tenant):
        self._tenant(tenant)
        return [self.token_view(t) for t in self.state.tokens_of("tenant", tenant)]

    @mutator
    def delete_tenant_token(self, tenant, token_id):
        with self.lock:
            self._tenant(tenant)
            self._commit([("del", "tokens", self._token("tenant", tenant, token_id).id)], ())

    # --- host tokens (the host need not be registered yet) ------------------------
    @mutator
    def create_host_token(self, host, body):
        v.name(host, "host name")
        return self._make_token("host", host, body, ("expires_in", "expires_at", "networks"))

    def list_host_tokens(self, host):
        return [self.token_view(t) for t in self.state.tokens_of("host", host)]

    @mutator
    def delete_host_token(self, host, token_id):
        with self.lock:
            self._commit([("del", "tokens", self._token("host", host, token_id).id)], ())

    def tenant_token_ops(self, tenant):
        """Ops deleting a tenant's tokens: they go with the tenant."""
        return [("del", "tokens", t.id) for t in self.state.tokens_of("tenant", tenant)]
