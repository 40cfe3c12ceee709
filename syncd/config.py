"""syncd's configuration: one TOML file per Kizen business, validated whole on load.

This is the only module that reads configuration files and the environment. Every problem is
reported at once, each with its place in the file (``sources[1].url: ...``). Secrets are never
in the file: a setting names an environment variable (``*_env``) or a file (``*_file``) that
holds them, and they are kept as ``SecretStr``.

Relative paths (state, mappings, feeds, the sandbox's data) are read relative to the config
file's folder, so a config works from any working directory.

The file is found as vdirsyncer and khal find theirs (:func:`find`): ``-c/--config``, then the
``SYNCD_CONFIG`` variable, then ``./config.toml``, then ``syncd/config.toml`` in the XDG config
folder (``$XDG_CONFIG_HOME``, else ``~/.config``).
"""

from __future__ import annotations

import math
import os
import stat
import string
import tomllib
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from syncd import redaction
from syncd.errors import ConfigError
from syncd.model import Policy


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Secret(_Config):
    """Where a secret is read from: an environment variable or a file (first line)."""

    env: str | None = None
    file: Path | None = None

    def read(self, place: str, *, minimum_bits: int = 0) -> SecretStr:
        """The secret, remembered for redaction; refused when its file is readable by others
        or when it is weaker than ``minimum_bits`` (see :func:`strength`)."""
        if self.env:
            value = os.environ.get(self.env)
            if not value:
                raise ConfigError([f"{place}: the environment variable {self.env} is not set"])
            where = f"${self.env}"
        elif self.file:
            _private(self.file, place)
            try:
                value = self.file.read_text("utf-8").strip()
            except OSError as exc:
                raise ConfigError([f"{place}: cannot read {self.file}: {exc.strerror}"]) from exc
            where = str(self.file)
        else:
            raise ConfigError([f"{place}: give api_key_env or api_key_file"])
        redaction.register(value)
        if minimum_bits and strength(value) < minimum_bits:
            raise ConfigError(
                [
                    f"{place} ({where}): too weak ({strength(value)} bits, at least {minimum_bits} needed, "
                    "e.g. 22 random letters, digits, - or _); make one with `syncd secret`"
                ]
            )
        return SecretStr(value)


SECRET_BITS = 128
DEFAULT_TEAM = "default"  # the team of every source that names none: one team, as one process syncs it
_ALPHABETS = (
    (frozenset("0123456789abcdef"), 4.0),
    (frozenset("0123456789ABCDEF"), 4.0),
    (frozenset(string.ascii_letters + string.digits + "-_"), 6.0),
    (frozenset(string.ascii_letters + string.digits + "+/="), 6.0),
)


def strength(value: str) -> int:
    """A token's bits if it were random: its length times the bits per character of the smallest
    usual alphabet holding it (hex 4, base64 or base64url 6, any other printable text log2(95)).

    It cannot tell a random token from ``aaaa...``; the rule is there to refuse the short ones
    (a three-letter feed token was served), and ``syncd secret`` makes a good one.
    """
    chars = set(value)
    for alphabet, bits in _ALPHABETS:
        if chars <= alphabet:
            return int(len(value) * bits)
    return int(len(value) * math.log2(95))


