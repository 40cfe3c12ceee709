"""The feed as calendar apps read it: icalendar, vobject and khal, all-day items as days."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import icalendar
import vobject
from click.testing import CliRunner

from syncd.cli import cli

KHAL_CONFIG = """[calendars]
[[feed]]
path = {folder}
type = calendar
[locale]
timeformat = %H:%M
dateformat = %Y-%m-%d
longdateformat = %Y-%m-%d
datetimeformat = %Y-%m-%d %H:%M
longdatetimeformat = %Y-%m-%d %H:%M
default_timezone = UTC
local_timezone = UTC
"""


def export(config: Path, all_day: str | None = None) -> Path:
    if all_day is not None:
        config.write_text(
            config.read_text().replace(
                "include_direct_logs = true", f'include_direct_logs = true\nall_day = "{all_day}"'
            )
        )
    runner = CliRunner()
    assert runner.invoke(cli, ["--config", str(config), "run", "--once"]).exit_code == 0
    path = config.parent / "team.ics"
    assert runner.invoke(cli, ["--config", str(config), "feed", "export", "team", str(path)]).exit_code == 0
    return path


def khal(path: Path) -> list[str]:
    """khal's own reading of the feed: start | end | all-day | title, one event a line."""
    folder = path.parent / "khal"
    (folder / "calendar").mkdir(parents=True)
    (folder / "config").write_text(KHAL_CONFIG.format(folder=folder / "calendar"))
    khal_bin = Path(sys.executable).parent / "khal"
    shown = subprocess.run(
        [
            str(khal_bin),
            "-c",
            str(folder / "config"),
            "printics",
            "--format",
            "{start} | {end} | {all-day} | {title}",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return shown.stdout.splitlines()[1:]


def test_an_all_day_item_is_an_all_day_event_in_icalendar_vobject_and_khal(config: Path) -> None:
    path = export(config)
    body = path.read_bytes()
    events = {str(e["SUMMARY"]): e for e in icalendar.Calendar.from_ical(body).walk("VEVENT")}
    renewal = events["Meeting: Contract renewal deadline"]
    assert renewal.decoded("DTSTART") == date(2026, 12, 15) and renewal.decoded("DTEND") == date(2026, 12, 16)
    intro = events["Meeting: Intro call with Charles"]
    assert isinstance(intro.decoded("DTSTART"), datetime)  # a timed item stays timed
    parsed = vobject.readOne(body.decode())
    (day,) = [e for e in parsed.vevent_list if e.summary.value == "Meeting: Contract renewal deadline"]
    assert day.dtstart.value == date(2026, 12, 15) and day.dtend.value == date(2026, 12, 16)
    lines = khal(path)
    assert "2026-12-15 | 2026-12-15 | True | Meeting: Contract renewal deadline" in lines
    assert "2026-12-03 14:00 | 2026-12-03 14:30 | False | Meeting: Intro call with Charles" in lines


def test_a_feed_may_show_all_day_items_as_short_events_at_all_day_time(config: Path) -> None:
    path = export(config, "timed")
    events = {str(e["SUMMARY"]): e for e in icalendar.Calendar.from_ical(path.read_bytes()).walk("VEVENT")}
    renewal = events["Meeting: Contract renewal deadline"]
    start, end = renewal.decoded("DTSTART"), renewal.decoded("DTEND")
    assert start.isoformat() == "2026-12-15T08:00:00+00:00"  # 09:00 in Berlin, the config's zone
    assert (end - start).total_seconds() == 30 * 60  # the type's length, not a whole day
    assert "2026-12-15 08:00 | 2026-12-15 08:30 | False | Meeting: Contract renewal deadline" in khal(path)
