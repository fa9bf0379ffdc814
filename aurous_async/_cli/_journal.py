"""The batch journal: one SQLite file in the output directory that survives a crash.

Each line's idempotency key is committed before its create is sent and the generation
id right after the answer, so a re-run after Ctrl-C or ``kill -9`` re-sends a create
only under the key it used before (the API replays the original generation instead of
making a second one), resumes waiting for the jobs in flight, and skips what is done.

Keys are ``aurous-<batch id>-<line>-<request hash[:16]>-<attempt>``: the batch id is
derived from the directory's absolute path (so a lost journal gives the same keys back,
and the API replays within its 24 h window), or random with ``--force-new``; the request
hash makes an edited line a new request (a new generation, not a replay conflict), and
``attempt`` is bumped only by ``--retry-failed``. Every key is also written to
``manifest.jsonl``, from which ``restore`` rebuilds a lost journal.

SQLite is blocking; ``AsyncJournal`` runs every statement on a worker thread, one at a
time, so the event loop never waits on the disk.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import anyio
import attrs

from ._inputs import Request
from ._output import CommandError

__all__ = [
    "FINAL_STATUSES",
    "JOURNAL_NAME",
    "MANIFEST_NAME",
    "PENDING",
    "REJECTED",
    "AsyncJournal",
    "Journal",
    "JournalError",
    "Line",
    "ParsedKey",
    "derived_batch_id",
    "make_key",
    "parse_key",
]

T = TypeVar("T")

JOURNAL_NAME = ".aurous-journal.sqlite"
MANIFEST_NAME = "manifest.jsonl"
#: Nothing is known to exist on the server yet (the key is committed; a create may
#: have been sent).
PENDING = "pending"
#: The API refused the create (a 4xx is not cached under the key): re-runs try again.
REJECTED = "rejected"
#: The create's outcome is unknown after the SDK's retries: re-runs resend the same key.
UNKNOWN = "unknown"
#: Generation states after which the server never changes the row (contract A2).
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "expired", "moderation_rejected"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lines (
    line INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    request TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    idempotency_key TEXT NOT NULL,
    estimate REAL,
    generation_id TEXT,
    status TEXT NOT NULL,
    cost REAL,
    files TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    updated_at REAL NOT NULL
);
"""


@attrs.frozen
class Line:
    """One journal row."""

    line: int
    kind: str
    request_hash: str
    request: str
    attempt: int
    idempotency_key: str
    estimate: float | None
    generation_id: str | None
    status: str
    cost: float | None
    files: tuple[str, ...]
    error: str | None

    @property
    def final(self) -> bool:
        """The generation reached a state the server never changes."""
        return self.status in FINAL_STATUSES

    @property
    def in_flight(self) -> bool:
        """A generation exists and is still running."""
        return self.generation_id is not None and not self.final

    def is_for(self, request: Request) -> bool:
        """The row describes ``request`` (a row rebuilt from the manifest knows only the
        first 16 hex digits of the request's hash, those its key carries)."""
        known = self.request_hash
        return len(known) >= _KEY_HASH_DIGITS and request.digest.startswith(known)

    def manifest(self) -> dict[str, object]:
        """The line's ``manifest.jsonl`` record."""
        return {
            "line": self.line,
            "kind": self.kind,
            "id": self.generation_id,
            "status": self.status,
            "cost": self.cost,
            "files": list(self.files),
            "error": self.error,
            "key": self.idempotency_key,
        }


def _line(row: sqlite3.Row) -> Line:
    return Line(
        line=row["line"],
        kind=row["kind"],
        request_hash=row["request_hash"],
        request=row["request"],
        attempt=row["attempt"],
        idempotency_key=row["idempotency_key"],
        estimate=row["estimate"],
        generation_id=row["generation_id"],
        status=row["status"],
        cost=row["cost"],
        files=tuple(json.loads(row["files"])),
        error=row["error"],
    )


_KEY_HASH_DIGITS = 16
_KEY = re.compile(r"aurous-([0-9a-f]{16})-([0-9]{1,9})-([0-9a-f]{16})-([0-9]{1,9})")


class JournalError(CommandError):
    """The directory's batch state cannot be read or trusted; nothing was sent."""


@attrs.frozen
class ParsedKey:
    """The parts of a key ``make_key`` built."""

    batch_id: str
    line: int
    request_hash: str
    attempt: int


def make_key(batch_id: str, line: int, request_hash: str, attempt: int) -> str:
    """The stable idempotency key of one line of one batch."""
    return f"aurous-{batch_id}-{line}-{request_hash[:_KEY_HASH_DIGITS]}-{attempt}"