def _private(path: Path, place: str) -> None:
    """Refuses a secrets file that its group or others could read (or write)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # reading it says why
    if mode & 0o077:
        raise ConfigError(
            [f"{place}: {path} is open to its group or others (mode {stat.S_IMODE(mode):04o}); run `chmod 600 {path}`"]
        )


class SandboxSettings(_Config):
    """Kizen emulated in-process (the embedded default): no network, no credentials."""

    data: Path = Path(".syncd/sandbox.sqlite")
    seed: Path | None = None


class Kizen(_Config):
    base_url: str = "https://app.go.kizen.com"
    business_id: str | None = None
    user_id: str | None = None
    api_key_env: str | None = None
    api_key_file: Path | None = None
    sandbox: SandboxSettings | None = Field(default=None, description="use the in-process sandbox instead of Kizen")
    timeout_seconds: float = Field(default=30.0, gt=0)
    concurrency: int = Field(
        default=8, ge=1, le=32, description="how many of a plan's writes to Kizen are sent at once (1: in turn)"
    )
    max_requests_per_second: float | None = Field(
        default=None, gt=0, description="a cap on the business's requests, shared by every worker (none: Kizen's 429s)"
    )

    @model_validator(mode="after")
    def _credentials(self) -> Kizen:
        if self.sandbox is None:
            missing = [name for name in ("business_id", "user_id") if not getattr(self, name)]
            if not (self.api_key_env or self.api_key_file):
                missing.append("api_key_env (or api_key_file)")
            if missing:
                raise ValueError(f"missing {', '.join(missing)} (or set [kizen.sandbox] to use the sandbox)")
        return self

    def api_key(self) -> SecretStr:
        return Secret(env=self.api_key_env, file=self.api_key_file).read("kizen.api_key")


class _Source(_Config):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    owner: str = Field(description="the employee's email whose calendar this is")
    zone: str | None = Field(default=None, description="IANA zone for floating and all-day times")
    conflict_policy: Policy = Policy.CALENDAR
    shared_identity: bool = True
    log_past_events: bool = False
    allow_mass_delete: bool = False
    team: str = Field(
        default=DEFAULT_TEAM,
        min_length=1,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="the sources that share meetings, synced by one worker at a time (syncd worker)",
    )

    @field_validator("zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("owner")
    @classmethod
    def _email(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError("give the owner's email")
        return value


class CalDAVSourceConfig(_Source):
    type: Literal["caldav"]
    url: str = Field(pattern=r"^https?://")
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    collections: tuple[str, ...] = ()
    write_back: bool = True
    import_from_crm: bool = False
    import_collection: str | None = Field(default=None, description="the collection CRM-made activities go to")
    timeout_seconds: float = Field(default=60.0, gt=0, description="the deadline of each fetch or request, whole")
    allow_private_network: bool = Field(default=False, description="may reach loopback, link-local, private addresses")
    ca_file: Path | None = Field(default=None, description="a PEM bundle of the CAs to trust instead of the system's")

    @model_validator(mode="after")
    def _import_target(self) -> CalDAVSourceConfig:
        if self.import_from_crm and not self.import_collection:
            raise ValueError("import_from_crm needs import_collection (a collection name or URL)")
        return self

    def password(self) -> SecretStr | None:
        if not (self.password_env or self.password_file):
            return None
        return Secret(env=self.password_env, file=self.password_file).read(f"sources.{self.name}.password")


class IcsSourceConfig(_Source):
    type: Literal["ics"]
    url: str = Field(description="an http(s) URL or a file path")
    max_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    timeout_seconds: float = Field(default=60.0, gt=0, description="the deadline of each fetch or request, whole")
    allow_private_network: bool = Field(default=False, description="may reach loopback, link-local, private addresses")
    ca_file: Path | None = Field(default=None, description="a PEM bundle of the CAs to trust instead of the system's")


SourceConfig = Annotated[CalDAVSourceConfig | IcsSourceConfig, Field(discriminator="type")]


def database_url_problem(url: str) -> str | None:
    """What is wrong with a PostgreSQL URL for ``[sync] state`` (None if nothing): it names a
    database and holds no password (libpq reads one from ``PGPASSWORD`` or ``~/.pgpass``)."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        return "the PostgreSQL URL's port is not a number"
    if parts.password is not None or "password=" in parts.query:
        return (
            "the PostgreSQL URL holds a password: leave it out and put it in ~/.pgpass "
            "(or the PGPASSWORD variable), as for psql"
        )
    if parts.path.strip("/") == "":
        return "the PostgreSQL URL names no database (postgresql://user@host:port/DATABASE)"
    return None


