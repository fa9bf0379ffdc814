"""Every exception the SDK raises.

::

    AurousError
    ├── InvalidParameterError (also ValueError)   rejected before anything was sent
    │   └── CostLimitExceededError                a fan-out's estimate exceeds max_cost
    ├── WaitTimeoutError (also TimeoutError)      a wait reached its deadline
    ├── GenerationFailedError                     wait(raise_on_failure=True): not succeeded
    ├── APIStatusError                            the API answered with an error status
    │   ├── BadRequestError                       400 (and any other unexpected 4xx)
    │   │   └── UnprocessableEntityError          422
    │   ├── AuthenticationError                   401
    │   ├── InsufficientCreditsError              402 balance_too_low / insufficient_credits
    │   ├── PermissionDeniedError                 403 missing_scope
    │   ├── NotFoundError                         404
    │   ├── ConflictError                         409 idempotency_key_in_use
    │   ├── GoneError                             410 output_expired
    │   ├── RateLimitError                        429
    │   └── ServerError                           5xx (and any other unexpected status)
    ├── APIConnectionError                        no (complete) answer
    │   ├── APITimeoutError (also TimeoutError)
    │   │   └── RateLimitQueueTimeoutError        no rate-limit permit within max_queue_wait
    │   ├── OutcomeUnknownError                   a create may or may not have happened
    │   └── APIResponseValidationError            a 2xx body: not JSON, or not the model
    ├── ResponseTooLargeError                     an answer above max_response_bytes, unread
    ├── FleetUnavailableError (also ConnectionError)  fleet mode's Redis cannot be used
    └── EventLoopMismatchError (also RuntimeError)    a client used outside its event loop

Every error carries ``request_id`` (when the server assigned one),
``idempotency_key`` (when the failed call was an idempotent create) and
``generation_id`` (when it ended a wait for that generation); ``str()`` shows them.
Errors never hold request headers, so the API key cannot leak through them.
"""

from __future__ import annotations

import http
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from . import _json
from ._ratelimit import get_header, parse_retry_after

if TYPE_CHECKING:
    from .models import Generation

__all__ = [
    "STATUS_ERRORS",
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AurousError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "CostLimitExceededError",
    "EventLoopMismatchError",
    "FleetUnavailableError",
    "GenerationFailedError",
    "GoneError",
    "InsufficientCreditsError",
    "InvalidParameterError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "RateLimitError",
    "RateLimitQueueTimeoutError",
    "ResponseTooLargeError",
    "ServerError",
    "UnprocessableEntityError",
    "WaitTimeoutError",
    "error_class_for",
    "error_from_response",
]

_REQUEST_ID_HEADER = "Aurous-Request-Id"
_SNIPPET = 200


def _rebuild(cls: type[AurousError], message: str, state: dict[str, Any]) -> AurousError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class AurousError(Exception):
    """Base of every SDK error.

    Attributes:
        message: the human-readable description.
        request_id: the ``Aurous-Request-Id`` of the failed request, if any.
        idempotency_key: the ``Idempotency-Key`` of the failed create, if any; retry
            with it to get the original result instead of a duplicate.
        generation_id: the generation a wait was watching when this error ended it.
    """

    generation_id: str | None = None

    def __init__(
        self,
        message: str,
        *,
        request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id
        self.idempotency_key = idempotency_key

    def _details(self) -> list[tuple[str, object]]:
        return [
            ("request_id", self.request_id),
            ("idempotency_key", self.idempotency_key),
            ("generation_id", self.generation_id),
        ]

    def __str__(self) -> str:
        details = ", ".join(f"{name}={value}" for name, value in self._details() if value)
        return f"{self.message} ({details})" if details else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


class InvalidParameterError(AurousError, ValueError):
    """A request argument broke a documented constraint; nothing was sent.

    Attributes:
        param: the offending parameter, as the API names it.
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param

    def _details(self) -> list[tuple[str, object]]:
        return []  # the message names the parameter already


class APIStatusError(AurousError):
    """The API answered with a non-2xx status (contract §6).

    Attributes:
        status: the HTTP status, the canonical signal.
        type: the envelope's error type (``invalid_request``, ``rate_limit``, ...).
        code: the stable machine code (``balance_too_low``, ...).
        param: the offending request field, if the server named one.
        headers: the response headers.
        retry_after: the server-directed wait in seconds (``Retry-After``), if any.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        retry_after: float | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id, idempotency_key=idempotency_key)
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.headers: Mapping[str, str] = headers if headers is not None else MappingProxyType({})
        self.retry_after = retry_after

    def _details(self) -> list[tuple[str, object]]:
        return [("type", self.type), ("param", self.param), *super()._details()]

    def __str__(self) -> str:
        head = f"{self.status} {self.code}" if self.code else str(self.status)
        return f"{head}: {super().__str__()}"

    def __reduce__(self) -> tuple[Any, ...]:
        state = dict(self.__dict__)
        state["headers"] = dict(self.headers)
        return (_rebuild, (type(self), self.message, state))


