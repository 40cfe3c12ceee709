"""``syncd status``: what the state store knows, as facts a person can act on (or ``--json``).

Per source: its state and the reason (``never synced``, ``ok``, ``failing items`` when its last
run was ok but items of it are failed or quarantined, ``failed``, ``stopped`` when a safety rail
holds its deletions), the last run's counts, each collection's last read, the failed and
quarantined items with their reasons, the items its mapping rules skipped (counted by reason) and
its open conflicts, each with the command that settles it. Kizen has its own entry. The same
facts render as text and as JSON (``status --json``, stable keys, times in ISO 8601 UTC).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from syncd.config import Config, IcsSourceConfig, SourceConfig
from syncd.redaction import shown_feed
from syncd.state import Store
from syncd.state.protocol import SKIPPED


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def facts(config: Config, state: Store) -> dict[str, Any]:
    """Everything ``status`` shows, JSON-ready."""
    runs = state.last_runs()
    pairings = state.pairings()
    rails = state.rails()
    lead = {p.id: p.lead.source for p in pairings if p.lead}
    conflicts = [
        {
            "id": c.id,
            "source": lead.get(c.occurrence, None),
            "uid": c.occurrence.uid,
            "slot": c.occurrence.slot,
            "field": c.field,
            "calendar": c.calendar_value,
            "kizen": c.kizen_value,
            "settle": f"syncd conflicts resolve {c.id} --keep calendar|kizen",
        }
        for c in state.conflicts(open_only=True)
        if c.status == "open"
    ]
    kizen = state.component("kizen")
    sources = []
    for source in config.sources:
        last = runs.get(source.name)
        failures = state.failures(source.name)
        failed = [f for f in failures if f.kind == "failed"]
        quarantined = [f for f in failures if f.kind == "quarantined"]
        health, reason = _state(last, rails.get(source.name), len(failed), len(quarantined))
        skipped = json.loads(state.lookup(SKIPPED, source.name) or "{}")
        sources.append(
            {
                "name": source.name,
                "state": health,
                "reason": reason,
                "last_run": None
                if last is None
                else {
                    "finished_at": _iso(datetime.fromisoformat(last["finished_at"] or last["started_at"])),
                    "status": last["status"],
                    "counts": {kind.lower(): n for kind, n in sorted(last["counts"].items())},
                    "errors": last["errors"],
                },
                "open_pairings": sum(1 for p in pairings if p.lead and p.lead.source == source.name and not p.settled),
                "collections": {_shown(source, url): _iso(at) for url, at in state.cursor_times(source.name).items()},
                "failed": [_item(f) for f in failed],
                "quarantined": [_item(f) for f in quarantined],
                "skipped": skipped,
                "conflicts": [c["id"] for c in conflicts if c["source"] == source.name],
            }
        )
    return {
        "kizen": None
        if kizen is None
        else {
            "state": "ok" if kizen.last_error is None else "failed",
            "reason": kizen.last_error,
            "last_success": _iso(kizen.last_success),
            "failed_at": _iso(kizen.failed_at) if kizen.last_error else None,
        },
        "sources": sources,
        "conflicts": conflicts,
    }


def _shown(source: SourceConfig, url: str) -> str:
    """A collection as status shows it: an ICS feed's URL without what may be its token."""
    return shown_feed(url) if isinstance(source, IcsSourceConfig) else url


def _item(failure: Any) -> dict[str, Any]:
    return {"uid": failure.uid, "slot": failure.slot, "reason": failure.reason, "since": _iso(failure.first_seen)}


def _state(last: dict[str, Any] | None, rail: str | None, failed: int, quarantined: int) -> tuple[str, str | None]:
    """A source's state and why: a safety rail and a failed run come first, then failing items."""
    if rail is not None:
        return "stopped", f"a safety rail holds its deletions: {rail} (run with --force-delete to apply them)"
    if last is None:
        return "never synced", None
    if last["status"] not in ("ok", "running"):
        errors = last["errors"]
        return last["status"], errors[0] if errors else "no reason was recorded"
    parts = [f"{failed} item(s) failed"] if failed else []
    parts += [f"{quarantined} item(s) quarantined"] if quarantined else []
    return ("failing items", ", ".join(parts)) if parts else ("ok", None)


def lines(found: dict[str, Any], now: datetime) -> list[str]:
    """The facts as text, one source a block."""
    out: list[str] = []
    kizen = found["kizen"]
    if kizen is not None:
        if kizen["state"] == "ok":
            out.append(f"Kizen: reached by the last run ({_short(kizen['last_success'])} UTC)")
        else:
            before = f"last reached {_short(kizen['last_success'])} UTC" if kizen["last_success"] else "never reached"
            out.append(
                f"Kizen: NOT reached by the last run ({_short(kizen['failed_at'])} UTC): {kizen['reason']}; {before}"
            )
    for source in found["sources"]:
        last = source["last_run"]
        when = f"last run {_short(last['finished_at'])} UTC" if last else "never run"
        state = source["state"] + (f": {source['reason']}" if source["reason"] else "")
        did = ", ".join(f"{n} {kind}" for kind, n in last["counts"].items()) if last else ""
        out.append(
            f"{source['name']}: {state}; {when}; {source['open_pairings']} open pairing(s)"
            + (f"; did {did}" if did else "")
        )
        for collection, read_at in source["collections"].items():
            age = f"{(now - datetime.fromisoformat(read_at)).total_seconds() / 60:.0f} min ago" if read_at else "never"
            out.append(f"  {collection}: read {age}")
        for kind in ("failed", "quarantined"):
            for item in source[kind]:
                slot = f" {item['slot']}" if item["slot"] else ""
                out.append(f"  {kind}: UID {item['uid']}{slot}: {item['reason']} (since {_short(item['since'])})")
        for reason, count in sorted(source["skipped"].items()):
            out.append(f"  skipped by the mapping rules: {count} item(s): {reason}")
    for conflict in found["conflicts"]:
        slot = f" {conflict['slot']}" if conflict["slot"] else ""
        where = f"{conflict['source']} " if conflict["source"] else ""
        out.append(
            f"conflict {conflict['id']}: {where}UID {conflict['uid']}{slot} {conflict['field']}: "
            f"calendar {conflict['calendar']}, Kizen {conflict['kizen']}; settle with: {conflict['settle']}"
        )
    if found["conflicts"]:
        out.append(f"{len(found['conflicts'])} open conflict(s) waiting for a decision")
    return out


def _short(iso: str | None) -> str:
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M") if iso else "never"
