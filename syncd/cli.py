"""The ``syncd`` command line: parse, call, map errors to messages and exit codes.

Every command exits with one of :class:`ExitCode` (shown in ``syncd --help`` and the README).
Heavy modules are imported inside the commands, so ``--help`` answers at once.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from enum import IntEnum
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from syncd import __version__
from syncd.errors import ConfigError, PortUnavailable, StateError, StateFailed, SyncdError, unforeseen
from syncd.logs import configure as configure_logging
from syncd.summary import LABELS as _LABELS  # noqa: F401 (where the corpus test has always found it)

if TYPE_CHECKING:
    from syncd.config import Config
    from syncd.sandbox.user import KizenUser

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_SANDBOX_DATA = Path(".syncd") / "sandbox.sqlite"


class ExitCode(IntEnum):
    """syncd's exit codes, the same for every command.

    OK: everything asked was done (synced, checked, written). NOT_SYNCED: something was not,
    and each is named: a failed item or source, a safety stop, Kizen not reached, a problem
    ``check`` found, a state store write that failed mid-run, an error nobody foresaw. USAGE:
    nothing was tried because the command cannot start: the configuration or a mapping is
    invalid (an unset secret too), a bad option, the state store is locked by another sync or
    cannot be opened, a port cannot be listened on. Retrying helps after 1; after 2 a person
    must change something first.
    """

    OK = 0
    NOT_SYNCED = 1
    USAGE = 2


EXIT_CODES = """\b
Exit codes (every command):
  0  done: everything synced (or checked, or written)
  1  something did not sync, each named: a failed item or source, a
     safety stop, Kizen not reached, a problem found by check
  2  configuration or usage: an invalid config or mapping, an unset
     secret, a bad option, the state store locked or unusable, a port
     in use; nothing was tried
\b
The config is -c FILE, else $SYNCD_CONFIG, else ./config.toml, else
$XDG_CONFIG_HOME/syncd/config.toml (~/.config/syncd/config.toml).
"""


def exit_code(error: SyncdError) -> ExitCode:
    """The exit code for an error that ended a command: USAGE for configuration, usage, the lock,
    a state store that cannot be opened and a port in use; NOT_SYNCED for a failure mid-run."""
    if isinstance(error, StateFailed):
        return ExitCode.NOT_SYNCED
    return ExitCode.USAGE if isinstance(error, ConfigError | StateError | PortUnavailable) else ExitCode.NOT_SYNCED


def finish(code: ExitCode) -> None:
    """Ends the command with ``code`` (returns for OK, so the command's cleanup runs as usual)."""
    if code != ExitCode.OK:
        sys.exit(int(code))


log = logging.getLogger(__name__)


def reports_errors(command: F) -> F:
    """Turns any error into one clear message and an exit code, with no traceback.

    syncd's own errors keep their exit codes; any other exception (one nobody foresaw) is named
    in one line with exit code 1, its traceback logged at DEBUG (``-v``). Click's own exits and
    usage errors (exit 2) pass through.
    """

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SyncdError as error:
            click.echo(f"syncd: {error}", err=True)
            sys.exit(int(exit_code(error)))
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as error:
            _unexpected(error)

    return wrapper  # type: ignore[return-value]


def _unexpected(error: Exception) -> NoReturn:
    log.debug("unexpected error", exc_info=error)
    click.echo(f"syncd: unexpected error: {unforeseen(error)} (run with -v for the traceback)", err=True)
    sys.exit(int(ExitCode.NOT_SYNCED))


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES)
@click.version_option(__version__, prog_name="syncd")
@click.option("-v", "--verbose", is_flag=True, help="Log debugging detail.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines as text, or one JSON object a line (for log shippers); times are UTC either way.",
)
@click.option(
    "-c",
    "--config",
    "config_path",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The configuration file (one Kizen business); else $SYNCD_CONFIG, ./config.toml, ~/.config/syncd/.",
)
@click.pass_context
def cli(ctx: click.Context, verbose: bool, log_format: str, config_path: Path | None) -> None:
    """syncd keeps calendars (CalDAV, ICS) and Kizen's activities in step, both ways."""
    configure_logging(verbose, "json" if log_format == "json" else "text")
    ctx.obj = config_path


def _now() -> datetime:
    return datetime.now(UTC)


def _config(ctx: click.Context) -> Config:
    from syncd.config import find, load

    path = find(ctx.find_root().obj)
    assert path is not None  # required: find raises when there is none
    return load(path)


