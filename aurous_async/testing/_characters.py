"""Characters and their upload tickets (contract §11, A13).

Upload flow: ``uploads/init`` mints a ticket with a signed 15 min PUT URL served by the
emulator (``PUT /storage/uploads/{upload_id}?token=…``); the ticket lives 24 h and is
consumed by ``POST /v1/characters``, which answers ``ready`` at once.

Synthesize flow (the 2026-06-19 changelog, A13): create, ``refs/regenerate`` and
``resynthesize`` hold credits (4, 1 and 4 image generations), answer ``synthesizing``,
and 30-90 s later on the emulator clock end ``ready`` (commit, ``character.completed``)
or ``failed`` (release, ``character.failed``). DELETE during synthesis releases the hold
and fires ``character.cancelled``. ``reviewing`` is reached only when a test forces it
(the older review-then-save flow).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from ._errors import ApiError, bad_format, invalid, not_found
from ._files import check_image
from ._ids import new_id
from ._imageinfo import ImageInfo, make_png
from ._pricing import CHARACTER_SYNTHESIS_GENERATIONS, IMAGE_BASE
from ._schema import STRING, STRING_MAP, TIMESTAMP, obj
from ._serialize import iso
from ._signing import check_token, make_token

if TYPE_CHECKING:
    from ._billing import Hold
    from ._state import EmulatorState, Team

POSES = ("portrait", "front", "side", "back", "other")
#: The poses a synthesis renders: four refs for the four generations it costs.
SYNTHESIZED_POSES = ("portrait", "front", "side", "back")
EXTENSIONS = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp")
UPLOAD_URL_TTL = 15 * 60.0
TICKET_TTL = 24 * 3600.0
REF_URL_TTL = 24 * 3600.0
SYNTHESIS_SECONDS = (30, 90)
OUTCOMES = ("ready", "reviewing", "failed")
#: ``error_message`` of a synthesis whose name or attributes hit a blocked term (A19).
MODERATION_ERROR = "content_policy_violation"
SYNTHESIS_ERROR = "synthesis_failed"
REF_SIDE_PX = 64


def upload_path(upload_id: str) -> str:
    return f"/storage/uploads/{upload_id}"


def ref_path(character_id: str, ref_id: str) -> str:
    return f"/storage/characters/{character_id}/{ref_id}.bin"


def classify_bytes(filename: str, data: bytes) -> tuple[str, float]:
    """A deterministic stand-in for the pose classifier.

    A pose named in the file name wins (the leftmost one, confidence 0.95), so tests can
    choose; otherwise the pose and confidence follow from a hash of the bytes.
    """
    lowered = filename.lower()
    named = sorted((lowered.find(pose), pose) for pose in POSES if pose in lowered)
    if named:
        return named[0][1], 0.95
    digest = hashlib.sha256(data).digest()
    return POSES[digest[0] % len(POSES)], round(0.55 + digest[1] / 255 * 0.4, 2)


@attrs.define(eq=False)
class UploadTicket:
    id: str
    team_id: str
    filename: str
    content_type: str
    created_at: float
    data: bytes | None = attrs.field(default=None, repr=False)
    info: ImageInfo | None = None
    pose: str | None = None
    confidence: float | None = None
    consumed: bool = False

    @property
    def url_expires_at(self) -> float:
        return self.created_at + UPLOAD_URL_TTL

    @property
    def expires_at(self) -> float:
        return self.created_at + TICKET_TTL


@attrs.define(eq=False)
class Ref:
    id: str
    pose: str
    data: bytes = attrs.field(repr=False)
    mime_type: str
    uploaded: bool


@attrs.define(eq=False)
class Job:
    """One synthesis in flight: what it renders, its hold, and how it will end."""

    seq: int
    hold: Hold
    poses: tuple[str, ...]
    replace_all: bool
    outcome: str
    error_message: str | None


@attrs.define(eq=False)
class Character:
    id: str
    team_id: str
    name: str
    attributes: dict[str, object]
    created_at: float
    updated_at: float
    version: str
    client_reference_id: str | None
    status: str = "ready"
    refs: list[Ref] = attrs.field(factory=list)
    error_message: str | None = None
    deleted_at: float | None = None
    job: Job | None = None
    jobs_started: int = 0


def _not_found(param: str = "character_id") -> ApiError:
    return not_found("character", param)


def _wrong_state(character: Character, action: str) -> ApiError:
    return invalid(
        "invalid_request_error",
        f"Cannot {action} character {character.id} while it is {character.status}.",
    )


class CharacterStore:
    """Upload tickets and characters of every team, and their synthesis jobs."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self._tickets: dict[str, UploadTicket] = {}
        self._characters: dict[str, Character] = {}
        self._forced: list[tuple[str, str | None]] = []

    # -- test controls --------------------------------------------------------------
    def force_next_outcome(self, status: str, error_message: str | None = None) -> None:
        """The next synthesis started (create, regenerate, resynthesize) ends in ``status``.

        ``"reviewing"`` replays the older flow: refs rendered and charged, then ``save``.
        """
        if status not in OUTCOMES:
            raise ValueError(f"status must be one of {OUTCOMES}")
        self._forced.append((status, error_message))

    # -- upload tickets -------------------------------------------------------------
    def init_upload(self, team_id: str, filename: str, content_type: str) -> UploadTicket:
        now = self._state.now()
        ticket = UploadTicket(new_id("upl", now), team_id, filename, content_type, now)
        self._tickets[ticket.id] = ticket
        self._state.scheduler.at(ticket.expires_at, lambda _due: self._drop_ticket(ticket.id))
        return ticket

    def _drop_ticket(self, upload_id: str) -> None:
        self._tickets.pop(upload_id, None)

    TICKET_SCHEMA = obj(
        {
            "upload_id": STRING,
            "upload_url": STRING,
            "upload_headers": STRING_MAP,
            "expires_at": TIMESTAMP,
        }
    )

    def ticket_json(self, ticket: UploadTicket) -> dict[str, object]:
        path = upload_path(ticket.id)
        token = make_token(path, ticket.url_expires_at)
        return {
            "upload_id": ticket.id,
            "upload_url": f"{self._state.base_url}{path}?token={token}",
            "upload_headers": {"Content-Type": ticket.content_type},
            "expires_at": iso(ticket.url_expires_at),
        }

    def put_upload(
        self, upload_id: str, token: str | None, content_type: str, data: bytes, oversized: bool
    ) -> None:
        """Store the bytes PUT to a signed upload URL (no API key; the token authorises)."""
        verdict = check_token(upload_path(upload_id), token, self._state.now())
        if verdict == "expired":
            raise ApiError(
                403,
                "upload_invalid",
                "This upload URL has expired (15 min); call uploads/init for a new ticket.",
            )
        ticket = self._tickets.get(upload_id)
        if verdict != "ok" or ticket is None:
            raise ApiError(403, "upload_invalid", "The upload URL signature is not valid.")
        if ticket.consumed:
            raise invalid("upload_invalid", f"Upload {upload_id} was already used.")
        if content_type != ticket.content_type:
            raise bad_format(
                "Content-Type",
                f"Send the upload_headers of the ticket: Content-Type {ticket.content_type}.",
            )
        info = check_image(data, oversized, "body")
        if info.mime_type != ticket.content_type:
            raise bad_format(
                "body", f"The bytes are {info.mime_type}, the ticket is for {ticket.content_type}."
            )
        ticket.data, ticket.info = data, info
        ticket.pose = ticket.confidence = None

    def _usable_ticket(self, team_id: str, upload_id: str, param: str) -> UploadTicket:
        ticket = self._tickets.get(upload_id)
        if ticket is None or self._state.now() >= ticket.expires_at:
            raise invalid("upload_invalid", f"Unknown or expired upload_id {upload_id!r}.", param)
        if ticket.team_id != team_id:
            raise not_found("upload", param)
        if ticket.consumed:
            raise invalid("upload_invalid", f"Upload {upload_id} was already used.", param)
        if ticket.data is None:
            raise invalid(
                "upload_invalid", f"Nothing was uploaded to {upload_id} yet; PUT it first.", param
            )
        return ticket

    def classify(self, team_id: str, upload_id: str) -> UploadTicket:
        ticket = self._usable_ticket(team_id, upload_id, "upload_id")
        assert ticket.data is not None
        ticket.pose, ticket.confidence = classify_bytes(ticket.filename, ticket.data)
        return ticket

    # -- characters -----------------------------------------------------------------
    def _new(
        self,
        team_id: str,
        name: str,
        attributes: dict[str, object],
        version: str,
        client_reference_id: str | None,
    ) -> Character:
        now = self._state.now()
        return Character(
            new_id("char", now), team_id, name, attributes, now, now, version, client_reference_id
        )

    def create_from_uploads(
        self,
        team_id: str,
        name: str,
        upload_ids: Sequence[str],
        attributes: dict[str, object],
        version: str,
        client_reference_id: str | None,
    ) -> Character:
        """Upload flow: every ticket is checked before any is consumed; ``ready`` at once."""
        if len(set(upload_ids)) != len(upload_ids):
            raise invalid("upload_invalid", "An upload_id is listed twice.", "upload_ids")
        tickets = [self._usable_ticket(team_id, uid, "upload_ids") for uid in upload_ids]
        character = self._new(team_id, name, attributes, version, client_reference_id)
        for ticket in tickets:
            assert ticket.data is not None
            assert ticket.info is not None
            ticket.consumed = True
            character.refs.append(
                Ref(
                    new_id("ref"),
                    ticket.pose or "other",
                    ticket.data,
                    ticket.info.mime_type,
                    uploaded=True,
                )
            )
        _sort_refs(character)
        self._characters[character.id] = character
        return character

    def create_synthesized(
        self,
        team: Team,
        name: str,
        attributes: dict[str, object],
        version: str,
        client_reference_id: str | None,
    ) -> Character:
        """Synthesize flow: hold 4 generations; 201 ``synthesizing``."""
        character = self._new(team.id, name, attributes, version, client_reference_id)
        self._start(team, character, SYNTHESIZED_POSES, CHARACTER_SYNTHESIS_GENERATIONS, False)
        self._characters[character.id] = character
        return character

    def get(self, team_id: str, character_id: str) -> Character:
        """The team's character; 404 for unknown, other teams' and deleted ones."""
        character = self._characters.get(character_id)
        if character is None or character.team_id != team_id or character.status == "deleted":
            raise _not_found()
        return character

    def listing(self, team_id: str) -> list[Character]:
        """Newest first; soft-deleted characters are hidden."""
        return [
            c
            for c in reversed(self._characters.values())
            if c.team_id == team_id and c.status != "deleted"
        ]

    def update(
        self,
        team_id: str,
        character_id: str,
        name: str | None,
        attributes: dict[str, object] | None,
    ) -> Character:
        character = self.get(team_id, character_id)
        if name is not None:
            character.name = name
        if attributes is not None:
            character.attributes = attributes
        character.updated_at = self._state.now()
        return character

    def delete(self, team_id: str, character_id: str) -> None:
        """``reviewing`` is hard-deleted; anything else soft-deleted (in-flight: cancelled)."""
        character = self.get(team_id, character_id)
        if character.status == "reviewing":
            del self._characters[character_id]
            return
        now = self._state.now()
        job, character.job = character.job, None
        character.status = "deleted"
        character.deleted_at = character.updated_at = now
        if job is not None:
            self._state.billing.release(job.hold)
            self._publish(character, "character.cancelled")

    def save(self, team_id: str, character_id: str) -> Character:
        character = self.get(team_id, character_id)
        if character.status == "reviewing":
            character.status = "ready"
            character.updated_at = self._state.now()
            self._publish(character, "character.completed")
        elif character.status != "ready":
            raise _wrong_state(character, "save")
        return character

    def regenerate(self, team: Team, character_id: str, pose: str) -> Character:
        """Re-render one pose (replacing every ref of that pose); costs one generation."""
        character = self.get(team.id, character_id)
        if character.status not in ("reviewing", "ready", "failed"):
            raise _wrong_state(character, "regenerate a ref of")
        self._start(team, character, (pose,), 1, False)
        return character

    def resynthesize(self, team: Team, character_id: str, force_all: bool) -> Character:
        """Re-render the synthesized poses; costs four generations.

        Without ``force_all`` the poses an uploaded ref already covers are kept as they
        are; with it every ref, uploaded ones included, is replaced by the four renders.
        """
        character = self.get(team.id, character_id)
        if character.status not in ("reviewing", "ready", "failed"):
            raise _wrong_state(character, "resynthesize")
        poses: tuple[str, ...]
        if force_all:
            poses = SYNTHESIZED_POSES
        else:
            covered = {ref.pose for ref in character.refs if ref.uploaded}
            poses = tuple(p for p in SYNTHESIZED_POSES if p not in covered)
        self._start(team, character, poses, CHARACTER_SYNTHESIS_GENERATIONS, force_all)
        return character

    def require_ready(self, team_id: str, character_id: str) -> None:
        """Check a ``character_id`` of POST /v1/images (used by generations).

        Raises:
            ApiError: 404 ``resource_not_found`` (unknown, another team's, hard-deleted)
                or 400 ``character_not_ready`` (synthesizing, reviewing, failed,
                soft-deleted), both with ``param: "character_id"``.
        """
        character = self._characters.get(character_id)
        if character is None or character.team_id != team_id:
            raise _not_found()
        if character.status != "ready":
            raise invalid(
                "character_not_ready",
                f"Character {character_id} is {character.status}, not ready.",
                "character_id",
            )

    # -- synthesis ------------------------------------------------------------------
    def _start(
        self,
        team: Team,
        character: Character,
        poses: tuple[str, ...],
        generations: int,
        replace_all: bool,
    ) -> None:
        hold = self._state.billing.hold(
            team,
            IMAGE_BASE * generations,
            None,
            code="insufficient_credits",
            description=f"Hold for character synthesis {character.id}",
        )
        if self._forced:
            outcome, message = self._forced.pop(0)
        elif self._blocked(character):
            outcome, message = "failed", MODERATION_ERROR
        else:
            outcome, message = "ready", None
        if outcome == "failed" and message is None:
            message = SYNTHESIS_ERROR
        character.jobs_started += 1
        job = Job(character.jobs_started, hold, poses, replace_all, outcome, message)
        now = self._state.now()
        character.job = job
        character.status = "synthesizing"
        character.error_message = None
        character.updated_at = now
        low, high = SYNTHESIS_SECONDS
        digest = hashlib.sha256(f"{character.id}:{job.seq}".encode()).digest()
        due = now + low + digest[0] % (high - low + 1)
        self._state.scheduler.at(due, lambda at: self._finish(character, job, at))

    def _blocked(self, character: Character) -> bool:
        texts = [character.name, *(v for v in character.attributes.values() if isinstance(v, str))]
        haystack = " ".join(texts).lower()
        return any(term.lower() in haystack for term in self._state.settings.blocked_terms)

    def _finish(self, character: Character, job: Job, at: float) -> None:
        if character.job is not job:
            return  # cancelled by DELETE
        character.job = None
        character.updated_at = at
        billing = self._state.billing
        if job.outcome == "failed":
            billing.release(job.hold)
            character.status = "failed"
            character.error_message = job.error_message
            self._publish(character, "character.failed")
            return
        billing.commit(job.hold)
        kept = [r for r in character.refs if not job.replace_all and r.pose not in job.poses]
        character.refs = kept + [self._render(character, pose, job.seq) for pose in job.poses]
        _sort_refs(character)
        character.status = job.outcome
        if job.outcome == "ready":
            self._publish(character, "character.completed")

    def _render(self, character: Character, pose: str, seq: int) -> Ref:
        digest = hashlib.sha256(f"{character.id}:{pose}:{seq}".encode()).digest()
        png = make_png(REF_SIDE_PX, REF_SIDE_PX, (digest[0], digest[1], digest[2]))
        return Ref(new_id("ref"), pose, png, "image/png", uploaded=False)

    def _publish(self, character: Character, event_type: str) -> None:
        self._state.webhooks.publish(character.team_id, event_type, data=self.to_json(character))

    # -- rendering and bytes --------------------------------------------------------
    def to_json(self, character: Character) -> dict[str, object]:
        """The character object of §11, with ref URLs signed for ~24 h."""
        expires = self._state.now() + REF_URL_TTL
        refs = []
        for ref in character.refs:
            path = ref_path(character.id, ref.id)
            url = f"{self._state.base_url}{path}?token={make_token(path, expires)}"
            refs.append({"pose": ref.pose, "url": url})
        return {
            "id": character.id,
            "object": "character",
            "name": character.name,
            "status": character.status,
            "refs": refs,
            "created_at": iso(character.created_at),
            "updated_at": iso(character.updated_at),
            "attributes": dict(character.attributes),
            "error_message": character.error_message,
            "aurous_version": character.version,
            "client_reference_id": character.client_reference_id,
            "deleted_at": iso(character.deleted_at),
        }

    def ref_content(self, character_id: str, ref_id: str, token: str | None) -> Ref | str:
        """The ref behind a signed URL, or why not: ``"invalid"``, ``"expired"``, ``"gone"``."""
        verdict = check_token(ref_path(character_id, ref_id), token, self._state.now())
        if verdict != "ok":
            return verdict
        character = self._characters.get(character_id)
        if character is None or character.status == "deleted":
            return "gone"
        return next((ref for ref in character.refs if ref.id == ref_id), "gone")


def _sort_refs(character: Character) -> None:
    character.refs.sort(key=lambda ref: POSES.index(ref.pose))
