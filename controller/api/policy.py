"""Authorization: may this principal make this request?  (Kubernetes RBAC's
question, answered from the route table: each entry of routes.ROUTES names
its `access`, described there and in docs/security.md.)

`authorize` raises ApiError before the service is called -- so a refused
request changes nothing -- or returns a function to pass the reply through
(lists a principal may see only part of), or None.

Two rules keep a tenant from learning about others (AWS answers a resource
of another account the same way): a tenant token asking about another
tenant gets exactly the 404 the service gives for a tenant that does not
exist, whatever the route; and a host token asking for a port on another host
gets the 404 of a port that does not exist.  403 is for what a principal may
never do whatever exists (a tenant token on /v1/hosts, a host token making
tenant tokens), where it tells nothing.
"""
from controller.service.errors import ApiError, not_found


def forbidden(principal, route):
    return ApiError(403, "forbidden", f"{route.method} {route.path} is not allowed to "
                                      f"{principal}")


def no_tenant(name):
    return not_found(f"tenant {name!r} does not exist")


def no_port(tenant, port_id):
    return not_found(f"tenant {tenant!r} has no port {port_id!r}")


def authorize(principal, route, params, body, state):
    """`params`: the path parameters by name; `body`: the parsed JSON body or None;
    `state`: the model (a host token's port is looked up in it)."""
    if principal.all_powerful or route.access in ("open", "any"):
        return None
    if principal.kind == "tenant":
        return _tenant(principal, route, params)
    if principal.kind == "host":
        return _host(principal, route, params, body, state)
    raise forbidden(principal, route)


def _tenant(principal, route, params):
    tenant = params.get("tenant")
    if tenant is not None and tenant != principal.scope:
        raise no_tenant(tenant)
    if route.access == "tenants":
        return lambda tenants: [t for t in tenants if t.get("name") == principal.scope]
    if route.access in ("tenant", "port"):
        return None
    raise forbidden(principal, route)


def _host(principal, route, params, body, state):
    access, mine = route.access, principal.scope
    if access == "host":
        named = params.get("host")
        if named is None and isinstance(body, dict):
            named = body.get("name")
        # A body without a name is the service's 400 to give; any other name is not ours.
        if named == mine or (named is None and "host" not in params):
            return None
        raise forbidden(principal, route)
    if principal.networks and access in ("tenants", "network", "tenant"):
        return None
    if access != "port":
        raise forbidden(principal, route)
    # ports: attach and detach on its own host only; a plain host token sees only those
    port_id = params.get("port_id")
    if route.method == "POST":
        if isinstance(body, dict) and "host" in body and body["host"] != mine:
            raise forbidden(principal, route)
        return None
    if port_id is None:             # the list
        return None if principal.networks else (
            lambda ports: [p for p in ports if p.get("host") == mine])
    port = state.ports.get(port_id)
    if port is not None and port.tenant == params["tenant"] and port.host != mine and (
            route.method != "GET" or not principal.networks):
        raise no_port(params["tenant"], port_id)
    return None
