"""The ``syncd`` command line: parse, call, map errors to messages and exit codes.

Exit codes: 0 all well; 1 something did not sync (each named); 2 configuration or usage, a state
store that cannot be opened or is locked by another sync, a port that cannot be listened on.
Heavy modules are imported inside the commands, so ``--help`` answers at once.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from syncd import __version__
from syncd.errors import ConfigError, PortUnavailable, StateError, StateFailed, SyncdError, unforeseen

if TYPE_CHECKING:
    from syncd.config import Config
    from syncd.sandbox.user import KizenUser

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_SANDBOX_DATA = Path(".syncd") / "sandbox.sqlite"


def exit_code(error: SyncdError) -> int:
    """The exit code for an error that ended a command: 2 for configuration, usage, the lock, a
    state store that cannot be opened and a port in use; 1 for a failure mid-run (StateFailed)."""
    if isinstance(error, StateFailed):
        return 1
    return 2 if isinstance(error, ConfigError | StateError | PortUnavailable) else 1


log = logging.getLogger(__name__)


def reports_errors(command: F) -> F:
    """Turns any error into one clear message and an exit code, with no traceback.

    syncd's own errors keep their exit codes; any other exception (one nobody foresaw) is named
    in one line with exit code 1, its traceback logged at DEBUG (``-v``). Click's own exits and
    usage errors pass through.
    """

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SyncdError as error:
            click.echo(f"syncd: {error}", err=True)
            sys.exit(exit_code(error))
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as error:
            _unexpected(error)

    return wrapper  # type: ignore[return-value]


def _unexpected(error: Exception) -> None:
    log.debug("unexpected error", exc_info=error)
    click.echo(f"syncd: unexpected error: {unforeseen(error)} (run with -v for the traceback)", err=True)
    sys.exit(1)


_LIBRARY_MESSAGE_LIMIT = 1000


class _Libraries(logging.Filter):
    """Keeps what libraries log short and quiet; syncd's own records pass as they are.

    Below WARNING a library's records show only with ``-v``; a traceback of theirs only with
    ``-v``; and a message is cut at 1,000 characters even then: caldav logs a server's whole
    answer when it is not XML (a 5 MB body made 4.9 MB of log), at INFO and on the root logger.
    """

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "syncd" or record.name.startswith("syncd."):
            return True
        if record.levelno < logging.WARNING and not self.verbose:
            return False
        if not self.verbose:
            record.exc_info = record.exc_text = None
        message = record.getMessage()
        if len(message) > _LIBRARY_MESSAGE_LIMIT:
            record.msg = (
                f"{message[:_LIBRARY_MESSAGE_LIMIT]}... ({len(message) - _LIBRARY_MESSAGE_LIMIT} characters left out)"
            )
            record.args = None
        return True


def _configure_logging(verbose: bool) -> None:
    from syncd import redaction

    redaction.install()  # before any record: no secret in any line, at any level
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs whole URLs at INFO; keep it quiet unless asked.
    logging.getLogger("httpx").setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # caldav's DEBUG records are every request and response whole: off even with -v.
    logging.getLogger("caldav").setLevel(logging.INFO if verbose else logging.WARNING)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _Libraries) for f in handler.filters):
            handler.addFilter(_Libraries(verbose))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="syncd")
@click.option("-v", "--verbose", is_flag=True, help="Log debugging detail.")
@click.option(
    "-c",
    "--config",
    "config_path",
    default="config.toml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The configuration file (one Kizen business).",
)
@click.pass_context
def cli(ctx: click.Context, verbose: bool, config_path: Path) -> None:
    """syncd keeps calendars (CalDAV, ICS) and Kizen's activities in step, both ways."""
    _configure_logging(verbose)
    ctx.obj = config_path


def _now() -> datetime:
    return datetime.now(UTC)


def _config(ctx: click.Context) -> Config:
    from syncd.config import load

    return load(ctx.find_root().obj)


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
    from syncd.state import StateStore
    from syncd.sync.report import describe
    from syncd.wiring import kizen_client

    config = _config(ctx)
    if not once:
        from syncd.service.daemon import Daemon

        if only or dry_run or force_delete:
            raise ConfigError(["--source, --dry-run and --force-delete go with --once"])
        Daemon(config).run()
        return
    if only is not None:
        config.source(only)
    state = StateStore(config.sync.state)
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
        for action in report.actions:
            click.echo(describe(action))
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
            sys.exit(1)
        return
    _summarize(report)
    if not report.clean:
        sys.exit(1)


