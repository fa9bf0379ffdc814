"""``GET /api-spec.json``: an OpenAPI 3 document of what the emulator serves."""

from __future__ import annotations

import functools
import re

from ._routing import Reply, Route
from ._serialize import dumps
from ._settings import API_VERSION

_PARAM = re.compile(r"\{(\w+)\}")
_ERROR_REF = {"$ref": "#/components/responses/Error"}


def _operation(route: Route) -> dict[str, object]:
    responses: dict[str, object] = {str(route.success): {"description": "Success"}}
    for status in ("400", "401", "403", "404", "409", "429", "500"):
        responses[status] = _ERROR_REF
    parameters: list[dict[str, object]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM.findall(route.path)
    ]
    parameters.append({"$ref": "#/components/parameters/AurousVersion"})
    if route.idempotent:
        parameters.append({"$ref": "#/components/parameters/IdempotencyKey"})
    operation: dict[str, object] = {
        "operationId": f"{route.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', route.path.lower())}",
        "summary": route.summary or route.handler.__doc__ or "",
        "parameters": parameters,
        "responses": responses,
        "security": [{"api-key": []}, {"bearer": []}] if route.auth else [],
        "x-aurous-bucket": route.bucket if isinstance(route.bucket, str) else "per-request",
        "x-aurous-scope": route.scope if route.auth else None,
    }
    if route.method in ("POST", "PATCH", "PUT"):
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": {"type": "object"}}},
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
                    "schema": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
                },
                "IdempotencyKey": {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 256},
                },
            },
            "responses": {
                "Error": {
                    "description": "The error envelope",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["type", "code", "message", "request_id"],
                            "properties": {
                                "type": {"type": "string"},
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                                "param": {"type": "string", "nullable": True},
                                "doc_url": {"type": "string"},
                                "request_id": {"type": "string"},
                            },
                        }
                    },
                }
            },
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
