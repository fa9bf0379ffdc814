"""An output directory's batch state: one run at a time, and a lost journal rebuilt or refused.

The journal is the record of what was sent, but it is one file: a directory whose journal
was deleted or emptied is rebuilt from ``manifest.jsonl``, whose records carry each line's
idempotency key, id, status and files. A directory with outputs but neither file is
refused (``--force-new`` starts a new batch there on purpose), and a run finding no trace
of an earlier one mints the keys derived from the directory's path, which an earlier run
that left no trace used too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from ._files import is_safe_name
from ._journal import JOURNAL_NAME, MANIFEST_NAME, Journal, JournalError, parse_key, random_batch_id
from ._output import CommandError

__all__ = ["LOCK_NAME", "DirectoryBusyError", "lock_directory", "prepare_journal"]

LOCK_NAME = ".aurous-lock"
#: Output files of a batch or generate run: ``{line:05d}_{id}...`` (see ``Batch``).
_OUTPUT = re.compile(r"[0-9]{5}_.+")
_KINDS = ("image", "video")


class DirectoryBusyError(CommandError):
    """Another ``aurous`` run is using the output directory."""


@contextlib.contextmanager
def lock_directory(directory: Path) -> Iterator[None]:
    """Hold the directory for this run; a second run on it fails at once.

    Two runs sharing one journal would interleave their records (one could report a
    line another is still downloading). The lock is an OS file lock, released when the
    process ends however it ends, so a killed run never leaves it behind.
    """
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            _lock(fd)
        except OSError:
            raise DirectoryBusyError(
                f"another aurous run is using {directory}; wait for it to end, or use another --out"
            ) from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def prepare_journal(journal: Journal, *, force_new: bool) -> str | None:
    """Make ``journal`` ready for a run; return a notice for the user, if any (blocking).

    ``force_new`` starts a new batch only where the earlier one cannot be recovered; it
    never discards a journal or a manifest that can be used, so re-running a command
    that carries it resumes instead of charging a second time.

    Raises:
        JournalError: outputs of an earlier run are here but neither the journal nor a
            usable manifest says which lines they belong to (and not ``force_new``).
    """
    if not journal.is_new():
        return None
    try:
        return _recover(journal)
    except JournalError:
        if not force_new:
            raise
    journal.start_over(random_batch_id())
    return (
        f"--force-new: a new batch in {journal.directory}; every line is created (and "
        "charged) again under new idempotency keys"
    )


def _recover(journal: Journal) -> str | None:
    """Rebuild a lost journal from the manifest, or refuse if outputs say one was lost."""
    directory = journal.directory
    manifest = directory / MANIFEST_NAME
    if manifest.is_file():
        batch_id, records = _read_manifest(manifest)
        if not records:
            return None
        journal.restore(batch_id, records)
        return (
            f"{journal.path} was missing or empty: rebuilt from {manifest} "
            f"({len(records)} line(s)); nothing recorded there is created again"
        )
    earlier = sorted(p.name for p in directory.iterdir() if _OUTPUT.fullmatch(p.name))
    if earlier:
        raise JournalError(
            f"{directory} holds outputs of an earlier run ({earlier[0]}, {len(earlier)} in all)"
            f" but no {JOURNAL_NAME} or {MANIFEST_NAME} saying which lines they belong to;"
            " pass --force-new to create every line again (charged again), or use another --out"
        )
    return None


def _read_manifest(path: Path) -> tuple[str, list[Mapping[str, object]]]:
    """The batch id and the records of a manifest fit to rebuild a journal from."""
    records: list[Mapping[str, object]] = []
    batch_ids: set[str] = set()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _unusable(path, 0, str(exc)) from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            raise _unusable(path, number, "not a JSON record") from None
        problem = _record_problem(record)
        if problem is not None:
            raise _unusable(path, number, problem)
        key = parse_key(record["key"])
        assert key is not None
        batch_ids.add(key.batch_id)
        records.append(record)
    if len(batch_ids) > 1:
        raise _unusable(path, 0, "its keys belong to more than one batch")
    return (batch_ids.pop() if batch_ids else ""), records


def _record_problem(record: object) -> str | None:
    if not isinstance(record, dict):
        return "not a JSON object"
    key = parse_key(record.get("key"))
    if key is None:
        return "no idempotency key (written by an older aurous?)"
    if record.get("line") != key.line or record.get("kind") not in _KINDS:
        return "its line or kind does not match its key"
    if not isinstance(record.get("status"), str):
        return "no status"
    if not isinstance(record.get("id"), (str, type(None))):
        return "a bad id"
    if not isinstance(record.get("cost"), (int, float, type(None))):
        return "a bad cost"
    if not isinstance(record.get("error"), (str, type(None))):
        return "a bad error"
    files = record.get("files")
    if not isinstance(files, list) or not all(is_safe_name(f) for f in files):
        return "bad file names"
    return None


def _unusable(path: Path, line: int, problem: str) -> JournalError:
    where = f"{path}:{line}" if line else str(path)
    return JournalError(
        f"the journal is missing and {where} cannot rebuild it ({problem}); pass --force-new "
        "to create every line again (charged again), or use another --out"
    )
