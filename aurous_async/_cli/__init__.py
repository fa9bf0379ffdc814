"""The ``aurous`` command: batch generation that survives crashes, and the API from a shell.

``main`` parses the arguments, runs one subcommand and turns every failure into one
line on stderr and a documented exit code (see ``_output``); a traceback is shown only
with ``AUROUS_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from .._config import ENV_API_KEY, ENV_BASE_URL, ENV_REDIS_URL
from .._errors import AurousError, InvalidParameterError
from .._version import __version__
from ._output import (
    EXIT_API,
    EXIT_CODES_HELP,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    Output,
    error_text,
)
from ._run import run
from ._target import EMBEDDED_TIME_SCALE

#: The webhook secret's environment variable (read by ``_listen``, which is imported
#: only when the command runs).
ENV_WEBHOOK_SECRET = "AUROUS_WEBHOOK_SECRET"

__all__ = ["main"]

Command = Callable[[argparse.Namespace, Output], Coroutine[Any, Any, int]]

_DESCRIPTION = f"""\
The Aurous Labs API from a shell. The main job is `aurous batch PROMPTS --out DIR`:
estimate, submit under the rate limit, wait, download and write DIR/manifest.jsonl,
resumable after a crash by re-running the same command.

Without {ENV_API_KEY} and --base-url (or with --emulator), commands run against an
emulator started in-process: no account, no network, nothing charged.
"""


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection and output")
    group.add_argument("--api-key", help=f"the team's API key (default: ${ENV_API_KEY})")
    group.add_argument("--base-url", help=f"the API root (default: ${ENV_BASE_URL}, production)")
    group.add_argument("--emulator", action="store_true", help="run against an in-process emulator")
    group.add_argument(
        "--time-scale",
        type=_positive,
        default=EMBEDDED_TIME_SCALE,
        help="how much faster the in-process emulator runs jobs (default: %(default)g)",
    )
    group.add_argument(
        "--timeout", type=_positive, help="seconds one API call may take, retries included"
    )
    group.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    return common


def _request_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("request parameters (images.create / videos.create)")
    group.add_argument("--video", action="store_true", help="a video instead of an image")
    group.add_argument("--negative-prompt")
    group.add_argument("--lora", help="image style: lora_... id or slug (lora_id)")
    group.add_argument("--size", help="preset <2k|4k>_<w>_<h>, e.g. 2k_16_9")
    group.add_argument("--width", type=int)
    group.add_argument("--height", type=int)
    group.add_argument("--steps", type=int)
    group.add_argument("--guidance-scale", type=float)
    group.add_argument("--seed", type=int)
    group.add_argument("--count", type=int, help="images per request, 1-4")
    group.add_argument("--enhance-prompt", action="store_true")
    group.add_argument(
        "--reference", action="append", help="reference image: file_... id or https URL"
    )
    group.add_argument("--character", help="a ready character's id (character_id)")
    group.add_argument("--video-lora", help="video model: lora_... id or slug (video_lora_id)")
    group.add_argument("--resolution", help="480p, 720p or 1080p")
    group.add_argument("--ratio", help="16:9, 4:3, 1:1, 3:4, 9:16 or 21:9")
    group.add_argument("--duration", type=int, help="video seconds, 2-12")
    group.add_argument("--first-frame", help="file_... id or https URL")
    group.add_argument("--last-frame", help="file_... id or https URL")
    group.add_argument("--camera-fixed", action="store_true")
    group.add_argument("--watermark", action="store_true")
    group.add_argument("--webhook-url")
    group.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="any other parameter (lists as JSON), e.g. --param 'loras=[...]'",
    )


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output directory (journal, files, manifest)")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask to confirm the cost")
    parser.add_argument(
        "--max-cost", type=float, help="refuse (exit 4) if the estimated total is above this"
    )
    parser.add_argument(
        "--concurrency",
        type=_count,
        default=32,
        help="creates in flight at once; the rate governor paces them (default: %(default)s)",
    )
    parser.add_argument(
        "--wait-timeout",
        type=_positive,
        help="seconds to wait for one generation before leaving it for a re-run",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="give lines whose generation failed a new attempt (a new idempotency key)",
    )
    parser.add_argument(
        "--force-new",
        action="store_true",
        help="where --out holds outputs of a batch that cannot be recovered (no journal, "
        "no usable manifest), start a new one: every line is created, and charged, again",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``aurous`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="aurous",
        description=_DESCRIPTION,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aurous_async {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common()

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            parents=[common],
            help=help,
            description=help,
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    batch = add("batch", "run a batch of generations; re-run the same command to resume")
    batch.add_argument(
        "prompts",
        metavar="PROMPTS",
        help='.jsonl (one request per line, optional "kind": "video"), '
        ".csv (a prompt column) or .txt (one prompt per line)",
    )
    _run_options(batch)
    fleet = batch.add_argument_group("fleet batch (several processes or machines)")
    fleet.add_argument(
        "--redis",
        metavar="URL",
        default=os.environ.get(ENV_REDIS_URL) or None,
        help="split the batch between every process run with the same PROMPTS and Redis: "
        f"redis://[:password@]host[:port][/db] (default: ${ENV_REDIS_URL})",
    )
    fleet.add_argument(
        "--claim-timeout",
        type=_positive,
        default=60.0,
        metavar="SECONDS",
        help="take over a line from a process silent this long (default: %(default)g)",
    )
    fleet.add_argument(
        "--max-deliveries",
        type=_count,
        default=3,
        metavar="N",
        help="hand a line to at most N processes; a line whose holders all stopped "
        "before finishing it is closed with an error (default: %(default)d)",
    )

    generate = add("generate", "one generation, with the batch machinery (resumable)")
    generate.add_argument("prompt", nargs="?", help="the prompt (optional for a video)")
    _request_options(generate)
    _run_options(generate)

    estimate = add("estimate", "price a request or a PROMPTS file; nothing is created")
    estimate.add_argument("file", nargs="?", metavar="PROMPTS", help="a batch input file")
    estimate.add_argument("--prompt", help="the prompt of a single request")
    _request_options(estimate)

    wait = add("wait", "wait for generations to finish")
    wait.add_argument("ids", nargs="+", metavar="ID")
    wait.add_argument("--wait-timeout", type=_positive, help="give up after this many seconds")
    wait.add_argument("--out", metavar="DIR", help="save the outputs of succeeded ones here")

    get = add("get", "show one generation (image or video)")
    get.add_argument("id", metavar="ID")

    cancel = add("cancel", "cancel a queued or processing generation")
    cancel.add_argument("id", metavar="ID")

    add("loras", "list the image styles available to the team")
    add("balance", "show the credit balance")

    usage = add("usage", "usage per day, or the credit ledger with --events")
    usage.add_argument("--days", type=_count, default=7, help="days back (default: %(default)s)")
    usage.add_argument("--events", action="store_true", help="list ledger events instead")
    usage.add_argument("--limit", type=_count, default=20, help="events to list (default: 20)")

    webhooks = add("webhooks", "webhook tools")
    hooks = webhooks.add_subparsers(dest="webhooks_command", required=True, metavar="COMMAND")
    listen = hooks.add_parser(
        "listen",
        parents=[common],
        help="a local receiver that verifies signed deliveries and prints the events",
    )
    listen.add_argument("--port", type=int, default=8000, help="default: %(default)s")
    listen.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    listen.add_argument("--path", default="/webhooks", help="default: %(default)s")
    secret = listen.add_mutually_exclusive_group()
    secret.add_argument(
        "--secret-file",
        metavar="PATH",
        help=f"a file holding the endpoint's whsec_... secret (default: ${ENV_WEBHOOK_SECRET})",
    )
    secret.add_argument(
        "--secret", help="the secret itself (visible to other users in the process list)"
    )

    # The emulator's own options are parsed by ``_emulator`` so that nothing else (and
    # not ``--help``) pays for importing it.
    commands.add_parser("emulator", help="run the local Aurous API emulator until interrupted")
    return parser


def _emulator(argv: Sequence[str]) -> int:
    from ..testing._standalone import add_arguments, run_forever, settings_from

    parser = argparse.ArgumentParser(
        prog="aurous emulator", description="Run the local Aurous API emulator until interrupted."
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        run(run_forever(settings_from(args)))
    return EXIT_OK


def _command(args: argparse.Namespace) -> Command:
    from . import _commands as c
    from ._listen import cmd_webhooks_listen

    table: dict[str, Command] = {
        "batch": c.cmd_batch,
        "generate": c.cmd_generate,
        "estimate": c.cmd_estimate,
        "wait": c.cmd_wait,
        "get": c.cmd_get,
        "cancel": c.cmd_cancel,
        "loras": c.cmd_loras,
        "balance": c.cmd_balance,
        "usage": c.cmd_usage,
        "webhooks": cmd_webhooks_listen,
    }
    return table[args.command]


def first_cause(exc: BaseException) -> BaseException:
    """The error a task group's ``ExceptionGroup`` wraps (an interrupt wins, then the
    first error raised), so that it maps to its own exit code and message."""
    leaves: list[BaseException] = []
    pending = [exc]
    while pending:
        current = pending.pop(0)
        # Read by shape: on 3.10 the group is the ``exceptiongroup`` backport's class.
        inner = getattr(current, "exceptions", None)
        if isinstance(inner, tuple) and inner:
            pending[:0] = [e for e in inner if isinstance(e, BaseException)]
        else:
            leaves.append(current)
    for leaf in leaves:
        if isinstance(leaf, KeyboardInterrupt):
            return leaf
    return leaves[0] if leaves else exc


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aurous`` console script; returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["emulator"]:
        return _emulator(arguments[1:])
    args = build_parser().parse_args(arguments)
    out = Output(json_mode=args.json)
    try:
        return run(_command(args)(args, out))
    except BaseException as raised:
        exc = first_cause(raised)
        if not isinstance(exc, (Exception, KeyboardInterrupt)):
            raise
        return _exit_code(exc, args, out)


def _exit_code(exc: BaseException, args: argparse.Namespace, out: Output) -> int:
    if isinstance(exc, KeyboardInterrupt):
        if args.command == "webhooks":
            return EXIT_OK  # Ctrl-C is how a listener ends
        out.error("interrupted; re-run the same command to resume")
        return EXIT_INTERRUPTED
    if isinstance(exc, CommandError):
        out.error(exc.message)
        return exc.exit_code
    if isinstance(exc, InvalidParameterError):
        out.error(error_text(exc))
        return EXIT_USAGE
    if isinstance(exc, AurousError):
        out.error(error_text(exc))
        return EXIT_API
    if isinstance(exc, OSError):
        out.error(f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}")
        return EXIT_USAGE
    if os.environ.get("AUROUS_DEBUG"):
        traceback.print_exception(exc)
    out.error(f"internal error: {error_text(exc)} (set AUROUS_DEBUG=1 for the traceback)")
    return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
