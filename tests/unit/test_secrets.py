"""Secrets strong and private, syncd's files private, and no secret in any record, whoever logs it."""

from __future__ import annotations

import logging
import os
import stat
import string
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from syncd import redaction
from syncd.cli import cli
from syncd.config import load
from syncd.errors import ConfigError
from syncd.sandbox.store import Store
from syncd.state import StateStore
from tests.logs import assert_never_logged, capture_every_level
from tests.secretfiles import write_secret

STRONG = "Zx8_kP2-qW9rT4yU7iO0aS"  # 22 base64url characters: 132 bits


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The usual 022: whatever syncd makes private, it makes so itself."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text('[kizen.sandbox]\ndata = "sandbox.sqlite"\n' + text)
    return path


def refusal(path: Path) -> str:
    with pytest.raises(ConfigError) as refused:
        load(path)
    return str(refused.value)


@pytest.mark.parametrize("token", ["abc", "feed-token-7", "0123456789abcdef0123456789abcde", "a" * 21])
def test_a_weak_feed_token_is_refused_at_load_with_the_command_that_makes_one(tmp_path: Path, token: str) -> None:
    write_secret(tmp_path / "token", token)
    text = refusal(config(tmp_path, '[[feeds]]\nname = "team"\ntoken_file = "token"\n'))
    assert "feeds[team].token" in text and "too weak" in text and "`syncd secret`" in text


def test_a_weak_webhook_secret_from_the_environment_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_TEST_HOOK", "hook-secret-42")
    text = refusal(config(tmp_path, '[daemon]\nwebhook_secret_env = "SYNCD_TEST_HOOK"\n'))
    assert "daemon.webhook_secret ($SYNCD_TEST_HOOK)" in text and "`syncd secret`" in text


def test_strong_secrets_are_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_secret(tmp_path / "token", STRONG)
    monkeypatch.setenv("SYNCD_TEST_HOOK", "0123456789abcdef0123456789abcdef")  # 32 hex: 128 bits
    loaded = load(
        config(
            tmp_path,
            '[daemon]\nwebhook_secret_env = "SYNCD_TEST_HOOK"\n[[feeds]]\nname = "team"\ntoken_file = "token"\n',
        )
    )
    assert loaded.feed_tokens() == {STRONG: "team"}


@pytest.mark.parametrize(
    "setting",
    [
        '[[feeds]]\nname = "team"\ntoken_file = "secret"\n',
        '[daemon]\nwebhook_secret_file = "secret"\n',
        '[[sources]]\nname = "ada"\ntype = "caldav"\nowner = "ada@example.com"\nurl = "https://dav.example/"\npassword_file = "secret"\n',
    ],
    ids=["token_file", "webhook_secret_file", "password_file"],
)
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604], ids=["0644", "0640", "0604"])
def test_a_secrets_file_others_can_read_is_refused_naming_it_and_chmod(tmp_path: Path, setting: str, mode: int) -> None:
    secret = write_secret(tmp_path / "secret", STRONG)
    secret.chmod(mode)
    text = refusal(config(tmp_path, setting))
    assert f"{secret} is open to its group or others (mode {mode:04o})" in text and f"chmod 600 {secret}" in text


def test_an_api_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    key = write_secret(tmp_path / "key", "k" * 40)
    key.chmod(0o644)
    path = tmp_path / "config.toml"
    path.write_text('[kizen]\nbusiness_id = "b"\nuser_id = "u"\napi_key_file = "key"\n')
    text = refusal(path)
    assert "kizen.api_key" in text and f"chmod 600 {key}" in text


def test_syncd_secret_prints_a_token_of_256_bits_that_syncd_accepts(tmp_path: Path) -> None:
    made = {CliRunner().invoke(cli, ["secret"]).output.strip() for _ in range(3)}
    assert len(made) == 3  # random each time
    for token in made:
        assert len(token) == 43 and set(token) <= set(string.ascii_letters + string.digits + "-_")
    write_secret(tmp_path / "token", made.pop())
    load(config(tmp_path, '[[feeds]]\nname = "team"\ntoken_file = "token"\n'))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_state_store_and_its_lock_are_0600_in_a_0700_folder(tmp_path: Path, loose_umask: None) -> None:
    path = tmp_path / "made" / "by-syncd" / "state.sqlite"
    state = StateStore(path)
    with state.lock("run --once"):
        for name in ("state.sqlite", "state.sqlite-wal", "state.sqlite-shm", "state.sqlite.lock"):
            assert mode(path.parent / name) == 0o600, name
    state.close()
    assert mode(tmp_path / "made") == 0o700 and mode(path.parent) == 0o700


def test_an_existing_state_file_others_could_read_is_tightened(tmp_path: Path, loose_umask: None) -> None:
    path = tmp_path / "state.sqlite"
    StateStore(path).close()
    path.chmod(0o644)
    tmp_path.chmod(0o755)
    StateStore(path).close()
    assert mode(path) == 0o600 and mode(tmp_path) == 0o755  # a folder syncd did not make is left alone


def test_the_sandbox_data_is_0600_in_a_0700_folder(tmp_path: Path, loose_umask: None) -> None:
    path = tmp_path / "box" / "sandbox.sqlite"
    path.parent.mkdir(mode=0o700)
    store = Store(path)
    store.close()
    for name in ("sandbox.sqlite", "sandbox.sqlite-wal", "sandbox.sqlite-shm"):
        if (path.parent / name).exists():
            assert mode(path.parent / name) == 0o600, name
    assert mode(path) == 0o600


def test_the_sandbox_command_makes_its_data_folder_0700(tmp_path: Path, loose_umask: None) -> None:
    from syncd.cli import _data_file

    _data_file(str(tmp_path / "new" / "sandbox.sqlite"))
    assert mode(tmp_path / "new") == 0o700


class Kept(logging.Handler):
    """Every record that reaches the root logger (caplog's handler may carry the CLI's filters)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(logging.Formatter().format(record))  # now: later handlers may change the record


def test_no_record_shows_a_url_query_userinfo_or_a_registered_secret(caplog: pytest.LogCaptureFixture) -> None:
    redaction.install()
    redaction.register("UNIQUE9registered")
    capture_every_level(caplog)
    kept = Kept()
    logging.getLogger().handlers.insert(0, kept)  # first: before any filter that trims records
    try:
        url = "https://ada:UNIQUE7pw@dav.example:8443/cal/x.ics?token=UNIQUE8tok&a=1"
        logging.getLogger("httpx").info("HTTP Request: GET %s %r", url, "HTTP/1.1 200 OK")
        logging.getLogger("waitress").debug("key UNIQUE9registered, quoted %s", "UNIQUE9registered")
        try:
            raise RuntimeError(f"fetching {url} with UNIQUE9registered")
        except RuntimeError:
            logging.getLogger("caldav").exception("failed")
        logging.getLogger("syncd.x").warning("bad format %s %s", "only one")  # not raised at the caller
    finally:
        logging.getLogger().removeHandler(kept)
    lines = kept.lines
    assert len(lines) == 4
    assert lines[0] == (
        "HTTP Request: GET https://dav.example:8443/cal/x.ics?token=<redacted>&a=<redacted> 'HTTP/1.1 200 OK'"
    )
    assert "RuntimeError: fetching https://dav.example:8443/cal/x.ics?token=<redacted>" in lines[2]
    for secret in ("UNIQUE7pw", "UNIQUE8tok", "UNIQUE9registered", "ada:"):
        assert not [line for line in lines if secret in line]
    assert_never_logged(caplog, "UNIQUE7pw", "UNIQUE8tok", "UNIQUE9registered", "ada:")
