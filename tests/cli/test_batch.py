"""``aurous batch`` and ``aurous generate`` end to end against the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aurous_async._cli._output import EXIT_COST, EXIT_FAILED, EXIT_OK, EXIT_USAGE

from ._support import fast_emulator, manifest, run_cli, write_jsonl

PNG = b"\x89PNG\r\n\x1a\n"
BLOCKED = "aurous-blocked-test-word"
#: A ``generate`` priced above the confirmation threshold (15 credits).
VIDEO_15_CREDITS = "generate --video --video-lora seedance-1-lite --duration 12 --resolution 1080p"


def _creates(emu: object) -> int:
    return sum(
        1
        for r in emu.requests  # type: ignore[attr-defined]
        if r.method == "POST" and r.path in ("/v1/images", "/v1/videos")
    )


@pytest.mark.anyio
async def test_batch_downloads_every_output_and_writes_the_manifest(tmp_path: Path) -> None:
    """Every line's outputs land in DIR as valid files, listed in a complete manifest."""
    prompts = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"prompt": "one", "size": "2k_1_1"},
            {"prompt": "two", "count": 2, "width": 1024, "height": 1024},
            {"kind": "video", "video_lora_id": "seedance-1-lite", "duration": 2},
        ],
    )
    out = tmp_path / "out"
    async with fast_emulator() as emu:
        result = await run_cli(["batch", str(prompts), "--out", str(out), "--yes", "--json"], emu)
    assert result.code == EXIT_OK, result.stderr
    summary = result.json()
    assert (summary["ok"], summary["counts"], summary["charged"]) == (
        True,
        {"succeeded": 3},
        4.0,
    )
    records = manifest(out)
    assert [(r["line"], r["kind"], r["status"], len(r["files"])) for r in records] == [
        (1, "image", "succeeded", 1),
        (2, "image", "succeeded", 2),
        (3, "video", "succeeded", 1),
    ]
    images = [out / f for r in records[:2] for f in r["files"]]
    assert all(p.suffix == ".png" and p.read_bytes().startswith(PNG) for p in images)
    video = out / records[2]["files"][0]
    assert video.suffix == ".mp4"
    assert video.read_bytes()[4:8] == b"ftyp"
    assert all(r["id"] and r["cost"] and r["error"] is None for r in records)


@pytest.mark.anyio
async def test_a_failed_line_does_not_stop_the_others(tmp_path: Path) -> None:
    """One failed generation gives exit 1; the other lines still complete."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("a\nb\nc\n")
    out = tmp_path / "out"
    async with fast_emulator() as emu:
        emu.force_next_outcome("failed", "Content policy violation")
        result = await run_cli(["batch", str(prompts), "--out", str(out), "--yes"], emu)
    assert result.code == EXIT_FAILED
    statuses = sorted(r["status"] for r in manifest(out))
    assert statuses == ["failed", "succeeded", "succeeded"]
    failed = next(r for r in manifest(out) if r["status"] == "failed")
    assert failed["error"] == "Content policy violation"
    assert failed["files"] == []
    assert "Content policy violation" in result.stderr


@pytest.mark.anyio
async def test_rerun_skips_done_lines_and_restores_missing_files(tmp_path: Path) -> None:
    """A second run creates nothing, and downloads again only the file that went missing."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("a\nb\n")
    out = tmp_path / "out"
    args = ["batch", str(prompts), "--out", str(out), "--yes"]
    async with fast_emulator() as emu:
        assert (await run_cli(args, emu)).code == EXIT_OK
        first = manifest(out)
        lost = out / first[0]["files"][0]
        lost.unlink()
        again = await run_cli(args, emu)
        creates = _creates(emu)
    assert again.code == EXIT_OK, again.stderr
    assert creates == 2
    assert manifest(out) == first
    assert lost.read_bytes().startswith(PNG)
    assert "1 done, 1 in flight, 0 to create" in again.stderr


