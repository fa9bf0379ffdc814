"""The request pipeline every route goes through, and the aiohttp application.

Order per request: request id -> connection faults -> auth -> version -> scope -> rate
limit -> forced faults -> idempotency -> handler. Every response carries
``Aurous-Request-Id`` and ``Aurous-Version``; every authenticated one the A9 trio.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from . import (
    _account_routes,
    _character_routes,
    _file_routes,
    _generation_routes,
    _legacy_routes,
    _lora_routes,
    _meta_routes,
    _output_routes,
    _usage_routes,
    _webhook_routes,
)
from ._errors import ApiError
from ._faults import SERVER_ERROR_CODES, Fault
from ._idempotency import HEADER_NAMES as IDEMPOTENCY_HEADERS
from ._idempotency import canonical_json
from ._ids import new_id
from ._ratelimit import Decision
from ._routing import Ctx, Reply, Route
from ._serialize import dumps
from ._settings import KNOWN_VERSIONS
from ._state import SCOPE_RANK, ApiKey, EmulatorState, RequestRecord

logger = logging.getLogger("aurous_async.testing")

ROUTE_MODULES = (
    _account_routes,
    _generation_routes,
    _output_routes,
    _legacy_routes,
    _lora_routes,
    _usage_routes,
    _file_routes,
    _character_routes,
    _webhook_routes,
    _meta_routes,
)
JSON = "application/json"
STATE_KEY = web.AppKey("state", EmulatorState)
VERSION_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
KEY_PREFIXES = ("al_live_", "og_")


def all_routes() -> list[Route]:
    return [route for module in ROUTE_MODULES for route in module.ROUTES]


def _authenticate(request: web.Request, state: EmulatorState) -> ApiKey:
    secret = request.headers.get("X-Api-Key")
    if secret is None:
        auth = request.headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            secret = value.strip()
    if not secret:
        raise ApiError(
            401,
            "missing_api_key",
            "No API key provided. Send it in the X-Api-Key header.",
        )
    key = state.keys.get(secret)
    if key is None or not secret.startswith(KEY_PREFIXES):
        raise ApiError(401, "invalid_api_key", "The API key provided is not valid.")
    if key.revoked:
        raise ApiError(401, "revoked_api_key", "The API key provided has been revoked.")
    if key.deactivate_at is not None and state.now() >= key.deactivate_at:
        raise ApiError(401, "invalid_api_key", "The API key provided is not valid.")
    return key


def _resolve_version(request: web.Request, default: str) -> str:
    pinned = request.headers.get("Aurous-Version")
    if pinned is None:
        return default
    if not VERSION_PATTERN.match(pinned) or pinned not in KNOWN_VERSIONS:
        raise ApiError(
            400,
            "unknown_version",
            f"Unknown Aurous-Version {pinned!r}; known: {', '.join(sorted(KNOWN_VERSIONS))}.",
            param="Aurous-Version",
        )
    return pinned


def _idempotency_key(request: web.Request) -> str | None:
    for name in IDEMPOTENCY_HEADERS:
        value = request.headers.get(name)
        if value is not None:
            return value
    return None


def _render(reply: Reply, headers: dict[str, str]) -> tuple[int, bytes, str]:
    headers.update(reply.headers)
    if reply.data is not None:
        return reply.status, reply.data, reply.content_type
    return reply.status, dumps(reply.body), reply.content_type


class Pipeline:
    """Wraps a route's handler with the cross-cutting rules of the contract."""

    def __init__(self, route: Route, state: EmulatorState) -> None:
        self.route = route
        self.state = state
        self.route_key = f"{route.method} {route.path}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        state = self.state
        request_id = new_id("req")
        ctx = Ctx(request, state, request_id)
        headers: dict[str, str] = {"Aurous-Request-Id": request_id}
        fault = state.faults.take(request.method, request.path)
        try:
            if fault is not None:
                await self._early_fault(fault, request)
            state.scheduler.settle()
            status, body, ctype = await self._process(ctx, headers, fault)
        except ApiError as error:
            status, body, ctype = (
                error.status,
                dumps(error.envelope(request_id)),
                "application/json",
            )
            headers.update(error.headers)
        except _Dropped:
            return web.Response(status=499)
        except Exception:
            logger.exception("emulator: unhandled error in %s", self.route_key)
            crash = ApiError(500, "internal_error", "Internal error.", type="server_error")
            status, body, ctype = 500, dumps(crash.envelope(request_id)), JSON
        headers["Aurous-Version"] = ctx.version
        state.stats.count(request.method, self.route.path, status, ctx.bucket)
        if state.settings.record_requests:
            state.requests.append(
                RequestRecord(
                    request.method,
                    request.path,
                    status,
                    ctx.bucket,
                    ctx.team.id if ctx.team is not None else None,
                    state.now(),
                    request_id,
                )
            )
        if fault is not None and fault.kind == "hang_after_commit":
            await _hang(request, fault, state)
            _drop(request)
            return web.Response(status=499)
        if fault is not None and fault.kind in ("drop_after_commit", "truncated_body"):
            return await self._broken_response(request, fault, status, body, ctype, headers)
        if fault is not None and fault.kind == "malformed_body" and 200 <= status < 300:
            body = body[: max(1, len(body) // 2)] + b"<<not json"
        return web.Response(status=status, body=body, content_type=ctype, headers=headers)

    async def _early_fault(self, fault: Fault, request: web.Request) -> None:
        if fault.kind == "delay":
            # Stalls, but never past the emulator's own shutdown. asyncio.wait, not
            # wait_for: the latter can swallow a cancellation before Python 3.12.
            stopping = asyncio.ensure_future(self.state.stopping.wait())
            try:
                await asyncio.wait({stopping}, timeout=fault.delay)
            finally:
                stopping.cancel()
        elif fault.kind == "drop_before":
            _drop(request)
            raise _Dropped
        elif fault.kind == "hang":
            await _hang(request, fault, self.state)
            _drop(request)
            raise _Dropped

    async def _process(
        self, ctx: Ctx, headers: dict[str, str], fault: Fault | None
    ) -> tuple[int, bytes, str]:
        route, state, request = self.route, self.state, ctx.request
        bucket: str | None = None
        if route.auth:
            key = _authenticate(request, state)
            ctx.key = key
            ctx.team = state.teams[key.team_id]
            ctx.version = ctx.team.default_api_version
        ctx.version = _resolve_version(request, ctx.version)
        if route.auth:
            assert ctx.key is not None
            if route.bucket is not None:
                bucket = route.bucket if isinstance(route.bucket, str) else await route.bucket(ctx)
                ctx.bucket = bucket  # logged even when this request ends in an error
            if SCOPE_RANK[ctx.key.scope] < SCOPE_RANK[route.scope]:
                if bucket is not None:
                    headers.update(state.limiter.peek(ctx.team.id, bucket).headers())
                raise ApiError(
                    403,
                    "missing_scope",
                    f"This API key has the '{ctx.key.scope}' scope; this request needs "
                    f"'{route.scope}'.",
                    type="authentication",
                )
            if bucket is not None:
                decision = state.limiter.take(ctx.team.id, bucket)
                if fault is not None and fault.kind == "rate_limit":
                    decision = state.limiter.refuse(ctx.team.id, bucket, fault.retry_after or 1)
                headers.update(decision.headers())
                if not decision.allowed:
                    raise _too_many(bucket, decision)
        if fault is not None and fault.kind == "status":
            raise ApiError(
                fault.status,
                SERVER_ERROR_CODES.get(fault.status, "internal_error"),
                "The server failed to process the request (injected fault).",
                type="server_error",
            )
        idem_key = _idempotency_key(request) if route.idempotent else None
        if idem_key is None:
            return _render(await route.handler(ctx), headers)
        # The key names the route by its template; the path parameters belong to the
        # request, so one key reused on another character (say) is a different request.
        fingerprint = canonical_json(
            {
                "path": dict(request.match_info),
                "body": await route.fingerprint(ctx) if route.fingerprint else await ctx.json(),
            }
        )
        cached = state.idempotency.begin(
            ctx.team.id, idem_key, self.route_key, fingerprint, ctx.now
        )
        if cached is not None:
            headers["Aurous-Idempotent-Replayed"] = "true"
            return cached.status, cached.body, cached.content_type
        status, body, ctype = 500, b"", "application/json"
        try:
            status, body, ctype = _render(await route.handler(ctx), headers)
        finally:
            state.idempotency.finish(ctx.team.id, idem_key, status, body, ctype)
        return status, body, ctype

    async def _broken_response(
        self,
        request: web.Request,
        fault: Fault,
        status: int,
        body: bytes,
        ctype: str,
        headers: dict[str, str],
    ) -> web.StreamResponse:
        if fault.kind == "drop_after_commit":
            _drop(request)
            return web.Response(status=status)
        response = web.StreamResponse(status=status, headers=headers)
        response.content_type = ctype
        response.content_length = len(body) + 64
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        _drop(request)
        return response


class _Dropped(Exception):
    """The connection was cut on purpose; nothing more is written."""


#: How often a hung request checks whether its client left or the emulator is stopping.
_HANG_POLL = 0.02


async def _hang(request: web.Request, fault: Fault, state: EmulatorState) -> None:
    """Answer nothing until the client hangs up, the emulator stops, or ``fault.delay``."""
    loop = asyncio.get_running_loop()
    until = loop.time() + fault.delay if fault.delay > 0 else None
    while not state.closing and (until is None or loop.time() < until):
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(_HANG_POLL)


def _drop(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


def _too_many(bucket: str, decision: Decision) -> ApiError:
    return ApiError(
        429,
        "too_many_requests",
        f"Rate limit exceeded for {bucket}. Retry after {decision.retry_after}s.",
        headers=decision.headers(),
    )


async def _not_found(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotFound


def build_app(state: EmulatorState) -> web.Application:
    """An aiohttp application serving every route of ``ROUTE_MODULES``."""
    app = web.Application(client_max_size=12 * 1024 * 1024, middlewares=[_unmatched])
    for route in all_routes():
        app.router.add_route(route.method, route.path, Pipeline(route, state).handle)
    app[STATE_KEY] = state
    return app


@web.middleware
async def _unmatched(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Unknown paths and methods get the JSON envelope too, never an HTML page."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        request_id = new_id("req")
        code = "resource_not_found" if exc.status == 404 else "invalid_request"
        error = ApiError(exc.status, code, exc.reason)
        return web.Response(
            status=exc.status,
            body=dumps(error.envelope(request_id)),
            content_type="application/json",
            headers={"Aurous-Request-Id": request_id, "Aurous-Version": "2026-05-15"},
        )