def _config_if_any(ctx: click.Context) -> Config | None:
    """The config when one is found (``-c``, ``SYNCD_CONFIG``, ./config.toml, XDG), else None."""
    from syncd.config import find, load

    path = find(ctx.find_root().obj, required=False)
    return load(path) if path is not None else None


@cli.command()
@click.option("--once", is_flag=True, help="Run one sync cycle and exit.")
@click.option("--source", "only", metavar="NAME", help="Sync only this source.")
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing anywhere.")
@click.option("--force-delete", is_flag=True, help="Apply deletions a safety rail would hold back.")
@click.pass_context
@reports_errors
def run(ctx: click.Context, once: bool, only: str | None, dry_run: bool, force_delete: bool) -> None:
    """Sync the calendars and Kizen (one cycle with --once)."""
    from syncd.runner import Cycle
    from syncd.state import open_store
    from syncd.summary import kizen_line, plan_lines, summary_lines
    from syncd.wiring import kizen_client

    config = _config(ctx)
    if not once:
        from syncd.config import find
        from syncd.service.daemon import Daemon

        if only or dry_run or force_delete:
            raise ConfigError(["--source, --dry-run and --force-delete go with --once"])
        Daemon(config, path=find(ctx.find_root().obj)).run()  # read again on SIGHUP
        return
    if only is not None:
        config.source(only)
    state = open_store(config.sync.state)
    try:
        with state.lock("run --once" + (" --dry-run" if dry_run else "")):
            kizen, close = kizen_client(config)
            progress = (lambda n: click.progressbar(length=n, label="syncing")) if sys.stdout.isatty() else None
            cycle = Cycle(config, state, kizen, progress=progress)
            try:
                report = cycle.run(only=only, dry_run=dry_run, force_delete=force_delete)
            finally:
                cycle.close()
                close()
    finally:
        state.close()
    if dry_run:
        for line in plan_lines(report.actions):
            click.echo(line)
        for source, reason in report.stopped.items():
            click.echo(f"source {source} stopped by a safety rail: {reason}")
        for source, reason in report.failed_sources.items():
            click.echo(f"source {source} not synced: {reason}")
        for outcome in report.failures:
            click.echo(f"failed: {outcome.source} {outcome.identity.uid} {outcome.identity.slot}: {outcome.detail}")
        for source, identity, reason in report.quarantined:
            click.echo(f"quarantined: {source} UID {identity.uid}: {reason}")
        click.echo(f"{len(report.actions)} action(s) planned; nothing written (dry run)")
        if report.kizen_failures:
            click.echo(kizen_line(report), err=True)
            finish(ExitCode.NOT_SYNCED)
        return
    for line, err in summary_lines(report):
        click.echo(line, err=err)
    finish(ExitCode.OK if report.clean else ExitCode.NOT_SYNCED)


@cli.command()
@click.option(
    "--concurrency", type=click.IntRange(1, 64), default=1, show_default=True, help="Team cycles run at once."
)
@click.option(
    "--stalled-seconds",
    type=click.FloatRange(3, 3600),
    default=30,
    show_default=True,
    help="A worker silent this long is taken for dead; its team's cycle runs on another.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve the feeds, status page, /healthz and the webhook here (default: [daemon] port; 0: any free one).",
)
@click.pass_context
@reports_errors
def worker(ctx: click.Context, concurrency: int, stalled_seconds: float, port: int | None) -> None:
    """Run a worker: team cycles from the queue in the PostgreSQL state, beside other workers."""
    from syncd.service.workers import run_worker

    run_worker(_config(ctx), concurrency=concurrency, stalled_seconds=stalled_seconds, port=port)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="The same facts as one JSON object, for scripts.")
@click.pass_context
@reports_errors
def status(ctx: click.Context, as_json: bool) -> None:
    """Show Kizen as the last run found it and, per source, its state and why, the last run, the
    failed, quarantined and skipped items, and the open conflicts with the command that settles each.

    A source reads "ok" only when its last run was ok and none of its items is failed or
    quarantined; otherwise its state says what is wrong and the items follow with their reasons.
    """
    from syncd.state import open_store
    from syncd.status import facts, lines

    config = _config(ctx)
    state = open_store(config.sync.state, read_only=True)
    try:
        found = facts(config, state)
    finally:
        state.close()
    if as_json:
        click.echo(json.dumps(found, indent=2, sort_keys=True))
        return
    for line in lines(found, _now()):
        click.echo(line)


