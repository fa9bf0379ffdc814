"""The small ``aurous`` commands: estimate, get, wait, cancel, loras, balance, usage, webhooks."""

from __future__ import annotations

from pathlib import Path

import pytest

from aurous_async import AsyncAurous
from aurous_async._cli import build_parser, main
from aurous_async._cli._output import EXIT_API, EXIT_FAILED, EXIT_OK, EXIT_USAGE

from ._support import fast_emulator, run_cli


@pytest.mark.anyio
async def test_estimate_a_file_and_a_single_request(tmp_path: Path) -> None:
    """``estimate`` prices a PROMPTS file per line, or one request given as options."""
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(
        '{"prompt": "a", "count": 3}\n'
        '{"kind": "video", "video_lora_id": "seedance-1-lite", "duration": 4}\n'
    )
    async with fast_emulator() as emu:
        per_file = await run_cli(["estimate", str(prompts), "--json"], emu)
        single = await run_cli(["estimate", "--prompt", "a", "--enhance-prompt", "--json"], emu)
        human = await run_cli(["estimate", str(prompts)], emu)
        generations = emu.generations()
    assert per_file.code == single.code == human.code == EXIT_OK
    assert per_file.json()["lines"] == [
        {"line": 1, "kind": "image", "credits": 3.0},
        {"line": 2, "kind": "video", "credits": 2.0},
    ]
    assert per_file.json()["total"] == 5.0
    assert single.json()["total"] == 2.0
    assert "2 request(s): 5 credits" in human.stdout
    assert generations == []


@pytest.mark.anyio
async def test_get_wait_and_cancel(tmp_path: Path) -> None:
    """``wait`` follows ids to the end, ``get`` shows one, ``cancel`` cancels a running one."""
    async with fast_emulator(time_scale=50.0) as emu:
        async with AsyncAurous(emu.api_key, base_url=emu.base_url) as client:
            done = await client.images.create(prompt="a", width=1024, height=1024)
            emu.force_next_outcome("processing")
            stuck = await client.images.create(prompt="b", width=1024, height=1024)
        waited = await run_cli(["wait", done.id, "--json"], emu)
        shown = await run_cli(["get", done.id], emu)
        cancelled = await run_cli(["cancel", stuck.id, "--json"], emu)
        failed_wait = await run_cli(["wait", done.id, stuck.id], emu)
    assert waited.code == EXIT_OK, waited.stderr
    (record,) = waited.json()["generations"]
    assert (record["id"], record["status"]) == (done.id, "succeeded")
    assert shown.code == EXIT_OK
    assert f"id: {done.id}" in shown.stdout
    assert "status: succeeded" in shown.stdout
    assert cancelled.code == EXIT_OK
    assert cancelled.json()["status"] == "cancelled"
    assert failed_wait.code == EXIT_FAILED
    assert f"{stuck.id}  cancelled" in failed_wait.stdout


@pytest.mark.anyio
async def test_api_errors_are_one_line_with_code_and_request_id() -> None:
    """A 404 is one stderr line with status, code and request id, and exit code 3."""
    async with fast_emulator() as emu:
        result = await run_cli(["get", "img_doesnotexist"], emu)
    assert result.code == EXIT_API
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("aurous: error: 404 resource_not_found: ")
    assert "(request id req_" in line


@pytest.mark.anyio
async def test_account_and_catalogue_commands() -> None:
    """``balance``, ``loras`` and ``usage`` print for people and as JSON."""
    async with fast_emulator() as emu:
        balance = await run_cli(["balance", "--json"], emu)
        loras = await run_cli(["loras", "--json"], emu)
        loras_table = await run_cli(["loras"], emu)
        async with AsyncAurous(emu.api_key, base_url=emu.base_url) as client:
            await client.images.create(prompt="a", width=1024, height=1024)
        events = await run_cli(["usage", "--events", "--json"], emu)
        usage = await run_cli(["usage"], emu)
    assert balance.code == EXIT_OK
    assert balance.json()["available_credits"] <= 1000.0
    slugs = {lora["slug"] for lora in loras.json()}
    assert "golden-hour-photography" in slugs
    assert "golden-hour-photography" in loras_table.stdout
    assert events.code == EXIT_OK
    assert events.json()[0]["type"] in ("hold", "charge")
    assert usage.code == EXIT_OK, usage.stderr


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """Unknown commands and bad option values are usage errors (exit 2)."""
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == EXIT_USAGE
    with pytest.raises(SystemExit) as info:
        main(["batch", "p.txt", "--out", "o", "--concurrency", "0"])
    assert info.value.code == EXIT_USAGE
    assert "must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["emulator", "--help"])
    assert info.value.code == EXIT_OK
    assert "--time-scale" in capsys.readouterr().out


def test_help_documents_the_exit_codes() -> None:
    """``aurous --help`` and each command's help list the exit codes."""
    parser = build_parser()
    assert "130  interrupted" in parser.format_help()
    batch = next(
        a
        for a in parser._subparsers._group_actions  # type: ignore[union-attr]
    ).choices["batch"]  # type: ignore[index]
    assert "4    cost refused" in batch.format_help()


@pytest.mark.anyio
async def test_wait_out_saves_the_outputs_of_succeeded_jobs(tmp_path: Path) -> None:
    """``wait --out DIR`` writes each output of a succeeded job, named by id and content;
    an output past retention is reported per job and fails the command."""
    async with fast_emulator(time_scale=50.0, output_retention=3600.0) as emu:
        async with AsyncAurous(emu.api_key, base_url=emu.base_url) as client:
            pair = await client.images.create(prompt="two", width=1024, height=1024, count=2)
            single = await client.images.create(prompt="one", width=1024, height=1024)
        out = tmp_path / "outputs"
        saved = await run_cli(["wait", pair.id, single.id, "--out", str(out), "--json"], emu)
        human = await run_cli(["wait", single.id, "--out", str(tmp_path / "again")], emu)
        emu.advance(2 * 3600)
        expired = await run_cli(["wait", single.id, "--out", str(tmp_path / "late"), "--json"], emu)
    assert saved.code == EXIT_OK, saved.stderr
    files = {r["id"]: r["files"] for r in saved.json()["generations"]}
    assert files == {
        pair.id: [f"{pair.id}_0.png", f"{pair.id}_1.png"],
        single.id: [f"{single.id}_0.png"],
    }
    assert sorted(p.name for p in out.iterdir()) == sorted(files[pair.id] + files[single.id])
    assert all((out / name).read_bytes().startswith(b"\x89PNG") for name in files[pair.id])
    assert human.code == EXIT_OK
    assert f"-> {single.id}_0.png" in human.stdout
    assert expired.code == EXIT_FAILED
    (record,) = expired.json()["generations"]
    assert record["files"] == []
    assert "410 output_expired" in record["save_error"]
