"""Running the emulator: ``run_emulator()`` for tests, ``serve()`` for the command line."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import attrs
from aiohttp import web

from aurous_async._clock import Clock, ScaledClock

from ._app import build_app
from ._control_routes import add_control_routes
from ._faults import Fault, WebhookFault
from ._loras import Lora, stable_id
from ._settings import EmulatorSettings
from ._state import KEY_ROTATION_GRACE, EmulatorState, RequestRecord
from ._stats import generation_counts


@attrs.frozen
class SeededTeam:
    """A team added by a test, with its full-scope key."""

    id: str
    api_key: str = attrs.field(repr=False)


class Emulator:
    """A running emulator and the controls tests use to steer it."""

    def __init__(self, state: EmulatorState, base_url: str) -> None:
        self.state = state
        self.base_url = base_url

    def __repr__(self) -> str:
        return f"Emulator(base_url={self.base_url!r})"

    @property
    def api_key(self) -> str:
        """The demo team's full-scope key."""
        return next(k.secret for k in self.state.keys.values() if k.team_id == self.team_id)

    @property
    def team_id(self) -> str:
        """The demo team's id."""
        return self.state.demo_team.id

    @property
    def clock(self) -> ScaledClock:
        """The job clock: jobs, expiry timers and timestamps run on it (``advance`` jumps it)."""
        return self.state.clock

    @property
    def rate_clock(self) -> Clock:
        """The clock the rate-limit buckets refill on."""
        return self.state.rate_clock

    @property
    def settings(self) -> EmulatorSettings:
        """The settings the emulator was started with."""
        return self.state.settings

    @property
    def requests(self) -> list[RequestRecord]:
        """Every API request served so far, oldest first (with ``record_requests``)."""
        return self.state.requests

    def advance(self, seconds: float) -> None:
        """Jump the job clock forward and run whatever became due."""
        self.state.clock.advance(seconds)
        self.state.scheduler.settle()

    # -- seeding -------------------------------------------------------------------
    def add_team(self, name: str = "Other Team", credits: float = 100.0) -> SeededTeam:
        """Add a team with ``credits`` and a full-scope key; returns its id and key."""
        team = self.state.add_team(name, Decimal(str(credits)))
        return SeededTeam(team.id, self.state.add_key(team.id, "full").secret)

    def add_key(self, team_id: str, scope: str = "full", *, legacy: bool = False) -> str:
        """Mint a key for ``team_id`` and return it.

        Args:
            team_id: an existing team.
            scope: ``"read"``, ``"write"`` or ``"full"``.
            legacy: mint an old-style ``og_`` key.

        Raises:
            KeyError: no such team.
        """
        return self.state.add_key(team_id, scope, legacy=legacy).secret

    def rotate_key(self, secret: str) -> str:
        """Mint a new key; the old one keeps working for 24 h (emulator clock)."""
        old = self.state.keys[secret]
        old.deactivate_at = self.state.now() + KEY_ROTATION_GRACE
        return self.state.add_key(old.team_id, old.scope).secret

    def revoke_key(self, secret: str) -> None:
        """Revoke a key at once; requests with it get 401.

        Raises:
            KeyError: no such key.
        """
        self.state.keys[secret].revoked = True

    def set_credits(self, team_id: str, credits: float) -> None:
        """Set a team's balance to ``credits``.

        Raises:
            KeyError: no such team.
        """
        team = self.state.teams[team_id]
        self.state.billing.set_credits(team, Decimal(str(credits)))

    def set_billing_mode(self, team_id: str, mode: str) -> None:
        """Set a team's billing mode (``"metered"`` or ``"exempt"``).

        Raises:
            KeyError: no such team.
        """
        self.state.teams[team_id].billing_mode = mode

    def add_lora(
        self,
        name: str,
        *,
        slug: str | None = None,
        kind: str = "image",
        team_id: str | None = None,
        description: str = "",
        **defaults: Any,
    ) -> str:
        """Seed a LoRA style; returns its ``lora_`` id.

        Args:
            name: the display name.
            slug: defaults to the name, lower-cased and dash-joined.
            kind: ``"image"`` (listed by ``GET /v1/loras``) or ``"video"`` (for
                ``video_lora_id`` and ``GET /v1/video_loras/{id}``).
            team_id: make it private to that team; ``None`` for a public style.
            defaults: ``default_steps``, ``default_guidance_scale``, ``has_template``,
                ``default_resolution``, ... (the fields of the LoRA objects).
        """
        if kind not in ("image", "video"):
            raise ValueError("kind must be 'image' or 'video'")
        if team_id is not None and team_id not in self.state.teams:
            raise ValueError(f"unknown team {team_id!r}")
        slug = slug or "-".join(name.lower().split())
        lora = Lora(
            stable_id("lora", f"seeded:{team_id}:{slug}"),
            slug,
            name,
            kind,
            description,
            created_at=self.state.now(),
            team_id=team_id,
            **defaults,
        )
        self.state.generations.loras.add(lora)
        return lora.id

    # -- faults and outcomes ---------------------------------------------------------
    def inject(self, fault: Fault) -> None:
        """Queue a request fault; it hits the next ``fault.times`` matching requests."""
        self.state.faults.add(fault)

    def clear_faults(self) -> None:
        """Drop every pending request fault and the webhook fault; release held webhooks."""
        self.state.faults.clear()
        self.state.webhooks.fault = None
        self.state.webhooks.release()

    def inject_webhook_fault(self, fault: WebhookFault) -> None:
        """Make signed endpoint deliveries misbehave until ``clear_faults``."""
        self.state.webhooks.fault = fault

    def hold_webhooks(self) -> None:
        """Queue deliveries without sending them, until ``release_webhooks``."""
        self.state.webhooks.hold()

    def release_webhooks(self, *, reverse: bool = False) -> None:
        """Send the held deliveries, oldest first, or newest first with ``reverse``."""
        self.state.webhooks.release(reverse=reverse)

    def force_outcome(
        self, generation_id: str, status: str, error_message: str | None = None
    ) -> None:
        """Drive an existing generation to ``status`` now."""
        self.state.generations.force_outcome(generation_id, status, error_message)

    def force_next_outcome(self, status: str, error_message: str | None = None) -> None:
        """The next generation created ends in ``status``."""
        self.state.generations.force_next_outcome(status, error_message)

    def force_next_character_outcome(self, status: str, error_message: str | None = None) -> None:
        """The next character synthesis started (create, regenerate, resynthesize) ends in
        ``status``: ``"ready"``, ``"failed"`` or ``"reviewing"`` (the older save flow)."""
        self.state.characters.force_next_outcome(status, error_message)

    def stats(self) -> dict[str, object]:
        """Request counts (by method, route template, status and bucket) and generation
        counts per team: what ``GET /_emulator/stats`` answers."""
        return {
            "object": "emulator.stats",
            "requests": self.state.stats.to_json(),
            "generations": generation_counts(self.state.generations.rows.values()),
        }

    def generations(self, team_id: str | None = None) -> list[dict[str, Any]]:
        """Server-side generation rows, as the API would render them."""
        return self.state.generations.dump(team_id)

    @property
    def deliveries(self) -> list[Any]:
        """Every webhook delivery attempt made so far."""
        return self.state.webhooks.deliveries