@cli.command("check")
@click.pass_context
@reports_errors
def check_command(ctx: click.Context) -> None:
    """Check the configuration, the mappings, Kizen and every source; change nothing.

    Exits 2 when a problem is in the configuration (as `run` would), 1 for any other problem.
    """
    from syncd.check import check
    from syncd.wiring import kizen_client

    config = _config(ctx)
    kizen, close = kizen_client(config)
    try:
        findings = check(config, kizen)
    finally:
        close()
    for finding in findings:
        click.echo(f"{'PROBLEM' if not finding.ok else 'change' if finding.change else 'ok'}: {finding.text}")
    # the same exit code as `run` for the same problem: a configuration one (an unset secret, a bad
    # mapping) is 2, as it stops `run` before it starts; anything else found is 1
    if any(f.config for f in findings):
        finish(ExitCode.USAGE)
    finish(ExitCode.OK if all(f.ok for f in findings) else ExitCode.NOT_SYNCED)


@cli.command("secret")
def secret_command() -> None:
    """Print a new random token for a feed or the webhook (256 bits, URL-safe)."""
    import secrets

    click.echo(secrets.token_urlsafe(32))


@cli.group()
def feed() -> None:
    """syncd's ICS feeds of activities."""


@feed.command("export")
@click.argument("name")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
@reports_errors
def feed_export(ctx: click.Context, name: str, path: Path) -> None:
    """Write the feed NAME to PATH as an .ics file, without the server."""
    from syncd.service.feed import ComponentCache, feed_items, render_feed
    from syncd.state import open_store
    from syncd.wiring import kizen_client

    config = _config(ctx)
    chosen = config.feed(name)
    state = open_store(config.sync.state)
    kizen, close = kizen_client(config)
    try:
        items = feed_items(config, state, kizen, chosen, datetime.now(UTC))
    finally:
        close()
        state.close()
    body, _etag = render_feed(chosen.name, items, ComponentCache(marker=config.sync.written_marker))
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(body)
    partial.replace(path)  # readers never see half a feed
    click.echo(f"wrote {len(items)} event(s) to {path}")


@cli.group()
def conflicts() -> None:
    """List conflicts, or settle one for the next sync to apply."""


@conflicts.command("list")
@click.pass_context
@reports_errors
def conflicts_list(ctx: click.Context) -> None:
    """List the conflicts still waiting for a decision."""
    from syncd.state import open_store

    state = open_store(_config(ctx).sync.state, read_only=True)
    try:
        waiting = state.conflicts(open_only=True)
        for c in waiting:
            where = f"{c.occurrence.uid} {c.occurrence.slot or '-'}"
            click.echo(f"{c.id}: {where} {c.field}: calendar {c.calendar_value}, Kizen {c.kizen_value} ({c.status})")
        if any(c.status == "open" for c in waiting):
            click.echo("settle one with: syncd conflicts resolve ID --keep calendar|kizen")
        if not waiting:
            click.echo("no conflicts")
    finally:
        state.close()


@conflicts.command("resolve")
@click.argument("conflict_id", type=int)
@click.option(
    "--keep",
    type=click.Choice(["calendar", "kizen", "crm"]),
    required=True,
    help="Which side's value wins (crm: the same as kizen).",
)
@click.pass_context
@reports_errors
def conflicts_resolve(ctx: click.Context, conflict_id: int, keep: str) -> None:
    """Record a decision; the next sync applies it."""
    from syncd.model import Policy
    from syncd.state import open_store

    state = open_store(_config(ctx).sync.state)
    try:
        state.resolve_conflict(conflict_id, Policy.keeping(keep))
        side = "calendar" if keep == "calendar" else "Kizen"
        click.echo(f"conflict {conflict_id}: keeping the {side} value at the next sync")
    finally:
        state.close()


@cli.group("state")
def state_group() -> None:
    """The state store: copy a SQLite one into PostgreSQL."""


@state_group.command("migrate")
@click.option(
    "--to", "url", required=True, metavar="URL", help="An empty PostgreSQL database: postgresql://user@host/db."
)
@click.option(
    "--from", "path", type=click.Path(dir_okay=False, path_type=Path), help="The SQLite file (default: [sync] state)."
)
@click.pass_context
@reports_errors
def state_migrate(ctx: click.Context, url: str, path: Path | None) -> None:
    """Copy the SQLite state into the PostgreSQL database at URL; the file is only read, and kept.

    Stop the daemon first (both sync locks are taken). The password comes from PGPASSWORD or
    ~/.pgpass, never the URL. Then set [sync] state = "URL" in the config and start syncd again."""
    from syncd.config import database_url_problem
    from syncd.state import is_url, open_store

    if not is_url(url) or (problem := database_url_problem(url)):
        raise ConfigError([f"--to: {problem if is_url(url) else 'not a postgresql:// URL'}"])
    if path is None:
        where = _config(ctx).sync.state
        if is_url(where):
            raise ConfigError(["[sync] state is already a PostgreSQL URL; name the SQLite file with --from"])
        path = Path(where)
    open_store(url).close()  # psycopg missing: the extra to install, not an ImportError
    from syncd.state.pg_faults import shown
    from syncd.state.transfer import copy_state

    copied = copy_state(path, url)
    click.echo(", ".join(f"{count} {table}" for table, count in copied.items()))
    click.echo(f"copied {path} into {shown(url)}; the file is kept as it was")
    click.echo(f'next: set [sync] state = "{url}" in the config, then start syncd again')


