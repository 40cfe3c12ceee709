"""The daemon's status page over real loopback HTTP: the facts `syncd status --json` prints, the
conflicts settled from its form, the feeds' links, its secret, and 4xx for any bad form."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from syncd.cli import cli
from syncd.config import load
from syncd.errors import ConfigError
from syncd.service.page import StatusPage
from syncd.service.serving import LoopbackServer
from syncd.service.web import Health, Metrics, SourceHealth, WebApp
from tests.secretfiles import write_secret
from tests.statuspage import FEED_TOKEN, HOSTILE_REASON, STATUS_SECRET, Served, example_config, form_token, served


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Served]:
    with served(tmp_path) as running:
        yield running


def leaves(value: Any) -> Iterator[str]:
    """Every key and value of the JSON, as text."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


KEYS = {"kizen", "sources", "conflicts", "name", "state", "reason", "last_run", "last_success", "failed_at"} | {
    "finished_at", "status", "counts", "errors", "open_pairings", "collections", "failed", "quarantined", "skipped",
    "uid", "slot", "since", "id", "source", "field", "calendar", "settle",
}  # fmt: skip


def test_the_page_shows_every_fact_of_status_json_and_the_feed_links(page: Served) -> None:
    found = json.loads(CliRunner().invoke(cli, ["--config", str(page.config), "status", "--json"]).output)
    answer = httpx.get(page.url)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert answer.headers["Cache-Control"] == "no-store" and answer.headers["Referrer-Policy"] == "same-origin"
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]  # no script can run
    text = html.unescape(answer.text)
    missing = {leaf for leaf in leaves(found) if leaf not in KEYS and leaf not in text}
    assert not missing  # every value status --json has (times as ISO in <time datetime>)
    assert f"syncd conflicts resolve {page.conflict} --keep calendar|kizen" in text
    # an item's reason is text, never markup
    assert "<script>" not in answer.text and html.escape(HOSTILE_REASON) in answer.text
    # each served feed's subscription link works
    link = f"{page.base}/feeds/{FEED_TOKEN}.ics"
    assert f'href="{link}"' in answer.text and f'href="webcal://{link.split("://")[1]}"' in answer.text
    unready = httpx.get(link)  # before the daemon's first rendering: ask again, not an empty feed
    assert unready.status_code == 503 and unready.headers["Retry-After"] == "60"
    page.daemon.refresh_feeds()
    feed = httpx.get(link)
    assert feed.status_code == 200 and b"X-WR-CALNAME:team" in feed.content


def test_a_conflict_is_settled_from_the_form_as_conflicts_resolve_settles_it(page: Served) -> None:
    with httpx.Client() as client:
        before = client.get(page.url).text
        assert f'id="conflict-{page.conflict}"' in before
        form = {"token": form_token(before), "conflict": str(page.conflict), "keep": "kizen"}
        posted = client.post(page.url, data=form, headers={"Origin": page.base})
        assert posted.status_code == 303
        assert posted.headers["Location"] == f"/status/{STATUS_SECRET}?settled={page.conflict}&kept=kizen"
        after = client.get(page.base + posted.headers["Location"])
    assert page.keep_of(page.conflict) == ("resolved", "crm")  # what `--keep kizen` records
    assert f"Conflict {page.conflict} settled: the Kizen value is kept at the next sync." in after.text
    assert f'id="conflict-{page.conflict}"' not in after.text and "Open conflicts (0)" in after.text
    again = httpx.post(page.url, data=form)
    assert again.status_code == 409 and "not open" in again.text


def test_a_wrong_or_missing_secret_is_the_feeds_404(page: Served) -> None:
    unknown = httpx.get(f"{page.base}/feeds/guess.ics")
    assert unknown.status_code == 404
    for method, path in [
        ("GET", "/status/wrong"),
        ("GET", f"/status/{STATUS_SECRET[:-1]}"),
        ("GET", f"/status/{STATUS_SECRET}x"),
        ("POST", "/status/wrong"),
        ("GET", "/status/"),
        ("GET", "/status"),
    ]:
        answer = httpx.request(method, page.base + path, data={"conflict": str(page.conflict), "keep": "calendar"})
        assert answer.status_code == 404 and answer.content == unknown.content, path
    assert page.open_conflicts() == [page.conflict]