@pytest.mark.anyio
async def test_rejected_creates_are_retried_by_the_next_run(tmp_path: Path) -> None:
    """A 402 rejects a line (exit 1); after a top-up the re-run creates it."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("a\nb\n")
    out = tmp_path / "out"
    args = ["batch", str(prompts), "--out", str(out), "--yes", "--concurrency", "1"]
    async with fast_emulator() as emu:
        emu.set_credits(emu.team_id, 1.0)
        first = await run_cli(args, emu)
        rejected = [r for r in manifest(out) if r["status"] == "rejected"]
        emu.set_credits(emu.team_id, 100.0)
        second = await run_cli(args, emu)
        generations = emu.generations()
    assert first.code == EXIT_FAILED
    assert len(rejected) == 1
    assert rejected[0]["error"].startswith("402 balance_too_low")
    assert "request id req_" in rejected[0]["error"]
    assert second.code == EXIT_OK, second.stderr
    assert len(generations) == 2


@pytest.mark.anyio
async def test_bad_input_is_reported_before_anything_is_sent(tmp_path: Path) -> None:
    """Bad lines are listed with their numbers, exit 2, and no request reaches the API."""
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "ok"}\n{"prompt": "x", "bogus": 1}\n{oops\n')
    async with fast_emulator() as emu:
        result = await run_cli(["batch", str(prompts), "--out", str(tmp_path / "o"), "--yes"], emu)
        requests = list(emu.requests)
    assert result.code == EXIT_USAGE
    assert f"{prompts}:2: unknown parameter 'bogus'" in result.stderr
    assert f"{prompts}:3: invalid JSON" in result.stderr
    assert requests == []
    assert "Traceback" not in result.stderr


@pytest.mark.anyio
async def test_a_request_the_api_refuses_at_estimate_is_reported_by_line(tmp_path: Path) -> None:
    """A request the estimate refuses (unknown style) is reported by line; nothing is created."""
    prompts = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"prompt": f"{BLOCKED} first", "lora_id": "watercolor-dreams"},
            {"prompt": "fine", "lora_id": "watercolor-dreams"},
            {"prompt": "fine", "lora_id": "no-such-style"},
        ],
    )
    async with fast_emulator() as emu:
        result = await run_cli(["batch", str(prompts), "--out", str(tmp_path / "o"), "--yes"], emu)
        creates = _creates(emu)
    assert result.code == EXIT_USAGE
    assert f"{prompts}:1: refused by the API: 400 prompt_blocked" in result.stderr
    assert f"{prompts}:3: refused by the API: 4" in result.stderr
    assert f"{prompts}:2:" not in result.stderr
    assert creates == 0


@pytest.mark.anyio
async def test_a_prompt_blocked_at_create_fails_only_its_line(tmp_path: Path) -> None:
    """Estimates are shared by price shape, so a blocked prompt may surface at create: its
    line is rejected and the others complete."""
    prompts = tmp_path / "p.txt"
    prompts.write_text(f"fine\nthis has {BLOCKED} in it\n")
    out = tmp_path / "o"
    async with fast_emulator() as emu:
        result = await run_cli(["batch", str(prompts), "--out", str(out), "--yes"], emu)
    assert result.code == EXIT_FAILED
    assert [r["status"] for r in manifest(out)] == ["succeeded", "rejected"]
    assert manifest(out)[1]["error"].startswith("400 prompt_blocked")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--max-cost", "1.5", "--yes"], "over --max-cost 1.5"),
        ([], "pass --yes"),
    ],
)
async def test_cost_refusals_exit_4_and_create_nothing(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    """Past --max-cost, or unconfirmed without a terminal, nothing is created (exit 4)."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("a\nb\n")
    async with fast_emulator() as emu:
        result = await run_cli(["batch", str(prompts), "--out", str(tmp_path / "o"), *extra], emu)
        creates = _creates(emu)
    assert result.code == EXIT_COST
    assert message in result.stderr
    assert "estimated 2 credits in all" in result.stderr
    assert creates == 0


