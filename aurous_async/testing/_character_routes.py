"""``/v1/characters`` and its upload tickets (§11), plus two signed byte routes.

Emulator details (no API key, unmetered, signed ``?token=``):
``PUT /storage/uploads/{upload_id}`` receives a ticket's image (the real API's storage
host), and ``GET /storage/characters/{character_id}/{ref_id}.bin`` serves a ref's bytes.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._characters import CONTENT_TYPES, EXTENSIONS, POSES
from ._errors import ApiError, bad_format, invalid, missing, not_found, out_of_range
from ._files import MAX_FILE_BYTES
from ._pagination import paginate
from ._ranges import byte_reply
from ._routing import Ctx, Reply, Route
from ._schema import (
    BOOLEAN,
    INTEGER,
    STRING,
    TIMESTAMP,
    array,
    const,
    cursor_list,
    nullable,
    obj,
    one_of,
)
from ._validate import boolean, choice, items, reject_unknown, text

NAME_MAX = 120
CLIENT_REFERENCE_MAX = 256
PROMPT_OVERRIDE_MAX = 4000
UPLOAD_IDS_MAX = 6
AGE_RANGE = (0, 150)
#: The fixed attribute set of v1.0 (§11) and the longest string each accepts.
ATTRIBUTE_TEXT_MAX = {
    "gender": 120,
    "ethnicity": 120,
    "hair_color": 120,
    "hair_style": 120,
    "eye_color": 120,
    "body_type": 120,
    "additional_details": 1000,
}
ATTRIBUTES = ("gender", "age", *ATTRIBUTE_TEXT_MAX)
_CHUNK = 64 * 1024

#: The fields ``CharacterStore.to_json`` writes (kept here, beside the attribute set).
CHARACTER_SCHEMA = obj(
    {
        "id": STRING,
        "object": const("character"),
        "name": STRING,
        "status": one_of("synthesizing", "reviewing", "ready", "failed", "deleted"),
        "refs": array(obj({"pose": one_of(*POSES), "url": STRING})),
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
        "attributes": {
            "type": "object",
            "properties": {name: INTEGER if name == "age" else STRING for name in ATTRIBUTES},
            "additionalProperties": False,
        },
        "error_message": nullable(STRING),
        "aurous_version": STRING,
        "client_reference_id": nullable(STRING),
        "deleted_at": nullable(TIMESTAMP),
    }
)

CHARACTER_LIST_SCHEMA = cursor_list(CHARACTER_SCHEMA)
CHARACTER_DELETED_SCHEMA = obj({"id": STRING, "object": const("character"), "deleted": BOOLEAN})
CLASSIFY_SCHEMA = obj(
    {
        "upload_id": STRING,
        "pose": one_of(*POSES),
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    }
)


def parse_attributes(value: object) -> dict[str, object]:
    """The attributes object: only the fixed keys; ``age`` an integer, the rest text."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_format("attributes", "'attributes' must be an object.")
    parsed: dict[str, object] = {}
    for key, item in value.items():
        param = f"attributes.{key}"
        if key not in ATTRIBUTES:
            raise invalid(
                "invalid_request",
                f"Unknown attribute '{key}'; allowed: {', '.join(ATTRIBUTES)}.",
                param,
            )
        if item is None:
            continue
        if key == "age":
            if isinstance(item, bool) or not isinstance(item, int):
                raise bad_format(param, "'age' must be an integer.")
            low, high = AGE_RANGE
            if not low <= item <= high:
                raise out_of_range(param, f"'age' must be between {low} and {high}.")
        else:
            longest = ATTRIBUTE_TEXT_MAX[key]
            if not isinstance(item, str):
                raise bad_format(param, f"'{key}' must be a string.")
            if not item.strip() or len(item) > longest:
                raise out_of_range(param, f"'{key}' must be 1-{longest} characters.")
        parsed[key] = item
    return parsed


def _name(body: Mapping[str, object], *, required: bool) -> str | None:
    return text(body, "name", required=required, max_len=NAME_MAX)


# -- upload tickets -------------------------------------------------------------------
async def init_upload(ctx: Ctx) -> Reply:
    """Get a signed PUT URL for one reference image."""
    body = await ctx.json()
    reject_unknown(body, ("filename", "extension", "content_type"))
    filename = text(body, "filename", required=True, max_len=120)
    extension = choice(body, "extension", tuple(EXTENSIONS), required=True)
    content_type = choice(body, "content_type", CONTENT_TYPES, required=True)
    assert filename is not None
    assert extension is not None
    assert content_type is not None
    if EXTENSIONS[extension] != content_type:
        raise invalid(
            "parameter_invalid_combination",
            f"Extension '{extension}' needs content_type {EXTENSIONS[extension]}.",
            "content_type",
        )
    store = ctx.state.characters
    ticket = store.init_upload(ctx.team.id, filename, content_type)
    return Reply(status=201, body=store.ticket_json(ticket))


