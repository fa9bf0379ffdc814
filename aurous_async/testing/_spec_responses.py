"""The ``responses`` of each ``/api-spec.json`` operation: bodies, statuses and headers.

Success bodies come from the field tables the serializers declare beside their
``to_json`` (never from the SDK's models: a wire bug must not hide on both sides). Error
statuses are the ones the contract names for the operation (§6.3) plus those every
request can meet (a bad ``Aurous-Version`` pin, an injected 5xx, ...).
"""

from __future__ import annotations

from ._account_routes import BALANCE_SCHEMA, TEAM_SCHEMA, USAGE_EVENTS_SCHEMA
from ._character_routes import (
    CHARACTER_DELETED_SCHEMA,
    CHARACTER_LIST_SCHEMA,
    CHARACTER_SCHEMA,
    CLASSIFY_SCHEMA,
)
from ._characters import CharacterStore
from ._file_routes import DELETED_SCHEMA as FILE_DELETED_SCHEMA
from ._files import FileStore
from ._generations import Draft, Generation
from ._loras import Lora
from ._pricing import PRICING_SCHEMA
from ._routing import Route
from ._schema import INTEGER, STRING, JSONSchema, array, cursor_list, nullable, obj, one_of
from ._usage_routes import USAGE_SCHEMA
from ._webhook_routes import DELETED_SCHEMA as ENDPOINT_DELETED_SCHEMA
from ._webhook_routes import TEST_FIRE_SCHEMA
from ._webhooks import Endpoint

_BINARY: JSONSchema = {"type": "string", "format": "binary"}
_CHARACTER = "/v1/characters/{character_id}"
#: JSON success bodies by (method, path template).
JSON_BODIES: dict[tuple[str, str], JSONSchema] = {
    ("GET", "/v1/balance"): BALANCE_SCHEMA,
    ("GET", "/v1/team"): TEAM_SCHEMA,
    ("GET", "/v1/pricing"): PRICING_SCHEMA,
    ("GET", "/v1/usage/events"): USAGE_EVENTS_SCHEMA,
    ("GET", "/v1/usage"): USAGE_SCHEMA,
    ("POST", "/v1/images"): Generation.SCHEMA,
    ("POST", "/v1/images/estimate"): Draft.ESTIMATE_SCHEMA,
    ("GET", "/v1/images"): cursor_list(Generation.SCHEMA),
    ("GET", "/v1/images/{id}"): Generation.SCHEMA,
    ("POST", "/v1/images/{id}/cancel"): Generation.SCHEMA,
    ("POST", "/v1/videos"): Generation.SCHEMA,
    ("POST", "/v1/videos/estimate"): Draft.ESTIMATE_SCHEMA,
    ("GET", "/v1/loras"): array(Lora.SCHEMA),
    ("GET", "/v1/loras/{id}"): Lora.SCHEMA,
    ("GET", "/v1/video_loras/{id}"): Lora.VIDEO_SCHEMA,
    ("POST", "/v1/files"): FileStore.SCHEMA,
    ("GET", "/v1/files/{file_id}"): FileStore.SCHEMA,
    ("DELETE", "/v1/files/{file_id}"): FILE_DELETED_SCHEMA,
    ("POST", "/v1/characters/uploads/init"): CharacterStore.TICKET_SCHEMA,
    ("POST", "/v1/characters/uploads/classify"): CLASSIFY_SCHEMA,
    ("POST", "/v1/characters"): CHARACTER_SCHEMA,
    ("GET", "/v1/characters"): CHARACTER_LIST_SCHEMA,
    ("GET", _CHARACTER): CHARACTER_SCHEMA,
    ("PATCH", _CHARACTER): CHARACTER_SCHEMA,
    ("DELETE", _CHARACTER): CHARACTER_DELETED_SCHEMA,
    ("POST", f"{_CHARACTER}/save"): CHARACTER_SCHEMA,
    ("POST", f"{_CHARACTER}/refs/regenerate"): CHARACTER_SCHEMA,
    ("POST", f"{_CHARACTER}/resynthesize"): CHARACTER_SCHEMA,
    ("POST", "/v1/webhook_endpoints"): Endpoint.SCHEMA,
    ("GET", "/v1/webhook_endpoints/{id}"): Endpoint.SCHEMA,
    ("POST", "/v1/webhook_endpoints/{id}/rotate_secret"): Endpoint.SCHEMA,
    ("POST", "/v1/webhook_endpoints/{id}/test"): TEST_FIRE_SCHEMA,
    ("DELETE", "/v1/webhook_endpoints/{id}"): ENDPOINT_DELETED_SCHEMA,
    ("GET", "/api-spec.json"): {"type": "object"},
}
_IMAGES = ("image/png", "image/jpeg", "image/webp")
#: Byte routes (all honour ``Range``) and the media types they answer with.
BYTE_ROUTES: dict[tuple[str, str], tuple[str, ...]] = {
    ("GET", "/v1/images/{id}/output/{n}"): ("image/png", "image/jpeg"),
    ("GET", "/v1/videos/{id}/output"): ("video/mp4",),
    ("GET", "/storage/files/{file_id}"): _IMAGES,
    ("GET", "/storage/characters/{character_id}/{ref_id}.bin"): _IMAGES,
}
_GENERATION_OUTPUTS = frozenset(list(BYTE_ROUTES)[:2])
#: Statuses the contract names for one operation beyond those of its kind.
EXTRA_STATUSES: dict[tuple[str, str], tuple[int, ...]] = {
    ("POST", "/v1/images"): (402,),
    ("POST", "/v1/videos"): (402,),
    ("POST", "/v1/characters"): (402,),
    ("POST", f"{_CHARACTER}/refs/regenerate"): (402,),
    ("POST", f"{_CHARACTER}/resynthesize"): (402,),
    ("PUT", "/storage/uploads/{upload_id}"): (403,),
    **{key: (410, 416, 422) for key in _GENERATION_OUTPUTS},
    **{key: (410, 416) for key in BYTE_ROUTES if key not in _GENERATION_OUTPUTS},
}
SERVER_ERRORS = (500, 502, 503, 504)