@contextlib.asynccontextmanager
async def run_emulator(
    settings: EmulatorSettings | None = None, **overrides: Any
) -> AsyncIterator[Emulator]:
    """Serve the emulator on a free loopback port for the duration of the block.

    Being for tests, it accepts ``http://127.0.0.1`` webhook receivers unless told
    otherwise. Keyword arguments override fields of ``settings`` (``control_token="…"``
    also serves the ``/_emulator/`` control routes, for other processes).

    Args:
        settings: the emulator's settings (default: ``EmulatorSettings()``).
        overrides: fields of ``settings`` to replace, e.g. ``time_scale=50``.

    Raises:
        TypeError: an override names no field of ``EmulatorSettings``.
        OSError: the port in the settings cannot be bound.
    """
    overrides.setdefault("allow_http_webhooks", True)
    settings = attrs.evolve(settings or EmulatorSettings(), **overrides)
    async with serve(settings) as emulator:
        yield emulator


@contextlib.asynccontextmanager
async def serve(settings: EmulatorSettings) -> AsyncIterator[Emulator]:
    """Start the server, its job ticker and webhook worker; stop them all on exit.

    Args:
        settings: the emulator's settings, used as they are (``run_emulator`` also
            accepts ``http://`` webhook receivers).

    Raises:
        OSError: ``settings.host`` / ``settings.port`` cannot be bound.
    """
    state = EmulatorState(settings)
    emulator = Emulator(state, "")
    app = build_app(state)
    if settings.control_token:
        add_control_routes(app, emulator, settings.control_token)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    base_url = f"http://{settings.host}:{port}"
    state.base_url = settings.public_base_url or base_url
    emulator.base_url = base_url
    tasks = [
        asyncio.create_task(state.scheduler.run(), name="aurous-emulator-ticker"),
        asyncio.create_task(state.webhooks.run(), name="aurous-emulator-webhooks"),
    ]
    try:
        yield emulator
    finally:
        state.closing = True
        state.stopping.set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await runner.cleanup()
