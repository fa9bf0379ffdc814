from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aurous_async._errors import (
    STATUS_ERRORS,
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AurousError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    GoneError,
    InsufficientCreditsError,
    InvalidParameterError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    ResponseTooLargeError,
    ServerError,
    UnprocessableEntityError,
    error_class_for,
    error_from_response,
)

FIXTURES = Path(__file__).parent / "fixtures"
API_KEY = "al_live_" + "f" * 64


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (402, InsufficientCreditsError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (410, GoneError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (599, ServerError),
        (405, BadRequestError),
        (413, BadRequestError),
        (415, BadRequestError),
        (302, ServerError),
        (200, ServerError),
    ],
)
def test_each_status_maps_to_its_class(status: int, cls: type[APIStatusError]) -> None:
    """One class per status family; undocumented 4xx blame the request, the rest the server."""
    assert error_class_for(status) is cls
    assert type(error_from_response(status, {}, b"")) is cls


def test_the_status_table_lists_only_documented_statuses() -> None:
    """STATUS_ERRORS is the table of the documented error statuses."""
    assert sorted(STATUS_ERRORS) == [400, 401, 402, 403, 404, 409, 410, 422, 429]


def test_the_tree() -> None:
    """Every class sits where the module docstring draws it."""
    assert issubclass(UnprocessableEntityError, BadRequestError)
    for cls in STATUS_ERRORS.values():
        assert issubclass(cls, APIStatusError)
    assert issubclass(ServerError, APIStatusError)
    assert issubclass(APIStatusError, AurousError)
    assert issubclass(APITimeoutError, APIConnectionError)
    assert issubclass(APITimeoutError, TimeoutError)
    assert issubclass(OutcomeUnknownError, APIConnectionError)
    assert issubclass(InvalidParameterError, ValueError)
    assert issubclass(InvalidParameterError, AurousError)
    # An unreadable 2xx is a lost answer (retried as one); an oversized one is not retried.
    assert issubclass(APIResponseValidationError, APIConnectionError)
    assert issubclass(ResponseTooLargeError, AurousError)
    assert not issubclass(ResponseTooLargeError, APIConnectionError)


def test_the_balance_too_low_envelope() -> None:
    """The documented 402 body fills every field of an InsufficientCreditsError."""
    body = (FIXTURES / "error_balance_too_low.json").read_bytes()
    error = error_from_response(402, {"Aurous-Request-Id": "req_header"}, body)
    assert isinstance(error, InsufficientCreditsError)
    assert error.status == 402
    assert error.type == "invalid_request"
    assert error.code == "balance_too_low"
    assert error.message == "Team available balance is 1.5 credits, generation requires 2.0."
    assert error.param is None
    assert error.request_id == "req_01HXMQ7Z3K8Y2ABCDEFGHJKM"
    assert error.retry_after is None


def test_insufficient_credits_covers_both_codes() -> None:
    """The character pages' insufficient_credits is the same class as balance_too_low."""
    body = json.dumps({"error": {"code": "insufficient_credits", "message": "Not enough."}})
    error = error_from_response(402, {}, body.encode())
    assert isinstance(error, InsufficientCreditsError)
    assert error.code == "insufficient_credits"


def test_the_rate_limit_envelope_carries_retry_after() -> None:
    """A 429 reads Retry-After from the response headers."""
    body = (FIXTURES / "error_rate_limit.json").read_bytes()
    headers = {
        "Retry-After": "12",
        "X-RateLimit-Limit": "120",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "1714752912",
    }
    error = error_from_response(429, headers, body)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 12.0
    assert error.code == "too_many_requests"
    assert error.headers["X-RateLimit-Limit"] == "120"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html><body>502 Bad Gateway</body></html>",
        b"{not json",
        b"[1, 2, 3]",
        b'{"error": 42}',
        b"\xff\xfe\x00garbage",
    ],
)
def test_a_body_without_the_envelope_still_gives_a_sensible_error(body: bytes) -> None:
    """Non-JSON or foreign bodies keep the status and take the request id from the header."""
    error = error_from_response(502, {"aurous-request-id": "req_1"}, body)
    assert isinstance(error, ServerError)
    assert error.request_id == "req_1"
    assert error.code is None
    assert error.message.startswith("HTTP 502 Bad Gateway")
    assert "req_1" in str(error)


def test_a_gateway_message_is_used_when_the_envelope_is_missing() -> None:
    """{"message": ...} or {"error": "..."} bodies become the error message."""
    assert error_from_response(503, {}, b'{"message": "down for maintenance"}').message == (
        "down for maintenance"
    )
    assert error_from_response(404, {}, b'{"error": "Not Found"}').message == "Not Found"


def test_a_long_body_is_cut_in_the_message() -> None:
    """A huge HTML page does not end up whole in the exception text."""
    error = error_from_response(500, {}, b"x" * 10_000)
    assert len(error.message) < 300


