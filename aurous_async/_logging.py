"""The ``aurous_async`` logger's records about API calls, with structured fields.

Every record carries its facts as attributes (``extra=``) besides the message, so a JSON
formatter can emit them as fields: ``aurous_method``, ``aurous_route`` (the path
template, never a concrete URL), ``aurous_status``, ``aurous_request_id``,
``aurous_attempts``, ``aurous_queued`` (seconds waited for rate-limit permits), and
depending on the record ``aurous_error``, ``aurous_retry_in``, ``aurous_bucket``. No
record carries a header, a body, a query string or a key.

- DEBUG, one per finished call: the answer it got, or the error it gave up with;
- INFO: a retry, a wait for a rate-limit permit, a route the API says is deprecated.
"""

from __future__ import annotations

import logging

__all__ = ["call_failed", "call_finished", "deprecated", "logger", "paused", "retrying"]

logger = logging.getLogger("aurous_async")


def _fields(
    method: str,
    route: str,
    status: int | None,
    request_id: str | None,
    attempts: int,
    queued: float,
) -> dict[str, object]:
    return {
        "aurous_method": method,
        "aurous_route": route,
        "aurous_status": status,
        "aurous_request_id": request_id,
        "aurous_attempts": attempts,
        "aurous_queued": queued,
    }


def call_finished(
    method: str, route: str, status: int, request_id: str | None, attempts: int, queued: float
) -> None:
    """DEBUG: a call got its answer (callers check ``isEnabledFor(DEBUG)`` first)."""
    logger.debug(
        "%s %s -> %d (request %s, %d attempt(s), %.3f s queued)",
        method,
        route,
        status,
        request_id,
        attempts,
        queued,
        extra=_fields(method, route, status, request_id, attempts, queued),
    )


def call_failed(
    method: str, route: str, error: BaseException, attempts: int, queued: float
) -> None:
    """DEBUG: a call gave up with ``error`` (named by its type; the message is the error's)."""
    if not logger.isEnabledFor(logging.DEBUG):
        return
    status = getattr(error, "status", None)
    request_id = getattr(error, "request_id", None)
    fields = _fields(method, route, status, request_id, attempts, queued)
    fields["aurous_error"] = type(error).__name__
    logger.debug(
        "%s %s failed after %d attempt(s): %s",
        method,
        route,
        attempts,
        type(error).__name__,
        extra=fields,
    )


def retrying(
    method: str,
    route: str,
    error: BaseException,
    attempts: int,
    queued: float,
    wait: float,
) -> None:
    """INFO: attempt ``attempts`` failed with ``error``; the next one starts in ``wait`` s."""
    fields = _fields(
        method,
        route,
        getattr(error, "status", None),
        getattr(error, "request_id", None),
        attempts,
        queued,
    )
    fields["aurous_error"] = type(error).__name__
    fields["aurous_retry_in"] = wait
    logger.info(
        "%s %s: attempt %d failed (%s); retrying in %.2f s",
        method,
        route,
        attempts,
        error,
        wait,
        extra=fields,
    )


def paused(method: str, route: str, bucket: str, attempts: int, queued: float) -> None:
    """INFO: a call waited for a rate-limit permit (``queued``: its seconds so far)."""
    fields = _fields(method, route, None, None, attempts, queued)
    fields["aurous_bucket"] = bucket
    logger.info(
        "%s %s: waited for a rate-limit permit of the %s bucket (%.3f s queued)",
        method,
        route,
        bucket,
        queued,
        extra=fields,
    )


def deprecated(method: str, route: str, status: int, request_id: str | None, detail: str) -> None:
    """INFO: the API marked a route deprecated (logged once per route, as it is warned)."""
    fields: dict[str, object] = {
        "aurous_method": method,
        "aurous_route": route,
        "aurous_status": status,
        "aurous_request_id": request_id,
        "aurous_deprecation": detail,
    }
    logger.info("%s %s is deprecated by the API (%s)", method, route, detail, extra=fields)
