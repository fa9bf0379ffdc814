"""Webhook endpoint routes (contract §12.1, A11, A14, A21). No list or update route exists."""

from __future__ import annotations

from decimal import Decimal

from yarl import URL

from ._errors import bad_format, missing, not_found, out_of_range
from ._ids import new_id
from ._routing import Ctx, Reply, Route
from ._schema import BOOLEAN, STRING, const, obj
from ._serialize import iso, money
from ._validate import https_url, mapping, reject_unknown, text
from ._webhooks import Endpoint, event_types

MAX_METADATA_KEYS = 50
MAX_METADATA_VALUE = 500
#: Not documented; a generous bound so a runaway value is still refused.
MAX_DESCRIPTION = 1024
CREATE_FIELDS = ("url", "events", "description", "metadata")


def _url(ctx: Ctx, body: dict[str, object]) -> str:
    raw = text(body, "url", required=True)
    assert raw is not None
    value = https_url(ctx.state, raw, "url")
    try:
        host = URL(value).host
    except ValueError:
        host = None
    if not host or any(ch.isspace() for ch in value):
        raise bad_format("url", "'url' must be an absolute https:// URL with a host.")
    return value


def _events(body: dict[str, object], version: str) -> tuple[str, ...]:
    known = event_types(version)
    raw = body.get("events")
    if raw is None:
        raise missing("events")
    if not isinstance(raw, list):
        raise bad_format("events", "'events' must be an array of event types.")
    if not raw:
        raise out_of_range("events", "'events' must list at least one event type, or '*'.")
    for item in raw:
        if not isinstance(item, str):
            raise bad_format("events", "'events' must contain strings.")
        if item != "*" and item not in known:
            raise bad_format(
                "events",
                f"Unknown event type {item!r}. Known types: {', '.join(known)}, or '*'.",
            )
    if "*" in raw:
        # A snapshot of the applied version's types (A21); it never grows by itself.
        return known
    return tuple(dict.fromkeys(raw))


def _metadata(body: dict[str, object]) -> dict[str, str]:
    raw = mapping(body, "metadata")
    if raw is None:
        return {}
    if len(raw) > MAX_METADATA_KEYS:
        raise out_of_range("metadata", f"'metadata' may hold at most {MAX_METADATA_KEYS} keys.")
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(value, str):
            raise bad_format("metadata", f"metadata[{key!r}] must be a string.")
        if len(value) > MAX_METADATA_VALUE:
            raise out_of_range(
                "metadata", f"metadata[{key!r}] must be at most {MAX_METADATA_VALUE} characters."
            )
        out[key] = value
    return out


def _endpoint(ctx: Ctx) -> Endpoint:
    endpoint = ctx.state.webhooks.get(ctx.team.id, ctx.match["id"])
    if endpoint is None:
        raise not_found("webhook endpoint")
    return endpoint


async def create_endpoint(ctx: Ctx) -> Reply:
    """Register a webhook endpoint; the plaintext secret is shown once."""
    body = await ctx.json()
    reject_unknown(body, CREATE_FIELDS)
    url = _url(ctx, body)
    events = _events(body, ctx.version)
    description = text(body, "description", min_len=0, max_len=MAX_DESCRIPTION)
    metadata = _metadata(body)
    endpoint, secret = ctx.state.webhooks.create(ctx.team.id, url, events, description, metadata)
    return Reply(status=201, body=endpoint.to_json(secret=secret))


async def get_endpoint(ctx: Ctx) -> Reply:
    """Get a webhook endpoint (its secret is never shown again)."""
    return Reply(body=_endpoint(ctx).to_json())


async def rotate_secret(ctx: Ctx) -> Reply:
    """Mint a new signing secret; the old one keeps signing for 24 h."""
    endpoint = _endpoint(ctx)
    secret = ctx.state.webhooks.rotate(endpoint)
    return Reply(body=endpoint.to_json(secret=secret))


TEST_FIRE_SCHEMA = obj(
    {
        "object": const("webhook_test_fire"),
        "endpoint_id": STRING,
        "event_id": STRING,
        "enqueued": BOOLEAN,
    }
)
DELETED_SCHEMA = obj({"id": STRING, "object": const("webhook_endpoint"), "deleted": BOOLEAN})


async def fire_test(ctx: Ctx) -> Reply:
    """Enqueue a signed synthetic delivery of a fixture payload."""
    endpoint = _endpoint(ctx)
    body = await ctx.json()
    reject_unknown(body, ("event_type",))
    event_type = text(body, "event_type", required=True)
    assert event_type is not None
    if event_type not in endpoint.events:
        raise bad_format(
            "event_type",
            f"'event_type' must be one of the endpoint's events: {', '.join(endpoint.events)}.",
        )
    event_id = ctx.state.webhooks.fire_test(endpoint, event_type, _fixture(ctx, event_type))
    return Reply(
        body={
            "object": "webhook_test_fire",
            "endpoint_id": endpoint.id,
            "event_id": event_id,
            "enqueued": True,
        }
    )


