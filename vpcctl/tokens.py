"""vpcctl token: make, list and revoke tenant and host tokens (the admin's).

Apart from main.py because it is one resource with its own options (scope,
expiry, networks).  A token is scoped to one tenant (--tenant) or one host
(--host); `create` prints the secret once -- the controller keeps only its
hash -- so `-q` prints nothing but the token, for `> file`.
"""
import click

from vpcctl.cliutil import AliasGroup, json_option, listing, pass_state, quiet_option, \
    show_obj
from vpcctl.client import path

TOKEN_COLUMNS = [("ID", "id"), ("KIND", "kind"), ("SCOPE", "scope"), ("NAME", "name"),
                 ("CREATED", "created_at"), ("EXPIRES", "expires_at"),
                 ("EXPIRED", "expired")]


def _base(tenant, host):
    if (tenant is None) == (host is None):
        raise click.UsageError("give exactly one of --tenant TENANT or --host HOST")
    return ("tenants", tenant, "tokens") if tenant else ("hosts", host, "tokens")


def scope_options(f):
    f = click.option("--host", metavar="HOST", help="A host token: for host-join and the "
                                                    "agent of HOST.")(f)
    return click.option("--tenant", metavar="TENANT",
                        help="A tenant token: sees and changes TENANT only.")(f)


@click.group(cls=AliasGroup, short_help="API tokens: create, list, revoke (admin).")
def token():
    """Tenant and host tokens (/v1/tenants/T/tokens, /v1/hosts/H/tokens): see docs/security.md.

    \b
      vpcctl token create ci --tenant blue --expires-in 86400 -q > blue.token
      vpcctl token create join --host h1 -q > h1.token
      vpcctl token list --tenant blue
      vpcctl token revoke 0a1b2c3d4e5f --tenant blue
    """


@token.command("create")
@click.argument("name")
@scope_options
@click.option("--expires-in", type=click.IntRange(min=1), metavar="SECONDS",
              help="Lifetime; never expires when absent.")
@click.option("--expires-at", metavar="DATETIME", help="Expiry as ISO 8601, e.g. "
                                                       "2027-01-31T00:00:00Z.")
@click.option("--networks", is_flag=True,
              help="Host tokens: also create tenants and subnets and publish ports "
                   "(the Docker driver).")
@quiet_option
@json_option
@pass_state
def token_create(state, name, tenant, host, expires_in, expires_at, networks, quiet):
    """Make token NAME; prints the secret once (-q: only the secret)."""
    body = {"name": name}
    if expires_in is not None:
        body["expires_in"] = expires_in
    if expires_at is not None:
        body["expires_at"] = expires_at
    if networks:
        if host is None:
            raise click.UsageError("--networks is for host tokens (--host)")
        body["networks"] = True
    made = state.api.post(path(*_base(tenant, host)), body)
    if quiet and not state.json:
        click.echo(made["token"])
        return
    show_obj(state, made)
    if not state.json:
        click.echo("keep the token now: the controller shows it only this once", err=True)


@token.command("list")
@scope_options
@quiet_option
@json_option
@pass_state
def token_list(state, tenant, host, quiet):
    """List the tokens of a tenant or a host (no secrets)."""
    rows = state.api.get(path(*_base(tenant, host)))
    for r in rows:
        r["scope"] = r.get("tenant") or r.get("host")
    listing(state, rows, TOKEN_COLUMNS, quiet, "id")


@token.command("revoke")
@click.argument("token_id", metavar="ID")
@scope_options
@json_option
@pass_state
def token_revoke(state, token_id, tenant, host):
    """Revoke token ID: it is refused from the next request on."""
    state.api.delete(path(*_base(tenant, host), token_id))
    state.deleted("token", token_id)


token.add_command(token_revoke, "delete")
