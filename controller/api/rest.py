"""REST API v1 over webob, routed with `routes` (os-ken already depends on it).

The WSGI app is independent of os-ken: the app serves it with eventlet's WSGI
server, unit tests call it directly with webob requests.  What it serves is
the table in routes.py (the same table openapi.py describes); this module only
turns a request into a handler call and the result into a reply.  Every error
leaves as {"error": {"code", "message"}} with a 4xx status; an unexpected
exception becomes a 500 with the same shape (and a log line with the
traceback).
"""
import json
import logging

import webob
import webob.dec
from routes import Mapper

from controller.api.body import parse_json
from controller.api.openapi import document as openapi_document
from controller.api.routes import ROUTES
from controller.service.errors import ApiError

LOG = logging.getLogger(__name__)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class RestApi:
    """The routes of routes.ROUTES -> service calls.  `topology_json` and `health`
    are the app's (the service knows neither switches nor the graph)."""

    def __init__(self, service, topology_json=None, health=None):
        self.service = service
        self.topology_json = topology_json or (lambda: {})
        self.health = health or (lambda: {"status": "ok"})
        self.mapper = Mapper()
        self.routes = {}     # "METHOD path" -> Route (the mapper keeps only strings)
        for route in ROUTES:
            self._target(route)           # a handler the table names must exist: fail now
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

    @webob.dec.wsgify
    def __call__(self, req):
        headers = {}
        try:
            status, body = self._dispatch(req)
        except ApiError as exc:
            status, body = exc.status, exc.body()
            headers = getattr(exc, "headers", {})
        except Exception:
            LOG.exception("REST %s %s failed", req.method, req.path)
            status, body = 500, {"error": {"code": "internal",
                                           "message": "internal error; see the controller log"}}
        if status == 204:
            return webob.Response(status=204)
        resp = webob.Response(status=status, content_type="application/json", charset="utf-8")
        resp.text = json.dumps(body, indent=1 if isinstance(body, list) else None) + "\n"
        resp.headers.update(headers)
        return resp

    def _dispatch(self, req):
        match = self.mapper.match(environ=req.environ)
        if match is None:
            if self.mapper.match(req.path_info) is not None:
                exc = ApiError(405, "method_not_allowed",
                               f"{req.method} is not allowed on {req.path_info}")
                exc.headers = {"Allow": ", ".join(  # RFC 9110: a 405 says what is allowed
                    m for m in METHODS
                    if self.mapper.match(environ=dict(req.environ, REQUEST_METHOD=m)))}
                raise exc
            raise ApiError(404, "not_found", f"no such resource: {req.path_info}")
        route = self.routes[match["api_route"]]
        args = [match[name] for name in route.params]
        if route.body is not None:
            args.append(parse_json(req))
        return route.status, self._target(route)(*args)
