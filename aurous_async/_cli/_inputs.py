"""Reading a batch's requests: ``.jsonl``, ``.csv`` or ``.txt``, checked line by line.

Every line is validated with the checks ``images.create``/``videos.create`` run
(``image_body``/``video_body``), so an error names the parameter exactly as the SDK
and the API do. All bad lines are collected before anything is sent.
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import io
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path

import attrs

from .._errors import InvalidParameterError
from .._resources.images import image_body
from .._resources.videos import video_body
from ..models import LoraWeight

__all__ = [
    "IMAGE_PARAMS",
    "KINDS",
    "VIDEO_PARAMS",
    "InputError",
    "InputFileError",
    "Request",
    "build_request",
    "coerce_text",
    "read_requests",
]

#: The request parameters a line may set, exactly those of the SDK's create methods.
IMAGE_PARAMS: tuple[str, ...] = tuple(inspect.signature(image_body).parameters)
VIDEO_PARAMS: tuple[str, ...] = tuple(inspect.signature(video_body).parameters)
KINDS = ("image", "video")

_INT_PARAMS = frozenset({"width", "height", "steps", "seed", "count", "duration"})
_FLOAT_PARAMS = frozenset({"guidance_scale", "cfg_rescale", "denoise_strength"})
_BOOL_PARAMS = frozenset({"enhance_prompt", "camera_fixed", "watermark"})
_LIST_PARAMS = frozenset({"loras", "reference_image_urls"})
_TRUE = frozenset({"true", "yes", "1", "y", "on"})
_FALSE = frozenset({"false", "no", "0", "n", "off"})


@attrs.frozen
class Request:
    """One validated line of a batch.

    Attributes:
        line: the 1-based line of the input file it came from.
        kind: ``image`` or ``video``.
        params: keyword arguments for ``images.create``/``videos.create``.
        body: the JSON body the SDK will send (after validation).
        digest: sha256 of the canonical ``{"kind", **body}``; identifies the request.
    """

    line: int
    kind: str
    params: Mapping[str, object]
    body: Mapping[str, object]
    digest: str

    @property
    def prompt(self) -> str | None:
        value = self.body.get("prompt")
        return value if isinstance(value, str) else None


@attrs.frozen
class InputError:
    """A problem with one line (``line`` 0: the file as a whole)."""

    line: int
    message: str


class InputFileError(Exception):
    """The input file has bad lines; nothing was submitted."""

    def __init__(self, path: str, errors: list[InputError]) -> None:
        super().__init__(f"{path}: {len(errors)} bad line(s)")
        self.path = path
        self.errors = errors

    def lines(self, limit: int = 50) -> list[str]:
        """``path:line: message`` for the first ``limit`` problems, then a count."""
        shown = [
            f"{self.path}:{e.line}: {e.message}" if e.line else f"{self.path}: {e.message}"
            for e in self.errors[:limit]
        ]
        if len(self.errors) > limit:
            shown.append(f"... and {len(self.errors) - limit} more")
        return shown


class _Problem(Exception):
    pass


_LINE_BREAK = re.compile(r"\r\n|\r|\n")
#: How a kind is named in a sentence.
_A_KIND = {"image": "an image", "video": "a video"}


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for name, value in pairs:
        if name in result:
            # The last value would win silently, and the line would cost something else.
            raise _Problem(f"duplicate key {name!r}")
        result[name] = value
    return result


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Problem(f"number out of range: {text[:20]}")
    return value


def _not_a_number(text: str) -> object:
    raise _Problem(f"{text} is not a JSON number")


def _strict_json(text: str) -> object:
    """``json.loads`` refusing what the API could read differently from us: duplicate
    keys, ``NaN``/``Infinity``, numbers too long or too large, nesting too deep.

    Raises ``_Problem`` with a one-line reason.
    """
    try:
        return json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_float=_finite,
            parse_constant=_not_a_number,
        )
    except json.JSONDecodeError as exc:
        raise _Problem(f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    except ValueError:  # int() past the interpreter's digit limit
        raise _Problem("invalid JSON: a number has too many digits") from None
    except RecursionError:
        raise _Problem("invalid JSON: nested too deeply") from None


def canonical(value: object) -> str:
    """Canonical JSON: sorted keys, no whitespace (as the API matches idempotent bodies)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _loras(value: object) -> list[LoraWeight]:
    if isinstance(value, (str, bytes)) or not isinstance(value, list):
        raise _Problem('loras: must be a list of {"lora": ..., "weight": ...} objects')
    stack = []
    for item in value:
        if not isinstance(item, Mapping) or set(item) - {"lora", "weight"} or "lora" not in item:
            raise _Problem('loras: each item must be {"lora": <id or slug>, "weight": <0-2>}')
        stack.append(LoraWeight(lora=item["lora"], weight=item.get("weight", 1.0)))
    return stack


def build_request(line: int, raw: Mapping[str, object]) -> Request:
    """Validate one line's parameters and build its request.

    ``None`` values mean "not set". Raises ``InvalidParameterError`` naming the first
    bad parameter.
    """
    given = {name: value for name, value in raw.items() if value is not None}
    kind = given.pop("kind", "image")
    try:
        if kind not in KINDS:
            raise _Problem(f'kind: must be "image" or "video", got {kind!r}')
        allowed = IMAGE_PARAMS if kind == "image" else VIDEO_PARAMS
        unknown = sorted(set(given) - set(allowed))
        if unknown:
            names = ", ".join(repr(name) for name in unknown)
            raise _Problem(f"unknown parameter {names} for {_A_KIND[kind]} request")
        required = "prompt" if kind == "image" else "video_lora_id"
        if required not in given:
            raise _Problem(f"{required}: missing (required for {_A_KIND[kind]} request)")
        params: dict[str, object] = dict(given)
        if "loras" in params:
            params["loras"] = _loras(params["loras"])
        full: dict[str, object] = dict.fromkeys(allowed)
        full.update(params)
        body = image_body(**full) if kind == "image" else video_body(**full)  # type: ignore[arg-type]
    except InvalidParameterError as exc:
        raise InvalidParameterError(exc.message, param=exc.param) from None
    except _Problem as exc:
        raise InvalidParameterError(str(exc)) from None
    digest = hashlib.sha256(canonical({"kind": kind, **body}).encode()).hexdigest()
    return Request(line=line, kind=str(kind), params=params, body=body, digest=digest)