async def delete_endpoint(ctx: Ctx) -> Reply:
    """Delete a webhook endpoint; always 200, reporting whether anything was deleted."""
    endpoint_id = ctx.match["id"]
    deleted = ctx.state.webhooks.delete(ctx.team.id, endpoint_id)
    return Reply(body={"id": endpoint_id, "object": "webhook_endpoint", "deleted": deleted})


def _fixture(ctx: Ctx, event_type: str) -> dict[str, object]:
    """A plausible ``data`` object for a test fire of ``event_type``."""
    kind, _, outcome = event_type.partition(".")
    now = iso(ctx.now)
    if kind in ("image", "video"):
        return _generation_fixture(ctx, kind, outcome)
    if kind == "character":
        status = {"completed": "ready", "failed": "failed"}.get(outcome, "deleted")
        char_id = new_id("char")
        return {
            "id": char_id,
            "object": "character",
            "name": "Synthetic Test Character",
            "status": status,
            "refs": []
            if status != "ready"
            else [{"pose": "front", "url": f"{ctx.state.base_url}/storage/{char_id}/front.bin"}],
            "created_at": now,
            "updated_at": now,
            "attributes": {},
            "error_message": "synthetic_test_failure" if status == "failed" else None,
            "aurous_version": ctx.version,
        }
    if event_type == "usage.balance_low":
        team = ctx.team
        return {
            "object": "balance",
            "credits": money(team.credits),
            "held_credits": money(team.held),
            "available_credits": money(team.available),
            "currency": "credit",
            "threshold": money(Decimal(str(ctx.state.settings.balance_low_threshold))),
        }
    # webhook.endpoint_disabled: a made-up sibling endpoint that was switched off.
    endpoint = _endpoint(ctx)
    data = endpoint.to_json()
    data.update(id=new_id("we"), is_active=False, consecutive_failures=20, last_failure_at=now)
    return data


def _generation_fixture(ctx: Ctx, kind: str, outcome: str) -> dict[str, object]:
    now = iso(ctx.now)
    status = {"completed": "succeeded", "failed": "failed"}.get(outcome, "cancelled")
    gen_id = new_id("img" if kind == "image" else "vid")
    base = ctx.state.base_url
    data: dict[str, object] = {
        "id": gen_id,
        "object": "inference",
        "status": status,
        "prompt": "Synthetic test event from the Aurous emulator",
        "negative_prompt": None,
        "created_at": now,
        "completed_at": now,
        "media_type": kind,
        "output_urls": [],
        "output_video_url": None,
        "reference_image_urls": None,
        "error_message": "Synthetic test failure" if status == "failed" else None,
        "character_id": None,
        "loras": None,
        "aurous_version": ctx.version,
        "creation_request_id": new_id("req"),
    }
    if kind == "image":
        if status == "succeeded":
            data["output_urls"] = [f"{base}/v1/images/{gen_id}/output/0?token=synthetic"]
        data.update(
            cost={"amount": 1, "currency": "credit", "breakdown": {"base": 1, "enhance": 0}},
            width=2048,
            height=2048,
            image_count=1,
            size_preset="2k_1_1",
            inference_type="t2i",
        )
    else:
        if status == "succeeded":
            data["output_video_url"] = f"{base}/v1/videos/{gen_id}/output?token=synthetic"
        data.update(
            cost={"amount": 2.5, "currency": "credit", "breakdown": {"base": 2.5}},
            inference_type="t2v",
            video_duration=5,
            video_resolution="480p",
            video_ratio="16:9",
        )
    return data


_BASE = "/v1/webhook_endpoints"
ROUTES: list[Route] = [
    Route(
        "POST",
        _BASE,
        create_endpoint,
        bucket="webhook_endpoints",
        scope="write",
        success=201,
        summary="Register a webhook endpoint",
    ),
    Route("GET", _BASE + "/{id}", get_endpoint, summary="Get a webhook endpoint"),
    Route(
        "POST",
        _BASE + "/{id}/rotate_secret",
        rotate_secret,
        bucket="default",
        scope="write",
        summary="Rotate the signing secret",
    ),
    Route(
        "POST",
        _BASE + "/{id}/test",
        fire_test,
        bucket="webhooks_test",
        scope="write",
        summary="Fire a synthetic test delivery",
    ),
    Route(
        "DELETE",
        _BASE + "/{id}",
        delete_endpoint,
        bucket="default",
        scope="write",
        summary="Delete a webhook endpoint",
    ),
]
