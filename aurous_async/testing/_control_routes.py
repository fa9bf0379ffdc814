"""``/_emulator/…``: the test controls of ``Emulator``, over HTTP, behind a bearer token.

For multi-process tests and for users testing from other languages. Served only when
the emulator was started with a control token; every request must carry
``Authorization: Bearer <token>``. Control traffic bypasses the API pipeline: it is
never rate-limited, never counted in ``/_emulator/stats`` and never logged as a request.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
from aiohttp import web

from . import _validate as check
from ._account_routes import balance_json
from ._errors import ApiError, bad_format, not_found, out_of_range
from ._faults import FAULT_KINDS, Fault, WebhookFault
from ._ids import new_id
from ._routing import Ctx
from ._serialize import dumps, iso
from ._settings import API_VERSION

if TYPE_CHECKING:
    from ._server import Emulator

logger = logging.getLogger("aurous_async.testing")

PREFIX = "/_emulator"
ControlHandler = Callable[["Emulator", Ctx], Awaitable[tuple[int, object]]]


async def get_stats(emu: Emulator, ctx: Ctx) -> tuple[int, object]:
    """Request counts and generation counts per team."""
    return 200, emu.stats()


async def list_generations(emu: Emulator, ctx: Ctx) -> tuple[int, object]:
    """Every generation row (or one team's, with ``?team_id=``), oldest first."""
    team_id = ctx.query.get("team_id")
    rows = emu.state.generations.rows.values()
    data = [
        {**row.to_json(), "team_id": row.team_id}
        for row in rows
        if team_id is None or row.team_id == team_id
    ]
    return 200, {"object": "list", "data": data}


async def force_outcome(emu: Emulator, ctx: Ctx) -> tuple[int, object]:
    """Drive one generation to a status now."""
    body = await ctx.json()
    check.reject_unknown(body, ("status", "error_message"))
    status = check.text(body, "status", required=True)
    message = check.text(body, "error_message")
    assert status is not None
    generation_id = ctx.match["id"]
    try:
        emu.force_outcome(generation_id, status, message)
    except KeyError:
        raise not_found("generation", "id") from None
    except ValueError as exc:
        raise bad_format("status", str(exc)) from None
    return 200, emu.state.generations.rows[generation_id].to_json()


async def force_next_outcome(emu: Emulator, ctx: Ctx) -> tuple[int, object]:
    """Make the next generation (or character synthesis) end in a status."""
    body = await ctx.json()
    check.reject_unknown(body, ("status", "error_message", "resource"))
    status = check.text(body, "status", required=True)
    message = check.text(body, "error_message")
    resource = check.choice(body, "resource", ("generation", "character")) or "generation"
    assert status is not None
    force = emu.force_next_outcome if resource == "generation" else emu.force_next_character_outcome
    try:
        force(status, message)
    except ValueError as exc:
        raise bad_format("status", str(exc)) from None
    return 200, {"resource": resource, "status": status, "error_message": message}


async def add_fault(emu: Emulator, ctx: Ctx) -> tuple[int, object]:
    """Inject one request fault (the fields of ``Fault``; absent ones keep its defaults)."""
    body = await ctx.json()
    check.reject_unknown(body, attrs.fields_dict(Fault))
    kind = check.choice(body, "kind", FAULT_KINDS, required=True)
    given = _given(
        match=check.text(body, "match"),
        times=check.integer(body, "times", lo=-1),
        status=check.integer(body, "status", lo=500, hi=599),
        delay=check.number(body, "delay", lo=0, hi=3600),
        retry_after=check.integer(body, "retry_after", lo=1),
    )
    if given.get("times") == 0:
        raise out_of_range("times", "'times' must be -1 (every match) or at least 1.")
    fault = Fault(kind, **given)  # type: ignore[arg-type]
    emu.inject(fault)
    return 201, attrs.asdict(fault)


async def clear_faults(emu: Emulator, ctx: Ctx) -> tuple[int, object]:
    """Drop every pending fault and release held webhooks."""
    emu.clear_faults()
    return 200, {"cleared": True}


async def set_webhook_fault(emu: Emulator, ctx: Ctx) -> tuple[int, object]:
    """Make signed deliveries misbehave (the fields of ``WebhookFault``) until cleared."""
    body = await ctx.json()
    check.reject_unknown(body, attrs.fields_dict(WebhookFault))
    fault = WebhookFault(
        **_given(
            duplicate=check.boolean(body, "duplicate"),
            skew=check.number(body, "skew", lo=-(10.0**9), hi=10.0**9),
            tamper=check.boolean(body, "tamper"),
            wrong_secret=check.boolean(body, "wrong_secret"),
        )
    )
    emu.inject_webhook_fault(fault)
    return 200, attrs.asdict(fault)


async def hold_webhooks(emu: Emulator, ctx: Ctx) -> tuple[int, object]:
    """Queue deliveries without sending them, until released."""
    emu.hold_webhooks()
    return 200, {"held": True}


async def release_webhooks(emu: Emulator, ctx: Ctx) -> tuple[int, object]:
    """Send the held deliveries, oldest first (``reverse``: newest first)."""
    body = await ctx.json()
    check.reject_unknown(body, ("reverse",))
    emu.release_webhooks(reverse=bool(check.boolean(body, "reverse")))
    return 200, {"held": False}


async def list_deliveries(emu: Emulator, ctx: Ctx) -> tuple[int, object]:
    """Every webhook delivery attempt so far, oldest first (bodies and headers left out)."""
    data = [
        {
            "endpoint_id": d.endpoint_id,
            "url": d.url,
            "event_id": d.event_id,
            "event_type": d.event_type,
            "attempt": d.attempt,
            "at": iso(d.at),
            "status": d.status,
            "error": d.error,
        }
        for d in emu.deliveries
    ]
    return 200, {"object": "list", "data": data}


async def advance_clock(emu: Emulator, ctx: Ctx) -> tuple[int, object]:
    """Jump the job clock forward and run whatever became due."""
    body = await ctx.json()
    check.reject_unknown(body, ("seconds",))
    seconds = check.number(body, "seconds", lo=0, required=True)
    assert seconds is not None
    emu.advance(seconds)
    return 200, _clock_json(emu)


async def get_clock(emu: Emulator, ctx: Ctx) -> tuple[int, object]:
    """The job clock now."""
    return 200, _clock_json(emu)


async def add_team(emu: Emulator, ctx: Ctx) -> tuple[int, object]:
    """A new team with a full-scope key (``Emulator.add_team``'s defaults when absent)."""
    body = await ctx.json()
    check.reject_unknown(body, ("name", "credits"))
    team = emu.add_team(
        **_given(
            name=check.text(body, "name", max_len=120),
            credits=check.number(body, "credits", lo=0),
        )
    )
    return 201, {"id": team.id, "api_key": team.api_key}


async def add_key(emu: Emulator, ctx: Ctx) -> tuple[int, object]:
    """A new key for a team."""
    body = await ctx.json()
    check.reject_unknown(body, ("scope", "legacy"))
    team_id = _team(emu, ctx)
    scope = check.choice(body, "scope", ("read", "write", "full")) or "full"
    legacy = bool(check.boolean(body, "legacy"))
    return 201, {
        "team_id": team_id,
        "scope": scope,
        "api_key": emu.add_key(team_id, scope, legacy=legacy),
    }


async def set_credits(emu: Emulator, ctx: Ctx) -> tuple[int, object]:
    """Set a team's credit balance."""
    body = await ctx.json()
    check.reject_unknown(body, ("credits",))
    team_id = _team(emu, ctx)
    credits = check.number(body, "credits", lo=0, required=True)
    assert credits is not None
    emu.set_credits(team_id, credits)
    return 200, {"team_id": team_id, **balance_json(emu.state.teams[team_id])}


def _given(**fields: object) -> dict[str, Any]:
    """The fields a body set: absent ones (``None``) are left to the callee's defaults."""
    return {name: value for name, value in fields.items() if value is not None}


def _team(emu: Emulator, ctx: Ctx) -> str:
    team_id = ctx.match["team_id"]
    if team_id not in emu.state.teams:
        raise not_found("team", "team_id")
    return team_id


def _clock_json(emu: Emulator) -> dict[str, object]:
    now = emu.clock.time()
    return {"now": iso(now), "epoch_seconds": now, "time_scale": emu.clock.scale}


#: (method, path under ``/_emulator``, handler).
ROUTES: tuple[tuple[str, str, ControlHandler], ...] = (
    ("GET", "/stats", get_stats),
    ("GET", "/generations", list_generations),
    ("POST", "/generations/{id}/outcome", force_outcome),
    ("POST", "/next_outcome", force_next_outcome),
    ("POST", "/faults", add_fault),
    ("DELETE", "/faults", clear_faults),
    ("GET", "/clock", get_clock),
    ("POST", "/clock/advance", advance_clock),
    ("PUT", "/webhooks/fault", set_webhook_fault),
    ("POST", "/webhooks/hold", hold_webhooks),
    ("POST", "/webhooks/release", release_webhooks),
    ("GET", "/webhooks/deliveries", list_deliveries),
    ("POST", "/teams", add_team),
    ("POST", "/teams/{team_id}/keys", add_key),
    ("PUT", "/teams/{team_id}/credits", set_credits),
)


def add_control_routes(app: web.Application, emu: Emulator, token: str) -> None:
    """Serve ``ROUTES`` under ``/_emulator`` to requests bearing ``token``."""
    expected = f"Bearer {token}".encode()
    for method, path, handler in ROUTES:
        app.router.add_route(method, PREFIX + path, _guarded(handler, emu, expected))


def _guarded(
    handler: ControlHandler, emu: Emulator, expected: bytes
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        request_id = new_id("req")
        headers: Mapping[str, str] = {
            "Aurous-Request-Id": request_id,
            "Aurous-Version": API_VERSION,
        }
        try:
            _check_token(request, expected)
            emu.state.scheduler.settle()  # answer with the state as of now, like the API does
            status, body = await handler(emu, Ctx(request, emu.state, request_id))
        except ApiError as error:
            status, body = error.status, error.envelope(request_id)
        except Exception:
            logger.exception("emulator: unhandled error in control route %s", request.path)
            crash = ApiError(500, "internal_error", "Internal error.", type="server_error")
            status, body = 500, crash.envelope(request_id)
        return web.Response(
            status=status, body=dumps(body), content_type="application/json", headers=headers
        )

    return handle


def _check_token(request: web.Request, expected: bytes) -> None:
    sent = request.headers.get("Authorization")
    if not sent:
        raise ApiError(
            401,
            "missing_api_key",
            "No control token provided. Send it as 'Authorization: Bearer <token>'.",
        )
    # Constant time: the comparison must not tell a prober how much of a guess was right.
    if not hmac.compare_digest(sent.strip().encode(), expected):
        raise ApiError(401, "invalid_api_key", "The control token provided is not valid.")