class BadRequestError(APIStatusError):
    """400: the request is invalid; ``param`` names the field. Do not retry unchanged."""


class UnprocessableEntityError(BadRequestError):
    """422: well-formed but not processable (e.g. ``output_not_available``)."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing, invalid or revoked."""


class InsufficientCreditsError(APIStatusError):
    """402: the team's available credits do not cover the request."""


class PermissionDeniedError(APIStatusError):
    """403: the key's scope does not allow this request (``missing_scope``)."""


class NotFoundError(APIStatusError):
    """404: no such resource for this team (never leaks another team's ids)."""


class ConflictError(APIStatusError):
    """409: ``idempotency_key_in_use``: in flight, or reused with another body or route."""


class GoneError(APIStatusError):
    """410: the resource expired (e.g. ``output_expired``)."""


class RateLimitError(APIStatusError):
    """429: a rate-limit bucket is empty; ``retry_after`` says how long to wait."""


class ServerError(APIStatusError):
    """5xx, or any status the API does not document: a server-side failure."""


class APIConnectionError(AurousError):
    """No complete answer arrived: connection refused or cut, DNS, TLS, garbled body.

    Attributes:
        maybe_sent: ``False`` only when the failure proves the request never reached
            the server (e.g. connection refused), so even a non-idempotent call may be
            retried.
    """

    def __init__(
        self,
        message: str,
        *,
        maybe_sent: bool = True,
        request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id, idempotency_key=idempotency_key)
        self.maybe_sent = maybe_sent


class APITimeoutError(APIConnectionError, TimeoutError):
    """An attempt or the whole call ran out of time."""


class RateLimitQueueTimeoutError(APITimeoutError):
    """No rate-limit permit within ``max_queue_wait``; the request was never sent.

    Raised at once when the governor's model already says the wait would be longer, or
    when the wait in the queue reaches the bound.

    Attributes:
        bucket: the rate-limit bucket waited for.
        position: the call's place in the bucket's queue (1 = next).
        estimated_wait: seconds the model says were still to wait (``None``: unknown).
        max_queue_wait: the bound that was reached.
        waited: seconds already waited (0 when raised at once).
    """

    def __init__(
        self,
        message: str,
        *,
        bucket: str,
        position: int,
        estimated_wait: float | None,
        max_queue_wait: float,
        waited: float,
    ) -> None:
        super().__init__(message, maybe_sent=False)
        self.bucket = bucket
        self.position = position
        self.estimated_wait = estimated_wait
        self.max_queue_wait = max_queue_wait
        self.waited = waited