class Sync(_Config):
    state: Path | str = Field(
        default=Path(".syncd/state.sqlite"),
        description="a SQLite file, or a PostgreSQL URL (postgresql://user@host:port/database)",
    )
    mappings: tuple[Path, ...] = (Path("mappings/default.toml"),)
    internal_domains: tuple[str, ...] = ()
    zone: str = "UTC"
    lookback_days: float = Field(default=1, ge=0)
    horizon_days: float = Field(default=60, gt=0)
    series_cap: int = Field(default=500, gt=0)
    all_day_time: time = time(9, 0)
    watch_days: int = Field(default=90, gt=0)
    mass_delete_share: float = Field(default=0.5, gt=0, le=1)
    mass_delete_minimum: int = Field(default=10, ge=0)
    written_marker: str = Field(default="✓ ", description="put before a logged event's SUMMARY; empty for none")
    contacts_object: str = "client_client"

    @field_validator("state", mode="before")
    @classmethod
    def _state(cls, value: object) -> object:
        """A ``postgresql://`` (or ``postgres://``) URL stays a URL, anything else is a file path.

        The URL may not hold a password (nor a ``password=`` parameter): secrets are never in the
        file; libpq reads it from ``PGPASSWORD`` or ``~/.pgpass``, as for psql."""
        if not isinstance(value, str) or not value.startswith(("postgresql://", "postgres://")):
            return Path(value) if isinstance(value, str) else value
        problem = database_url_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def lookback(self) -> timedelta:
        return timedelta(days=self.lookback_days)

    @property
    def horizon(self) -> timedelta:
        return timedelta(days=self.horizon_days)


class FeedConfig(_Config):
    """One published ICS feed of activities."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    token_env: str | None = Field(default=None, description="the secret in the feed's URL, from the environment")
    token_file: Path | None = None
    employees: tuple[str, ...] = Field(default=(), description="emails; every source's owner if empty")
    activity_types: tuple[str, ...] = Field(default=(), description="names or api_names; every type if empty")
    include_direct_logs: bool = False
    all_day: Literal["date", "timed"] = Field(
        default="date",
        description="an all-day calendar item as an all-day event (date), or a short one at sync.all_day_time (timed)",
    )


class Daemon(_Config):
    """``syncd run``: the schedule and the HTTP server (feeds, webhook, health, metrics, status page).

    ``status_secret_env``/``status_secret_file``: the secret in the status page's URL
    (``/status/SECRET``), at least 128 bits like the webhook's; without one the page is not served.
    It must differ from the webhook secret and every feed token, which others (Kizen, calendar
    apps) hold: the page can settle conflicts.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    interval_seconds: float = Field(default=300, gt=0)
    jitter_seconds: float = Field(default=30, ge=0)
    reconcile_hours: float = Field(default=24, gt=0)
    webhook_secret_env: str | None = None
    webhook_secret_file: Path | None = None
    status_secret_env: str | None = None
    status_secret_file: Path | None = None

    def webhook_secret(self) -> str | None:
        if not (self.webhook_secret_env or self.webhook_secret_file):
            return None
        return (
            Secret(env=self.webhook_secret_env, file=self.webhook_secret_file)
            .read("daemon.webhook_secret", minimum_bits=SECRET_BITS)
            .get_secret_value()
        )

    def status_secret(self) -> str | None:
        """The status page's secret, or None (no page)."""
        if not (self.status_secret_env or self.status_secret_file):
            return None
        return (
            Secret(env=self.status_secret_env, file=self.status_secret_file)
            .read("daemon.status_secret", minimum_bits=SECRET_BITS)
            .get_secret_value()
        )


