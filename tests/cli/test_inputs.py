"""Reading batch input files: formats, validation with the SDK's checks, line numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aurous_async import InvalidParameterError, LoraWeight
from aurous_async._cli._inputs import (
    InputFileError,
    build_request,
    coerce_text,
    read_requests,
)

LONG = "x" * 4001


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _errors(path: Path) -> list[tuple[int, str]]:
    with pytest.raises(InputFileError) as info:
        read_requests(path)
    return [(e.line, e.message) for e in info.value.errors]


def test_txt_one_prompt_per_line_skips_blanks_and_comments(tmp_path: Path) -> None:
    """A .txt gives one image request per non-blank line, numbered by file line."""
    path = _write(tmp_path, "p.txt", "# sample\na lighthouse\n\n  a fox  \n")
    requests = read_requests(path)
    assert [(r.line, r.kind, r.prompt) for r in requests] == [
        (2, "image", "a lighthouse"),
        (4, "image", "a fox"),
    ]


def test_jsonl_accepts_every_create_parameter_and_videos(tmp_path: Path) -> None:
    """A .jsonl line may set any create parameter; "kind": "video" makes a video request."""
    rows = [
        {"prompt": "a", "size": "2k_16_9", "loras": [{"lora": "x", "weight": 0.5}], "count": 2},
        {"kind": "video", "video_lora_id": "seedance-1-lite", "duration": 4, "ratio": "1:1"},
    ]
    path = _write(tmp_path, "p.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    image, video = read_requests(path)
    assert image.params["loras"] == [LoraWeight("x", 0.5)]
    assert image.body["loras"] == [{"lora": "x", "weight": 0.5}]
    assert (video.kind, video.body["duration"], video.line) == ("video", 4, 2)


def test_csv_converts_cells_to_parameter_types(tmp_path: Path) -> None:
    """CSV cells are typed by parameter; empty cells are unset; line numbers count the header."""
    text = "prompt,seed,enhance_prompt,guidance_scale,size\na,7,yes,7.5,\nb,,,,2k_1_1\n"
    first, second = read_requests(_write(tmp_path, "p.csv", text))
    assert first.params == {"prompt": "a", "seed": 7, "enhance_prompt": True, "guidance_scale": 7.5}
    assert (first.line, second.line, second.params["size"]) == (2, 3, "2k_1_1")


def test_all_bad_lines_are_reported_with_their_numbers(tmp_path: Path) -> None:
    """Invalid JSON, unknown parameters, bad values and long prompts are all listed by line."""
    lines = [
        json.dumps({"prompt": "fine"}),
        "{not json",
        json.dumps({"prompt": "a", "colour": "red"}),
        json.dumps({"prompt": LONG}),
        json.dumps({"prompt": "a", "steps": 500}),
        json.dumps(["a list"]),
        json.dumps({"seed": 1}),
        json.dumps({"kind": "video", "duration": 30, "video_lora_id": "v"}),
        json.dumps({"kind": "audio", "prompt": "a"}),
    ]
    errors = _errors(_write(tmp_path, "p.jsonl", "\n".join(lines) + "\n"))
    assert [line for line, _ in errors] == [2, 3, 4, 5, 6, 7, 8, 9]
    messages = dict(errors)
    assert messages[2].startswith("invalid JSON")
    assert "unknown parameter 'colour'" in messages[3]
    assert messages[4] == "prompt: must be 1-4000 characters long, got 4001"
    assert messages[5].startswith("steps: must be between 1 and 100")
    assert "JSON object" in messages[6]
    assert messages[7].startswith("prompt: missing")
    assert messages[8].startswith("duration:")
    assert messages[9].startswith("kind:")


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("text,seed\na,1\n", 1, "missing the 'prompt' column"),
        ("prompt,colour\na,red\n", 1, "unknown column 'colour'"),
        ("prompt,seed\na,1\nb,one\n", 3, "seed: must be an integer"),
        (f"prompt\n{LONG}\n", 2, "prompt: must be 1-4000 characters"),
        ("prompt,size\na,2k_1_1,extra\n", 2, "more cells than columns"),
    ],
)
def test_csv_problems_name_the_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    """CSV problems (columns, cell types, lengths) are reported against the right line."""
    errors = _errors(_write(tmp_path, "p.csv", text))
    assert errors[0][0] == line
    assert fragment in errors[0][1]


def test_txt_prompt_over_4000_characters(tmp_path: Path) -> None:
    """A .txt prompt over 4,000 characters is reported with its line number."""
    errors = _errors(_write(tmp_path, "p.txt", f"ok\n{LONG}\n"))
    assert errors == [(2, "prompt: must be 1-4000 characters long, got 4001")]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("p.yaml", "a", "must be a .jsonl, .csv or .txt file"),
        ("p.txt", "\n# only a comment\n", "has no requests"),
        ("missing.txt", None, "no such file"),
    ],
)
def test_whole_file_problems(tmp_path: Path, name: str, content: str | None, message: str) -> None:
    """Wrong extension, an empty file and a missing file are reported for the file."""
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    assert _errors(path) == [(0, message)]


def test_error_report_lines_are_path_prefixed_and_capped() -> None:
    """The report reads ``path:line: message`` and summarizes past the limit."""
    from aurous_async._cli._inputs import InputError

    error = InputFileError("p.txt", [InputError(n, "bad") for n in range(1, 5)])
    assert error.lines(limit=2) == ["p.txt:1: bad", "p.txt:2: bad", "... and 2 more"]


def test_digest_ignores_key_order_and_tracks_edits() -> None:
    """Equal requests hash alike whatever the key order; an edited one hashes differently."""
    a = build_request(1, {"prompt": "p", "seed": 1})
    b = build_request(9, {"seed": 1, "prompt": "p"})
    c = build_request(1, {"prompt": "p", "seed": 2})
    assert a.digest == b.digest != c.digest


def test_coerce_text_rejects_bad_values() -> None:
    """Text values convert to the parameter's type or fail naming the parameter."""
    assert coerce_text("reference_image_urls", "file_a file_b") == ["file_a", "file_b"]
    assert coerce_text("loras", '[{"lora": "x"}]') == [{"lora": "x"}]
    with pytest.raises(InvalidParameterError, match="camera_fixed"):
        coerce_text("camera_fixed", "maybe")
    with pytest.raises(InvalidParameterError, match="loras"):
        coerce_text("loras", "x")


