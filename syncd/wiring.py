"""Where a process builds its clients: Kizen's (or the sandbox's), and the HTTP client feeds use.

Each is built once per process and handed to what needs it; nothing deeper in the code makes an
HTTP client of its own. Kizen's client has its own connection pool: it carries Kizen's base URL
and the daemon times every Kizen request through its event hooks, which a feed's fetch must not
be counted in. Each source's connector is built by the registry
(:func:`syncd.calendar.connectors.connect`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import SecretStr

from syncd.calendar.connectors.net import FeedTransport
from syncd.config import Config
from syncd.files import private_folder
from syncd.kizen import ActivitiesClient, Credentials, http_client
from syncd.kizen.limiter import HoldStore, Limiter, SharedLimiter

if TYPE_CHECKING:
    from syncd.sandbox import Sandbox

FEED_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def feed_client() -> httpx.Client:
    """The one client a process fetches ICS feeds with; its owner closes it.

    Its transport holds each source's policy (the addresses it may reach, the CAs it trusts) and
    bounds every socket operation by the fetch's deadline (:mod:`syncd.calendar.connectors.net`).
    """
    return httpx.Client(timeout=FEED_TIMEOUT, transport=FeedTransport())


def kizen_timeout(seconds: float) -> httpx.Timeout:
    """``[kizen] timeout_seconds`` for each request; connecting and waiting for a pooled
    connection never take longer than the defaults (5 s and 10 s)."""
    return httpx.Timeout(seconds, connect=min(5.0, seconds), pool=min(10.0, seconds))


def limiter_of(config: Config, holds: HoldStore | None, base_url: str, business_id: str) -> Limiter:
    """The pace of one business: the process's own, or shared through ``holds`` by every worker,
    keyed by Kizen's base URL and the business id so two Kizens never hold each other back;
    spaced by ``[kizen] max_requests_per_second`` when set."""
    cap = config.kizen.max_requests_per_second
    interval = 1 / cap if cap else 0.0
    if holds is None:
        return Limiter(interval=interval)
    return SharedLimiter(store=holds, key=f"{base_url.rstrip('/')} {business_id}", interval=interval)


def kizen_client(config: Config, holds: HoldStore | None = None) -> tuple[ActivitiesClient, Callable[[], None]]:
    """The Kizen client of this config, and how to close it: the real service, or the sandbox.

    ``holds``: the state workers share; a 429 any of them gets then holds back all of them
    (:class:`syncd.kizen.limiter.SharedLimiter`). Without it, the process keeps its own pace.
    """
    settings = config.kizen
    if settings.sandbox is not None:
        from syncd.sandbox import Sandbox, load_world

        private_folder(settings.sandbox.data.parent)
        box = Sandbox(load_world(settings.sandbox.seed), data=settings.sandbox.data)
        client = sandbox_client(box)
        client.limiter = limiter_of(config, holds, str(client.http.base_url), client.credentials.business_id)

        def close_sandbox() -> None:
            client.http.close()
            box.close()

        return client, close_sandbox
    http = http_client(settings.base_url.rstrip("/"), timeout=kizen_timeout(settings.timeout_seconds))
    assert settings.business_id and settings.user_id  # checked on load
    credentials = Credentials(settings.api_key(), settings.business_id, settings.user_id)
    limiter = limiter_of(config, holds, settings.base_url, settings.business_id)
    return ActivitiesClient(http, credentials, limiter=limiter), http.close


def sandbox_client(box: Sandbox, url: str | None = None, **options: Any) -> ActivitiesClient:
    """A client of the sandbox: in-process, or over loopback HTTP at ``url``; the caller closes it."""
    http = http_client(url) if url else http_client("http://sandbox.invalid", transport=box.transport())
    world = box.world
    credentials = Credentials(SecretStr(world.business.api_key), str(world.business.id), str(world.api_user.id))
    return ActivitiesClient(http, credentials, **options)
