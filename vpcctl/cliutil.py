"""What every vpcctl command group shares: error mapping to exit codes, alias
groups (ls, rm, inspect, add/create), the State carried in the click context
(URL, client, --json), common options and the two output shapes (table,
key/value)."""
import click

from vpcctl import render
from vpcctl.client import ApiError, Client, Unreachable, normalize_url

EXIT_API = 1
EXIT_UNREACHABLE = 3

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


# --- errors -----------------------------------------------------------------------
class CliError(click.ClickException):
    """`error: <message>` on stderr (and an optional hint line), then exit."""

    def __init__(self, message, exit_code, hint=None):
        super().__init__(message)
        self.exit_code = exit_code
        self.hint = hint

    def show(self, file=None):
        click.echo(f"error: {self.format_message()}", err=True)
        if self.hint:
            click.echo(f"hint: {self.hint}", err=True)


def _translate(exc):
    if isinstance(exc, ApiError):
        code = f" ({exc.code})" if exc.code else ""
        return CliError(f"{exc.message}{code}", EXIT_API)
    return CliError(str(exc), EXIT_UNREACHABLE,
                    hint="is the controller running (osken-manager apps/vpc.py)? "
                         "Point vpcctl at it with --url URL or VPC_URL=URL.")


# --- groups with aliases (ls, rm, inspect, add/create, sg) -----------------------------
ALIASES = {
    "ls": ("list",),
    "inspect": ("show",),
    "get": ("show",),
    "rm": ("delete", "detach"),
    "remove": ("delete", "detach"),
    "del": ("delete", "detach"),
    "delete": ("detach",),
    "create": ("add", "attach"),
    "add": ("create", "attach"),
    "sg": ("security-group",),
}


class AliasGroup(click.Group):
    """A click group that also answers to the docker/openstack verb spellings."""

    def get_command(self, ctx, cmd_name):
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            return cmd
        for target in ALIASES.get(cmd_name, ()):
            cmd = super().get_command(ctx, target)
            if cmd is not None:
                return cmd
        return None

    def resolve_command(self, ctx, args):
        _, cmd, rest = super().resolve_command(ctx, args)
        return (cmd.name if cmd else None), cmd, rest


class RootGroup(AliasGroup):
    def list_commands(self, ctx):
        return list(self.commands)      # definition order: health ... floating-ip

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (ApiError, Unreachable) as exc:
            raise _translate(exc) from None


# --- shared state and options ----------------------------------------------------------
class State:
    def __init__(self, url, timeout, json_out):
        self.url = url
        self.timeout = timeout
        self.json = json_out
        self._client = None

    @property
    def api(self):
        if self._client is None:
            self._client = Client(self.url, self.timeout)
        return self._client

    def emit(self, data, human):
        if self.json:
            click.echo(render.as_json(data))
        else:
            click.echo(human(data))

    def deleted(self, kind, ident):
        if self.json:
            click.echo(render.as_json({"deleted": ident}))
        else:
            click.echo(f"deleted {kind} {ident}")


pass_state = click.make_pass_decorator(State)


def _json_flag(ctx, param, value):
    if value:
        ctx.find_object(State).json = True


def json_option(f):
    """`--json` after the verb too (vpcctl tenant list --json)."""
    return click.option("--json", "json_flag", is_flag=True, expose_value=False,
                        callback=_json_flag,
                        help="Print the API's JSON instead of a table.")(f)


def quiet_option(f):
    return click.option("-q", "--quiet", is_flag=True,
                        help="Print only the names/ids, one per line.")(f)


def check_url(ctx, param, value):
    try:
        return normalize_url(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def listing(state, rows, columns, quiet, key):
    if quiet and not state.json:
        for r in rows:
            click.echo(r.get(key))
        return
    state.emit(rows, lambda rs: render.table(rs, columns))


def show_obj(state, data, labels=None):
    state.emit(data, lambda d: render.keyvalue(d, labels))


def drop_none(**fields):
    return {k: v for k, v in fields.items() if v is not None}