class Config(_Config):
    kizen: Kizen
    sync: Sync = Sync()
    daemon: Daemon = Daemon()
    sources: tuple[SourceConfig, ...] = ()
    feeds: tuple[FeedConfig, ...] = ()

    def feed_tokens(self) -> dict[str, str]:
        """Each feed's secret token -> the feed's name (feeds without a token are not served)."""
        tokens = {}
        for feed in self.feeds:
            if feed.token_env or feed.token_file:
                token = Secret(env=feed.token_env, file=feed.token_file).read(
                    f"feeds[{feed.name}].token", minimum_bits=SECRET_BITS
                )
                tokens[token.get_secret_value()] = feed.name
        return tokens

    def feed(self, name: str) -> FeedConfig:
        for feed in self.feeds:
            if feed.name == name:
                return feed
        raise ConfigError([f"no feed named {name!r}; the feeds are: {', '.join(f.name for f in self.feeds) or 'none'}"])

    def status_secret(self) -> str | None:
        """The status page's secret (see :class:`Daemon`), refused when the webhook or a feed uses it too."""
        secret = self.daemon.status_secret()
        others: set[str | None] = set()
        for read in (lambda: {self.daemon.webhook_secret()}, lambda: set(self.feed_tokens())):
            try:
                others |= read()
            except ConfigError:
                pass  # unreadable: its own reader says why
        if secret is not None and secret in others:
            raise ConfigError(
                [
                    "daemon.status_secret: the webhook or a feed uses the same secret; "
                    "make one of its own with `syncd secret`"
                ]
            )
        return secret

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        names = [s.name for s in self.sources]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"source names must be unique: {', '.join(duplicates)}")
        return self

    @model_validator(mode="after")
    def _importers_in_one_team(self) -> Config:
        """An employee's activities are imported into the calendars of one team only: two teams
        importing them side by side would each put a copy into their own calendar."""
        teams: dict[str, set[str]] = {}
        for source in self.sources:
            if isinstance(source, CalDAVSourceConfig) and source.import_from_crm:
                teams.setdefault(source.owner.lower(), set()).add(source.team)
        split = sorted(owner for owner, named in teams.items() if len(named) > 1)
        if split:
            raise ValueError(f"the sources that import from Kizen for {', '.join(split)} must share a team")
        return self

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        raise ConfigError([f"no source named {name!r}; the sources are: {', '.join(s.name for s in self.sources)}"])

    def teams(self) -> dict[str, tuple[str, ...]]:
        """Each team's sources, by team name (in config order); every source without a ``team``
        is in the team :data:`DEFAULT_TEAM`."""
        teams: dict[str, tuple[str, ...]] = {}
        for source in self.sources:
            teams[source.team] = (*teams.get(source.team, ()), source.name)
        return teams

    def source_zone(self, source: SourceConfig) -> ZoneInfo:
        return ZoneInfo(source.zone or self.sync.zone)


CONFIG_ENV = "SYNCD_CONFIG"


def config_home() -> Path:
    """syncd's folder in the XDG config folder: ``$XDG_CONFIG_HOME/syncd``, else ``~/.config/syncd``
    (a relative ``XDG_CONFIG_HOME`` is ignored, as the XDG spec says)."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    return (Path(base) if base and Path(base).is_absolute() else Path.home() / ".config") / "syncd"


def state_home() -> Path:
    """syncd's folder in the XDG state folder: ``$XDG_STATE_HOME/syncd``, else ``~/.local/state/syncd``."""
    base = os.environ.get("XDG_STATE_HOME", "")
    return (Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "state") / "syncd"


def find(given: Path | None = None, *, required: bool = True) -> Path | None:
    """The config file to use: ``given`` (``-c``), else ``$SYNCD_CONFIG``, else ``./config.toml``,
    else ``config.toml`` in :func:`config_home`; the first two are used even if missing (their
    error names them), the last two only if they exist.

    Raises:
        ConfigError: none was found and ``required``: the message lists the absolute paths tried.
    """
    if given is not None:
        return given
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    tried = [Path("config.toml").absolute(), config_home() / "config.toml"]
    for path in tried:
        if path.is_file():
            return path
    if not required:
        return None
    raise ConfigError(
        [f"no configuration file: looked for {', '.join(map(str, tried))}"]
        + [f"give one with -c FILE or {CONFIG_ENV}=FILE, or write a starter with `syncd init`"]
    )


def load(path: Path) -> Config:
    """Reads and validates a config file; relative paths are made relative to its folder.

    A file that cannot be read is named by its absolute path, with where it came from.
    """
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        origin = f" (from {CONFIG_ENV})" if os.environ.get(CONFIG_ENV) == str(path) else ""
        hint = "give another with -c FILE" if origin else "give the right one with -c FILE"
        raise ConfigError([f"{path.absolute()}{origin}: cannot read: {exc.strerror}; {hint}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not TOML: {exc}"]) from exc
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([f"{path}: {_place(e['loc'])}: {e['msg']}" for e in exc.errors()]) from exc
    config = _rebased(config, path.parent)
    _check_secrets(config)
    return config