def _summarize(report: Any) -> None:
    """The run's summary: counts, then one line per failure; "nothing to do" only when clean."""
    counts = report.counts()
    if not report.outcomes and report.clean:
        click.echo("nothing to do: calendars and Kizen are in step")
    if report.kizen_failures:
        click.echo(kizen_line(report), err=True)
    for kind in _LABELS:
        if counts[kind]:
            click.echo(f"{_LABELS[kind]:<28}{counts[kind]:>6}")
    for outcome in report.failures:
        click.echo(
            f"failed: {outcome.source} {outcome.identity.uid} {outcome.identity.slot}: {outcome.detail}", err=True
        )
    for source, reason in report.failed_sources.items():
        click.echo(f"source {source} not synced: {reason}", err=True)
    for source, reason in report.stopped.items():
        click.echo(f"source {source} stopped by a safety rail: {reason}", err=True)
    if report.unknown_contacts:
        click.echo(f"{report.unknown_contacts} attendee(s) left off: no Kizen contact has their email (-v names them)")
    for source, identity, reason in report.quarantined:
        click.echo(f"quarantined: {source} UID {identity.uid}: {reason}", err=True)


_KIZEN_CHANGES = ("Create", "Update", "Reschedule", "Delete", "Log")


def kizen_line(report: Any) -> str:
    """One line naming Kizen, the step and the cause, and what the run did in Kizen before it."""
    first = report.kizen_failures[0]
    counts = report.counts()
    changed = sum(counts[kind] for kind in _KIZEN_CHANGES)
    done = f"{changed} change(s) made in Kizen before that" if changed else "nothing was changed in Kizen"
    if report.held:
        done += f"; {report.held} planned action(s) wait for the next run"
    if first.kind == "auth":
        done += "; check kizen.api_key, business_id and user_id"
    more = f" (and {len(report.kizen_failures) - 1} more step(s))" if len(report.kizen_failures) > 1 else ""
    return f"{first.text}{more}; {done}"


_LABELS = {
    "Create": "activities created",
    "Update": "activities updated",
    "Reschedule": "series occurrences moved",
    "Delete": "activities deleted",
    "Log": "activities logged",
    "WriteBack": "logged entries written back",
    "MoveInCalendar": "calendar items moved",
    "RecordConflict": "conflicts recorded",
    "Settle": "pairings settled",
}


@cli.command()
@click.pass_context
@reports_errors
def status(ctx: click.Context) -> None:
    """Show Kizen as the last run found it, and each source's last run, counts, failed and
    quarantined items, open conflicts and cursor age.

    A source reads "(ok)" only when its last run was ok and none of its items is failed or
    quarantined; otherwise the line says what is wrong and the items follow with their reasons.
    """
    from syncd.state import StateStore

    config = _config(ctx)
    state = StateStore(config.sync.state, read_only=True)
    try:
        runs = state.last_runs()
        pairings = state.pairings()
        _kizen_status(state.component("kizen"))
        waiting: dict[str, list[int]] = {}
        lead = {p.id: p.lead.source for p in pairings if p.lead}
        for conflict in state.conflicts(open_only=True):
            if conflict.status == "open":
                waiting.setdefault(lead.get(conflict.occurrence, ""), []).append(conflict.id)
        for source in config.sources:
            last = runs.get(source.name)
            failures = state.failures(source.name)
            open_count = sum(1 for p in pairings if p.lead and p.lead.source == source.name and not p.settled)
            when = f"{last['finished_at'] or last['started_at']} ({_run_health(last, failures)})" if last else "never"
            counts = ", ".join(f"{n} {kind.lower()}" for kind, n in sorted(last["counts"].items())) if last else ""
            click.echo(
                f"{source.name}: last run {when}; {open_count} open pairing(s)" + (f"; did {counts}" if counts else "")
            )
            if last and last["status"] != "ok" and last["errors"]:
                click.echo(f"  {last['status']}: {last['errors'][0]}")
            for collection, read_at in state.cursor_times(source.name).items():
                age = f"{(_now() - read_at).total_seconds() / 60:.0f} min ago" if read_at else "never"
                click.echo(f"  {collection}: read {age}")
            for failure in failures:
                slot = f" {failure.slot}" if failure.slot else ""
                since = f"{failure.first_seen:%Y-%m-%d %H:%M}"
                click.echo(f"  {failure.kind}: UID {failure.uid}{slot}: {failure.reason} (since {since})")
            if waiting.get(source.name):
                _conflicts_line("  ", waiting.pop(source.name))
        for ids in waiting.values():  # conflicts of a pairing no configured source leads
            _conflicts_line("", ids)
    finally:
        state.close()


def _kizen_status(kizen: Any) -> None:
    if kizen is None:
        return
    if kizen.last_error is None:
        click.echo(f"Kizen: reached by the last run ({kizen.last_success:%Y-%m-%d %H:%M} UTC)")
        return
    before = f"last reached {kizen.last_success:%Y-%m-%d %H:%M} UTC" if kizen.last_success else "never reached"
    click.echo(
        f"Kizen: NOT reached by the last run ({kizen.failed_at:%Y-%m-%d %H:%M} UTC): {kizen.last_error}; {before}"
    )


