"""Legacy generation routes (A15, §13): 308 to the new path until the sunset, 404 after.

The redirect answers before authentication (as a gateway rewrite would), spends no
rate-limit token, and keeps the query string; 308 keeps the method and body, so a POST
re-POSTs to the new path.
"""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import quote

from ._errors import ApiError
from ._routing import Ctx, Handler, Reply, Route

SUNSET_AT = datetime(2026, 8, 4, tzinfo=timezone.utc).timestamp()
SUNSET_HTTP_DATE = "Tue, 04 Aug 2026 00:00:00 GMT"


def _redirect(target: str) -> Handler:
    async def handler(ctx: Ctx) -> Reply:
        if ctx.now >= SUNSET_AT:
            raise ApiError(
                404,
                "resource_not_found",
                f"{ctx.request.path} was retired on 2026-08-04; use {target.split('{')[0]}…",
            )
        # Path parameters arrive decoded; a header must carry them percent-encoded.
        location = target.format(
            **{name: quote(value, safe="") for name, value in ctx.match.items()}
        )
        query = ctx.request.rel_url.raw_query_string
        if query:
            location = f"{location}?{query}"
        return Reply(
            status=308,
            data=b"",
            content_type="text/plain",
            headers={
                "Location": f"{ctx.state.base_url}{location}",
                "Aurous-Deprecated": "route",
                "Sunset": SUNSET_HTTP_DATE,
            },
        )

    handler.__doc__ = f"Deprecated: 308 to {target} until {SUNSET_HTTP_DATE}."
    return handler


def _legacy(method: str, path: str, target: str) -> Route:
    return Route(
        method,
        path,
        _redirect(target),
        bucket=None,
        auth=False,
        success=308,
        summary=f"Deprecated alias of {method} {target} (308 until the sunset)",
    )


ROUTES: list[Route] = [
    _legacy("GET", "/v1/generations", "/v1/images"),
    _legacy("POST", "/v1/generations", "/v1/images"),
    _legacy("GET", "/v1/generations/{id}", "/v1/images/{id}"),
    _legacy("POST", "/v1/video-generations", "/v1/videos"),
    _legacy("GET", "/v1/video-generations/{id}", "/v1/images/{id}"),
]
