"""Authentication: who is calling.  `Authorization: Bearer <token>` -> a Principal.

Why here and like this (docs/security.md has the threat model):
  - one admin token, from VPC_ADMIN_TOKEN or a file (made on first start,
    mode 0600, its path logged once), compared by digest with
    hmac.compare_digest: constant time, whatever the length presented;
  - tenant and host tokens are model records checked by
    controller/service/tokens.verify (only their hashes are stored);
  - failed attempts are rate-limited per client address with a token bucket:
    after BURST failures an address gets 429 + Retry-After -- for every
    request, valid token or not, or a guesser could tell a hit from a miss --
    until the bucket refills (REFILL per second).  Behind a proxy the proxy's
    address is the client: put the limit there too.

What a principal may do is controller/api/policy.py's business, not this module's.
"""
import hashlib
import hmac
import logging
import math
import os
import secrets
import time
from dataclasses import dataclass

from controller.service import tokens
from controller.service.errors import ApiError

LOG = logging.getLogger(__name__)
BURST = 20              # failures an address may make in a row
REFILL = 1.0            # failures forgiven per second
MAX_ADDRESSES = 10_000  # buckets kept; full ones are dropped first


@dataclass(frozen=True)
class Principal:
    kind: str               # admin | tenant | host | local (authentication off)
    scope: str = None       # the tenant's or host's name
    id: str = None          # the token's public id
    networks: bool = False  # host tokens: may also create tenants/subnets, publish ports

    @property
    def all_powerful(self):
        return self.kind in ("admin", "local")

    def __str__(self):
        if self.kind in ("admin", "local"):
            return self.kind
        return f"{self.kind} token {self.id} ({self.scope})"


LOCAL = Principal("local")      # authentication off: loopback only, everything allowed


def unauthorized(message, invalid=False):
    exc = ApiError(401, "unauthorized", message)
    challenge = 'Bearer realm="vpc-controller"'
    if invalid:
        challenge += ', error="invalid_token"'
    exc.headers = {"WWW-Authenticate": challenge}
    return exc


class FailureLimiter:
    """A token bucket of failed authentications per client address."""

    def __init__(self, burst=BURST, refill=REFILL, clock=time.monotonic):
        self.burst, self.refill, self.clock = burst, refill, clock
        self.buckets = {}       # address -> (tokens left, when counted)

    def _level(self, addr):
        left, then = self.buckets.get(addr, (self.burst, self.clock()))
        return min(self.burst, left + (self.clock() - then) * self.refill)

    def check(self, addr):
        """Raise 429 while `addr` has no failure left to spend."""
        left = self._level(addr)
        if left < 1:
            wait = max(1, math.ceil((1 - left) / self.refill))
            exc = ApiError(429, "rate_limited", f"too many failed authentications from "
                                                f"{addr}; retry in {wait} s")
            exc.headers = {"Retry-After": str(wait)}
            raise exc

    def failed(self, addr):
        if len(self.buckets) >= MAX_ADDRESSES:
            self.buckets = {a: b for a, b in self.buckets.items() if self._level(a) < self.burst}
            if len(self.buckets) >= MAX_ADDRESSES:       # all busy: forget the oldest half
                keep = sorted(self.buckets.items(), key=lambda kv: kv[1][1])
                self.buckets = dict(keep[len(keep) // 2:])
        self.buckets[addr] = (self._level(addr) - 1, self.clock())


class Authenticator:
    """Bearer token -> Principal, or ApiError 401/429."""

    def __init__(self, state, admin_token, clock=time.time, limiter=None):
        self.state = state                  # the live State: tokens made later count at once
        self._admin = _digest(admin_token)
        self.clock = clock
        self.limiter = limiter or FailureLimiter()

    def authenticate(self, environ):
        addr = environ.get("REMOTE_ADDR") or "unknown"
        self.limiter.check(addr)
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, presented = header.strip().partition(" ")
        if not header:
            self.limiter.failed(addr)
            raise unauthorized("this controller wants a token: send Authorization: Bearer "
                               "<token> (vpcctl --token-file FILE, or VPC_TOKEN)")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented:
            self.limiter.failed(addr)
            raise unauthorized("send the token as Authorization: Bearer <token>", invalid=True)
        if hmac.compare_digest(_digest(presented), self._admin):
            return Principal("admin")
        tok = tokens.verify(self.state, presented, self.clock())
        if tok is None:
            self.limiter.failed(addr)
            LOG.warning("authentication failed from %s", addr)
            raise unauthorized("the token is unknown, revoked or expired", invalid=True)
        return Principal(tok.kind, tok.scope, tok.id, tok.networks)


def _digest(text):
    return hashlib.sha256(text.encode()).digest()


def admin_token(config):
    """The admin token: VPC_ADMIN_TOKEN, else the file VPC_ADMIN_TOKEN_FILE
    (default <VPC_STATE>/admin.token), made there (mode 0600) when missing.
    One log line says where to read it; the token itself is never logged."""
    if config.admin_token:
        LOG.info("authentication on: the admin token is the one in VPC_ADMIN_TOKEN")
        return config.admin_token
    path = config.admin_token_file
    try:
        with open(path) as f:
            token = f.read().strip()
        if not token:
            raise ValueError(f"the admin token file {path} is empty")
        LOG.info("authentication on: admin token read from %s", path)
        return token
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    token = "vpc_a_" + secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    LOG.warning("authentication on: made a new admin token; read it from %s "
                "(e.g. vpcctl --token-file %s ...)", path, path)
    return token