@pytest.mark.anyio
async def test_generate_one_image_and_resume_it(tmp_path: Path) -> None:
    """``generate`` makes one generation; the same command again reuses it."""
    out = tmp_path / "out"
    args = ["generate", "a lighthouse", "--size", "2k_16_9", "--seed", "3", "--out", str(out)]
    async with fast_emulator() as emu:
        first = await run_cli([*args, "--yes", "--json"], emu)
        second = await run_cli([*args, "--yes", "--json"], emu)
        other = await run_cli(["generate", "a fox", "--out", str(out), "--yes"], emu)
        generations = emu.generations()
    assert first.code == second.code == other.code == EXIT_OK
    (result,) = first.json()["results"]
    assert second.json()["results"] == [result]
    assert (out / result["files"][0]).read_bytes().startswith(PNG)
    assert len(generations) == 2
    assert [r["line"] for r in manifest(out)] == [1, 2]


@pytest.mark.anyio
async def test_generate_rejects_bad_options_with_exit_2(tmp_path: Path) -> None:
    """An invalid option value is one clear line naming the parameter, exit 2."""
    async with fast_emulator() as emu:
        result = await run_cli(
            ["generate", "a", "--steps", "500", "--out", str(tmp_path), "--yes"], emu
        )
    assert result.code == EXIT_USAGE
    assert "steps: must be between 1 and 100" in result.stderr


@pytest.mark.anyio
async def test_the_embedded_emulator_is_the_default_without_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no key and no base URL the batch runs in-process and says so in one line."""
    monkeypatch.delenv("AUROUS_API_KEY", raising=False)
    monkeypatch.delenv("AUROUS_BASE_URL", raising=False)
    prompts = tmp_path / "p.txt"
    prompts.write_text("a\n")
    out = tmp_path / "out"
    result = await run_cli(["batch", str(prompts), "--out", str(out), "--yes", "--json"])
    assert result.code == EXIT_OK, result.stderr
    notices = [line for line in result.stderr.splitlines() if "embedded Aurous emulator" in line]
    assert len(notices) == 1
    assert json.loads(result.stdout)["counts"] == {"succeeded": 1}
    assert (out / manifest(out)[0]["files"][0]).read_bytes().startswith(PNG)


@pytest.mark.anyio
async def test_a_directory_belongs_to_one_api(tmp_path: Path) -> None:
    """A directory run against one API refuses a run against another (exit 2)."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("a\n")
    out = tmp_path / "out"
    async with fast_emulator() as emu:
        assert (await run_cli(["batch", str(prompts), "--out", str(out), "--yes"], emu)).code == 0
        result = await run_cli(["batch", str(prompts), "--out", str(out), "--yes", "--emulator"])
    assert result.code == EXIT_USAGE
    assert "use another --out" in result.stderr


@pytest.mark.anyio
async def test_wait_timeout_leaves_a_stuck_job_for_the_next_run(tmp_path: Path) -> None:
    """A job still running at --wait-timeout is left in flight (exit 1); a re-run resumes it."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("stuck\n")
    out = tmp_path / "out"
    args = ["batch", str(prompts), "--out", str(out), "--yes", "--wait-timeout", "0.5"]
    async with fast_emulator() as emu:
        emu.force_next_outcome("processing")
        first = await run_cli(args, emu)
        (record,) = manifest(out)
        emu.force_outcome(record["id"], "succeeded")
        second = await run_cli(args, emu)
        generations = emu.generations()
    assert first.code == EXIT_FAILED
    assert record["error"].startswith("still ")
    assert record["status"] in ("queued", "processing")
    assert second.code == EXIT_OK, second.stderr
    assert "0 done, 1 in flight, 0 to create" in second.stderr
    assert len(generations) == 1


@pytest.mark.anyio
async def test_generate_creates_a_small_request_without_a_terminal(tmp_path: Path) -> None:
    """``generate`` as the README writes it works without ``--yes`` under the threshold;
    past it, it still asks (exit 4 without a terminal)."""
    out = tmp_path / "out"
    async with fast_emulator() as emu:
        small = await run_cli(["generate", "a lighthouse", "--out", str(out)], emu)
        large = await run_cli(
            [*VIDEO_15_CREDITS.split(), "--out", str(out)],
            emu,
        )
        generations = emu.generations()
    assert small.code == EXIT_OK, small.stderr
    assert len(generations) == 1
    assert large.code == EXIT_COST, large.stderr
    assert "pass --yes" in large.stderr