def test_csv_keeps_a_quoted_crlf_as_written(tmp_path: Path) -> None:
    """A CRLF inside a quoted CSV cell reaches the request as CRLF, not LF."""
    path = tmp_path / "p.csv"
    path.write_bytes(b'prompt,seed\r\n"first line\r\nsecond line",1\r\nplain,2\r\n')
    first, second = read_requests(path)
    assert first.params["prompt"] == "first line\r\nsecond line"
    assert (second.line, second.params["prompt"]) == (4, "plain")


def test_jsonl_lines_end_only_at_cr_or_lf(tmp_path: Path) -> None:
    """A prompt holding U+2028 stays one line; CRLF files number their lines as written."""
    text = json.dumps({"prompt": "a\u2028b"}, ensure_ascii=False) + "\r\n" + '{"prompt": "c"}\r\n'
    first, second = read_requests(_write(tmp_path, "p.jsonl", text))
    assert (first.line, first.params["prompt"]) == (1, "a\u2028b")
    assert second.line == 2


@pytest.mark.parametrize(
    ("cell", "fragment"),
    [
        ('[{"lora": "a", "lora": "b"}]', "duplicate key 'lora'"),
        ("[" * 10_000 + "]" * 10_000, "nested too deeply"),
        ("[" * 100_000 + "]" * 100_000, "not valid CSV: field larger than field limit"),
    ],
)
def test_csv_json_cells_are_read_strictly(tmp_path: Path, cell: str, fragment: str) -> None:
    """A JSON list in a CSV cell refuses duplicate keys and runaway nesting, and an
    oversized cell is a CSV error, each by line."""
    quoted = '"' + cell.replace('"', '""') + '"'
    errors = _errors(_write(tmp_path, "p.csv", f"prompt,loras\na,{quoted}\n"))
    assert errors[0][0] == 2
    assert fragment in errors[0][1]


def test_missing_prompt_names_the_kind_in_good_english(tmp_path: Path) -> None:
    """The missing-parameter message reads "an image request" / "a video request"."""
    errors = _errors(_write(tmp_path, "p.jsonl", '{"seed": 1}\n{"kind": "video"}\n'))
    assert errors == [
        (1, "prompt: missing (required for an image request)"),
        (2, "video_lora_id: missing (required for a video request)"),
    ]


def test_the_shipped_examples_are_valid() -> None:
    """The example input files the README names read without a problem."""
    examples = Path(__file__).resolve().parents[2] / "examples"
    assert len(read_requests(examples / "prompts.csv")) == 3
    assert len(read_requests(examples / "batch.jsonl")) >= 1