@cli.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
@reports_errors
def init(ctx: click.Context, path: Path | None) -> None:
    """Write a commented starter config to PATH (default: -c, $SYNCD_CONFIG, else
    ~/.config/syncd/config.toml), with the mapping rules beside it; never overwrites one."""
    import os

    from syncd.config import CONFIG_ENV
    from syncd.starter import write_starter

    given = path or ctx.find_root().obj or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    written = write_starter(given)
    for file in written:
        click.echo(f"wrote {file}")
    click.echo("next: `syncd check`, then `syncd run --once --dry-run`" + (f" (with -c {written[0]})" if given else ""))


def _data_file(data: str) -> str:
    """The sandbox's data file, its folder made if need be (``:memory:`` as it is)."""
    if data != ":memory:":
        from syncd.files import private_folder

        private_folder(Path(data).parent)
    return data


def _sandbox_files(ctx: click.Context, data: str | None, seed: Path | None) -> tuple[str, Path | None]:
    """The sandbox's data file and seed: the options given, else the config's ``[kizen.sandbox]``
    (when a config is found and has one), else ``.syncd/sandbox.sqlite`` and the built-in seed.

    So ``syncd sandbox`` serves, and ``syncd sandbox-user`` acts on, the very data ``syncd run``
    syncs with, and ``--as`` finds the config's employees without the seed repeated.
    """
    config = _config_if_any(ctx)
    box = config.kizen.sandbox if config is not None else None
    if box is not None:
        return data or str(box.data), seed or box.seed
    return data or str(DEFAULT_SANDBOX_DATA), seed


_DATA_HELP = 'SQLite file the activities are kept in, or ":memory:" to forget them on exit.'
_SANDBOX_DEFAULT = " [default: the config's [kizen.sandbox], else .syncd/sandbox.sqlite]"


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port; 0 picks a free one."
)
@click.option(
    "--seed",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file of the business (employees, activity types, contacts); the config's, else the built-in one.",
)
@click.option("--data", default=None, help=_DATA_HELP + _SANDBOX_DEFAULT)
@click.option("--faults", default="", help='Random faults, e.g. "429=0.05,503=0.02,drop-after=0.01,latency=0.01-0.1".')
@click.option(
    "--fault-seed", default=0, show_default=True, help="Seed of the fault RNG: the same seed gives the same faults."
)
@click.pass_context
@reports_errors
def sandbox(
    ctx: click.Context, host: str, port: int, seed: Path | None, data: str | None, faults: str, fault_seed: int
) -> None:
    """Serve the Kizen sandbox, a local stand-in for Kizen's activities API."""
    import sqlite3

    from syncd.sandbox import FaultPlan, Sandbox, load_world

    plan = FaultPlan.parse(faults, seed=fault_seed)
    data, seed = _sandbox_files(ctx, data, seed)
    try:
        box = Sandbox(load_world(seed), data=_data_file(data), faults=plan)
    except (OSError, sqlite3.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([f"--data {data}: cannot open it: {reason}"]) from exc
    try:
        server = box.serve(host, port)
    except PortUnavailable as exc:
        box.close()
        raise PortUnavailable(host, port, exc.reason, in_use=exc.in_use, setting="--port") from exc.__cause__
    activity_type = box.world.activity_types[0]
    headers = " ".join(f"-H '{name}: {value}'" for name, value in box.headers.items())
    click.echo(
        f"Kizen sandbox on {server.url} (activities in {data})\n"
        + "".join(f"  {name}: {value}\n" for name, value in box.headers.items())
        + "Try:\n"
        f"  curl -s {headers} -H 'Content-Type: application/json' \\\n"
        f'    -d \'{{"activity_object_id": "{activity_type.id}", "due_datetime": "2030-01-01T09:00:00Z",'
        f' "employee_id": "{box.world.api_user.id}"}}\' \\\n'
        f"    {server.url}/api/activities/scheduled-activity\n"
        "Press Ctrl+C to stop."
    )
    try:
        server.wait()
    except KeyboardInterrupt:
        click.echo("stopping")
    finally:
        box.close()


@cli.group("sandbox-user")
@click.option("--data", default=None, help="The sandbox's SQLite file." + _SANDBOX_DEFAULT)
@click.option(
    "--seed",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The sandbox's seed file [default: the config's, else the built-in one].",
)
@click.option("--as", "email", help="Act as the employee with this email (default: the API user).")
@click.pass_context
def sandbox_user(ctx: click.Context, data: str | None, seed: Path | None, email: str | None) -> None:
    """Act in the sandbox as a person in Kizen's web app would (for demos).

    Works on the sandbox's data file, beside a running `syncd sandbox`; completing an activity
    posts the activity.logged webhook, as Kizen does.
    """
    ctx.obj = {"data": data, "seed": seed, "email": email}


