"""``GET /api-spec.json``: an OpenAPI 3 document of what the emulator serves."""

from __future__ import annotations

import functools
import re

from ._routing import Reply, Route
from ._schema import BOOLEAN, STRING, JSONSchema
from ._serialize import dumps
from ._settings import API_VERSION, KNOWN_VERSIONS
from ._spec_responses import ERROR_SCHEMA, HEADERS, RESPONSES, responses

_PARAM = re.compile(r"\{(\w+)\}")

# -- request shapes (contract §8-§12), so a schema-driven client can build requests ----
_STR = STRING
_BOOL = BOOLEAN
_PROMPT: JSONSchema = {"type": "string", "minLength": 1, "maxLength": 4000}
_URL_LIST: JSONSchema = {"type": "array", "items": _STR, "minItems": 1, "maxItems": 6}
_POSES = ["portrait", "front", "side", "back", "other"]
_EVENT_TYPES = [
    "image.completed",
    "image.failed",
    "image.cancelled",
    "video.completed",
    "video.failed",
    "video.cancelled",
    "usage.balance_low",
    "webhook.endpoint_disabled",
    "character.completed",
    "character.failed",
    "character.cancelled",
]
_IMAGE_BODY: JSONSchema = {
    "type": "object",
    "required": ["prompt"],
    "properties": {
        "prompt": _PROMPT,
        "negative_prompt": _PROMPT,
        "lora_id": _STR,
        "loras": {
            "type": "array",
            "minItems": 1,
            "maxItems": 4,
            "items": {
                "type": "object",
                "required": ["lora", "weight"],
                "properties": {
                    "lora": _STR,
                    "weight": {"type": "number", "minimum": 0, "maximum": 2},
                },
            },
        },
        "character_id": _STR,
        "size": {"type": "string", "pattern": r"^(2k|4k)_\d{1,2}_\d{1,2}$"},
        "width": {"type": "integer", "minimum": 1024, "maximum": 4096},
        "height": {"type": "integer", "minimum": 1024, "maximum": 4096},
        "steps": {"type": "integer", "minimum": 1, "maximum": 100},
        "guidance_scale": {"type": "number", "minimum": 0.1, "maximum": 30},
        "cfg_rescale": {"type": "number"},
        "denoise_strength": {"type": "number"},
        "seed": {"type": "integer"},
        "count": {"type": "integer", "minimum": 1, "maximum": 4},
        "enhance_prompt": _BOOL,
        "webhook_url": _STR,
        "reference_image_urls": _URL_LIST,
    },
}
_VIDEO_BODY: JSONSchema = {
    "type": "object",
    "required": ["video_lora_id"],
    "properties": {
        "video_lora_id": _STR,
        "prompt": _PROMPT,
        "first_frame_url": {"type": "string", "maxLength": 2048},
        "last_frame_url": {"type": "string", "maxLength": 2048},
        "resolution": {"type": "string", "enum": ["480p", "720p", "1080p"]},
        "ratio": {"type": "string", "enum": ["16:9", "4:3", "1:1", "3:4", "9:16", "21:9"]},
        "duration": {"type": "integer", "minimum": 2, "maximum": 12},
        "seed": {"type": "integer"},
        "camera_fixed": _BOOL,
        "watermark": _BOOL,
        "enhance_prompt": _BOOL,
        "webhook_url": _STR,
    },
}
_ATTRIBUTES: JSONSchema = {
    "type": "object",
    "properties": {
        "gender": _STR,
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "ethnicity": _STR,
        "hair_color": _STR,
        "hair_style": _STR,
        "eye_color": _STR,
        "body_type": _STR,
        "additional_details": _STR,
    },
}
_METADATA: JSONSchema = {"type": "object", "additionalProperties": {"type": "string"}}
_FILE_FORM: JSONSchema = {
    "type": "object",
    "required": ["file", "purpose"],
    "properties": {
        "file": {"type": "string", "format": "binary"},
        "purpose": {"type": "string", "enum": ["reference", "first_frame", "last_frame"]},
        "metadata": {"type": "string", "description": "a JSON-encoded object"},
    },
}
#: Request bodies by (method, path template); every other body-taking route takes ``{}``.
REQUEST_BODIES: dict[tuple[str, str], tuple[str, JSONSchema]] = {
    ("POST", "/v1/images"): ("application/json", _IMAGE_BODY),
    ("POST", "/v1/images/estimate"): ("application/json", _IMAGE_BODY),
    ("POST", "/v1/videos"): ("application/json", _VIDEO_BODY),
    ("POST", "/v1/videos/estimate"): ("application/json", _VIDEO_BODY),
    ("POST", "/v1/generations"): ("application/json", _IMAGE_BODY),
    ("POST", "/v1/video-generations"): ("application/json", _VIDEO_BODY),
    ("POST", "/v1/files"): ("multipart/form-data", _FILE_FORM),
    ("POST", "/v1/characters/uploads/init"): (
        "application/json",
        {
            "type": "object",
            "required": ["filename", "extension", "content_type"],
            "properties": {
                "filename": {"type": "string", "minLength": 1, "maxLength": 120},
                "extension": {"type": "string", "enum": ["jpeg", "jpg", "png", "webp"]},
                "content_type": {
                    "type": "string",
                    "enum": ["image/jpeg", "image/png", "image/webp"],
                },
            },
        },
    ),
    ("POST", "/v1/characters/uploads/classify"): (
        "application/json",
        {"type": "object", "required": ["upload_id"], "properties": {"upload_id": _STR}},
    ),
    ("POST", "/v1/characters"): (
        "application/json",
        {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 120},
                "generate": _BOOL,
                "upload_ids": _URL_LIST,
                "attributes": _ATTRIBUTES,
                "client_reference_id": {"type": "string", "maxLength": 256},
            },
        },
    ),
    ("PATCH", "/v1/characters/{character_id}"): (
        "application/json",
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 120},
                "attributes": _ATTRIBUTES,
            },
        },
    ),
    ("POST", "/v1/characters/{character_id}/refs/regenerate"): (
        "application/json",
        {
            "type": "object",
            "required": ["pose"],
            "properties": {"pose": {"type": "string", "enum": _POSES}, "prompt_override": _STR},
        },
    ),
    ("POST", "/v1/characters/{character_id}/resynthesize"): (
        "application/json",
        {"type": "object", "properties": {"force_all": _BOOL}},
    ),
    ("PUT", "/storage/uploads/{upload_id}"): (
        "application/octet-stream",
        {"type": "string", "format": "binary"},
    ),
    ("POST", "/v1/webhook_endpoints"): (
        "application/json",
        {
            "type": "object",
            "required": ["url", "events"],
            "properties": {
                "url": {"type": "string", "maxLength": 2048},
                "events": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "enum": [*_EVENT_TYPES, "*"]},
                },
                "description": _STR,
                "metadata": _METADATA,
            },
        },
    ),
    ("POST", "/v1/webhook_endpoints/{id}/test"): (
        "application/json",
        {
            "type": "object",
            "required": ["event_type"],
            "properties": {"event_type": {"type": "string", "enum": _EVENT_TYPES}},
        },
    ),
}


