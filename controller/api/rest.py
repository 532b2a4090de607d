"""REST API v1 over webob, routed with `routes` (os-ken already depends on it).

The WSGI app is independent of os-ken: the app serves it with eventlet's WSGI
server, unit tests call it directly with webob requests.  What it serves is
the table in routes.py (the same table openapi.py describes); this module only
turns a request into a handler call and the result into a reply.  Every error
leaves as {"error": {"code", "message"}} with a 4xx status, a store fault
as 503 with Retry-After (controller/service/mutator.py); an unexpected
exception becomes a 500 with the same shape (and a log line with the
traceback).

With an Authenticator (`auth`, authentication on) every request but the
`open` routes first shows a token (controller/api/auth.py: 401/429), then the
route's `access` is checked against it (controller/api/policy.py: 403/404),
both before the body reaches the service, and every accepted change is
logged with who made it (logger controller.api.audit: INFO with
authentication on, DEBUG without).  Without one, everything is allowed, as
before authentication existed: the app allows that on loopback only
(controller/config.py).
"""
import json
import logging

import webob
import webob.dec
from routes import Mapper

from controller.api.auth import LOCAL
from controller.api.body import parse_json
from controller.api.openapi import document as openapi_document
from controller.api.policy import authorize
from controller.api.routes import ACCESS, ROUTES
from controller.service.errors import ApiError, unavailable
from controller.store.base import StoreError

LOG = logging.getLogger(__name__)
AUDIT = logging.getLogger("controller.api.audit")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class RestApi:
    """The routes of routes.ROUTES -> service calls.  `topology_json` and `health`
    are the app's (the service knows neither switches nor the graph)."""

    def __init__(self, service, topology_json=None, health=None, auth=None):
        self.service = service
        self.auth = auth
        self.topology_json = topology_json or (lambda: {})
        self.health = health or (lambda: {"status": "ok"})
        self.mapper = Mapper()
        self.routes = {}     # "METHOD path" -> Route (the mapper keeps only strings)
        for route in ROUTES:
            self._target(route)           # a handler the table names must exist: fail now
            if route.access not in ACCESS:
                raise TypeError(f"{route.method} {route.path}: access {route.access!r} "
                                f"is not one of {ACCESS}")
            key = f"{route.method} {route.path}"
            self.routes[key] = route
            self.mapper.connect(None, route.path, api_route=key,
                                conditions={"method": [route.method]})

    def openapi(self):
        return openapi_document()

    def route_of(self, environ):
        """The `route` label of /metrics for a request: its route's template
        (also for a 405: the path matched), None when no route matches."""
        found = self.mapper.routematch(environ=environ) or self.mapper.routematch(
            environ.get("PATH_INFO", ""))
        return self.routes[found[0]["api_route"]].metric_route if found else None

    def _target(self, route):
        """The callable of a route, looked up per request: the app (and tests)
        may replace `health` or `topology_json` after construction."""
        owner, _, name = route.handler.rpartition(".")
        fn = getattr(self if owner == "app" else self.service, name, None)
        if not callable(fn):
            raise TypeError(f"{route.method} {route.path}: no handler {route.handler!r}")
        return fn

    def metrics_guard(self, environ):
        """None when this request may read /metrics (the admin's, with
        authentication on), else the error reply to send instead."""
        if self.auth is None:
            return None
        try:
            if self.auth.authenticate(environ).all_powerful:
                return None
            exc = ApiError(403, "forbidden", "/metrics is the admin token's")
        except ApiError as e:
            exc = e
        return _reply(exc.status, exc.body(), getattr(exc, "headers", {}))

    @webob.dec.wsgify
    def __call__(self, req):
        headers = {}
        try:
            status, body = self._dispatch(req)
        except ApiError as exc:
            status, body = exc.status, exc.body()
            headers = getattr(exc, "headers", {})
        except StoreError as exc:     # a store fault outside a @mutator: still no 500
            LOG.warning("REST %s %s: store: %s", req.method, req.path, exc)
            exc = unavailable(f"the store is unavailable ({exc}); try again",
                              getattr(self.service.store, "retry_after", 2))
            status, body, headers = exc.status, exc.body(), exc.headers
        except Exception:
            LOG.exception("REST %s %s failed", req.method, req.path)
            status, body = 500, {"error": {"code": "internal",
                                           "message": "internal error; see the controller log"}}
        return _reply(status, body, headers)

    def _dispatch(self, req):
        match = self.mapper.match(environ=req.environ)
        route = self.routes[match["api_route"]] if match else None
        principal = LOCAL
        if self.auth is not None and (route is None or route.access != "open"):
            # before 404/405 too: without a token, nothing about the API shows
            principal = self.auth.authenticate(req.environ)
        if route is None:
            self._unmatched(req)
        params = {name: match[name] for name in route.params}
        args = list(params.values())
        body = None
        if route.body is not None:
            body = parse_json(req)
            args.append(body)
        keep = authorize(principal, route, params, body, self.service.state)
        query = {name: req.GET.get(name) for name, _, _ in route.query}
        result = self._target(route)(*args, **query)
        if route.writes:
            self._audit(principal, req, route, result)
        return route.status, keep(result) if keep else result

    def _audit(self, principal, req, route, result):
        """One line per accepted change: who, what, which object."""
        what = (result.get("id") or result.get("name")) if isinstance(result, dict) else None
        AUDIT.log(logging.DEBUG if principal is LOCAL else logging.INFO,
                  "%s %s by %s from %s: %d%s", req.method, req.path_info, principal,
                  req.environ.get("REMOTE_ADDR", "?"), route.status,
                  f" ({what})" if what else "")

    def _unmatched(self, req):
        if self.mapper.match(req.path_info) is not None:
            exc = ApiError(405, "method_not_allowed",
                           f"{req.method} is not allowed on {req.path_info}")
            exc.headers = {"Allow": ", ".join(  # RFC 9110: a 405 says what is allowed
                m for m in METHODS
                if self.mapper.match(environ=dict(req.environ, REQUEST_METHOD=m)))}
            raise exc
        raise ApiError(404, "not_found", f"no such resource: {req.path_info}")


def _reply(status, body, headers):
    if status == 204:
        return webob.Response(status=204)
    resp = webob.Response(status=status, content_type="application/json", charset="utf-8")
    resp.text = json.dumps(body, indent=1 if isinstance(body, list) else None) + "\n"
    resp.headers.update(headers)
    return resp
