"""Route declarations and the request context handlers receive."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

import attrs
from aiohttp import web
from multidict import MultiMapping

from ._errors import ApiError, bad_format
from ._json_input import MAX_BYTES as MAX_JSON_BYTES
from ._json_input import JsonInputError
from ._json_input import parse as parse_json
from ._settings import API_VERSION

if TYPE_CHECKING:
    from ._state import ApiKey, EmulatorState, Team


@attrs.frozen
class Reply:
    """What a handler answers: a JSON-able ``body`` or raw ``data`` bytes."""

    status: int = 200
    body: object = None
    data: bytes | None = None
    content_type: str = "application/json"
    headers: Mapping[str, str] = attrs.field(factory=dict)


Handler = Callable[["Ctx"], Awaitable[Reply]]


@attrs.frozen
class Route:
    """One endpoint: where it lives and the cross-cutting rules that apply to it.

    Args:
        bucket: the rate-limit bucket, or a function of the context (one body, two
            buckets: character create); ``None`` for unmetered routes.
        scope: the minimum key scope (A16).
        idempotent: whether ``Idempotency-Key`` is honoured (A8).
        auth: ``False`` for the token-signed output and upload routes.
        fingerprint: for idempotent non-JSON routes, the request's body-match form.
        summary: one line for ``/api-spec.json``.
    """

    method: str
    path: str
    handler: Handler
    bucket: str | Callable[[Ctx], Awaitable[str]] | None = "get"
    scope: str = "read"
    idempotent: bool = False
    auth: bool = True
    fingerprint: Callable[[Ctx], Awaitable[str]] | None = None
    summary: str = ""
    success: int = 200


class Ctx:
    """The request as a handler sees it."""

    __slots__ = ("_json", "bucket", "key", "request", "request_id", "state", "team", "version")

    def __init__(self, request: web.Request, state: EmulatorState, request_id: str) -> None:
        self.request = request
        self.state = state
        self.request_id = request_id
        self.team: Team = None  # type: ignore[assignment]
        self.key: ApiKey | None = None
        self.version = API_VERSION
        #: The rate-limit bucket charged (or refused) for this request, once known.
        self.bucket: str | None = None
        self._json: object = _UNSET

    @property
    def now(self) -> float:
        return self.state.now()

    @property
    def match(self) -> Mapping[str, str]:
        return self.request.match_info

    @property
    def query(self) -> MultiMapping[str]:
        return self.request.query

    async def json(self) -> dict[str, object]:
        """The body as a JSON object; 400 ``invalid_format`` for anything else."""
        if self._json is _UNSET:
            self._json = await self._parse_json()
        return self._json  # type: ignore[return-value]

    async def _parse_json(self) -> dict[str, object]:
        length = self.request.content_length
        if length is not None and length > MAX_JSON_BYTES:
            raise bad_format(None, f"The request body is larger than {MAX_JSON_BYTES} bytes.")
        raw = await self.request.read()
        if not raw.strip():
            return {}
        ctype = self.request.content_type
        if ctype not in ("application/json", "application/octet-stream") and not ctype.endswith(
            "+json"
        ):
            raise ApiError(
                400, "invalid_format", f"Content-Type must be application/json, not {ctype!r}."
            )
        try:
            value = parse_json(raw)
        except JsonInputError as exc:
            raise bad_format(None, f"The request body is not accepted: {exc}") from None
        if not isinstance(value, dict):
            raise bad_format(None, "The request body must be a JSON object.")
        return value


_UNSET = object()