def _run_health(last: dict[str, Any], failures: list[Any]) -> str:
    """The run's status, with the items that are failed or quarantined: "ok" only when none is."""
    failed = sum(1 for f in failures if f.kind == "failed")
    quarantined = len(failures) - failed
    parts = [] if last["status"] == "ok" and failures else [last["status"]]
    parts += [f"{failed} item(s) failed"] if failed else []
    parts += [f"{quarantined} item(s) quarantined"] if quarantined else []
    return ", ".join(parts)


def _conflicts_line(indent: str, ids: list[int]) -> None:
    listed = ", ".join(str(i) for i in ids)
    click.echo(f"{indent}{len(ids)} open conflict(s) waiting for a decision: {listed} (syncd conflicts list)")


@cli.command("check")
@click.pass_context
@reports_errors
def check_command(ctx: click.Context) -> None:
    """Check the configuration, the mappings, Kizen and every source; change nothing."""
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
    if not all(f.ok for f in findings):
        sys.exit(1)


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
    from syncd.state import StateStore
    from syncd.wiring import kizen_client

    config = _config(ctx)
    chosen = config.feed(name)
    state = StateStore(config.sync.state)
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
    from syncd.state import StateStore

    state = StateStore(_config(ctx).sync.state, read_only=True)
    try:
        waiting = state.conflicts(open_only=True)
        for c in waiting:
            where = f"{c.occurrence.uid} {c.occurrence.slot or '-'}"
            click.echo(f"{c.id}: {where} {c.field}: calendar {c.calendar_value}, Kizen {c.kizen_value} ({c.status})")
        if not waiting:
            click.echo("no conflicts")
    finally:
        state.close()


@conflicts.command("resolve")
@click.argument("conflict_id", type=int)
@click.option("--keep", type=click.Choice(["calendar", "crm"]), required=True, help="Which side's value wins.")
@click.pass_context
@reports_errors
def conflicts_resolve(ctx: click.Context, conflict_id: int, keep: str) -> None:
    """Record a decision; the next sync applies it."""
    from syncd.state import StateStore

    state = StateStore(_config(ctx).sync.state)
    try:
        state.resolve_conflict(conflict_id, keep)  # type: ignore[arg-type]
        click.echo(f"conflict {conflict_id}: keeping the {keep} value at the next sync")
    finally:
        state.close()


def _data_file(data: str) -> str:
    """The sandbox's data file, its folder made if need be (``:memory:`` as it is)."""
    if data != ":memory:":
        from syncd.files import private_folder

        private_folder(Path(data).parent)
    return data


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port; 0 picks a free one."
)
@click.option(
    "--seed",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file of the business (employees, activity types, contacts); the built-in one if left out.",
)
@click.option(
    "--data",
    default=str(DEFAULT_SANDBOX_DATA),
    show_default=True,
    help='SQLite file the activities are kept in, or ":memory:" to forget them on exit.',
)
@click.option("--faults", default="", help='Random faults, e.g. "429=0.05,503=0.02,drop-after=0.01,latency=0.01-0.1".')
@click.option(
    "--fault-seed", default=0, show_default=True, help="Seed of the fault RNG: the same seed gives the same faults."
)
@reports_errors
def sandbox(host: str, port: int, seed: Path | None, data: str, faults: str, fault_seed: int) -> None:
    """Serve the Kizen sandbox, a local stand-in for Kizen's activities API."""
    import sqlite3

    from syncd.sandbox import FaultPlan, Sandbox, load_world

    plan = FaultPlan.parse(faults, seed=fault_seed)
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
@click.option("--data", default=str(DEFAULT_SANDBOX_DATA), show_default=True, help="The sandbox's SQLite file.")
@click.option("--seed", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The sandbox's seed file.")
@click.option("--as", "email", help="Act as the employee with this email (default: the API user).")
@click.pass_context
def sandbox_user(ctx: click.Context, data: str, seed: Path | None, email: str | None) -> None:
    """Act in the sandbox as a person in Kizen's web app would (for demos).

    Works on the sandbox's data file, beside a running `syncd sandbox`; completing an activity
    posts the activity.logged webhook, as Kizen does.
    """
    ctx.obj = {"data": data, "seed": seed, "email": email}


def _acting_user(ctx: click.Context) -> KizenUser:
    """Opens the sandbox's data for the rest of the command, and the user to act as."""
    from syncd.sandbox import Sandbox, load_world

    options = ctx.obj
    box = ctx.with_resource(Sandbox(load_world(options["seed"]), data=_data_file(options["data"])))
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