async def put_upload(ctx: Ctx) -> Reply:
    """Receive the bytes of an upload ticket (signed URL; no API key)."""
    buffer = bytearray()
    oversized = False
    async for chunk in ctx.request.content.iter_chunked(_CHUNK):
        if oversized or len(buffer) + len(chunk) > MAX_FILE_BYTES:
            oversized = True
            continue
        buffer += chunk
    ctx.state.characters.put_upload(
        ctx.match["upload_id"],
        ctx.query.get("token"),
        ctx.request.content_type,
        bytes(buffer),
        oversized,
    )
    return Reply(data=b"", content_type="text/plain")


async def classify_upload(ctx: Ctx) -> Reply:
    """Detect the pose of an uploaded image."""
    body = await ctx.json()
    reject_unknown(body, ("upload_id",))
    upload_id = text(body, "upload_id", required=True)
    assert upload_id is not None
    ticket = ctx.state.characters.classify(ctx.team.id, upload_id)
    return Reply(
        body={"upload_id": ticket.id, "pose": ticket.pose, "confidence": ticket.confidence}
    )


# -- characters ------------------------------------------------------------------------
async def create_bucket(ctx: Ctx) -> str:
    """One route, two buckets: the synthesize flow is metered as a synthesis (§4.1)."""
    try:
        body = await ctx.json()
    except ApiError:
        return "characters_post"  # the handler reports the bad body
    return "characters_synthesize" if body.get("generate") is True else "characters_post"


async def create_character(ctx: Ctx) -> Reply:
    """Create a character from uploads (ready at once) or by synthesis (async)."""
    body = await ctx.json()
    reject_unknown(body, ("name", "generate", "upload_ids", "attributes", "client_reference_id"))
    name = _name(body, required=True)
    generate = boolean(body, "generate")
    upload_ids = items(body, "upload_ids", max_items=UPLOAD_IDS_MAX)
    attributes = parse_attributes(body.get("attributes"))
    reference = text(body, "client_reference_id", max_len=CLIENT_REFERENCE_MAX)
    assert name is not None
    if upload_ids is not None and generate:
        raise invalid(
            "parameter_invalid_combination",
            "Send either upload_ids or generate: true, not both.",
            "generate",
        )
    store = ctx.state.characters
    if upload_ids is None:
        if not generate:
            raise invalid(
                "parameter_invalid_combination",
                "Send either upload_ids (upload flow) or generate: true (synthesize flow).",
                "upload_ids",
            )
        character = store.create_synthesized(ctx.team, name, attributes, ctx.version, reference)
    else:
        if not all(isinstance(uid, str) for uid in upload_ids):
            raise bad_format("upload_ids", "'upload_ids' must be an array of strings.")
        ids = [str(uid) for uid in upload_ids]
        character = store.create_from_uploads(
            ctx.team.id, name, ids, attributes, ctx.version, reference
        )
    return Reply(status=201, body=store.to_json(character))


async def list_characters(ctx: Ctx) -> Reply:
    """List characters, newest first (soft-deleted ones excluded)."""
    store = ctx.state.characters
    page = paginate(
        ctx.request,
        store.listing(ctx.team.id),
        lambda character: character.id,
        allow_ending_before=False,
    )
    return Reply(
        body={
            "object": "list",
            "data": [store.to_json(c) for c in page["rows"]],  # type: ignore[attr-defined]
            "has_more": page["has_more"],
            "next_cursor": page["next_cursor"],
        }
    )


async def get_character(ctx: Ctx) -> Reply:
    """Get one character (404 once deleted)."""
    store = ctx.state.characters
    return Reply(body=store.to_json(store.get(ctx.team.id, ctx.match["character_id"])))


async def update_character(ctx: Ctx) -> Reply:
    """Rename a character or replace its attributes."""
    body = await ctx.json()
    store = ctx.state.characters
    store.get(ctx.team.id, ctx.match["character_id"])  # 404 before body complaints
    for field in body:
        if field not in ("name", "attributes"):
            raise invalid(
                "invalid_request", f"'{field}' cannot be changed; only name and attributes.", field
            )
    try:
        name = _name(body, required=False)
        attributes = None
        if "name" in body and body["name"] is None:
            raise bad_format("name", "'name' must be a string.")
        if "attributes" in body:
            if body["attributes"] is None:
                raise bad_format("attributes", "'attributes' must be an object.")
            attributes = parse_attributes(body["attributes"])
    except ApiError as error:
        # The update page documents one code for every body problem (§6.3).
        raise invalid("invalid_request", error.message, error.param) from None
    character = store.update(ctx.team.id, ctx.match["character_id"], name, attributes)
    return Reply(body=store.to_json(character))


