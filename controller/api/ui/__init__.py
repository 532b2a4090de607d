"""The topology page: GET /ui, static files shipped in this package.

`UiApp` is a tiny WSGI app mounted at /ui by the controller (see
controller/metrics.py, Instrumented).  /ui and /ui/ serve index.html; /ui/NAME
serves the file NAME of the static directory (plain names only: no
subdirectories, no dot files).  The page itself draws the live topology from
the REST API in the browser (static/app.js, with the vendored Cytoscape.js,
see static/VENDORED.md): nothing is fetched from outside.
"""
import hashlib
import re
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
TYPES = {".html": "text/html; charset=utf-8", ".js": "application/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".md": "text/plain; charset=utf-8",
         ".LICENSE": "text/plain; charset=utf-8", ".png": "image/png"}
SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")


class UiApp:
    def __init__(self, prefix="/ui", static=STATIC):
        self.prefix = prefix.rstrip("/")
        self.static = Path(static)

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "")
        if method not in ("GET", "HEAD"):
            return _plain(start_response, "405 Method Not Allowed", "GET only\n",
                          [("Allow", "GET, HEAD")])
        rest = path[len(self.prefix):] if path.startswith(self.prefix) else None
        if rest in ("", "/", "/index.html"):
            # Asset links relative to where the page was asked for, so the page
            # also works behind a proxy that adds a path prefix.
            static = "ui/" if rest == "" else ""
            body = (self.static / "index.html").read_text().replace("{{static}}", static)
            return self._send(environ, start_response, body.encode(), TYPES[".html"])
        name = rest[1:] if rest and rest.startswith("/") else ""
        f = self.static / name
        if not SAFE_NAME.match(name) or not f.is_file():
            return _plain(start_response, "404 Not Found", f"no such file: {path}\n")
        return self._send(environ, start_response, f.read_bytes(),
                          TYPES.get(f.suffix, "application/octet-stream"))

    def _send(self, environ, start_response, body, ctype):
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        headers = [("ETag", etag), ("Cache-Control", "no-cache")]
        if environ.get("HTTP_IF_NONE_MATCH") == etag:
            start_response("304 Not Modified", headers)
            return []
        headers += [("Content-Type", ctype), ("Content-Length", str(len(body))),
                    ("X-Content-Type-Options", "nosniff")]
        start_response("200 OK", headers)
        return [] if environ.get("REQUEST_METHOD", "GET").upper() == "HEAD" else [body]


def _plain(start_response, status, text, extra=()):
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(body)))] + list(extra))
    return [body]
