"""A tenant token against every route aimed at another tenant, on a live controller.

Why shared: the lab's authentication test (tests/lab/test_auth.py) and the
whole-product test (tests/lab/test_secure_product.py) make the same claim --
another tenant's token gets 403/404 on every route of controller/api/routes.py
and changes nothing -- against differently built controllers (plain HTTP, or
HTTPS with OpenFlow over SSL).  The route list is the declared table, so a new
route is tried the moment it exists.  (tests/unit/api/test_auth_matrix.py
holds the full principal x route matrix in-process.)
"""
from controller.api.routes import ROUTES

WATCHED = ("/v1/tenants/{t}", "/v1/tenants/{t}/ports", "/v1/tenants/{t}/subnets",
           "/v1/tenants/{t}/security-groups", "/v1/hosts")


def _ids(value):
    """What identifies the objects of a view: connected flags and port status
    may move while the test runs; the objects may not."""
    if isinstance(value, list):
        return sorted(str(v.get("id") or v.get("name") or v.get("cidr")) for v in value)
    return {k: v for k, v in value.items() if k not in ("connected", "ports")}


def assert_walled_off(admin, intruder, victim, intruder_tenant, host, subnet):
    """Every route with `intruder` (another tenant's token Api) aimed at tenant
    `victim`: open routes answer, the tenant list shows only its own tenant,
    routes with the victim's tenant in the path say it does not exist (404),
    the rest are 403; the victim's objects (read by `admin`) are unchanged.
    Returns the number of routes tried."""
    watched = [p.format(t=victim) for p in WATCHED]
    before = {p: admin.get(p)[1] for p in watched}
    ports = before[f"/v1/tenants/{victim}/ports"]
    values = {"tenant": victim, "host": host, "subnet": subnet.replace("/", "_"),
              "port_id": ports[0]["id"] if ports else "0" * 12, "forward_id": "0" * 12,
              "fip_id": "0" * 12, "group": "default", "rule_id": "0" * 8,
              "token_id": "0" * 12}
    tried = 0
    for route in ROUTES:
        status, body = intruder.request(route.method, route.path.format(**values),
                                        {} if route.body else None)
        tried += 1
        where = (route.method, route.path, status, body)
        if route.access in ("open", "any"):
            assert status == 200, where
        elif route.access == "tenants":
            assert status == 200 and [t["name"] for t in body] == [intruder_tenant], where
        elif "tenant" in route.params:
            assert status == 404, where
            assert body["error"]["message"] == f"tenant '{victim}' does not exist", where
        else:
            assert status == 403, where
    assert tried == len(ROUTES)
    after = {p: admin.get(p)[1] for p in watched}
    for p in watched:
        assert _ids(after[p]) == _ids(before[p]), p
    return tried
