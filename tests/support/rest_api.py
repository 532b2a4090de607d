"""The real REST app (RestApi over VpcService over a MsgpackStore) called in-process
through webob: what the API unit tests and several others drive."""
import json

import webob

from controller.api.rest import RestApi
from controller.model.state import State
from controller.service.vpc import VpcService
from controller.store.msgpack_store import MsgpackStore


class Api:
    def __init__(self, tmp_path):
        self.dir = tmp_path
        self.store = MsgpackStore(tmp_path)
        self.state = State(self.store.load())
        self.changes = []
        self.service = VpcService(self.state, self.store, on_change=self.changes.append)
        self.app = RestApi(self.service)

    def call(self, method, path, body=None, raw=None, ctype="application/json"):
        req = webob.Request.blank(path, method=method)
        if raw is not None or body is not None:
            req.body = raw if raw is not None else json.dumps(body).encode()
            req.content_type = ctype
        resp = req.get_response(self.app)
        data = json.loads(resp.body) if resp.body else None
        return resp.status_code, data

    def ok(self, method, path, body=None, status=(200, 201, 204)):
        code, data = self.call(method, path, body)
        assert code in status, data
        return data

    def disk(self):
        return {p.name: p.read_bytes() for p in self.dir.iterdir() if p.name != "lock"}