async def delete_character(ctx: Ctx) -> Reply:
    """Delete a character (hard when reviewing, soft otherwise)."""
    character_id = ctx.match["character_id"]
    ctx.state.characters.delete(ctx.team.id, character_id)
    return Reply(body={"id": character_id, "object": "character", "deleted": True})


async def save_character(ctx: Ctx) -> Reply:
    """Approve a reviewing character (idempotent on ready)."""
    store = ctx.state.characters
    return Reply(body=store.to_json(store.save(ctx.team.id, ctx.match["character_id"])))


async def regenerate_ref(ctx: Ctx) -> Reply:
    """Re-synthesize one pose."""
    body = await ctx.json()
    reject_unknown(body, ("pose", "prompt_override"))
    pose = body.get("pose")
    if pose is None:
        raise missing("pose")
    if not isinstance(pose, str) or pose not in POSES:
        raise invalid(
            "invalid_request_error", f"'pose' must be one of: {', '.join(POSES)}.", "pose"
        )
    text(body, "prompt_override", max_len=PROMPT_OVERRIDE_MAX)  # accepted, ignored (§11)
    store = ctx.state.characters
    character = store.regenerate(ctx.team, ctx.match["character_id"], pose)
    return Reply(body=store.to_json(character))


async def resynthesize(ctx: Ctx) -> Reply:
    """Re-synthesize every pose."""
    body = await ctx.json()
    reject_unknown(body, ("force_all",))
    force_all = boolean(body, "force_all") or False
    store = ctx.state.characters
    character = store.resynthesize(ctx.team, ctx.match["character_id"], force_all)
    return Reply(body=store.to_json(character))


async def ref_content(ctx: Ctx) -> Reply:
    """A ref's image bytes behind its signed URL (emulator detail)."""
    found = ctx.state.characters.ref_content(
        ctx.match["character_id"], ctx.match["ref_id"], ctx.query.get("token")
    )
    if found == "expired":
        raise ApiError(
            410, "output_expired", "This ref URL has expired; GET the character for a fresh one."
        )
    if isinstance(found, str):
        raise not_found("ref")
    return byte_reply(ctx, found.data, found.mime_type)


_ONE = "/v1/characters/{character_id}"
ROUTES: list[Route] = [
    Route(
        "POST",
        "/v1/characters/uploads/init",
        init_upload,
        bucket="characters_post",
        scope="write",
        success=201,
        summary="Get a signed upload URL for one character reference image",
    ),
    Route(
        "POST",
        "/v1/characters/uploads/classify",
        classify_upload,
        bucket="characters_post",
        scope="write",
        summary="Detect the pose of an upload",
    ),
    Route(
        "POST",
        "/v1/characters",
        create_character,
        bucket=create_bucket,
        scope="write",
        success=201,
        summary="Create a character (upload or synthesize flow)",
    ),
    Route("GET", "/v1/characters", list_characters, bucket="characters_get"),
    Route("GET", _ONE, get_character, bucket="characters_get"),
    Route("PATCH", _ONE, update_character, bucket="characters_post", scope="write"),
    Route("DELETE", _ONE, delete_character, bucket="characters_post", scope="write"),
    Route("POST", f"{_ONE}/save", save_character, bucket="characters_post", scope="write"),
    Route(
        "POST",
        f"{_ONE}/refs/regenerate",
        regenerate_ref,
        bucket="characters_synthesize",
        scope="write",
        idempotent=True,
    ),
    Route(
        "POST",
        f"{_ONE}/resynthesize",
        resynthesize,
        bucket="characters_synthesize",
        scope="write",
        idempotent=True,
    ),
    Route(
        "PUT",
        "/storage/uploads/{upload_id}",
        put_upload,
        bucket=None,
        auth=False,
        summary="Upload a ticket's bytes (signed URL; emulator detail)",
    ),
    Route(
        "GET",
        "/storage/characters/{character_id}/{ref_id}.bin",
        ref_content,
        bucket=None,
        auth=False,
        summary="A character ref's bytes (signed URL; emulator detail)",
    ),
]
