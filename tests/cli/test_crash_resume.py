"""``aurous batch`` killed with SIGKILL mid-run, then re-run: nothing is created twice."""

from __future__ import annotations

import signal
import sqlite3
import sys
from pathlib import Path

import anyio
import pytest

from aurous_async._cli._journal import JOURNAL_NAME

from ._support import env_for, fast_emulator, manifest, start_cli, until, write_jsonl

LINES = 200
PNG = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def _journal_counts(path: Path) -> tuple[int, int]:
    """``(lines with a generation id, lines downloaded)``, read like any other process would."""
    if not path.exists():
        return 0, 0
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)
        try:
            ids, done = db.execute(
                "SELECT COUNT(generation_id), COALESCE(SUM(files != '[]'), 0) FROM lines"
            ).fetchone()
        finally:
            db.close()
    except sqlite3.OperationalError:  # created but no tables yet
        return 0, 0
    return int(ids), int(done)


@pytest.mark.anyio
async def test_sigkill_mid_batch_then_rerun_creates_each_line_once(tmp_path: Path) -> None:
    """After kill -9 and a re-run, the emulator holds exactly one generation per line."""
    rows = [
        {"prompt": f"crash test frame {n}", "width": 1024, "height": 1024, "seed": n}
        for n in range(LINES)
    ]
    prompts = write_jsonl(tmp_path / "prompts.jsonl", rows)
    out = tmp_path / "out"
    journal = out / JOURNAL_NAME
    # Image jobs take about 6 emulator seconds: ~0.3 s of real time at 20x.
    async with fast_emulator(time_scale=20.0) as emu:
        args = ["batch", str(prompts), "--out", str(out), "--yes", "--base-url", emu.base_url]
        log = tmp_path / "cli.log"
        first = await start_cli(args, env_for(emu), log)
        with anyio.fail_after(30):
            while True:
                ids, done = await anyio.to_thread.run_sync(_journal_counts, journal)
                if ids >= 20 and done < LINES:
                    break
                assert first.returncode is None, log.read_text()
                await anyio.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
        killed_at = await anyio.to_thread.run_sync(_journal_counts, journal)
        assert killed_at[1] < LINES

        second = await start_cli(args, env_for(emu), log)
        with anyio.fail_after(60):
            code = await second.wait()
        assert code == 0, log.read_text()
        generations = emu.generations()

    assert len(generations) == LINES
    assert len({g["id"] for g in generations}) == LINES
    records = manifest(out)
    assert [r["line"] for r in records] == list(range(1, LINES + 1))
    assert all(r["status"] == "succeeded" and r["error"] is None for r in records)
    assert {r["id"] for r in records} == {g["id"] for g in generations}
    files = [out / name for r in records for name in r["files"]]
    assert len(files) == LINES
    assert all(path.read_bytes().startswith(PNG) for path in files)
    assert sorted(p.name for p in out.glob("*.png")) == sorted(p.name for p in files)
    assert not list(out.glob("*.part"))


@pytest.mark.anyio
async def test_ctrl_c_exits_130_with_a_manifest_and_the_rerun_finishes(tmp_path: Path) -> None:
    """SIGINT stops the batch with exit 130 and a partial manifest; the re-run completes it."""
    rows = [{"prompt": f"interrupt {n}", "width": 1024, "height": 1024} for n in range(40)]
    prompts = write_jsonl(tmp_path / "prompts.jsonl", rows)
    out = tmp_path / "out"
    journal = out / JOURNAL_NAME
    async with fast_emulator(time_scale=5.0) as emu:
        args = ["batch", str(prompts), "--out", str(out), "--yes", "--base-url", emu.base_url]
        log = tmp_path / "cli.log"
        first = await start_cli(args, env_for(emu), log)
        await until(lambda: _journal_counts(journal)[0] >= 5 or first.returncode is not None)
        first.send_signal(signal.SIGINT)
        with anyio.fail_after(30):
            assert await first.wait() == 130, log.read_text()
        partial = manifest(out)
        second = await start_cli(args, env_for(emu), log)
        with anyio.fail_after(60):
            assert await second.wait() == 0, log.read_text()
        generations = emu.generations()
    assert "interrupted; re-run the same command to resume" in log.read_text()
    assert "Traceback" not in log.read_text()
    assert len(partial) == 40
    assert any(r["status"] != "succeeded" for r in partial)
    assert len(generations) == 40
    assert all(r["status"] == "succeeded" for r in manifest(out))