def _acting_user(ctx: click.Context) -> KizenUser:
    """Opens the sandbox's data for the rest of the command, and the user to act as."""
    from syncd.sandbox import Sandbox, load_world

    options = ctx.obj
    data, seed = _sandbox_files(ctx, options["data"], options["seed"])
    box = ctx.with_resource(Sandbox(load_world(seed), data=_data_file(data)))
    return box.user(options["email"])


def _show(activity: dict[str, Any]) -> None:
    click.echo(json.dumps(activity, indent=2))


def _instant(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise click.BadParameter(f"{value!r} has no UTC offset (add Z or +01:00)")
    return parsed


@sandbox_user.command("create")
@click.option("--type", "activity_type", default="meeting", show_default=True, help="Activity type: api_name or id.")
@click.option("--due", required=True, callback=_instant, help="Due time, ISO 8601 with an offset.")
@click.option("--note", default="", help="The activity's note.")
@click.option("--assignee", help="Assignee's email (default: the acting user).")
@click.pass_context
@reports_errors
def user_create(ctx: click.Context, activity_type: str, due: datetime, note: str, assignee: str | None) -> None:
    """Schedule an activity directly in Kizen."""
    user = _acting_user(ctx)
    _show(user.create(activity_type, due, note=note, assignee=assignee))


@sandbox_user.command("complete")
@click.argument("activity_id")
@click.option("--notes", default="", help="Notes of the logged activity.")
@click.pass_context
@reports_errors
def user_complete(ctx: click.Context, activity_id: str, notes: str) -> None:
    """Complete a scheduled activity (logs it)."""
    user = _acting_user(ctx)
    _show(user.complete(activity_id, notes))


@sandbox_user.command("reschedule")
@click.argument("activity_id")
@click.argument("due", callback=_instant)
@click.pass_context
@reports_errors
def user_reschedule(ctx: click.Context, activity_id: str, due: datetime) -> None:
    """Move a scheduled activity to another due time."""
    user = _acting_user(ctx)
    _show(user.reschedule(activity_id, due))


@sandbox_user.command("edit-note")
@click.argument("activity_id")
@click.argument("note")
@click.pass_context
@reports_errors
def user_edit_note(ctx: click.Context, activity_id: str, note: str) -> None:
    """Replace a scheduled activity's note."""
    user = _acting_user(ctx)
    _show(user.edit_note(activity_id, note))


@sandbox_user.command("reassign")
@click.argument("activity_id")
@click.argument("email")
@click.pass_context
@reports_errors
def user_reassign(ctx: click.Context, activity_id: str, email: str) -> None:
    """Assign a scheduled activity to another employee."""
    user = _acting_user(ctx)
    _show(user.reassign(activity_id, email))


@sandbox_user.command("delete")
@click.argument("activity_id")
@click.pass_context
@reports_errors
def user_delete(ctx: click.Context, activity_id: str) -> None:
    """Delete a scheduled activity."""
    user = _acting_user(ctx)
    user.delete(activity_id)
    click.echo(f"deleted {activity_id}")


@sandbox_user.command("log")
@click.argument("activity_type")
@click.option("--notes", default="", help="Notes of the logged activity.")
@click.pass_context
@reports_errors
def user_log(ctx: click.Context, activity_type: str, notes: str) -> None:
    """Log an activity directly, with no scheduled activity behind it."""
    user = _acting_user(ctx)
    _show(user.log(activity_type, notes))


def main() -> None:
    """The ``syncd`` command: whatever escapes a command is named in one line, never a traceback."""
    try:
        cli(prog_name="syncd")
    except Exception as error:  # the last place anything can be caught
        _unexpected(error)
