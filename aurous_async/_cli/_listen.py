"""``aurous webhooks listen``: a local receiver that verifies deliveries and prints events.

The secret comes from ``--secret-file`` or ``AUROUS_WEBHOOK_SECRET`` (``--secret`` still
works, but a command line is readable by every user of the machine). Every delivery the
listener turns away is one line on stderr with its reason; nothing anyone sends prints a
traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from . import ENV_WEBHOOK_SECRET
from ._output import EXIT_OK, CommandError, Output

if TYPE_CHECKING:
    from aiohttp import web

    from ..webhooks import Event

__all__ = ["cmd_webhooks_listen", "webhook_secret"]

#: Loggers whose records (aiohttp's tracebacks, the receiver's rejections and their
#: reasons) would otherwise reach the root logger's last-resort handler, or nothing.
_QUIET_LOGGERS = ("aiohttp", "aurous_async.webhooks")


def webhook_secret(args: argparse.Namespace) -> str:
    """The endpoint secret: ``--secret-file``, then ``--secret``, then the environment."""
    if args.secret_file is not None:
        try:
            secret = Path(args.secret_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise CommandError(f"--secret-file {args.secret_file}: {reason}") from None
        if not secret:
            raise CommandError(f"--secret-file {args.secret_file}: the file is empty")
        return secret
    secret = args.secret or os.environ.get(ENV_WEBHOOK_SECRET, "").strip()
    if not secret:
        raise CommandError(
            f"the endpoint's whsec_... secret is needed: set {ENV_WEBHOOK_SECRET} "
            "or pass --secret-file PATH"
        )
    return str(secret)


class _OneLine(logging.Handler):
    """Any log record as one line on stderr: the exception's type and text, no traceback."""

    def __init__(self, out: Output) -> None:
        super().__init__(logging.WARNING)
        self._out = out

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text += f": {type(exc).__name__}: {exc}"
        self._out.error(f"webhooks: {text}")


@contextlib.contextmanager
def _one_line_logs(out: Output) -> Iterator[None]:
    handler = _OneLine(out)
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    saved = [logger.propagate for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
    try:
        yield
    finally:
        for logger, propagate in zip(loggers, saved, strict=True):
            logger.removeHandler(handler)
            logger.propagate = propagate


async def cmd_webhooks_listen(args: argparse.Namespace, out: Output) -> int:
    """Receive deliveries until interrupted; print each verified event on stdout."""
    from aiohttp import web

    from ..webhooks import WebhookReceiver

    receiver = WebhookReceiver(webhook_secret(args))

    def show(event: Event) -> None:
        if out.json_mode:
            out.result({"id": event.id, "type": str(event.type), "data": dict(event.data)})
        else:
            ident = event.data.get("id", "")
            status = event.data.get("status", "")
            out.line(f"{event.created_at.isoformat()}  {event.type}  {event.id}  {ident} {status}")

    async def deliver(request: web.Request) -> web.StreamResponse:
        peer = request.remote or "unknown"
        try:
            body = await request.read()
        except web.HTTPException as exc:  # over the body size limit
            out.error(
                f"webhooks: rejected a webhook delivery from {peer}: {exc.status} {exc.reason}"
            )
            raise
        except Exception as exc:  # the sender went away mid-body
            out.error(f"webhooks: aborted webhook delivery from {peer}: {type(exc).__name__}")
            return web.Response(status=400)
        # A rejection is logged by the receiver, with its reason: one line, see below.
        answer = await receiver.handle(body, request.headers)
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)

    receiver.add_listener(show)
    app = web.Application()
    app.router.add_post(args.path, deliver)
    with _one_line_logs(out):
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, args.host, args.port)
        await site.start()
        out.notice(
            f"listening on http://{args.host}:{args.port}{args.path}; verifying signatures; "
            "Ctrl-C to stop"
        )
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await runner.cleanup()
    return EXIT_OK  # pragma: no cover - only an interrupt ends the loop
