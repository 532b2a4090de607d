"""What every vpcctl command group shares: error mapping to exit codes, alias
groups (ls, rm, inspect, add/create), the State carried in the click context
(URL, client, --json), common options and the two output shapes (table,
key/value)."""
import click

from vpcctl import render
from vpcctl.client import ApiError, Client, Unreachable, ca_context, normalize_url, token_from

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
            ctx = click.get_current_context(silent=True)
            tls = ctx.find_root().meta.get(SSL_CONTEXT_KEY) if ctx else None
            meta = ctx.find_root().meta if ctx else {}
            token = meta.get(TOKEN_KEY) or meta.get(TOKEN_FILE_KEY)
            self._client = Client(self.url, self.timeout, ssl_context=tls, token=token)
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


SSL_CONTEXT_KEY = "vpcctl.ssl_context"


def ca_file_option(f):
    """--ca-file / VPC_CA_FILE: verify an https controller against this CA.
    Loaded at parse time (a bad file is a usage error, exit 2) and kept in
    the root context's meta, where State.api finds it."""
    def remember(ctx, param, value):
        if value is None:
            return None
        try:
            ctx.find_root().meta[SSL_CONTEXT_KEY] = ca_context(value)
        except OSError as exc:      # ssl.SSLError is an OSError
            raise click.BadParameter(f"{value}: {exc}") from None
        return value
    return click.option("--ca-file", envvar="VPC_CA_FILE", show_envvar=True, metavar="PEM",
                        expose_value=False, is_eager=True, callback=remember,
                        help="CA certificate to verify an https:// controller with "
                             "(default: the system's CAs).")(f)


TOKEN_KEY = "vpcctl.token"
TOKEN_FILE_KEY = "vpcctl.token_file"


def token_options(f):
    """--token / VPC_TOKEN and --token-file / VPC_TOKEN_FILE (docs/security.md):
    sent as Authorization: Bearer; --token wins.  The file is read at parse
    time (unreadable or empty: a usage error, exit 2), like --ca-file."""
    def remember(ctx, param, value):
        if value:
            try:
                token = token_from(value) if param.name == "token" else \
                    token_from(token_file=value, env={})
            except OSError as exc:
                raise click.BadParameter(f"{value}: {exc}") from None
            ctx.find_root().meta[TOKEN_KEY if param.name == "token" else TOKEN_FILE_KEY] = token
        return value
    f = click.option("--token-file", envvar="VPC_TOKEN_FILE", show_envvar=True, metavar="FILE",
                     expose_value=False, is_eager=True, callback=remember,
                     help="File holding the API token (first line).")(f)
    return click.option("--token", envvar="VPC_TOKEN", show_envvar=True, metavar="TOKEN",
                        expose_value=False, is_eager=True, callback=remember,
                        help="API token (admin, tenant or host); needed when the "
                             "controller has authentication on.")(f)


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
