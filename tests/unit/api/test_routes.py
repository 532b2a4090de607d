"""One route table (controller/api/routes.py): rest.py serves it, openapi.py
describes it, and neither module needs the other to be imported first.

- each API module imports alone in a fresh interpreter (no import cycle, no
  order it depends on), and the table itself imports nothing of the controller;
- the mapper holds exactly the table, and every handler the table names exists;
- the table is well formed: unique (method, path) and operation ids, known
  path parameters, schema names the document defines.
"""
import subprocess
import sys
from pathlib import Path

import pytest

from controller.api import openapi
from controller.api.rest import RestApi
from controller.api.routes import PARAMS, ROUTES
from tests.support.rest_api import Api

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("module", ["controller.api.routes", "controller.api.openapi",
                                    "controller.api.rest", "controller.api.body"])
def test_module_imports_alone(module):
    code = ("import sys; import " + module + "; "
            "print(sorted(m for m in sys.modules if m.startswith('controller.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    loaded = eval(out.stdout)       # noqa: S307 -- our own print of a list of names
    if module == "controller.api.routes":
        assert set(loaded) == {"controller.api", "controller.api.routes"}, \
            "the route table must stay pure data"
    if module == "controller.api.openapi":
        assert "controller.api.rest" not in loaded, "describing must not import serving"


def test_mapper_serves_exactly_the_table(tmp_path):
    api = Api(tmp_path)
    try:
        served = [(r.conditions["method"][0], r.routepath) for r in api.app.mapper.matchlist]
        assert served == [(r.method, r.path) for r in ROUTES]
    finally:
        api.store.close()


def test_a_handler_the_table_names_must_exist():
    class Partial:
        def list_hosts(self):
            return []
    with pytest.raises(TypeError, match="create_host"):
        RestApi(Partial())


def test_table_is_well_formed():
    keys = [(r.method, r.path) for r in ROUTES]
    assert len(keys) == len(set(keys))
    ids = [r.op_id for r in ROUTES]
    assert len(ids) == len(set(ids))
    schemas = openapi.document()["components"]["schemas"]
    for r in ROUTES:
        assert set(r.params) <= set(PARAMS), r.path
        assert r.method in ("GET", "POST", "PUT", "PATCH", "DELETE"), r
        assert (r.status == 204) == (r.response is None), r
        assert r.body is None or r.body in schemas, r
        assert not isinstance(r.response, str) or r.response.removesuffix("[]") in schemas, r
        assert r.body is None or r.method != "GET", f"{r.method} {r.path}: a GET takes no body"
        assert not r.read_only or r.method in ("POST", "PUT"), f"{r.path}: read_only {r.method}"
