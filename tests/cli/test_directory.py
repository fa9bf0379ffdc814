"""The output directory's money safety: a lost, emptied or corrupt journal; one run at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from aurous_async._cli._directory import lock_directory
from aurous_async._cli._journal import JOURNAL_NAME, MANIFEST_NAME
from aurous_async._cli._output import EXIT_FAILED, EXIT_OK, EXIT_USAGE

from ._support import fast_emulator, manifest, run_cli

LINES = 5


def _prompts(tmp_path: Path) -> Path:
    path = tmp_path / "p.txt"
    path.write_text("".join(f"a lighthouse, take {n}\n" for n in range(LINES)))
    return path


def _lose_journal(out: Path, how: str) -> None:
    journal = out / JOURNAL_NAME
    if how == "deleted":
        journal.unlink()
    else:
        journal.write_bytes(b"")


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["deleted", "emptied"])
async def test_a_lost_journal_is_rebuilt_from_the_manifest(tmp_path: Path, how: str) -> None:
    """A finished batch whose journal is deleted or emptied creates nothing on a re-run."""
    out = tmp_path / "out"
    args = ["batch", str(_prompts(tmp_path)), "--out", str(out), "--yes"]
    async with fast_emulator() as emu:
        first = await run_cli(args, emu)
        before = manifest(out)
        _lose_journal(out, how)
        second = await run_cli(args, emu)
        generations = emu.generations()
    assert first.code == second.code == EXIT_OK, second.stderr
    assert len(generations) == LINES
    assert "rebuilt from" in second.stderr
    assert f"{LINES} done, 0 in flight, 0 to create" in second.stderr
    assert manifest(out) == before


@pytest.mark.anyio
async def test_a_lost_directory_state_replays_under_the_same_keys(tmp_path: Path) -> None:
    """With journal, manifest and outputs all gone, the re-run's keys are the first run's:
    the API replays every generation instead of charging again."""
    out = tmp_path / "out"
    args = ["batch", str(_prompts(tmp_path)), "--out", str(out), "--yes"]
    async with fast_emulator() as emu:
        assert (await run_cli(args, emu)).code == EXIT_OK
        first_ids = {r["id"] for r in manifest(out)}
        for path in out.iterdir():
            path.unlink()
        second = await run_cli(args, emu)
        generations = emu.generations()
    assert second.code == EXIT_OK, second.stderr
    assert len(generations) == LINES
    assert {r["id"] for r in manifest(out)} == first_ids
    assert all((out / r["files"][0]).is_file() for r in manifest(out))


@pytest.mark.anyio
async def test_outputs_without_a_journal_are_refused_unless_force_new(tmp_path: Path) -> None:
    """Outputs with neither journal nor manifest stop the run (exit 2); --force-new
    creates every line again, on purpose, and the same command again only resumes."""
    out = tmp_path / "out"
    args = ["batch", str(_prompts(tmp_path)), "--out", str(out), "--yes"]
    async with fast_emulator() as emu:
        assert (await run_cli(args, emu)).code == EXIT_OK
        (out / JOURNAL_NAME).unlink()
        (out / MANIFEST_NAME).unlink()
        refused = await run_cli(args, emu)
        after_refusal = len(emu.generations())
        forced = await run_cli([*args, "--force-new"], emu)
        again = await run_cli([*args, "--force-new"], emu)
        generations = emu.generations()
    assert refused.code == EXIT_USAGE
    assert "holds outputs of an earlier run" in refused.stderr
    assert "--force-new" in refused.stderr
    assert after_refusal == LINES
    assert forced.code == EXIT_OK, forced.stderr
    assert "--force-new: a new batch" in forced.stderr
    assert again.code == EXIT_OK, again.stderr
    assert "--force-new" not in again.stderr
    assert len(generations) == 2 * LINES


@pytest.mark.anyio
async def test_a_manifest_without_keys_cannot_rebuild_the_journal(tmp_path: Path) -> None:
    """A manifest that cannot say which key each line used is refused, naming its line."""
    out = tmp_path / "out"
    args = ["batch", str(_prompts(tmp_path)), "--out", str(out), "--yes"]
    async with fast_emulator() as emu:
        assert (await run_cli(args, emu)).code == EXIT_OK
        (out / JOURNAL_NAME).unlink()
        path = out / MANIFEST_NAME
        path.write_text(path.read_text().replace('"key":', '"old":', 1))
        result = await run_cli(args, emu)
        generations = emu.generations()
    assert result.code == EXIT_USAGE
    assert f"{path}:1 cannot rebuild it (no idempotency key" in result.stderr
    assert len(generations) == LINES


@pytest.mark.anyio
async def test_a_corrupt_journal_is_one_line_naming_the_file(tmp_path: Path) -> None:
    """A journal of garbage bytes is a one-line error naming the file, exit 2, nothing sent."""
    out = tmp_path / "out"
    out.mkdir()
    journal = out / JOURNAL_NAME
    journal.write_bytes(b"\x00garbage, not SQLite\xff" * 200)
    async with fast_emulator() as emu:
        result = await run_cli(["batch", str(_prompts(tmp_path)), "--out", str(out), "--yes"], emu)
        generations = emu.generations()
    assert result.code == EXIT_USAGE
    (line,) = result.stderr.strip().splitlines()
    assert f"{journal}: not a readable batch journal" in line
    assert "internal error" not in line
    assert generations == []


@pytest.mark.anyio
async def test_a_directory_in_use_by_another_run_is_refused(tmp_path: Path) -> None:
    """While one run holds the directory, a second exits 2 without sending anything."""
    out = tmp_path / "out"
    async with fast_emulator() as emu:
        with lock_directory(out):
            result = await run_cli(
                ["batch", str(_prompts(tmp_path)), "--out", str(out), "--yes"], emu
            )
        generations = emu.generations()
    assert result.code == EXIT_USAGE
    assert f"another aurous run is using {out}" in result.stderr
    assert generations == []


@pytest.mark.anyio
async def test_the_summary_counts_an_undownloaded_success_as_not_done(tmp_path: Path) -> None:
    """A generation that succeeded but whose files could not be saved is counted
    "not downloaded", so the summary agrees with exit 1."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("a\n")
    out = tmp_path / "out"
    async with fast_emulator(output_retention=0.001) as emu:
        human = await run_cli(["batch", str(prompts), "--out", str(out), "--yes"], emu)
        data = await run_cli(["batch", str(prompts), "--out", str(out), "--yes", "--json"], emu)
    assert human.code == data.code == EXIT_FAILED
    assert "1 line(s): 1 not downloaded;" in human.stdout
    assert "succeeded" not in human.stdout.split("manifest:")[0]
    assert data.json()["counts"] == {"not downloaded": 1}