def test_str_shows_status_code_message_type_param_and_ids() -> None:
    """str() carries everything a support ticket needs."""
    error = BadRequestError(
        "prompt must not be empty",
        status=400,
        type="invalid_request",
        code="missing_field",
        param="prompt",
        request_id="req_9",
        idempotency_key="key-1",
    )
    text = str(error)
    for part in ("400", "missing_field", "prompt must not be empty", "invalid_request"):
        assert part in text
    assert "param=prompt" in text
    assert "request_id=req_9" in text
    assert "idempotency_key=key-1" in text
    assert repr(error).startswith("BadRequestError(")


def test_the_idempotency_key_can_be_set_after_the_fact() -> None:
    """The client may attach a create's key to an error it re-raises."""
    error = error_from_response(500, {}, b"")
    error.idempotency_key = "abc"
    assert "idempotency_key=abc" in str(error)


def test_outcome_unknown_tells_the_caller_to_replay_with_the_key() -> None:
    """The message says what to do, and the key is on the error."""
    error = OutcomeUnknownError(idempotency_key="550e8400-e29b-41d4-a716-446655440000")
    assert error.idempotency_key == "550e8400-e29b-41d4-a716-446655440000"
    assert "same idempotency key" in str(error)
    assert "550e8400-e29b-41d4-a716-446655440000" in str(error)
    assert error.maybe_sent


def test_connection_errors_say_whether_the_request_may_have_been_sent() -> None:
    """maybe_sent is true unless the failure proves nothing was sent."""
    assert APIConnectionError("reset by peer").maybe_sent
    assert not APIConnectionError("connection refused", maybe_sent=False).maybe_sent
    timeout = APITimeoutError("read timed out")
    assert isinstance(timeout, TimeoutError)
    assert str(timeout) == "read timed out"


def test_invalid_parameter_error_names_the_parameter() -> None:
    """Client-side validation errors carry param and read as their message."""
    error = InvalidParameterError("count: must be between 1 and 4, got 9", param="count")
    assert error.param == "count"
    assert str(error) == "count: must be between 1 and 4, got 9"


@pytest.mark.parametrize(
    "error",
    [
        error_from_response(
            429,
            {"Retry-After": "3", "Aurous-Request-Id": "req_2"},
            (FIXTURES / "error_rate_limit.json").read_bytes(),
            idempotency_key="k",
        ),
        APITimeoutError("slow", maybe_sent=False, request_id="req_3"),
        OutcomeUnknownError(idempotency_key="k2", request_id="req_4"),
        InvalidParameterError("bad", param="x"),
        APIResponseValidationError(
            "GET /v1/team: the 200 response does not fit Team: required field missing @ $.id",
            route="GET /v1/team",
            status=200,
            path="$.id",
            request_id="req_5",
        ),
        ResponseTooLargeError(
            "GET /v1/team: too large", route="GET /v1/team", status=200, size=9, limit=8
        ),
    ],
)
def test_errors_pickle(error: AurousError) -> None:
    """Errors survive pickling (e.g. across process pools) with all their fields."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == {k: (dict(v) if k == "headers" else v) for k, v in vars(error).items()}


def test_no_error_shows_the_api_key() -> None:
    """Errors are built from the response alone, so a request's key cannot leak into them."""
    body = json.dumps({"error": {"code": "invalid_api_key", "message": "Invalid API key."}})
    error = error_from_response(401, {"Aurous-Request-Id": "req_5"}, body.encode())
    assert API_KEY not in str(error)
    assert API_KEY not in repr(error)
    assert all(API_KEY not in value for value in error.headers.values())


@given(status=st.integers(100, 999), body=st.binary(max_size=300))
def test_error_from_response_never_raises(status: int, body: bytes) -> None:
    """Any status and any bytes give an APIStatusError of that status."""
    error = error_from_response(status, {}, body)
    assert isinstance(error, APIStatusError)
    assert error.status == status
    assert str(error)


@given(
    envelope=st.fixed_dictionaries(
        {},
        optional={
            "type": st.none() | st.text(max_size=20) | st.integers(),
            "code": st.none() | st.text(max_size=20) | st.lists(st.integers()),
            "message": st.none() | st.text(max_size=50),
            "param": st.none() | st.text(max_size=20),
            "request_id": st.none() | st.text(max_size=30),
            "doc_url": st.text(max_size=30),
            "status": st.integers(),
        },
    )
)
def test_envelope_fields_of_the_wrong_type_are_ignored(envelope: dict[str, object]) -> None:
    """Fields are strings or None, whatever the server sent."""
    error = error_from_response(400, {}, json.dumps({"error": envelope}).encode())
    for field in (error.type, error.code, error.param, error.request_id):
        assert field is None or isinstance(field, str)
    assert isinstance(error.message, str)
    assert error.message