def coerce_text(name: str, text: str) -> object:
    """A parameter given as text (a CSV cell, a ``--param``) converted to its type."""
    value = text.strip()
    try:
        if name in _INT_PARAMS:
            return int(value)
        if name in _FLOAT_PARAMS:
            return float(value)
    except ValueError:
        kind = "an integer" if name in _INT_PARAMS else "a number"
        raise InvalidParameterError(f"{name}: must be {kind}, got {value!r}") from None
    if name in _BOOL_PARAMS:
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise InvalidParameterError(f"{name}: must be true or false, got {value!r}")
    if name in _LIST_PARAMS:
        if value.startswith("["):
            try:
                return _strict_json(value)
            except _Problem as exc:
                raise InvalidParameterError(f"{name}: is not a valid JSON list ({exc})") from None
        if name == "reference_image_urls":
            return value.split()
        raise InvalidParameterError(f"{name}: must be a JSON list")
    return text


def _jsonl_line(text: str) -> Mapping[str, object] | None:
    if not text.strip():
        return None
    value = _strict_json(text)
    if not isinstance(value, dict):
        raise _Problem(f"must be a JSON object, got {type(value).__name__}")
    return value


def _txt_line(text: str) -> Mapping[str, object] | None:
    if not text.strip() or text.lstrip().startswith("#"):
        return None
    return {"prompt": text.strip()}


class _LineProblem(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def _csv_rows(text: str, errors: list[InputError]) -> list[tuple[int, dict[str, object]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        return _csv_records(reader, errors)
    except csv.Error as exc:  # a cell past the csv module's size limit, a NUL byte, ...
        # ``line_num`` counts the lines of the records read whole; the bad one is next.
        errors.append(InputError(reader.line_num + 1, f"not valid CSV: {exc}"))
        return []


def _csv_records(
    reader: csv.DictReader[str], errors: list[InputError]
) -> list[tuple[int, dict[str, object]]]:
    columns = [c.strip() for c in (reader.fieldnames or [])]
    if "prompt" not in columns:
        found = ", ".join(repr(c) for c in columns) or "none"
        errors.append(InputError(1, f"missing the 'prompt' column (columns: {found})"))
        return []
    known = {*IMAGE_PARAMS, *VIDEO_PARAMS, "kind"}
    unknown = [c for c in columns if c not in known]
    if unknown:
        names = ", ".join(repr(c) for c in unknown)
        errors.append(InputError(1, f"unknown column {names}"))
        return []
    rows = []
    for record in reader:
        number = reader.line_num
        raw: dict[str, object] = {}
        try:
            for column, cell in record.items():
                if column is None:
                    raise _LineProblem(number, "more cells than columns")
                if cell is None or not cell.strip():
                    continue
                name = column.strip()
                raw[name] = cell.strip() if name in ("kind", "prompt") else coerce_text(name, cell)
        except _LineProblem as exc:
            errors.append(InputError(exc.line, exc.message))
            continue
        except InvalidParameterError as exc:
            errors.append(InputError(number, exc.message))
            continue
        if raw:
            rows.append((number, raw))
    return rows


def read_requests(path: str | Path) -> list[Request]:
    """Read and validate every line of a ``.jsonl``, ``.csv`` or ``.txt`` file.

    Raises:
        InputFileError: the file is missing, unreadable, of an unknown type, empty, or
            has bad lines; every bad line is listed with its number.
    """
    source = Path(path)
    name = str(path)
    suffix = source.suffix.lower()
    if suffix not in (".jsonl", ".csv", ".txt"):
        raise InputFileError(name, [InputError(0, "must be a .jsonl, .csv or .txt file")])
    try:
        # Decoded by hand, not read as text: universal newlines would turn a CRLF quoted
        # inside a CSV cell into LF.
        text = source.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise InputFileError(name, [InputError(0, "no such file")]) from None
    except UnicodeDecodeError as exc:
        raise InputFileError(name, [InputError(0, f"is not UTF-8 text ({exc.reason})")]) from None
    except OSError as exc:
        raise InputFileError(name, [InputError(0, exc.strerror or str(exc))]) from None
    errors: list[InputError] = []
    rows: list[tuple[int, Mapping[str, object]]] = []
    if suffix == ".csv":
        rows.extend(_csv_rows(text, errors))
    else:
        parse = _jsonl_line if suffix == ".jsonl" else _txt_line
        # Only CR and LF end a line: a JSON string may hold U+2028 and other characters
        # ``str.splitlines`` would break on.
        for number, line in enumerate(_LINE_BREAK.split(text), start=1):
            try:
                raw = parse(line)
            except _Problem as exc:
                errors.append(InputError(number, str(exc)))
                continue
            if raw is not None:
                rows.append((number, raw))
    requests = []
    for number, raw in rows:
        try:
            requests.append(build_request(number, raw))
        except InvalidParameterError as exc:
            errors.append(InputError(number, exc.message))
    if not errors and not requests:
        errors.append(InputError(0, "has no requests"))
    if errors:
        errors.sort(key=lambda e: e.line)
        raise InputFileError(name, errors)
    return requests