def parse_key(key: object) -> ParsedKey | None:
    """The parts of a key ``make_key`` built, or ``None`` for anything else."""
    match = _KEY.fullmatch(key) if isinstance(key, str) else None
    if match is None:
        return None
    batch_id, line, request_hash, attempt = match.groups()
    return ParsedKey(batch_id, int(line), request_hash, int(attempt))


def derived_batch_id(directory: Path) -> str:
    """The batch id of a directory whose journal is new: a hash of its absolute path.

    A re-run in the same directory after the journal was lost mints the same keys again,
    so every create it repeats is replayed by the API (within its 24 h window) instead
    of charged twice.
    """
    return hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:16]


def random_batch_id() -> str:
    """A batch id of its own (``--force-new``): every line is created again."""
    return uuid.uuid4().hex[:16]


class Journal:
    """The synchronous journal (see the module docstring); use ``AsyncJournal`` in async code."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.path = directory / JOURNAL_NAME
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        try:
            # WAL: readers (a progress view, a test) never block the writer. NORMAL sync
            # is durable against a killed process, which is the crash this journal is for.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
            self._db.execute("SELECT line, idempotency_key, files FROM lines LIMIT 1")
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise JournalError(
                f"{self.path}: not a readable batch journal ({exc}); move it aside and "
                f"re-run to rebuild it from {MANIFEST_NAME}, or use another --out"
            ) from None

    def close(self) -> None:
        self._db.close()

    # -- meta ------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def batch_id(self) -> str:
        """This directory's batch id, derived from its path (and committed) on first use."""
        value = self.meta("batch_id")
        if value is None:
            value = derived_batch_id(self.directory)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('batch_id', ?)", (value,))
            value = self.meta("batch_id")
            assert value is not None
        return value

    def is_new(self) -> bool:
        """Nothing was ever recorded here (a new journal, or an emptied one)."""
        return self.meta("batch_id") is None

    def start_over(self, batch_id: str) -> None:
        """Forget every line and run as batch ``batch_id`` (``--force-new``)."""
        with self._transaction():
            self._db.execute("DELETE FROM lines")
            self.set_meta("batch_id", batch_id)

    def restore(self, batch_id: str, records: Sequence[Mapping[str, object]]) -> None:
        """Rebuild a lost journal from ``manifest.jsonl`` records checked by the caller.

        Each record's key gives back the line's request hash (its first 16 hex digits),
        attempt and batch; ``sync`` then treats the line as the one it was.
        """
        now = time.time()
        with self._transaction():
            self._db.execute("DELETE FROM lines")
            self.set_meta("batch_id", batch_id)
            for record in records:
                key = parse_key(record["key"])
                assert key is not None
                self._db.execute(
                    "INSERT INTO lines (line, kind, request_hash, request, attempt,"
                    " idempotency_key, generation_id, status, cost, files, error, updated_at)"
                    " VALUES (?, ?, ?, '{}', ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        key.line,
                        record["kind"],
                        key.request_hash,
                        key.attempt,
                        record["key"],
                        record["id"],
                        record["status"],
                        record["cost"],
                        json.dumps(record["files"]),
                        record["error"],
                        now,
                    ),
                )

    # -- lines -----------------------------------------------------------------------
    def lines(self, numbers: Iterable[int] | None = None) -> list[Line]:
        rows = self._db.execute("SELECT * FROM lines ORDER BY line").fetchall()
        result = [_line(row) for row in rows]
        if numbers is not None:
            wanted = set(numbers)
            result = [line for line in result if line.line in wanted]
        return result

    def get(self, line: int) -> Line:
        row = self._db.execute("SELECT * FROM lines WHERE line = ?", (line,)).fetchone()
        if row is None:
            raise KeyError(line)
        return _line(row)

    def sync(
        self, requests: Sequence[Request], *, retry_failed: bool = False, forget_ids: bool = False
    ) -> list[Line]:
        """Make the journal describe ``requests``; return their rows, in line order.

        A new line, or one whose request changed, gets a fresh row and key. With
        ``retry_failed``, a line whose generation ended without success gets its next
        attempt (a new key). With ``forget_ids`` (the embedded emulator, whose state
        died with the previous run), every line not yet downloaded starts over under
        its same key.
        """
        batch = self.batch_id()
        now = time.time()
        with self._transaction():
            for request in requests:
                row = self._db.execute(
                    "SELECT * FROM lines WHERE line = ?", (request.line,)
                ).fetchone()
                old = None if row is None else _line(row)
                if old is not None and old.is_for(request) and old.request_hash != request.digest:
                    # A row rebuilt from the manifest: keep its full hash from now on.
                    self._db.execute(
                        "UPDATE lines SET request_hash = ?, request = ? WHERE line = ?",
                        (request.digest, json.dumps(dict(request.body), sort_keys=True), old.line),
                    )
                if old is None or not old.is_for(request):
                    attempt = 0 if old is None else old.attempt + 1
                    self._db.execute(
                        "INSERT OR REPLACE INTO lines (line, kind, request_hash, request, "
                        "attempt, idempotency_key, status, updated_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            request.line,
                            request.kind,
                            request.digest,
                            json.dumps(dict(request.body), sort_keys=True),
                            attempt,
                            make_key(batch, request.line, request.digest, attempt),
                            PENDING,
                            now,
                        ),
                    )
                elif retry_failed and old.final and old.status != "succeeded":
                    attempt = old.attempt + 1
                    self._db.execute(
                        "UPDATE lines SET attempt = ?, idempotency_key = ?, generation_id = NULL,"
                        " status = ?, cost = NULL, files = '[]', error = NULL, updated_at = ?"
                        " WHERE line = ?",
                        (
                            attempt,
                            make_key(batch, old.line, old.request_hash, attempt),
                            PENDING,
                            now,
                            old.line,
                        ),
                    )
                elif (
                    forget_ids
                    and old.generation_id is not None
                    and not (old.status == "succeeded" and old.files)
                ):
                    self._db.execute(
                        "UPDATE lines SET generation_id = NULL, status = ?, cost = NULL,"
                        " files = '[]', error = NULL, updated_at = ? WHERE line = ?",
                        (PENDING, now, old.line),
                    )
        return self.lines(r.line for r in requests)

    def set_estimates(self, estimates: dict[int, float]) -> None:
        with self._transaction():
            self._db.executemany(
                "UPDATE lines SET estimate = ? WHERE line = ?",
                [(amount, line) for line, amount in estimates.items()],
            )

    def record(
        self,
        line: int,
        *,
        status: str,
        generation_id: str | None = None,
        cost: float | None = None,
        files: Sequence[str] | None = None,
        error: str | None = None,
    ) -> Line:
        """Commit a line's new state (``None`` keeps a column, except ``error``)."""
        self._db.execute(
            "UPDATE lines SET status = ?, generation_id = COALESCE(?, generation_id),"
            " cost = COALESCE(?, cost), files = COALESCE(?, files), error = ?,"
            " updated_at = ? WHERE line = ?",
            (
                status,
                generation_id,
                cost,
                None if files is None else json.dumps(list(files)),
                error,
                time.time(),
                line,
            ),
        )
        return self.get(line)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


