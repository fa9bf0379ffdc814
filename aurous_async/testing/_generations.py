"""Image and video generations: rows, the timed lifecycle, money and events (§8, A2, A10).

A generation is created ``queued`` (or ``pending``), moves to ``processing`` and ends in
``succeeded`` on the emulator clock. Durations depend on the request (pixels x steps x
count for images, seconds x resolution for videos) with a small seed-based spread.
``expired`` and ``moderation_rejected`` only happen when a test forces them (A18), and
fire no webhook. Terminal states never change.

Money (A10): create holds the price; success commits it, any other terminal state
releases it. ``cost`` is the held amount while running and the charged amount after.

Hot path: rows are indexed by id, each team's rows are kept in creation order with their
positions, and a row's JSON bytes are cached until it changes, so a GET is a dict lookup.
"""

from __future__ import annotations

import bisect
import secrets
from decimal import Decimal
from typing import TYPE_CHECKING

import attrs

from ._errors import ApiError
from ._ids import new_id
from ._loras import Lora, LoraCatalog
from ._pricing import BREAKDOWN_SCHEMA, COST_SCHEMA, cost_json
from ._schema import (
    BOOLEAN,
    INTEGER,
    NUMBER,
    STRING,
    TIMESTAMP,
    array,
    const,
    nullable,
    obj,
    one_of,
)
from ._serialize import dumps, iso
from ._signing import make_token

if TYPE_CHECKING:
    from ._billing import Hold
    from ._state import EmulatorState, Team

TERMINAL = frozenset({"succeeded", "failed", "cancelled", "expired", "moderation_rejected"})
#: Every wire status (A2), in lifecycle order.
STATUSES = (
    "queued",
    "pending",
    "processing",
    "succeeded",
    "failed",
    "cancelled",
    "expired",
    "moderation_rejected",
)
#: What ``force_outcome`` / ``force_next_outcome`` accept: a terminal state, or
#: ``processing`` for a job that gets stuck there (A18).
FORCEABLE = TERMINAL | {"processing"}
DEFAULT_ERRORS = {
    "failed": "The provider failed to render this generation.",
    "moderation_rejected": "Content policy violation",
    "expired": "The generation expired before a worker picked it up.",
}
#: Terminal status -> webhook verb. expired / moderation_rejected have none in 2026-05-15.
EVENT_VERB = {"succeeded": "completed", "failed": "failed", "cancelled": "cancelled"}
#: Per-generation webhook_url callbacks carry these verbs only (§8.8).
CALLBACK_VERBS = frozenset({"completed", "failed"})
ZERO = Decimal(0)

#: Lifecycle timing, in emulator seconds.
QUEUE_SECONDS = 1.0
IMAGE_BASE_SECONDS = 2.0
IMAGE_SECONDS_PER_STEP_MEGAPIXEL = 0.1
VIDEO_BASE_SECONDS = 3.0
VIDEO_SECONDS_PER_SECOND = 4.0
VIDEO_RESOLUTION_TIME = {"480p": 1.0, "720p": 1.5, "1080p": 2.5}


@attrs.define(eq=False, slots=True)
class Draft:
    """A validated create or estimate request (everything but the id and money state)."""

    media_type: str
    prompt: str | None
    base: Decimal
    enhance: Decimal
    width: int
    height: int
    inference_type: str
    loras: list[Lora] | None = None
    negative_prompt: str | None = None
    image_count: int | None = None
    size_preset: str | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    cfg_rescale: float | None = None
    denoise_strength: float | None = None
    seed: int | None = None
    character_id: str | None = None
    reference_image_urls: list[str] | None = None
    video_duration: int | None = None
    video_resolution: str | None = None
    video_ratio: str | None = None
    video_camera_fixed: bool | None = None
    watermark: bool | None = None
    first_frame_url: str | None = None
    last_frame_url: str | None = None
    enhance_prompt: bool = False
    webhook_url: str | None = None

    @property
    def amount(self) -> Decimal:
        return self.base + self.enhance

    ESTIMATE_SCHEMA = obj(
        {
            "object": const("estimate"),
            "estimated_cost": obj({"amount": NUMBER, "breakdown": BREAKDOWN_SCHEMA}),
            "currency": const("credit"),
        }
    )

    def estimate_json(self) -> dict[str, object]:
        cost = cost_json(self.base, self.enhance)
        return {
            "object": "estimate",
            "estimated_cost": {"amount": cost["amount"], "breakdown": cost["breakdown"]},
            "currency": "credit",
        }