def _check_secrets(config: Config) -> None:
    """Reads every secret that can be read now: a weak feed token or webhook secret, or a
    secrets file others can read, is refused at load, and each value is known to the log
    redaction before anything runs. One not there yet (an unset variable, a missing file) is
    left to the command that needs it, which says so."""
    daemon = config.daemon
    wanted = [(Secret(env=f.token_env, file=f.token_file), f"feeds[{f.name}].token", SECRET_BITS) for f in config.feeds]
    wanted.append(
        (Secret(env=daemon.webhook_secret_env, file=daemon.webhook_secret_file), "daemon.webhook_secret", SECRET_BITS)
    )
    wanted.append(
        (Secret(env=daemon.status_secret_env, file=daemon.status_secret_file), "daemon.status_secret", SECRET_BITS)
    )
    if config.kizen.sandbox is None:
        wanted.append((Secret(env=config.kizen.api_key_env, file=config.kizen.api_key_file), "kizen.api_key", 0))
    for source in config.sources:
        if isinstance(source, CalDAVSourceConfig):
            secret = Secret(env=source.password_env, file=source.password_file)
            wanted.append((secret, f"sources.{source.name}.password", 0))
    problems: list[str] = []
    for secret, place, bits in wanted:
        if (secret.env and os.environ.get(secret.env)) or (secret.file and secret.file.exists()):
            try:
                secret.read(place, minimum_bits=bits)
            except ConfigError as exc:
                problems += exc.problems
    if problems:
        raise ConfigError(problems)


def _place(location: tuple[int | str, ...]) -> str:
    """``("sources", 1, "caldav", "url")`` as ``sources[1].url`` (the union's tag left out)."""
    text = ""
    for part in location:
        if part in ("caldav", "ics") and text.endswith("]"):
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top)"


def _rebased(config: Config, folder: Path) -> Config:
    def here(path: Path) -> Path:
        return path if path.is_absolute() else folder / path

    def state_here(where: Path | str) -> Path | str:
        return here(where) if isinstance(where, Path) else where  # a database URL is no path

    sync = config.sync.model_copy(
        update={"state": state_here(config.sync.state), "mappings": tuple(map(here, config.sync.mappings))}
    )
    kizen = config.kizen
    if kizen.sandbox is not None:
        seed = here(kizen.sandbox.seed) if kizen.sandbox.seed else None
        kizen = kizen.model_copy(
            update={"sandbox": kizen.sandbox.model_copy(update={"data": here(kizen.sandbox.data), "seed": seed})}
        )
    feeds = tuple(f.model_copy(update={"token_file": here(f.token_file)}) if f.token_file else f for f in config.feeds)
    daemon = config.daemon
    if daemon.webhook_secret_file is not None:
        daemon = daemon.model_copy(update={"webhook_secret_file": here(daemon.webhook_secret_file)})
    if daemon.status_secret_file is not None:
        daemon = daemon.model_copy(update={"status_secret_file": here(daemon.status_secret_file)})
    if kizen.api_key_file is not None:
        kizen = kizen.model_copy(update={"api_key_file": here(kizen.api_key_file)})
    sources: list[SourceConfig] = []
    for source in config.sources:
        if isinstance(source, IcsSourceConfig) and not source.url.startswith(("http://", "https://")):
            source = source.model_copy(update={"url": str(here(Path(source.url)))})
        if isinstance(source, CalDAVSourceConfig) and source.password_file is not None:
            source = source.model_copy(update={"password_file": here(source.password_file)})
        if source.ca_file is not None:
            source = source.model_copy(update={"ca_file": here(source.ca_file)})
        sources.append(source)
    update = {"sync": sync, "kizen": kizen, "sources": tuple(sources), "feeds": feeds, "daemon": daemon}
    return config.model_copy(update=update)
