"""The ``aurous`` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence

from ._version import __version__


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aurous", description="The Aurous Labs API from a shell.")
    parser.add_argument("--version", action="version", version=f"aurous_async {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    emulator = commands.add_parser(
        "emulator", help="run the local Aurous API emulator until interrupted"
    )
    from .testing._standalone import add_arguments

    add_arguments(emulator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aurous`` console script."""
    args = _build_parser().parse_args(argv)
    if args.command == "emulator":
        from .testing._standalone import run_forever, settings_from

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_forever(settings_from(args)))
        return 0
    return 2  # pragma: no cover - argparse rejects unknown commands first


if __name__ == "__main__":
    sys.exit(main())
