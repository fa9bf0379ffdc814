"""The batch journal: stable keys, edited lines, retries, and the embedded-emulator reset."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from aurous_async._cli._inputs import Request, build_request
from aurous_async._cli._journal import JOURNAL_NAME, PENDING, Journal


def _requests(*prompts: str) -> list[Request]:
    return [build_request(n, {"prompt": p}) for n, p in enumerate(prompts, start=1)]


def test_keys_are_stable_across_reopening(tmp_path: Path) -> None:
    """Re-opening the directory gives every unchanged line the key it had."""
    journal = Journal(tmp_path)
    first = journal.sync(_requests("a", "b"))
    journal.close()
    journal = Journal(tmp_path)
    again = journal.sync(_requests("a", "b"))
    journal.close()
    assert [line.idempotency_key for line in first] == [line.idempotency_key for line in again]
    assert len({line.idempotency_key for line in first}) == 2
    assert all(line.status == PENDING for line in again)


def test_keys_differ_between_directories(tmp_path: Path) -> None:
    """Two batches (directories) of the same file never share a key."""
    one, two = Journal(tmp_path / "one"), Journal(tmp_path / "two")
    keys = {j.sync(_requests("a"))[0].idempotency_key for j in (one, two)}
    one.close()
    two.close()
    assert len(keys) == 2


def test_an_edited_line_starts_over_under_a_new_key(tmp_path: Path) -> None:
    """A changed request on a line drops the old generation and mints a new key."""
    journal = Journal(tmp_path)
    (old,) = journal.sync(_requests("a"))
    journal.record(1, status="succeeded", generation_id="img_1", cost=1.0, files=["f.png"])
    (new,) = journal.sync(_requests("a, edited"))
    journal.close()
    assert new.idempotency_key != old.idempotency_key
    assert (new.generation_id, new.status, new.files) == (None, PENDING, ())


def test_retry_failed_bumps_only_failed_lines(tmp_path: Path) -> None:
    """``retry_failed`` gives a failed line a new key and leaves succeeded ones alone."""
    journal = Journal(tmp_path)
    before = journal.sync(_requests("a", "b"))
    journal.record(1, status="failed", generation_id="img_1", error="boom")
    journal.record(2, status="succeeded", generation_id="img_2", files=["x.png"])
    after = journal.sync(_requests("a", "b"), retry_failed=True)
    journal.close()
    assert after[0].idempotency_key != before[0].idempotency_key
    assert (after[0].status, after[0].generation_id, after[0].error) == (PENDING, None, None)
    assert after[1].idempotency_key == before[1].idempotency_key
    assert after[1].generation_id == "img_2"


def test_forget_ids_resets_unfinished_lines_but_keeps_keys(tmp_path: Path) -> None:
    """For a fresh embedded emulator, lines not downloaded start over under the same key."""
    journal = Journal(tmp_path)
    before = journal.sync(_requests("a", "b"))
    journal.record(1, status="processing", generation_id="img_1")
    journal.record(2, status="succeeded", generation_id="img_2", files=["x.png"])
    after = journal.sync(_requests("a", "b"), forget_ids=True)
    journal.close()
    assert (after[0].generation_id, after[0].status) == (None, PENDING)
    assert after[0].idempotency_key == before[0].idempotency_key
    assert after[1].generation_id == "img_2"


def test_record_keeps_unspecified_columns(tmp_path: Path) -> None:
    """Recording a status keeps the id, cost and files already recorded."""
    journal = Journal(tmp_path)
    journal.sync(_requests("a"))
    journal.record(1, status="queued", generation_id="img_1", cost=2.0)
    line = journal.record(1, status="succeeded", files=["a.png"])
    journal.close()
    assert (line.generation_id, line.cost, line.files) == ("img_1", 2.0, ("a.png",))
    assert line.manifest() == {
        "line": 1,
        "kind": "image",
        "id": "img_1",
        "status": "succeeded",
        "cost": 2.0,
        "files": ["a.png"],
        "error": None,
        "key": line.idempotency_key,
    }


def test_the_journal_is_wal_sqlite_readable_by_others(tmp_path: Path) -> None:
    """Another process can read the journal while it is open (WAL mode)."""
    journal = Journal(tmp_path)
    journal.sync(_requests("a"))
    reader = sqlite3.connect(tmp_path / JOURNAL_NAME)
    try:
        mode = reader.execute("PRAGMA journal_mode").fetchone()[0]
        count = reader.execute("SELECT COUNT(*) FROM lines").fetchone()[0]
    finally:
        reader.close()
        journal.close()
    assert (mode, count) == ("wal", 1)