def _closed(schema: JSONSchema) -> JSONSchema:
    """``schema`` with ``additionalProperties: false`` at every object level (the emulator
    refuses unknown fields, as the API does)."""
    if schema.get("type") != "object" or "additionalProperties" in schema:
        return schema
    properties = schema.get("properties", {})
    assert isinstance(properties, dict)
    nested = {
        name: _closed({**sub, "items": _closed(sub["items"])} if "items" in sub else sub)
        for name, sub in properties.items()
    }
    return {**schema, "properties": nested, "additionalProperties": False}


def _query(name: str, schema: JSONSchema, *, required: bool = False) -> JSONSchema:
    return {"name": name, "in": "query", "required": required, "schema": schema}


_LIMIT = _query("limit", {"type": "integer", "minimum": 1, "maximum": 100})
_TOKEN = _query("token", _STR)
_RANGE: JSONSchema = {
    "name": "Range",
    "in": "header",
    "required": False,
    "description": "One byte range: bytes=N-M, bytes=N- or bytes=-S",
    "schema": {"type": "string", "pattern": r"^bytes=\d*-\d*$"},
}
_CURSORS = [_LIMIT, _query("starting_after", _STR)]
#: Query parameters by (method, path template).
QUERY_PARAMETERS: dict[tuple[str, str], list[JSONSchema]] = {
    ("GET", "/v1/images"): [*_CURSORS, _query("ending_before", _STR)],
    ("GET", "/v1/characters"): _CURSORS,
    ("GET", "/v1/usage/events"): [
        *_CURSORS,
        _query(
            "type",
            {
                "type": "string",
                "enum": ["hold", "release", "charge", "refund", "topup", "adjustment"],
            },
        ),
    ],
    ("GET", "/v1/usage"): [
        _query("start_time", {"type": "string", "format": "date-time"}, required=True),
        _query("end_time", {"type": "string", "format": "date-time"}),
        _query("bucket_width", {"type": "string", "enum": ["1m", "5m", "15m", "1h", "1d", "7d"]}),
        {
            **_query(
                "group_by",
                {
                    "type": "array",
                    "maxItems": 2,
                    "uniqueItems": True,
                    "items": {
                        "type": "string",
                        "enum": ["status", "api_key_id", "user_id", "type"],
                    },
                },
            ),
            "style": "form",
            "explode": True,
        },
        _query("status", _STR),
        _query("type", _STR),
        _query("api_key_id", _STR),
        _query("user_id", _STR),
        _query("lora_id", _STR),
        _query("character_id", _STR),
        _LIMIT,
        _query("page_token", _STR),
    ],
    ("GET", "/v1/images/{id}/output/{n}"): [_TOKEN, _RANGE],
    ("GET", "/v1/videos/{id}/output"): [_TOKEN, _RANGE],
    ("GET", "/storage/files/{file_id}"): [_TOKEN, _RANGE],
    ("GET", "/storage/characters/{character_id}/{ref_id}.bin"): [_TOKEN, _RANGE],
    ("PUT", "/storage/uploads/{upload_id}"): [_TOKEN],
}
_INTEGER_PATH_PARAMS = frozenset({"n"})


