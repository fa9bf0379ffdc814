"""The LoRA catalogue the emulator serves (contract §8.10): public image and video styles,
plus one private image style per team.

Ids are stable across runs (derived from the slug), so tests and examples can name them.
A style is found by its ``lora_`` id, its slug, or its legacy UUID; a private style is
visible to its own team only (anyone else gets the same 404 as for an unknown id).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import datetime, timezone

import attrs

from ._schema import BOOLEAN, INTEGER, NUMBER, STRING, TIMESTAMP, nullable, obj
from ._serialize import iso

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_UUID_NAMESPACE = uuid.UUID("6f1f8c1e-3b7a-4c55-9a43-5d1f0a6e2b10")
_PUBLISHED = datetime(2026, 3, 1, tzinfo=timezone.utc).timestamp()
_CDN = "https://cdn.aurous-labs.com/previews/"


def stable_id(prefix: str, seed: str) -> str:
    """``<prefix>_`` + 26 Crockford characters derived from ``seed``."""
    value = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:17], "big")
    chars = [_CROCKFORD[(value >> (5 * i)) & 31] for i in range(26)]
    return f"{prefix}_01{''.join(chars)[:24]}"


@attrs.frozen
class Lora:
    """One style. ``kind`` is ``"image"`` or ``"video"``; ``team_id`` is set when private."""

    id: str
    slug: str
    name: str
    kind: str
    description: str
    created_at: float = _PUBLISHED
    team_id: str | None = None
    default_steps: int | None = 30
    default_guidance_scale: float | None = 7.5
    default_denoise_strength: float | None = 0.6
    has_template: bool = False
    default_resolution: str = "1080p"
    default_ratio: str = "16:9"
    default_duration: int = 5

    @property
    def is_public(self) -> bool:
        return self.team_id is None

    @property
    def legacy_uuid(self) -> str:
        return str(uuid.uuid5(_UUID_NAMESPACE, self.id))

    SCHEMA = obj(
        {
            "id": STRING,
            "name": STRING,
            "is_public": BOOLEAN,
            "created_at": TIMESTAMP,
            "slug": STRING,
            "description": STRING,
            "preview_image_url": STRING,
            "default_denoise_strength": nullable(NUMBER),
            "default_guidance_scale": nullable(NUMBER),
            "default_steps": nullable(INTEGER),
            "has_template": BOOLEAN,
        }
    )
    VIDEO_SCHEMA = obj(
        {
            "id": STRING,
            "name": STRING,
            "is_public": BOOLEAN,
            "default_resolution": STRING,
            "default_ratio": STRING,
            "default_duration": INTEGER,
            "created_at": TIMESTAMP,
            "slug": STRING,
            "description": STRING,
            "preview_video_url": STRING,
        }
    )

    def to_json(self) -> dict[str, object]:
        """The LoraResponse (image) or the video LoRA object."""
        created = iso(self.created_at)
        if self.kind == "video":
            return {
                "id": self.id,
                "name": self.name,
                "is_public": self.is_public,
                "default_resolution": self.default_resolution,
                "default_ratio": self.default_ratio,
                "default_duration": self.default_duration,
                "created_at": created,
                "slug": self.slug,
                "description": self.description,
                "preview_video_url": f"{_CDN}{self.slug}.mp4",
            }
        return {
            "id": self.id,
            "name": self.name,
            "is_public": self.is_public,
            "created_at": created,
            "slug": self.slug,
            "description": self.description,
            "preview_image_url": f"{_CDN}{self.slug}.jpg",
            "default_denoise_strength": self.default_denoise_strength,
            "default_guidance_scale": self.default_guidance_scale,
            "default_steps": self.default_steps,
            "has_template": self.has_template,
        }


def _image(slug: str, name: str, description: str, **defaults: object) -> Lora:
    return Lora(stable_id("lora", slug), slug, name, "image", description, **defaults)  # type: ignore[arg-type]


def _video(slug: str, name: str, description: str, **defaults: object) -> Lora:
    return Lora(stable_id("lora", slug), slug, name, "video", description, **defaults)  # type: ignore[arg-type]


#: The contract's example style (§16) keeps its documented id; seedance-1-pro keeps the
#: id of the golden fixture (tests/fixtures/video_lora.json).
GOLDEN_HOUR = Lora(
    "lora_01HXMQ7Z3K8Y2ABCDEFGHJKM",
    "golden-hour-photography",
    "Golden Hour Photography",
    "image",
    "Adds warm golden-hour lighting with soft lens flares",
    default_denoise_strength=0.8,
    default_guidance_scale=7.5,
    default_steps=30,
    has_template=True,
)

PUBLIC_IMAGE_LORAS: tuple[Lora, ...] = (
    GOLDEN_HOUR,
    _image(
        "cinematic-film-noir",
        "Cinematic Film Noir",
        "High-contrast black-and-white frames with hard shadows",
        default_steps=35,
        default_guidance_scale=8.0,
    ),
    _image(
        "watercolor-dreams",
        "Watercolor Dreams",
        "Loose watercolor washes on textured paper",
        default_steps=28,
        default_guidance_scale=6.5,
        default_denoise_strength=0.7,
    ),
    _image(
        "anime-cel-shading",
        "Anime Cel Shading",
        "Clean line art with flat cel-shaded colour",
        has_template=True,
    ),
    _image(
        "product-studio-white",
        "Product Studio White",
        "Catalogue product shots on a seamless white sweep",
        default_steps=40,
        default_guidance_scale=9.0,
        default_denoise_strength=None,
    ),
)

PUBLIC_VIDEO_LORAS: tuple[Lora, ...] = (
    Lora(
        "lora_01HXMQ7Z3K8Y2ABCDEFGHJKP",
        "seedance-1-pro",
        "Seedance 1.0 Pro",
        "video",
        "General-purpose text- and image-to-video model",
        default_resolution="1080p",
        default_ratio="16:9",
        default_duration=5,
    ),
    _video(
        "seedance-1-lite",
        "Seedance 1.0 Lite",
        "BytePlus Seedance 1.0 Lite: fast drafts at 480p",
        default_resolution="480p",
        default_ratio="16:9",
        default_duration=5,
    ),
)


class LoraCatalog:
    """Public styles plus one private image style per team (created on first use)."""

    def __init__(self, created_at_of: Callable[[str], float]) -> None:
        self._created_at_of = created_at_of
        self._public: dict[str, Lora] = {}
        for lora in (*PUBLIC_IMAGE_LORAS, *PUBLIC_VIDEO_LORAS):
            for ref in (lora.id, lora.slug, lora.legacy_uuid):
                self._public[ref] = lora
        self._private: dict[str, Lora] = {}
        self._private_refs: dict[tuple[str, str], Lora] = {}
        self._seeded: list[Lora] = []

    def add(self, lora: Lora) -> None:
        """Seed one more style (test control): public, or private to ``lora.team_id``.

        Raises:
            ValueError: its id, slug or legacy UUID already names a style it would shadow.
        """
        refs = (lora.id, lora.slug, lora.legacy_uuid)
        taken = [
            ref
            for ref in refs
            if ref in self._public
            or (lora.team_id is None and any(r == ref for _, r in self._private_refs))
            or (lora.team_id is not None and (lora.team_id, ref) in self._private_refs)
            or (lora.team_id is not None and ref == "house-style")
        ]
        if taken:
            raise ValueError(f"a LoRA with id or slug {taken[0]!r} exists already")
        for ref in refs:
            if lora.team_id is None:
                self._public[ref] = lora
            else:
                self._private_refs[(lora.team_id, ref)] = lora
        self._seeded.append(lora)

    def private_for(self, team_id: str) -> Lora:
        """The team's own style ("House Style"), delivered privately to that team only."""
        lora = self._private.get(team_id)
        if lora is None:
            lora = Lora(
                stable_id("lora", f"private:{team_id}"),
                "house-style",
                "House Style",
                "image",
                "A style trained privately for this team",
                created_at=self._created_at_of(team_id),
                team_id=team_id,
                default_steps=32,
                default_guidance_scale=7.0,
                default_denoise_strength=0.65,
            )
            self._private[team_id] = lora
            for ref in (lora.id, lora.slug, lora.legacy_uuid):
                self._private_refs[(team_id, ref)] = lora
        return lora

    def image_loras(self, team_id: str) -> list[Lora]:
        """Every image style the team may use: the public ones, then its private ones."""
        seeded = [
            lora
            for lora in self._seeded
            if lora.kind == "image" and lora.team_id in (None, team_id)
        ]
        return [*PUBLIC_IMAGE_LORAS, *seeded, self.private_for(team_id)]

    def resolve(self, team_id: str, ref: str) -> Lora | None:
        """The style ``ref`` (id, slug or legacy UUID) names for this team, if visible."""
        self.private_for(team_id)
        return self._private_refs.get((team_id, ref)) or self._public.get(ref)