_ERROR_TYPES = ("invalid_request", "authentication", "not_found", "rate_limit", "server_error")
ERROR_SCHEMA = obj(
    {
        "error": obj(
            {
                "type": one_of(*_ERROR_TYPES),
                "code": STRING,
                "message": STRING,
                "param": nullable(STRING),
                "doc_url": STRING,
                "request_id": STRING,
                "status": INTEGER,
            },
            optional=("status",),
        )
    }
)


def _header(description: str, schema: JSONSchema, *, required: bool = True) -> JSONSchema:
    return {"description": description, "required": required, "schema": schema}


#: Reusable response headers (``components.headers``).
HEADERS: dict[str, JSONSchema] = {
    "Aurous-Request-Id": _header("This request's id (req_...)", STRING),
    "Aurous-Version": _header("The API version applied", STRING),
    "X-RateLimit-Limit": _header("The bucket's capacity", INTEGER),
    "X-RateLimit-Remaining": _header("Tokens left after this request", INTEGER),
    "X-RateLimit-Reset": _header("Epoch seconds when the bucket is full again", INTEGER),
    "Retry-After": _header("Whole seconds until a token is available", INTEGER),
    "Aurous-Idempotent-Replayed": _header(
        "'true' on a replayed idempotent response", STRING, required=False
    ),
    "Accept-Ranges": _header("Byte ranges are served", one_of("bytes")),
    "Content-Range": _header("The range served, or '*/<size>' on a 416", STRING),
    "Location": _header("The new path", STRING),
    "Aurous-Deprecated": _header("What is deprecated", one_of("route", "docs")),
    "Sunset": _header("When the route stops answering (HTTP-date)", STRING),
}
_RATE_LIMIT = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def _headers(*names: str, optional: tuple[str, ...] = ()) -> dict[str, object]:
    out: dict[str, object] = {
        name: {"$ref": f"#/components/headers/{name}"}
        for name in ("Aurous-Request-Id", "Aurous-Version", *names)
    }
    for name in optional:
        out[name] = {**HEADERS[name], "required": False}
    return out


def _json(schema: JSONSchema) -> dict[str, object]:
    return {"application/json": {"schema": schema}}


def _bytes(media: tuple[str, ...]) -> dict[str, object]:
    return {kind: {"schema": _BINARY} for kind in media}


def _error(description: str, **headers: object) -> dict[str, object]:
    return {
        "description": description,
        "headers": headers or _headers(),
        "content": _json({"$ref": "#/components/schemas/Error"}),
    }


#: Shared error responses (``components.responses``).
RESPONSES: dict[str, dict[str, object]] = {
    "Error": _error("The error envelope"),
    "MeteredError": _error(
        "The error envelope; with the bucket's state once the key is known",
        **_headers(optional=_RATE_LIMIT),
    ),
    "TooManyRequests": _error(
        "Rate limited: wait Retry-After seconds",
        **_headers(*_RATE_LIMIT, "Retry-After"),
    ),
    "RangeNotSatisfiable": _error(
        "The Range header asks for bytes past the end", **_headers("Content-Range")
    ),
}


def error_statuses(route: Route) -> list[int]:
    """Every error status the operation can answer, in order."""
    key = (route.method, route.path)
    statuses = {400, 404, *SERVER_ERRORS, *EXTRA_STATUSES.get(key, ())}
    if route.auth:
        statuses.add(401)
        if route.scope != "read":
            statuses.add(403)
    if route.bucket is not None:
        statuses.add(429)
    if route.idempotent:
        statuses.add(409)
    return sorted(statuses)


def responses(route: Route) -> dict[str, object]:
    """The ``responses`` object of ``route``'s operation."""
    key = (route.method, route.path)
    metered = route.bucket is not None
    out: dict[str, object] = {str(route.success): _success(route, metered)}
    media = BYTE_ROUTES.get(key)
    if media is not None:
        out["206"] = {
            "description": "The requested byte range",
            "headers": _headers("Content-Range", "Accept-Ranges"),
            "content": _bytes(media),
        }
    for status in error_statuses(route):
        if status == 429:
            name = "TooManyRequests"
        elif status == 416:
            name = "RangeNotSatisfiable"
        else:
            name = "MeteredError" if metered else "Error"
        out[str(status)] = {"$ref": f"#/components/responses/{name}"}
    return out


def _success(route: Route, metered: bool) -> dict[str, object]:
    key = (route.method, route.path)
    if route.success == 308:
        return {
            "description": "Moved to the current path, method and body kept",
            "headers": _headers("Location", "Aurous-Deprecated", "Sunset"),
        }
    names = _RATE_LIMIT if metered else ()
    optional = ("Aurous-Idempotent-Replayed",) if route.idempotent else ()
    response: dict[str, object] = {"description": route.summary or "Success"}
    media = BYTE_ROUTES.get(key)
    if media is not None:
        response["headers"] = _headers("Accept-Ranges")
        response["content"] = _bytes(media)
        return response
    response["headers"] = _headers(*names, optional=optional)
    schema = JSON_BODIES.get(key)
    if schema is not None:  # else the signed upload PUT: an empty body
        response["content"] = _json(schema)
    return response
