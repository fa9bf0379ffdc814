"""Every user-caused failure exits with its documented code and its own message."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from aurous_async import AuthenticationError
from aurous_async._cli import first_cause
from aurous_async._cli._output import EXIT_API, EXIT_USAGE

from ._support import fast_emulator, free_port, run_cli

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup

DEEP = 100_000


@pytest.mark.anyio
@pytest.mark.parametrize("command", ["batch", "estimate"])
async def test_a_wrong_api_key_exits_3_with_the_401(tmp_path: Path, command: str) -> None:
    """A key the API refuses during the estimate is exit 3 with the 401 line, not exit 70."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("a\nb\nc\n")
    out = ["--out", str(tmp_path / "out"), "--yes"] if command == "batch" else []
    async with fast_emulator() as emu:
        result = await run_cli(
            [command, str(prompts), *out, "--base-url", emu.base_url, "--api-key", "al_live_0"]
        )
        generations = emu.generations()
    assert result.code == EXIT_API, result.stderr
    assert "aurous: error: 401 " in result.stderr
    assert "internal error" not in result.stderr
    assert generations == []


@pytest.mark.anyio
async def test_an_unreachable_api_exits_3(tmp_path: Path) -> None:
    """No server at the base URL is exit 3 with the connection error, not exit 70."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("a\nb\n")
    target = ["--base-url", f"http://127.0.0.1:{free_port()}", "--api-key", "al_live_0"]
    out = ["--out", str(tmp_path / "out"), "--yes", "--timeout", "5"]
    result = await run_cli(["batch", str(prompts), *out, *target])
    assert result.code == EXIT_API, result.stderr
    assert "APIConnectionError" in result.stderr
    assert "internal error" not in result.stderr


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"prompt": "a", "seed": ' + "9" * 5000 + "}", "a number has too many digits"),
        (
            '{"prompt": "a", "loras": ' + "[" * DEEP + "]" * DEEP + "}",
            "nested too deeply",
        ),
        ('{"prompt": "a", "guidance_scale": 1e999}', "number out of range"),
        ('{"prompt": "a", "seed": NaN}', "NaN is not a JSON number"),
        ('{"prompt": "a", "seed": 1, "seed": 2}', "duplicate key 'seed'"),
    ],
)
async def test_bad_numbers_and_nesting_exit_2_with_file_and_line(
    tmp_path: Path, line: str, message: str
) -> None:
    """Numbers and nesting JSON allows but the API cannot take are exit 2 at ``file:line``."""
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "fine"}\n' + line + "\n")
    async with fast_emulator() as emu:
        result = await run_cli(["batch", str(prompts), "--out", str(tmp_path / "o"), "--yes"], emu)
        generations = emu.generations()
    assert result.code == EXIT_USAGE, result.stderr
    assert f"{prompts}:2: " in result.stderr
    assert message in result.stderr
    assert generations == []


def test_first_cause_unwraps_nested_task_group_errors() -> None:
    """The first real error inside nested exception groups is the one reported."""
    cause = AuthenticationError("bad key", status=401)
    group = ExceptionGroup("outer", [ExceptionGroup("inner", [cause, ValueError("later")])])
    assert first_cause(group) is cause
    assert first_cause(cause) is cause
    interrupted = BaseExceptionGroup("g", [ValueError("x"), KeyboardInterrupt()])
    assert isinstance(first_cause(interrupted), KeyboardInterrupt)
