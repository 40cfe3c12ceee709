"""Every endpoint of the daemon's HTTP app answers any input with a 2xx, 3xx or 4xx, never a 5xx.

Hypothesis drives the WSGI app directly (raw WSGI environs, so paths and headers no client
would send get through): random and near-valid paths, methods, headers (bad If-None-Match and
If-Modified-Since, odd content types and lengths) and bodies (nested JSON, huge, bad UTF-8).
About a minute in CI; ``--fuzz-long`` runs many more examples. Each crash it found is a named
regression test below.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder, run_wsgi_app

from syncd.service.feed import ComponentCache, FeedItem, render_feed
from syncd.service.page import StatusPage
from syncd.service.web import Health, Metrics, SourceHealth, WebApp
from syncd.state import RenderedFeed

WHEN = datetime(2026, 11, 22, 12, tzinfo=UTC)
TOKEN = "Zx8_kP2-qW9rT4yU7iO0aSfeed"
SECRET = "Zx8_kP2-qW9rT4yU7iO0aShook"
STATUS = "Zx8_kP2-qW9rT4yU7iO0aSpage"
CONFLICT = {"id": 7, "source": "ada", "uid": "u@x", "slot": "", "field": "due", "calendar": "a", "kizen": "b"}
FACTS = {"kizen": None, "sources": [], "conflicts": [{**CONFLICT, "settle": "syncd conflicts resolve 7"}]}
SETTLED: list[tuple[int, str]] = []
CALDAV_ERROR = "reading the calendars: cannot reach 127.0.0.1:5232 (connection refused)"


def app() -> WebApp:
    cache = ComponentCache()

    def render(name: str) -> RenderedFeed:
        body, etag = render_feed(name, [FeedItem("a1", "Meeting", WHEN, note="Intro call")], cache)
        return RenderedFeed(body, etag, WHEN)

    health = Health(SourceHealth(WHEN, None, False), {"ada": SourceHealth(WHEN, CALDAV_ERROR, True)})
    return WebApp(
        feeds={TOKEN: "team"},
        render=render,
        webhook_secret=SECRET,
        on_logged=lambda _: None,
        health=lambda: health,
        metrics=Metrics(),
        page=StatusPage(lambda: FACTS, lambda conflict, keep: SETTLED.append((conflict, keep))),
        status_secret=STATUS,
    )


APP = app()
PATHS = [f"/feeds/{TOKEN}.ics", f"/webhooks/kizen/{SECRET}", "/healthz", "/metrics", "/feeds/x.ics", "/webhooks/kizen/"]
PATHS += [f"/status/{STATUS}", "/status/"]
# WSGI paths are latin-1 text: any byte, as the server decodes them
raw_text = st.binary(max_size=80).map(lambda b: b.decode("latin-1"))
paths = st.one_of(
    st.sampled_from(PATHS),
    st.tuples(st.sampled_from(PATHS), raw_text).map("".join),
    raw_text.map(lambda t: "/" + t),
)
methods = st.one_of(st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"]), st.text(max_size=8))


def nested(depth: int, kind: str) -> bytes:
    return {
        "list": b"[" * depth + b"]" * depth,
        "open": b"[" * depth,
        "dict": b'{"data":' * depth + b"1" + b"}" * depth,
    }[kind]


bodies = st.one_of(
    st.binary(max_size=2000),
    st.builds(nested, st.integers(1, 70_000), st.sampled_from(["list", "open", "dict"])),
    st.builds(lambda n: b"x" * n, st.integers(60_000, 300_000)),
    st.sampled_from([b"\xff\xfe{", b'{"id": "\xed\xa0\x80"}', b'{"id": 1e99999}', b'{"data": {"id": []}}', b"{}"]),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=70),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.sampled_from(["id", "data", "logged_activity_id", "x"]), inner, max_size=4)
        ),
        max_leaves=20,
    ).map(lambda value: json.dumps(value).encode()),
)
header_names = st.sampled_from(
    [
        "If-None-Match",
        "If-Modified-Since",
        "Content-Type",
        "Accept",
        "Accept-Encoding",
        "Range",
        "Host",
        "X-Any",
        "Origin",
    ]
)
headers = st.dictionaries(header_names, raw_text.filter(lambda t: "\n" not in t and "\r" not in t), max_size=4)


def call(method: str, path: str, header: dict[str, str], body: bytes, length: str | None = None) -> tuple[int, bytes]:
    environ: dict[str, Any] = EnvironBuilder(method="POST", data=body).get_environ()
    environ["REQUEST_METHOD"], environ["PATH_INFO"] = method, path
    for name, value in header.items():
        environ["CONTENT_TYPE" if name == "Content-Type" else "HTTP_" + name.upper().replace("-", "_")] = value
    if length is not None:
        environ["CONTENT_LENGTH"] = length
    answer, status, _ = run_wsgi_app(APP, environ, buffered=True)
    return int(status.split()[0]), b"".join(answer)


def budget(request: pytest.FixtureRequest, ci: int, long: int) -> int:
    return long if request.config.getoption("--fuzz-long") else ci


@pytest.fixture
def examples(request: pytest.FixtureRequest) -> int:
    return budget(request, 5000, 100_000)


def test_any_request_is_answered_below_500(examples: int) -> None:
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(methods, paths, headers, bodies, st.one_of(st.none(), st.sampled_from(["-1", "abc", "99999999999", "0"])))
    def probe(method: str, path: str, header: dict[str, str], body: bytes, length: str | None) -> None:
        status, content = call(method, path, header, body, length)
        unhealthy = status == 503 and path == "/healthz" and method in ("GET", "HEAD")  # the health it reports
        assert status < 500 or unhealthy, (status, content[:200])
        page = path == f"/status/{STATUS}" and method in ("GET", "HEAD") and status == 200  # it links the feeds
        assert (
            b"5232" not in content and (page or TOKEN.encode() not in content) and SECRET.encode() not in content
        )  # no CalDAV host or port, whatever is asked

    probe()


def test_any_form_posted_to_the_status_page_is_a_4xx_unless_it_is_the_pages_own(examples: int) -> None:
    token = APP._page.token()  # type: ignore[union-attr]
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    fields = st.one_of(st.text(max_size=30), st.sampled_from(["7", "kizen", "calendar", "crm", token, "07", " 7"]))
    forms = st.dictionaries(st.sampled_from(["token", "conflict", "keep", "x"]), fields, max_size=4)
    origins = st.one_of(
        st.just({}),
        st.sampled_from(["null", "http://localhost", "http://evil.example", "\xff"]).map(
            lambda origin: {"Origin": origin}
        ),
    )

    @settings(max_examples=examples // 5, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(forms, origins)
    def probe(form: dict[str, str], origin: dict[str, str]) -> None:
        SETTLED.clear()
        body = "&".join(f"{quote(k)}={quote(v)}" for k, v in form.items()).encode()
        status, content = call("POST", f"/status/{STATUS}", {**form_type, "Host": "localhost", **origin}, body)
        own = (
            form.get("token") == token
            and form.get("conflict") in ("7", "07")
            and form.get("keep") in ("calendar", "kizen", "crm")
            and origin.get("Origin") in (None, "null", "http://localhost")
        )
        assert status == (303 if own else status) and (own or 400 <= status < 500), (status, content[:200], form)
        assert SETTLED == ([(7, form["keep"])] if own else [])

    probe()


def test_a_body_nested_past_the_parsers_depth_is_a_400() -> None:
    for body in (b"[" * 60_000, nested(30_000, "list"), nested(5_000, "dict")):
        assert call("POST", f"/webhooks/kizen/{SECRET}", {}, body)[0] == 400


def test_a_body_of_bad_utf8_or_an_out_of_range_number_is_a_400() -> None:
    for body in (b"\xff\xfe{", b'{"id": 1e99999}', b'{"data": {"id": []}}'):
        assert call("POST", f"/webhooks/kizen/{SECRET}", {}, body)[0] == 400


def test_bad_conditional_headers_on_the_feed_are_ignored() -> None:
    for header in ({"If-None-Match": '"unclosed, W/'}, {"If-Modified-Since": "yesterday"}, {"If-None-Match": "\xff"}):
        assert call("GET", f"/feeds/{TOKEN}.ics", header, b"")[0] == 200


def test_healthz_shows_a_category_never_the_error_text() -> None:
    status, content = call("GET", "/healthz", {}, b"")
    assert status == 503 and json.loads(content)["sources"]["ada"]["last_error"] == "unreachable"
    assert b"127.0.0.1" not in content


def test_the_app_answers_an_unforeseen_error_without_raising_it_to_the_server() -> None:
    broken = WebApp(
        feeds={TOKEN: "team"},
        render=lambda name: 1 / 0,  # type: ignore[arg-type,return-value]
        webhook_secret=SECRET,
        on_logged=lambda _: None,
        health=lambda: 1 / 0,  # type: ignore[arg-type,return-value]
        metrics=Metrics(),
    )
    for path in (f"/feeds/{TOKEN}.ics", "/healthz"):
        environ = EnvironBuilder(path=path).get_environ()
        answer, status, _ = run_wsgi_app(broken, environ, buffered=True)
        assert status.startswith("500") and TOKEN.encode() not in b"".join(answer)