class OutcomeUnknownError(APIConnectionError):
    """A create got no definitive answer on its last attempt: it may have happened.

    Replaying the call with the same ``idempotency_key`` within 24 hours returns the
    original result if it was processed, and creates it once if it was not.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        idempotency_key: str | None,
        request_id: str | None = None,
    ) -> None:
        if message is None:
            message = (
                "the outcome of the request is unknown; replay it with the same "
                "idempotency key to get the original result without a duplicate"
            )
        super().__init__(message, request_id=request_id, idempotency_key=idempotency_key)


class APIResponseValidationError(APIConnectionError):
    """A 2xx answer arrived but cannot be read: its body is not JSON, or does not fit
    the model the call returns.

    A body that is not JSON is treated as a lost answer (retried like a dropped
    connection, hence the base class); this error is raised when retries do not help.
    A body that does not fit the model is raised at once: the same answer would come
    back. The message keeps the decoder's description of every mismatch.

    Attributes:
        route: the method and route template of the call (``GET /v1/team``).
        status: the HTTP status of the answer.
        path: the JSON path of the first mismatch (``$.id``; ``$`` for the body as a
            whole), or ``None`` for a body that is not JSON.
    """

    def __init__(
        self,
        message: str,
        *,
        route: str,
        status: int,
        path: str | None = None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id, idempotency_key=idempotency_key)
        self.route = route
        self.status = status
        self.path = path


class ResponseTooLargeError(AurousError):
    """An API answer was larger than the client's ``max_response_bytes``.

    It was refused before being read whole (when ``Content-Length`` announced the size,
    before reading any of it), and its connection was closed rather than reused. Not
    retried: the same answer would come back. Output downloads are never capped.

    Attributes:
        route: the method and path of the request.
        status: the HTTP status of the answer.
        size: the size the answer announced (``Content-Length``), or ``None`` when it had
            none and grew past the limit while being read.
        limit: the ``max_response_bytes`` in force.
    """

    def __init__(
        self,
        message: str,
        *,
        route: str,
        status: int,
        size: int | None,
        limit: int,
        request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id, idempotency_key=idempotency_key)
        self.route = route
        self.status = status
        self.size = size
        self.limit = limit


class CostLimitExceededError(InvalidParameterError):
    """A fan-out was refused before anything was submitted: its estimate exceeds ``max_cost``.

    Attributes:
        estimated: the estimated total, in credits.
        max_cost: the limit that was asked for.
    """

    def __init__(self, message: str, *, estimated: float, max_cost: float) -> None:
        super().__init__(message, param="max_cost")
        self.estimated = estimated
        self.max_cost = max_cost


class FleetUnavailableError(AurousError, ConnectionError):
    """Fleet mode's Redis could not be reached, timed out, or refused the credentials.

    The message names the Redis URL with its password redacted. At client start it is
    raised to the caller; during a run the rate governor catches it and goes on with a
    conservative local share of each bucket until Redis answers again.
    """


class EventLoopMismatchError(AurousError, RuntimeError):
    """A client was used in an event loop other than the one it was first used in.

    Its connections belong to that first loop (often one ``asyncio.run`` that has since
    ended), so nothing was sent. Create one client per event loop, inside it.
    """


class WaitTimeoutError(AurousError, TimeoutError):
    """A wait reached its deadline before the generation was terminal.

    The generation keeps running unless the wait was asked to cancel it.

    Attributes:
        generation_id: the generation waited for (``None`` for ``as_completed``).
        last: its last snapshot seen, if any (after ``cancel_on_timeout``: the
            cancelled generation).
        pending: the ids still not terminal (``as_completed``).
    """

    def __init__(
        self,
        message: str,
        *,
        generation_id: str | None = None,
        last: Generation | None = None,
        pending: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.generation_id = generation_id
        self.last = last
        self.pending = pending


class GenerationFailedError(AurousError):
    """A waited-for generation ended in a state other than ``succeeded``.

    Attributes:
        generation: the terminal generation (``status``, ``error_message``).
    """

    def __init__(self, message: str, *, generation: Generation) -> None:
        super().__init__(message, request_id=generation.request_id)
        self.generation = generation
        self.generation_id = generation.id


#: The class of each documented error status.
STATUS_ERRORS: Mapping[int, type[APIStatusError]] = MappingProxyType(
    {
        400: BadRequestError,
        401: AuthenticationError,
        402: InsufficientCreditsError,
        403: PermissionDeniedError,
        404: NotFoundError,
        409: ConflictError,
        410: GoneError,
        422: UnprocessableEntityError,
        429: RateLimitError,
    }
)


def error_class_for(status: int) -> type[APIStatusError]:
    """The exception class for an HTTP error status."""
    known = STATUS_ERRORS.get(status)
    if known is not None:
        return known
    # An undocumented 4xx (405, 413, 415, ...) still blames the request, not the server.
    return BadRequestError if 400 <= status < 500 else ServerError


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _fallback_message(status: int, body: bytes) -> str:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unexpected status"
    snippet = " ".join(body.decode("utf-8", "replace").split())
    if len(snippet) > _SNIPPET:
        snippet = snippet[:_SNIPPET] + "…"
    return f"HTTP {status} {phrase}" + (f": {snippet}" if snippet else "")


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    idempotency_key: str | None = None,
) -> APIStatusError:
    """Build the error for a non-2xx response from its §6.1 envelope.

    Tolerant: a body that is not JSON, or JSON without the envelope, still gives an
    error of the right class with the request id from the ``Aurous-Request-Id`` header.

    Args:
        status: the HTTP status.
        headers: the response headers (never the request's).
        body: the raw response body.
        idempotency_key: the key of the failed create, if any.
    """
    envelope: Mapping[str, object] = {}
    bare: str | None = None
    try:
        parsed = _json.loads(body) if body else None
    except (ValueError, RecursionError):
        parsed = None
    if isinstance(parsed, dict):
        inner = parsed.get("error")
        # Gateways in front of the API may answer {"message": ...} without the envelope.
        envelope = inner if isinstance(inner, dict) else parsed
        bare = _text(inner)
    message = _text(envelope.get("message")) or bare or _fallback_message(status, body)
    return error_class_for(status)(
        message,
        status=status,
        type=_text(envelope.get("type")),
        code=_text(envelope.get("code")),
        param=_text(envelope.get("param")),
        request_id=_text(envelope.get("request_id")) or get_header(headers, _REQUEST_ID_HEADER),
        headers=headers,
        retry_after=parse_retry_after(get_header(headers, "Retry-After")),
        idempotency_key=idempotency_key,
    )
