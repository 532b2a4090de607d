"""The project's one JSON client for REST API v1, on the standard library.

vpcctl's HTTP side, and also what the lab (vpclab/labctl.py `Api`), the demo
(vpclab/demo.py `call`) and the scripts build on: so it imports nothing but
the standard library (no click) and knows nothing about a command line.  Two
ways to use it:
  Client.request   the parsed reply of a 2xx, else one of two exceptions the
                   CLI maps to exit codes:
                     ApiError     the controller answered with an error
                                  (4xx/5xx), carrying the API's own
                                  {"error": {"code", "message"}};
                     Unreachable  no answer at all (refused, unknown host,
                                  timeout);
  Client.call      (status, body) whatever the status, for tests and scripts
                   that assert on it; no answer at all raises OSError as
                   urllib does.
A token (docs/security.md) goes as `Authorization: Bearer`; `token_from`
is how every client finds one: a flag, a file, or VPC_TOKEN / VPC_TOKEN_FILE.
"""
import http.client
import ipaddress
import json
import os
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8080"


class ApiError(Exception):
    def __init__(self, status, code, message, body=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.body = body


class Unreachable(Exception):
    def __init__(self, url, reason):
        super().__init__(f"cannot reach the controller at {url}: {reason}")
        self.url = url
        self.reason = reason


def normalize_url(value):
    """`http(s)://HOST[:PORT]` without a trailing slash; a bare `HOST:PORT`
    gets `http://` (like curl).  ValueError with a sentence when it is not a
    base URL."""
    text = (value or "").strip()
    if text and "://" not in text:
        text = "http://" + text
    u = urllib.parse.urlsplit(text)
    if u.scheme not in ("http", "https") or not u.hostname or u.query or u.fragment \
            or u.path not in ("", "/"):
        raise ValueError(f"{value!r} is not a controller URL; expected http://HOST:PORT, "
                         f"e.g. {DEFAULT_URL}")
    try:
        u.port
    except ValueError:
        raise ValueError(f"{value!r} has a bad port number") from None
    return text.rstrip("/")


def path(*parts):
    """/v1/a/b/c with each part quoted as one path segment."""
    return "/v1/" + "/".join(urllib.parse.quote(str(p), safe="") for p in parts)


def cidr_segment(cidr):
    """The API spells 10.0.0.0/24 as 10.0.0.0_24 in a path."""
    return cidr.strip().replace("/", "_")


def decode(raw):
    """A reply body: parsed JSON, else its text, else None when empty."""
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


def _reason(exc):
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "no answer (timed out)"
    if isinstance(reason, socket.gaierror):
        return f"unknown host ({reason.strerror or reason})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason)


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_from(token=None, token_file=None, env=None):
    """The token to send: `token`, else the first line of `token_file`, else
    VPC_TOKEN, else the file VPC_TOKEN_FILE names; None when none is given (a
    controller on loopback without authentication wants none).  A file that
    cannot be read is an OSError: better than a silent 401 later."""
    env = os.environ if env is None else env
    if not token and not token_file:
        token = env.get("VPC_TOKEN")
    if token:
        return token.strip()
    token_file = token_file or env.get("VPC_TOKEN_FILE")
    if not token_file:
        return None
    with open(token_file) as f:
        text = f.read().strip()
    if not text:
        raise OSError(f"the token file {token_file} is empty")
    return text.splitlines()[0].strip()


def ca_context(ca_file):
    """An ssl context that trusts only the CA certificate(s) in `ca_file`
    (PEM): an https controller whose certificate the deployment's own CA
    signed (scripts/pki).  Host names are checked as usual.  OSError or
    ssl.SSLError when the file does not load."""
    return ssl.create_default_context(cafile=ca_file)


class Client:
    def __init__(self, url=DEFAULT_URL, timeout=10.0, ssl_context=None, token=None):
        """`ssl_context`: how an https URL is verified (default: the system's CAs).
        `token`: sent as Authorization: Bearer (see token_from)."""
        self.url = normalize_url(url)
        self.timeout = timeout
        self.token = token
        # http(s)_proxy from the environment is honoured, except for a controller on
        # this machine: a proxy cannot reach our loopback anyway.
        host = urllib.parse.urlsplit(self.url).hostname
        handlers = [urllib.request.ProxyHandler({})] if _is_loopback(host) else []
        if ssl_context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=ssl_context))
        self._opener = urllib.request.build_opener(*handlers)

    def exchange(self, method, path, body=None):
        """One round trip: (status, reason, raw reply bytes), whatever the status.
        No answer raises as urllib raises (URLError and other OSError,
        http.client.HTTPException)."""
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers=headers)
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                return resp.status, resp.reason, resp.read()
        except urllib.error.HTTPError as exc:       # a 4xx/5xx is an answer too
            try:
                return exc.code, exc.reason, exc.read()
            finally:
                exc.close()

    def call(self, method, path, body=None):
        """(status, body): body is the parsed JSON, the text of a reply that is
        not JSON (GET /metrics), or None when empty.  HTTP errors are returned."""
        status, _reason_text, raw = self.exchange(method, path, body)
        return status, decode(raw)

    def request(self, method, path, body=None):
        """Returns the parsed JSON reply, or None for 204 No Content."""
        try:
            status, reason, raw = self.exchange(method, path, body)
        except (urllib.error.URLError, OSError) as exc:
            raise Unreachable(self.url, _reason(exc)) from None
        except http.client.HTTPException as exc:
            raise Unreachable(self.url, f"the server does not speak HTTP "
                                        f"({type(exc).__name__})") from None
        if not 200 <= status < 300:
            raise self._api_error(method, path, status, reason, raw)
        if status == 204 or not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(status, "bad_reply",
                           f"{method} {path}: the reply is not JSON; is {self.url} "
                           f"the vpc-controller?") from None

    @staticmethod
    def _api_error(method, path, status, reason, raw):
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict) and err.get("message"):
            return ApiError(status, err.get("code"), err["message"], body)
        text = raw.decode(errors="replace").strip()[:200] if raw else ""
        return ApiError(status, f"http_{status}",
                        f"{method} {path}: HTTP {status} {reason}" + (f": {text}" if text else ""),
                        body)

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body):
        return self.request("POST", path, body)

    def put(self, path, body):
        return self.request("PUT", path, body)

    def patch(self, path, body):
        return self.request("PATCH", path, body)

    def delete(self, path):
        return self.request("DELETE", path)
