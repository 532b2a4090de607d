"""The JSON reply of the small HTTP fakes the unit tests start (a fake
controller, a fake dockerd): one place for the headers they all send."""
import json


def send_json(handler, status, body):
    """Write `body` as a JSON reply with `status` on a BaseHTTPRequestHandler."""
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
