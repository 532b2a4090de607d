"""JSON-over-HTTP on a unix socket: the transport of Docker's plugin protocol
(and of the CNI plugin's requests to the agent).

A ``Router`` maps a path ("/NetworkDriver.Join") to a handler: a function of
the parsed JSON body returning a dict.  The router, not the handler, owns the
protocol's rules that dockerd's quirks make important:

* always answer JSON, with HTTP 200 for a refused request: dockerd shows the
  error sentence of a 200 reply; of a non-200 reply it shows the raw body;
* the error key differs per protocol: the network driver reads ``Err``, the
  IPAM driver ``Error`` (with ``Err`` Docker prints "invalid CIDR address:"),
  so each route names its own;
* an empty body where arguments are required is an error with a sentence
  (dockerd retries a dropped connection with an empty body), never a crash
  and never a dropped connection; methods without arguments (Activate,
  GetCapabilities...) accept an empty body, as dockerd sends them;
* an unknown method is a 404 with a JSON body (dockerd then treats the
  capability as absent);
* a stale socket from a killed agent is removed at start.

``dispatch(path, raw)`` is usable without HTTP, so the CNI socket server and
unit tests share it.
"""
import json
import logging
import os
import socketserver
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler

log = logging.getLogger("vpcagent")

MAX_BODY = 1 << 20
CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json"


class ProtocolError(Exception):
    """A refused request: the message is the sentence the user sees."""


class Route:
    def __init__(self, fn, needs_body=True, err_key="Err", summary=None):
        self.fn = fn
        self.needs_body = needs_body
        self.err_key = err_key
        self.summary = summary or (lambda body, reply: "")


class Router:
    def __init__(self):
        self.routes = {}

    def add(self, path, fn, needs_body=True, err_key="Err", summary=None):
        self.routes[path] = Route(fn, needs_body, err_key, summary)

    def dispatch(self, path, raw):
        """(status, reply dict) for a request body ``raw`` (bytes) at ``path``.
        Never raises; logs one line."""
        start = time.monotonic()
        route = self.routes.get(path)
        if route is None:
            log.info("%s -> 404 unknown method", path)
            return 404, {"Err": f"unknown method {path}", "Error": f"unknown method {path}"}
        body = {}
        try:
            text = (raw or b"").strip()
            if text:
                try:
                    body = json.loads(text)
                except ValueError as e:
                    raise ProtocolError(f"the request body is not JSON ({e.msg} at "
                                        f"position {e.pos})") from None
                if body is None:
                    body = {}
                if not isinstance(body, dict):
                    raise ProtocolError(f"the request body must be a JSON object, not "
                                        f"{type(body).__name__}")
            elif route.needs_body:
                raise ProtocolError(f"{path.lstrip('/')}: empty request body (a retried "
                                    f"request after a dropped connection?); nothing was done")
            reply = route.fn(body) or {}
        except ProtocolError as e:
            log.info("%s %s -> refused: %s (%.0f ms)", path, _ids(body), e,
                     (time.monotonic() - start) * 1000)
            return 200, {route.err_key: str(e)}
        except Exception as e:                                   # noqa: BLE001
            log.error("%s %s -> internal error: %s\n%s", path, _ids(body), e,
                      traceback.format_exc())
            return 200, {route.err_key: f"vpc-agent internal error in {path.lstrip('/')}: "
                                        f"{type(e).__name__}: {e}"}
        extra = route.summary(body, reply)
        log.info("%s %s -> ok%s (%.0f ms)", path, _ids(body), f" {extra}" if extra else "",
                 (time.monotonic() - start) * 1000)
        return 200, reply


def _ids(body):
    """The short ids of a request, for the log line."""
    if not isinstance(body, dict):
        return ""
    parts = []
    for key in ("NetworkID", "EndpointID"):
        v = body.get(key)
        if isinstance(v, str) and v:
            parts.append(f"{key[:-2].lower()}={v[:12]}")
    for key in ("PoolID", "Pool", "Address"):
        v = body.get(key)
        if isinstance(v, str) and v:
            parts.append(f"{key.lower()}={v[:64]}")
    return " ".join(parts)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "vpc-agent"

    def log_message(self, fmt, *args):       # the router logs one line per request
        pass

    def _reply(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            self._reply(200, {"Err": "bad Content-Length", "Error": "bad Content-Length"})
            return
        raw = self.rfile.read(length) if length else b""
        status, obj = self.server.router.dispatch(self.path, raw)
        self._reply(status, obj)

    do_GET = do_POST
    do_PUT = do_POST

    def address_string(self):
        return "unix"


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, path, router):
        self.router = router
        remove_stale_socket(path)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        super().__init__(path, _Handler)
        os.chmod(path, 0o660)


def remove_stale_socket(path):
    """A socket file left by a killed agent would make bind() fail; a regular
    file or directory of that name is not ours to remove."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    import stat
    if not stat.S_ISSOCK(st.st_mode):
        raise OSError(f"{path} exists and is not a socket; not removing it")
    os.unlink(path)


def serve(path, router):
    """Start serving ``router`` at unix socket ``path`` in a thread; returns
    the server (``.shutdown()``, ``.server_close()``)."""
    srv = UnixHTTPServer(path, router)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2},
                         name=f"serve {os.path.basename(path)}", daemon=True)
    t.start()
    srv.thread = t
    return srv


def stop(srv):
    srv.shutdown()
    srv.server_close()
    try:
        os.unlink(srv.server_address)
    except OSError:
        pass