def test_without_a_status_secret_no_page_is_served(tmp_path: Path) -> None:
    app = WebApp(
        feeds={},
        render=lambda name: pytest.fail("no feed"),
        webhook_secret=None,
        on_logged=lambda _: None,
        health=lambda: Health(SourceHealth(None, None, False), {}),
        metrics=Metrics(),
        page=StatusPage(lambda: pytest.fail("no facts"), lambda *_: pytest.fail("no settling")),
        status_secret=None,
    )
    server = LoopbackServer(app, ident="syncd-test").start()
    try:
        for secret in ("", "None", STATUS_SECRET):
            assert httpx.get(f"{server.url}/status/{secret}").status_code == 404
    finally:
        server.stop()


def test_bad_form_input_is_a_4xx_that_says_why_and_settles_nothing(page: Served) -> None:
    token = form_token(httpx.get(page.url).text)
    good = {"token": token, "conflict": str(page.conflict), "keep": "calendar"}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({**good, "token": ""}, 403, "reload the page"),
        ({k: v for k, v in good.items() if k != "token"}, 403, "reload the page"),
        ({**good, "token": token[:-1] + ("A" if token[-1] != "A" else "B")}, 403, "reload the page"),
        ({**good, "token": "99999999999." + token.split(".")[1]}, 403, "reload the page"),
        ({**good, "token": "x" * 5000}, 403, "reload the page"),
        ({**good, "conflict": ""}, 400, "conflict"),
        ({**good, "conflict": "abc"}, 400, "conflict"),
        ({**good, "conflict": "-1"}, 400, "conflict"),
        ({**good, "conflict": "1e3"}, 400, "conflict"),
        ({**good, "conflict": "\u0661"}, 400, "conflict"),  # an Arabic-Indic digit one: isdigit() but no id
        ({**good, "conflict": "9" * 400}, 400, "conflict"),
        ({**good, "conflict": "424242"}, 409, "not open"),
        ({**good, "keep": ""}, 400, "keep"),
        ({**good, "keep": "manual"}, 400, "keep"),
        ({**good, "keep": "<b>"}, 400, "keep"),
    ]
    for form, status, says in cases:
        answer = httpx.post(page.url, data=form)
        assert (answer.status_code, says in answer.text) == (status, True), form
    odd: list[tuple[dict[str, Any], int]] = [
        ({"content": b"\xff\xfe\x00garbage", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 403),
        ({"json": good}, 415),  # not the page's form
        ({"content": b"", "headers": {}}, 415),
        ({"content": b"token=" + b"a" * 20000, "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 413),
        ({"data": good, "headers": {"Origin": "https://evil.example"}}, 403),
        ({"files": {"conflict": ("c.txt", b"1")}, "data": good}, 415),  # an upload is never parsed
    ]
    for kwargs, status in odd:
        assert httpx.post(page.url, **kwargs).status_code == status, kwargs
    assert page.open_conflicts() == [page.conflict]  # none of them settled anything


def test_a_form_token_expires_and_a_restart_invalidates_it() -> None:
    now = [1_800_000_000.0]
    page = StatusPage(lambda: {}, lambda *_: None, clock=lambda: now[0])
    token = page.token()
    assert page._valid(token)
    now[0] += 12 * 3600 + 1
    assert not page._valid(token)
    assert not StatusPage(lambda: {}, lambda *_: None, clock=lambda: now[0])._valid(page.token())


def test_the_status_secret_is_held_to_the_webhooks_rules(tmp_path: Path) -> None:
    config = example_config(tmp_path)
    assert load(config).status_secret() == STATUS_SECRET
    write_secret(tmp_path / "status-secret", "short")
    with pytest.raises(ConfigError, match=r"daemon.status_secret .*too weak.*syncd secret"):
        load(config)
    (tmp_path / "status-secret").chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load(config)
    # never the webhook's or a feed's: Kizen and calendar apps hold those
    for shared in ("webhook_secret_file", "feed"):
        write_secret(tmp_path / "status-secret", FEED_TOKEN if shared == "feed" else STATUS_SECRET)
        text = config.read_text().split("\n[daemon]")[0] + '\n[daemon]\nstatus_secret_file = "status-secret"\n'
        config.write_text(text + ('webhook_secret_file = "status-secret"\n' if shared != "feed" else ""))
        with pytest.raises(ConfigError, match="the webhook or a feed uses the same secret"):
            load(config).status_secret()
        checked = CliRunner().invoke(cli, ["--config", str(config), "check"])
        assert checked.exit_code == 2 and "daemon.status_secret: the webhook or a feed" in checked.output


def test_a_reload_takes_the_new_status_secret(page: Served) -> None:
    new = "status-new-Qm3_vB8-nL1xC6zH4jK9"
    write_secret(page.config.parent / "status-secret", new)
    page.daemon.reload()
    assert httpx.get(page.url).status_code == 404
    assert httpx.get(f"{page.base}/status/{new}").status_code == 200