@attrs.define(eq=False, slots=True)
class Generation:
    """One row. ``epoch`` invalidates scheduled transitions when a test takes over."""

    id: str
    team_id: str
    api_key_id: str | None
    draft: Draft
    seed: int
    hold: Hold
    status: str
    created_at: float
    aurous_version: str
    creation_request_id: str
    position: int
    started_at: float | None = None
    completed_at: float | None = None
    error_message: str | None = None
    charged: Decimal | None = None
    output_urls: list[str] = attrs.field(factory=list)
    output_video_url: str | None = None
    forced: tuple[str, str | None] | None = None
    epoch: int = 0
    cached: bytes | None = None
    #: Set on success: when the output URLs stop working (A4).
    expires_at: float | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def duration_ms(self) -> int | None:
        if self.completed_at is None:
            return None
        return round((self.completed_at - self.created_at) * 1000)

    #: The fields ``to_json`` writes, for ``/api-spec.json``.
    SCHEMA = obj(
        {
            "id": STRING,
            "object": const("inference"),
            "status": one_of(*STATUSES),
            "media_type": nullable(one_of("image", "video")),
            "prompt": nullable(STRING),
            "negative_prompt": nullable(STRING),
            "created_at": TIMESTAMP,
            "completed_at": nullable(TIMESTAMP),
            "output_urls": array(STRING),
            "output_video_url": nullable(STRING),
            "reference_image_urls": nullable(array(STRING)),
            "error_message": nullable(STRING),
            "duration_ms": nullable(INTEGER),
            "cost": COST_SCHEMA,
            "width": INTEGER,
            "height": INTEGER,
            "image_count": nullable(INTEGER),
            "size_preset": nullable(STRING),
            "inference_type": STRING,
            "cfg_rescale": nullable(NUMBER),
            "denoise_strength": nullable(NUMBER),
            "seed": INTEGER,
            "video_duration": nullable(INTEGER),
            "video_resolution": nullable(STRING),
            "video_ratio": nullable(STRING),
            "video_camera_fixed": nullable(BOOLEAN),
            "character_id": nullable(STRING),
            "loras": nullable(array(obj({"id": STRING, "name": STRING}))),
            "aurous_version": STRING,
            "creation_request_id": STRING,
        }
    )

    def to_json(self) -> dict[str, object]:
        """The GenerationResponse (§8.2). Every field is always present; null when n/a."""
        draft = self.draft
        if self.terminal and self.status != "succeeded":
            cost = cost_json(ZERO, ZERO)
        else:
            cost = cost_json(draft.base, draft.enhance)
        return {
            "id": self.id,
            "object": "inference",
            "status": self.status,
            "media_type": draft.media_type,
            "prompt": draft.prompt,
            "negative_prompt": draft.negative_prompt,
            "created_at": iso(self.created_at),
            "completed_at": iso(self.completed_at),
            "output_urls": list(self.output_urls),
            "output_video_url": self.output_video_url,
            "reference_image_urls": (
                list(draft.reference_image_urls) if draft.reference_image_urls else None
            ),
            "error_message": self.error_message,
            "duration_ms": self.duration_ms,
            "cost": cost,
            "width": draft.width,
            "height": draft.height,
            "image_count": draft.image_count,
            "size_preset": draft.size_preset,
            "inference_type": draft.inference_type,
            "cfg_rescale": draft.cfg_rescale,
            "denoise_strength": draft.denoise_strength,
            "seed": self.seed,
            "video_duration": draft.video_duration,
            "video_resolution": draft.video_resolution,
            "video_ratio": draft.video_ratio,
            "video_camera_fixed": draft.video_camera_fixed,
            "character_id": draft.character_id,
            "loras": (
                [{"id": lora.id, "name": lora.name} for lora in draft.loras]
                if draft.loras
                else None
            ),
            "aurous_version": self.aurous_version,
            "creation_request_id": self.creation_request_id,
        }

    def json_bytes(self) -> bytes:
        cached = self.cached
        if cached is None:
            cached = self.cached = dumps(self.to_json())
        return cached


def _spread(seed: int) -> float:
    """A deterministic factor in [0.9, 1.1) so equal requests do not finish in lockstep."""
    return 0.9 + ((seed * 2654435761) % 1000) / 5000


def run_seconds(draft: Draft, seed: int) -> float:
    """How long the job stays ``processing``, in emulator seconds."""
    if draft.media_type == "video":
        seconds = (
            VIDEO_BASE_SECONDS
            + VIDEO_SECONDS_PER_SECOND
            * (draft.video_duration or 5)
            * VIDEO_RESOLUTION_TIME[draft.video_resolution or "480p"]
        )
    else:
        megapixels = draft.width * draft.height / 1_000_000
        seconds = IMAGE_BASE_SECONDS + IMAGE_SECONDS_PER_STEP_MEGAPIXEL * (
            draft.steps or 30
        ) * megapixels * (draft.image_count or 1)
    return seconds * _spread(seed)


