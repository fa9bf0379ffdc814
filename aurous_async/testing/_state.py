"""Everything the emulator knows: teams, keys, buckets, money, jobs, and timed events."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from decimal import Decimal

import attrs

from aurous_async._clock import Clock, ScaledClock, SystemClock

from ._billing import Billing
from ._characters import CharacterStore
from ._faults import FaultPlan
from ._files import FileStore
from ._generations import GenerationStore
from ._idempotency import IdempotencyStore
from ._ids import new_id
from ._ratelimit import RateLimiter
from ._settings import API_VERSION, DEMO_API_KEY, DEMO_TEAM_NAME, EmulatorSettings
from ._stats import RequestStats
from ._webhooks import WebhookHub

SCOPE_RANK = {"read": 0, "write": 1, "full": 2}
KEY_ROTATION_GRACE = 24 * 3600.0


@attrs.define(eq=False)
class Team:
    id: str
    name: str
    created_at: float
    credits: Decimal = Decimal(0)
    held: Decimal = Decimal(0)
    billing_mode: str = "metered"
    billing_email: str | None = None
    default_api_version: str = API_VERSION
    balance_low_at: float | None = None

    @property
    def available(self) -> Decimal:
        return self.credits - self.held


@attrs.define(eq=False)
class ApiKey:
    id: str
    secret: str = attrs.field(repr=False)
    team_id: str
    scope: str
    created_at: float
    deactivate_at: float | None = None
    revoked: bool = False


@attrs.frozen
class RequestRecord:
    """One request as the emulator saw it (for tests and benchmarks)."""

    method: str
    path: str
    status: int
    bucket: str | None
    team_id: str | None
    at: float
    request_id: str


class Scheduler:
    """Timed events on the emulator clock, run by ``settle`` and by a background ticker."""

    def __init__(self, clock: ScaledClock) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, Callable[[float], None]]] = []
        self._seq = itertools.count()
        self._wake: asyncio.Event | None = None

    def at(self, due: float, action: Callable[[float], None]) -> None:
        """Run ``action(due)`` once the clock reaches ``due``."""
        heapq.heappush(self._heap, (due, next(self._seq), action))
        if self._wake is not None and self._heap[0][0] == due:
            self._wake.set()

    def settle(self) -> None:
        """Run every event that is due, in time order."""
        heap = self._heap
        if not heap:
            return
        now = self._clock.time()
        while heap and heap[0][0] <= now:
            due, _, action = heapq.heappop(heap)
            action(due)

    async def run(self) -> None:
        """Keep settling as time passes (webhooks must fire even if nobody polls)."""
        self._wake = asyncio.Event()
        while True:
            self.settle()
            if self._heap:
                real = max(0.0, (self._heap[0][0] - self._clock.time()) / self._clock.scale)
                timeout: float | None = min(real, 1.0)
            else:
                timeout = None
            self._wake.clear()
            # A plain wait, woken by a timer: asyncio.wait_for (before Python 3.12), and
            # a cancel scope on 3.10, can swallow this task's cancellation when the event
            # is set at the same moment, and the emulator's shutdown then waits for it
            # for ever.
            timer = (
                None
                if timeout is None
                else asyncio.get_running_loop().call_later(timeout, self._wake.set)
            )
            try:
                await self._wake.wait()
            finally:
                if timer is not None:
                    timer.cancel()


class EmulatorState:
    """The emulator's whole world. Domain stores hang off it as attributes."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self.settings = settings
        self.clock: ScaledClock = settings.clock or ScaledClock(
            settings.time_scale, start=settings.start_time
        )
        self.rate_clock: Clock = settings.rate_clock or SystemClock()
        #: Real time, for what happens in the receiver's world: webhook signatures.
        self.signing_clock: Clock = settings.signing_clock or SystemClock()
        self.base_url = settings.public_base_url or ""
        self.teams: dict[str, Team] = {}
        self.keys: dict[str, ApiKey] = {}
        self.requests: list[RequestRecord] = []
        self.stats = RequestStats()
        #: Set while the server shuts down: hung requests (fault ``hang``) let go.
        self.closing = False
        self.stopping = asyncio.Event()
        self.limiter = RateLimiter(settings.buckets, self.rate_clock)
        self.idempotency = IdempotencyStore()
        self.scheduler = Scheduler(self.clock)
        self.faults = FaultPlan()
        self.billing = Billing(self)
        self.webhooks = WebhookHub(self)
        self.generations = GenerationStore(self)
        self.files = FileStore(self)
        self.characters = CharacterStore(self)
        demo = self.add_team(DEMO_TEAM_NAME, Decimal(str(settings.initial_credits)))
        demo.billing_email = "billing@demo.example"
        self.demo_team = demo
        self.add_key(demo.id, "full", secret=DEMO_API_KEY)

    def now(self) -> float:
        """The emulator clock (time-scaled), in epoch seconds."""
        return self.clock.time()

    def add_team(self, name: str, credits: Decimal) -> Team:
        team = Team(id=new_id("team"), name=name, created_at=self.now())
        self.teams[team.id] = team
        if credits:
            self.billing.topup(team, credits, "Initial credits")
        return team

    def add_key(
        self, team_id: str, scope: str = "full", *, secret: str | None = None, legacy: bool = False
    ) -> ApiKey:
        if scope not in SCOPE_RANK:
            raise ValueError(f"unknown scope {scope!r}")
        if secret is None:
            import secrets

            secret = ("og_" if legacy else "al_live_") + secrets.token_hex(32)
        key = ApiKey(new_id("apikey"), secret, team_id, scope, self.now())
        self.keys[secret] = key
        return key
