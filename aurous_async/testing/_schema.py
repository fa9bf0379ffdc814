"""Building blocks for the JSON Schemas of ``/api-spec.json`` (OpenAPI 3.0 dialect).

Each serializer declares its fields beside its ``to_json`` with these helpers; the spec
assembles them. Objects are closed and every declared field is required unless named
optional, so a field added to a serializer and not to its table fails the spec test.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

JSONSchema = dict[str, object]
Fields = Mapping[str, JSONSchema]

STRING: JSONSchema = {"type": "string"}
INTEGER: JSONSchema = {"type": "integer"}
NUMBER: JSONSchema = {"type": "number"}
BOOLEAN: JSONSchema = {"type": "boolean"}
TIMESTAMP: JSONSchema = {"type": "string", "format": "date-time"}
STRING_MAP: JSONSchema = {"type": "object", "additionalProperties": {"type": "string"}}


def nullable(schema: JSONSchema) -> JSONSchema:
    """``schema`` or ``null`` (an enum gains ``None`` so validators accept the null)."""
    out: JSONSchema = {**schema, "nullable": True}
    enum = schema.get("enum")
    if isinstance(enum, list):
        out["enum"] = [*enum, None]
    return out


def const(value: str) -> JSONSchema:
    return {"type": "string", "enum": [value]}


def one_of(*values: str) -> JSONSchema:
    return {"type": "string", "enum": list(values)}


def array(items: JSONSchema) -> JSONSchema:
    return {"type": "array", "items": items}


def obj(fields: Fields, *, optional: Collection[str] = ()) -> JSONSchema:
    """A closed object: exactly ``fields``, all required but ``optional``."""
    return {
        "type": "object",
        "required": [name for name in fields if name not in optional],
        "properties": dict(fields),
        "additionalProperties": False,
    }


def cursor_list(item: JSONSchema) -> JSONSchema:
    """The list envelope every cursor-paginated route answers (§8.5)."""
    return obj(
        {
            "object": const("list"),
            "data": array(item),
            "has_more": BOOLEAN,
            "next_cursor": nullable(STRING),
        }
    )
