"""The sandbox assembled: its business, store, service, faults, webhooks and app."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from syncd.sandbox import webhooks
from syncd.sandbox.app import SandboxApp
from syncd.sandbox.faults import FaultPlan, Faults
from syncd.sandbox.server import SandboxTransport
from syncd.sandbox.service import Service
from syncd.sandbox.store import Store
from syncd.sandbox.user import KizenUser, acting_as
from syncd.sandbox.world import ActivityType, World, load_world
from syncd.service.serving import LoopbackServer

THREADS = 32  # Kizen answers many clients at once: the sandbox's server is not what limits a client's workers


def _now() -> datetime:
    return datetime.now(UTC)


class Sandbox:
    """A local Kizen business, reachable in-process or over loopback HTTP.

    Args:
        world: the business (employees, types, contacts); the packaged default if None.
        data: where activities live: ``":memory:"`` or a SQLite file that outlives the process.
        faults: the random fault plan; scripted faults go through ``sandbox.faults.script``.
        clock: the sandbox's idea of now (``created``, ``logged_at``, ``completed_at``).
        webhook_client: the httpx client webhooks are posted with.
    """

    def __init__(
        self,
        world: World | None = None,
        *,
        data: Path | str = ":memory:",
        faults: FaultPlan | None = None,
        clock: Callable[[], datetime] = _now,
        webhook_client: httpx.Client | None = None,
    ) -> None:
        self.world = world or load_world()
        self.store = Store(data)
        self.faults = Faults(faults)
        self.webhooks = webhooks.WebhookSender(webhook_client)
        self.service = Service(self.world, self.store, clock, self._logged)
        self.app = SandboxApp(self.world, self.service, self.faults)
        self._server: LoopbackServer | None = None

    @property
    def headers(self) -> dict[str, str]:
        """The three auth headers the sandbox accepts."""
        return {
            "X-API-KEY": self.world.business.api_key,
            "X-BUSINESS-ID": str(self.world.business.id),
            "X-USER-ID": str(self.world.api_user.id),
        }

    def transport(self) -> httpx.BaseTransport:
        """An httpx transport that calls the sandbox in-process."""
        return SandboxTransport(app=self.app)

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> LoopbackServer:
        """Starts the loopback server in a background thread; ``port=0`` picks a free one."""
        self._server = LoopbackServer(self.app, host, port, threads=THREADS, ident="kizen-sandbox").start()
        return self._server

    def user(self, email: str | None = None) -> KizenUser:
        """Acts as the employee with this email (the API user if None) in Kizen's UI."""
        return acting_as(self.service, email)

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
        self.webhooks.close()
        self.store.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _logged(self, activity_type: ActivityType, logged: dict[str, Any]) -> None:
        if activity_type.webhook_url:
            body = webhooks.payload(logged, str(activity_type.id), activity_type.api_name)
            self.webhooks.post(activity_type.webhook_url, body)
