"""The ``syncd`` command line: parse, call, map errors to messages and exit codes.

Exit codes: 0 all well; 1 something did not sync (each named); 2 configuration or usage.
Heavy modules are imported inside the commands, so ``--help`` answers at once.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from syncd import __version__
from syncd.errors import ConfigError, SyncdError

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_SANDBOX_DATA = Path(".syncd") / "sandbox.sqlite"


def exit_code(error: SyncdError) -> int:
    """The exit code for an error that ended a command."""
    return 2 if isinstance(error, ConfigError) else 1


def reports_errors(command: F) -> F:
    """Turns syncd's errors into one clear message and an exit code, with no traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SyncdError as error:
            click.echo(f"syncd: {error}", err=True)
            sys.exit(exit_code(error))

    return wrapper  # type: ignore[return-value]


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs whole URLs at INFO; keep it quiet unless asked.
    logging.getLogger("httpx").setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="syncd")
@click.option("-v", "--verbose", is_flag=True, help="Log debugging detail.")
def cli(verbose: bool) -> None:
    """syncd keeps calendars (CalDAV, ICS) and Kizen's activities in step, both ways."""
    _configure_logging(verbose)


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
    from syncd.sandbox import FaultPlan, Sandbox, load_world

    plan = FaultPlan.parse(faults, seed=fault_seed)
    if data != ":memory:":
        Path(data).parent.mkdir(parents=True, exist_ok=True)
    try:
        box = Sandbox(load_world(seed), data=data, faults=plan)
        server = box.serve(host, port)
    except OSError as exc:
        raise ConfigError([f"--port {port}: cannot listen on {host}: {exc.strerror}"]) from exc
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


def main() -> None:
    cli(prog_name="syncd")