class AsyncJournal:
    """``Journal`` for async code: each call runs on a worker thread, one at a time."""

    def __init__(self, journal: Journal) -> None:
        self.sync_journal = journal
        self._limiter = anyio.CapacityLimiter(1)

    @classmethod
    async def open(cls, directory: Path) -> AsyncJournal:
        journal = await anyio.to_thread.run_sync(Journal, directory)
        return cls(journal)

    async def _run(self, func: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(func, limiter=self._limiter)

    async def close(self) -> None:
        await self._run(self.sync_journal.close)

    async def call(self, func: Callable[[Journal], T]) -> T:
        """Run ``func(journal)`` on the journal's worker, like every other statement."""
        return await self._run(functools.partial(func, self.sync_journal))

    async def meta(self, key: str) -> str | None:
        return await self._run(functools.partial(self.sync_journal.meta, key))

    async def set_meta(self, key: str, value: str) -> None:
        await self._run(functools.partial(self.sync_journal.set_meta, key, value))

    async def lines(self, numbers: Iterable[int] | None = None) -> list[Line]:
        wanted = None if numbers is None else list(numbers)
        return await self._run(functools.partial(self.sync_journal.lines, wanted))

    async def sync(
        self, requests: Sequence[Request], *, retry_failed: bool = False, forget_ids: bool = False
    ) -> list[Line]:
        return await self._run(
            functools.partial(
                self.sync_journal.sync,
                requests,
                retry_failed=retry_failed,
                forget_ids=forget_ids,
            )
        )

    async def set_estimates(self, estimates: dict[int, float]) -> None:
        await self._run(functools.partial(self.sync_journal.set_estimates, estimates))

    async def record(
        self,
        line: int,
        *,
        status: str,
        generation_id: str | None = None,
        cost: float | None = None,
        files: Sequence[str] | None = None,
        error: str | None = None,
    ) -> Line:
        return await self._run(
            functools.partial(
                self.sync_journal.record,
                line,
                status=status,
                generation_id=generation_id,
                cost=cost,
                files=files,
                error=error,
            )
        )