class GenerationStore:
    """Every generation of every team, and the test controls that steer them."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self.rows: dict[str, Generation] = {}
        self._team_rows: dict[str, list[Generation]] = {}
        self._team_times: dict[str, list[float]] = {}
        self._active: dict[str, int] = {}
        self._next_outcome: tuple[str, str | None] | None = None
        self.loras = LoraCatalog(self._team_created_at)

    def _team_created_at(self, team_id: str) -> float:
        team = self._state.teams.get(team_id)
        return team.created_at if team is not None else self._state.now()

    # -- reads ---------------------------------------------------------------------
    def get(self, team_id: str, generation_id: str) -> Generation:
        """The team's generation; 404 for unknown ids and other teams' ids alike."""
        row = self.rows.get(generation_id)
        if row is None or row.team_id != team_id:
            raise ApiError(404, "resource_not_found", f"No such generation: {generation_id}.")
        return row

    def team_rows(self, team_id: str) -> list[Generation]:
        """The team's rows, oldest first (creation order)."""
        return self._team_rows.get(team_id, [])

    def rows_between(self, team_id: str, start: float, end: float) -> list[Generation]:
        """The team's rows created in ``[start, end)``, oldest first."""
        times = self._team_times.get(team_id)
        if not times:
            return []
        lo = bisect.bisect_left(times, start)
        hi = bisect.bisect_left(times, end)
        return self._team_rows[team_id][lo:hi]

    def page(
        self, team_id: str, limit: int, after: str | None, before: str | None
    ) -> tuple[list[Generation], bool, str | None]:
        """Newest first, sliced like every list route (§8.5), in O(limit)."""
        rows = self.team_rows(team_id)
        if after is not None:
            pos = self._cursor(team_id, after, "starting_after")
            window = pos
            chosen = [rows[i] for i in range(pos - 1, max(-1, pos - 1 - limit), -1)]
        elif before is not None:
            pos = self._cursor(team_id, before, "ending_before")
            window = len(rows) - pos - 1
            chosen = [rows[i] for i in range(min(len(rows) - 1, pos + limit), pos, -1)]
        else:
            window = len(rows)
            chosen = [rows[i] for i in range(len(rows) - 1, max(-1, len(rows) - 1 - limit), -1)]
        has_more = window > limit
        return chosen, has_more, chosen[-1].id if has_more and chosen else None

    def _cursor(self, team_id: str, cursor: str, param: str) -> int:
        row = self.rows.get(cursor)
        if row is None or row.team_id != team_id:
            raise ApiError(400, "invalid_format", f"Unknown cursor {cursor!r}.", param=param)
        return row.position

    # -- create --------------------------------------------------------------------
    def create(
        self,
        team: Team,
        api_key_id: str | None,
        draft: Draft,
        version: str,
        request_id: str,
    ) -> Generation:
        """Admit, hold the price, store the row and schedule its lifecycle."""
        state = self._state
        state.billing.check_available(team, draft.amount)
        self._check_concurrency(team)
        generation_id = new_id("vid" if draft.media_type == "video" else "img")
        hold = state.billing.hold(
            team, draft.amount, generation_id, description=f"Hold for {generation_id}"
        )
        seed = draft.seed
        if seed is None or seed < 0:
            seed = secrets.randbelow(2**31)
        rows = self._team_rows.setdefault(team.id, [])
        now = state.now()
        row = Generation(
            id=generation_id,
            team_id=team.id,
            api_key_id=api_key_id,
            draft=draft,
            seed=seed,
            hold=hold,
            status=state.settings.initial_status,
            created_at=now,
            aurous_version=version,
            creation_request_id=request_id,
            position=len(rows),
        )
        if self._next_outcome is not None:
            row.forced, self._next_outcome = self._next_outcome, None
        self.rows[generation_id] = row
        rows.append(row)
        self._team_times.setdefault(team.id, []).append(now)
        self._active[team.id] = self._active.get(team.id, 0) + 1
        epoch = row.epoch
        queue = QUEUE_SECONDS * _spread(seed + 1)
        state.scheduler.at(now + queue, lambda due: self._start(row, epoch, due))
        return row

    def _check_concurrency(self, team: Team) -> None:
        limit = self._state.settings.concurrency_limit
        if limit is None or self._active.get(team.id, 0) < limit:
            return
        raise ApiError(
            429,
            "concurrency_limit_exceeded",
            f"Your team already has {limit} generations in flight; wait for one to finish.",
            type="rate_limit",
            headers={"Retry-After": str(self._concurrency_retry_after(team.id))},
        )

    def _concurrency_retry_after(self, team_id: str) -> int:
        """Whole real seconds until the team's next job is due to finish (at least 1)."""
        clock = self._state.clock
        now = clock.time()
        ends = [
            (row.started_at or row.created_at + QUEUE_SECONDS) + run_seconds(row.draft, row.seed)
            for row in reversed(self.team_rows(team_id)[-256:])
            if not row.terminal
        ]
        if not ends:
            return 1
        return max(1, min(60, int(-(-(min(ends) - now) // clock.scale))))

    # -- lifecycle -----------------------------------------------------------------
    def _start(self, row: Generation, epoch: int, due: float) -> None:
        if row.epoch != epoch or row.terminal:
            return
        row.status = "processing"
        row.started_at = due
        row.cached = None
        if row.forced is not None and row.forced[0] == "processing":
            return
        finish = due + run_seconds(row.draft, row.seed)
        self._state.scheduler.at(finish, lambda when: self._finish(row, epoch, when))

    def _finish(self, row: Generation, epoch: int, due: float) -> None:
        if row.epoch != epoch or row.terminal:
            return
        status, message = row.forced or ("succeeded", None)
        self._terminate(row, status, message, due)

    def _terminate(
        self, row: Generation, status: str, error_message: str | None, at: float
    ) -> None:
        state = self._state
        row.status = status
        row.completed_at = at
        row.epoch += 1
        if status == "succeeded":
            state.billing.commit(row.hold)
            row.charged = row.hold.amount
            self._sign_outputs(row, at)
        else:
            state.billing.release(row.hold)
            row.charged = ZERO
            if status != "cancelled":
                row.error_message = error_message or DEFAULT_ERRORS.get(status)
        self._active[row.team_id] -= 1
        row.cached = None
        verb = EVENT_VERB.get(status)
        if verb is None:
            return
        event = f"{row.draft.media_type}.{verb}"
        state.webhooks.publish(row.team_id, event, row.to_json())
        if row.draft.webhook_url is not None and verb in CALLBACK_VERBS:
            state.webhooks.callback(row.draft.webhook_url, event, row.to_json())

    def _sign_outputs(self, row: Generation, at: float) -> None:
        state = self._state
        expires = at + state.settings.output_retention
        row.expires_at = expires
        base = state.base_url
        if row.draft.media_type == "video":
            path = f"/v1/videos/{row.id}/output"
            row.output_video_url = f"{base}{path}?token={make_token(path, expires)}"
            return
        for n in range(row.draft.image_count or 1):
            path = f"/v1/images/{row.id}/output/{n}"
            row.output_urls.append(f"{base}{path}?token={make_token(path, expires)}")

    def cancel(self, row: Generation) -> Generation:
        """Cancel a running job; a no-op on ``cancelled``; 400 on any other terminal."""
        if row.status == "cancelled":
            return row
        if row.terminal:
            raise ApiError(
                400,
                "generation_not_cancellable",
                f"Generation {row.id} is already {row.status} and cannot be cancelled.",
            )
        self._terminate(row, "cancelled", None, self._state.now())
        return row

    # -- test controls ---------------------------------------------------------------
    def force_outcome(
        self, generation_id: str, status: str, error_message: str | None = None
    ) -> None:
        """Drive a running generation to ``status`` now (``processing``: stuck there)."""
        if status not in FORCEABLE:
            raise ValueError(f"cannot force status {status!r}; use one of {sorted(FORCEABLE)}")
        row = self.rows.get(generation_id)
        if row is None:
            raise KeyError(f"no generation {generation_id!r}")
        if row.terminal:
            raise ValueError(
                f"{generation_id} is already {row.status}; terminal states never change"
            )
        if status == "processing":
            row.epoch += 1
            row.forced = ("processing", None)
            if row.status != "processing":
                row.status = "processing"
                row.started_at = self._state.now()
            row.cached = None
            return
        self._terminate(row, status, error_message, self._state.now())

    def force_next_outcome(self, status: str, error_message: str | None = None) -> None:
        """The next generation created (by any team) ends in ``status`` when it finishes."""
        if status not in FORCEABLE:
            raise ValueError(f"cannot force status {status!r}; use one of {sorted(FORCEABLE)}")
        self._next_outcome = (status, error_message)

    def dump(self, team_id: str | None = None) -> list[dict[str, object]]:
        """Rows as the API renders them, oldest first (all teams unless ``team_id``)."""
        rows = self.rows.values() if team_id is None else self.team_rows(team_id)
        return [row.to_json() for row in rows]