def _operation(route: Route) -> dict[str, object]:
    parameters: list[dict[str, object]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 0}
            if name in _INTEGER_PATH_PARAMS
            else {"type": "string", "minLength": 1},
        }
        for name in _PARAM.findall(route.path)
    ]
    parameters.extend(QUERY_PARAMETERS.get((route.method, route.path), []))
    parameters.append({"$ref": "#/components/parameters/AurousVersion"})
    if route.idempotent:
        parameters.append({"$ref": "#/components/parameters/IdempotencyKey"})
    operation: dict[str, object] = {
        "operationId": f"{route.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', route.path.lower())}",
        "summary": route.summary or route.handler.__doc__ or "",
        "parameters": parameters,
        "responses": responses(route),
        "security": [{"api-key": []}, {"bearer": []}] if route.auth else [],
        "x-aurous-bucket": route.bucket if not callable(route.bucket) else "per-request",
        "x-aurous-scope": route.scope if route.auth else None,
    }
    if route.method in ("POST", "PATCH", "PUT"):
        media, schema = REQUEST_BODIES.get(
            (route.method, route.path),
            ("application/json", {"type": "object", "additionalProperties": False}),
        )
        operation["requestBody"] = {
            "required": (route.method, route.path) in REQUEST_BODIES,
            "content": {media: {"schema": _closed(schema)}},
        }
    return operation


def build_spec(routes: list[Route]) -> dict[str, object]:
    paths: dict[str, dict[str, object]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.0.3",
        "info": {"title": "Aurous Labs API (emulator)", "version": API_VERSION},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "api-key": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
            "parameters": {
                "AurousVersion": {
                    "name": "Aurous-Version",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "enum": sorted(KNOWN_VERSIONS)},
                },
                "IdempotencyKey": {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 256},
                },
            },
            "headers": HEADERS,
            "responses": RESPONSES,
            "schemas": {"Error": ERROR_SCHEMA},
        },
    }


@functools.cache
def _spec_bytes() -> bytes:
    from ._app import all_routes

    return dumps(build_spec(all_routes()))


async def get_spec(ctx: object) -> Reply:
    """The OpenAPI document of every route the emulator serves."""
    return Reply(data=_spec_bytes())


ROUTES: list[Route] = [
    Route("GET", "/api-spec.json", get_spec, bucket=None, auth=False, summary="OpenAPI document"),
]
