"""REST API v1 over webob, routed with `routes` (os-ken already depends on it).

The WSGI app is independent of os-ken: the app serves it with eventlet's WSGI
server, unit tests call it directly with webob requests.  Every error leaves
as {"error": {"code", "message"}} with a 4xx status; an unexpected exception
becomes a 500 with the same shape (and a log line with the traceback).
"""
import json
import logging

import webob
import webob.dec
import webob.exc
from routes import Mapper

from controller.service.errors import ApiError, bad_request
from controller.api.openapi import document as openapi_document

LOG = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024
MAX_DEPTH = 32


def _depth(value, level=0):
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max([_depth(v, level + 1) for v in value.values()] or [level + 1])
    if isinstance(value, list):
        return max([_depth(v, level + 1) for v in value] or [level + 1])
    return level


def parse_json(req):
    ctype = (req.content_type or "").split(";")[0].strip().lower()
    if ctype not in ("", "application/json"):
        raise ApiError(415, "unsupported_media_type",
                       f"send JSON with Content-Type: application/json (got {ctype!r}; "
                       f"with curl use --json or -H 'Content-Type: application/json')")
    if req.content_length is not None and req.content_length > MAX_BODY:
        raise ApiError(413, "too_large", f"request body over {MAX_BODY} bytes")
    raw = req.body_file.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise ApiError(413, "too_large", f"request body over {MAX_BODY} bytes")
    if not raw.strip():
        raise bad_request("the request needs a JSON body", code="bad_json")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_request(f"the body is not valid JSON: {exc}", code="bad_json") from None
    if _depth(body) > MAX_DEPTH:
        raise bad_request("the JSON body is nested too deeply", code="bad_json")
    return body


class RestApi:
    """Routes -> service calls.  `extra` routes let the app add e.g. /v1/topology."""

    def __init__(self, service, topology_json=None, health=None):
        self.service = service
        self.topology_json = topology_json or (lambda: {})
        self.health = health or (lambda: {"status": "ok"})
        self.mapper = Mapper()
        s = service
        r = self._route
        r("GET", "/v1/health", lambda req: (200, self.health()))
        r("GET", "/v1/topology", lambda req: (200, self.topology_json()))
        r("GET", "/v1/openapi.json", lambda req: (200, openapi_document()))
        r("GET", "/v1/hosts", lambda req: (200, s.list_hosts()))
        r("POST", "/v1/hosts", lambda req: (201, s.create_host(parse_json(req))))
        r("GET", "/v1/hosts/{name}", lambda req, name: (200, s.get_host(name)))
        r("DELETE", "/v1/hosts/{name}", lambda req, name: (204, s.delete_host(name)))
        r("GET", "/v1/tenants", lambda req: (200, s.list_tenants()))
        r("POST", "/v1/tenants", lambda req: (201, s.create_tenant(parse_json(req))))
        r("GET", "/v1/tenants/{t}", lambda req, t: (200, s.get_tenant(t)))
        r("DELETE", "/v1/tenants/{t}", lambda req, t: (204, s.delete_tenant(t)))
        r("GET", "/v1/tenants/{t}/subnets", lambda req, t: (200, s.list_subnets(t)))
        r("POST", "/v1/tenants/{t}/subnets",
          lambda req, t: (201, s.create_subnet(t, parse_json(req))))
        r("GET", "/v1/tenants/{t}/subnets/{c}", lambda req, t, c: (200, s.get_subnet(t, c)))
        r("DELETE", "/v1/tenants/{t}/subnets/{c}",
          lambda req, t, c: (204, s.delete_subnet(t, c)))
        r("GET", "/v1/tenants/{t}/ports", lambda req, t: (200, s.list_ports(t)))
        r("POST", "/v1/tenants/{t}/ports",
          lambda req, t: (201, s.create_port(t, parse_json(req))))
        r("GET", "/v1/tenants/{t}/ports/{pid}", lambda req, t, pid: (200, s.get_port(t, pid)))
        r("DELETE", "/v1/tenants/{t}/ports/{pid}",
          lambda req, t, pid: (204, s.delete_port(t, pid)))

        r("PUT", "/v1/tenants/{t}/snat", lambda req, t: (200, s.set_snat(t, parse_json(req))))
        for coll, create, get, lst, delete in (
                ("port-forwards", s.create_forward, s.get_forward, s.list_forwards,
                 s.delete_forward),
                ("floating-ips", s.create_fip, s.get_fip, s.list_fips, s.delete_fip)):
            base = "/v1/tenants/{t}/" + coll
            r("GET", base, lambda req, t, lst=lst: (200, lst(t)))
            r("POST", base, lambda req, t, create=create: (201, create(t, parse_json(req))))
            r("GET", base + "/{i}", lambda req, t, i, get=get: (200, get(t, i)))
            r("DELETE", base + "/{i}", lambda req, t, i, delete=delete: (204, delete(t, i)))

        r("PATCH", "/v1/tenants/{t}/ports/{pid}",
          lambda req, t, pid: (200, s.update_port(t, pid, parse_json(req))))
        sg = "/v1/tenants/{t}/security-groups"
        r("GET", sg, lambda req, t: (200, s.list_groups(t)))
        r("POST", sg, lambda req, t: (201, s.create_group(t, parse_json(req))))
        r("GET", sg + "/{g}", lambda req, t, g: (200, s.get_group(t, g)))
        r("PUT", sg + "/{g}", lambda req, t, g: (200, s.replace_rules(t, g, parse_json(req))))
        r("DELETE", sg + "/{g}", lambda req, t, g: (204, s.delete_group(t, g)))
        r("POST", sg + "/{g}/rules", lambda req, t, g: (201, s.add_rule(t, g, parse_json(req))))
        r("DELETE", sg + "/{g}/rules/{rid}",
          lambda req, t, g, rid: (204, s.delete_rule(t, g, rid)))

    def _route(self, method, path, handler):
        self.mapper.connect(None, path, handler=handler, conditions={"method": [method]})

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
                    m for m in ("GET", "POST", "PUT", "PATCH", "DELETE")
                    if self.mapper.match(environ=dict(req.environ, REQUEST_METHOD=m)))}
                raise exc
            raise ApiError(404, "not_found", f"no such resource: {req.path_info}")
        handler = match.pop("handler")
        return handler(req, **match)
