"""The subcommands. Each ``async def cmd_*(args, out) -> int`` returns the exit code."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import anyio
import attrs

from .._errors import AurousError, InvalidParameterError, WaitTimeoutError
from ..models import Generation
from ._batch import Batch, estimate_requests, is_done, write_manifest
from ._directory import lock_directory, prepare_journal
from ._files import file_id, save_outputs
from ._inputs import InputError, InputFileError, Request, build_request, coerce_text, read_requests
from ._journal import AsyncJournal, Line
from ._output import EXIT_COST, EXIT_FAILED, EXIT_OK, EXIT_USAGE, Output, error_text, money
from ._progress import BatchProgress
from ._reporting import approve_cost, report_input_errors, summarize
from ._target import EMBEDDED, Target, TargetOptions, open_target
from ._waiting import wait_until_done

__all__ = [
    "cmd_balance",
    "cmd_batch",
    "cmd_cancel",
    "cmd_estimate",
    "cmd_generate",
    "cmd_get",
    "cmd_loras",
    "cmd_usage",
    "cmd_wait",
    "request_from_options",
    "target_options",
]


def target_options(args: argparse.Namespace) -> TargetOptions:
    return TargetOptions(
        api_key=args.api_key,
        base_url=args.base_url,
        emulator=args.emulator,
        time_scale=args.time_scale,
        timeout=args.timeout,
    )


# -- request options (generate, estimate) -------------------------------------------------

#: ``--flag`` -> request parameter, for the options that take a value.
REQUEST_OPTIONS: Mapping[str, str] = {
    "negative_prompt": "negative_prompt",
    "lora": "lora_id",
    "size": "size",
    "width": "width",
    "height": "height",
    "steps": "steps",
    "guidance_scale": "guidance_scale",
    "seed": "seed",
    "count": "count",
    "character": "character_id",
    "video_lora": "video_lora_id",
    "resolution": "resolution",
    "ratio": "ratio",
    "duration": "duration",
    "first_frame": "first_frame_url",
    "last_frame": "last_frame_url",
    "webhook_url": "webhook_url",
}


def request_from_options(args: argparse.Namespace, line: int = 1) -> Request:
    """The request described by ``generate``/``estimate`` options (validated)."""
    raw: dict[str, object] = {"kind": "video" if args.video else "image"}
    if args.prompt is not None:
        raw["prompt"] = args.prompt
    for option, param in REQUEST_OPTIONS.items():
        value = getattr(args, option)
        if value is not None:
            raw[param] = value
    if args.reference:
        raw["reference_image_urls"] = list(args.reference)
    for flag in ("enhance_prompt", "camera_fixed", "watermark"):
        if getattr(args, flag):
            raw[flag] = True
    for item in args.param or ():
        name, sep, text = item.partition("=")
        if not sep:
            raise InvalidParameterError(f"--param {item!r}: expected NAME=VALUE")
        raw[name.strip()] = coerce_text(name.strip(), text)
    return build_request(line, raw)


# -- batch and generate -------------------------------------------------------------------

#: ``generate`` creates without asking when its estimate is at most this many credits.
GENERATE_ASKS_ABOVE = 10.0


async def _check_directory(journal: AsyncJournal, target: Target, mode: str, out: Output) -> bool:
    previous = await journal.meta("target")
    if previous is not None and previous != target.name:
        out.error(
            f"this directory holds a batch run against {previous}, not {target.name}; "
            "use another --out"
        )
        return False
    previous_mode = await journal.meta("mode")
    if previous_mode is not None and previous_mode != mode:
        out.error(f"this directory holds the output of `aurous {previous_mode}`; use another --out")
        return False
    await journal.set_meta("target", target.name)
    await journal.set_meta("mode", mode)
    return True


def _number_generate_request(request: Request, existing: Sequence[Line]) -> Request:
    """``generate`` appends to its directory; the same request resumes its own line."""
    for line in existing:
        if line.is_for(request):
            return attrs.evolve(request, line=line.line)
    return attrs.evolve(request, line=max((line.line for line in existing), default=0) + 1)


async def _run_lines(
    args: argparse.Namespace,
    out: Output,
    requests: list[Request],
    *,
    mode: str,
    source: str,
) -> int:
    directory = Path(args.out)
    with lock_directory(directory):
        return await _run_locked(args, out, requests, directory, mode=mode, source=source)


async def _run_locked(
    args: argparse.Namespace,
    out: Output,
    requests: list[Request],
    directory: Path,
    *,
    mode: str,
    source: str,
) -> int:
    async with open_target(target_options(args), notice=out.notice) as target:
        journal = await AsyncJournal.open(directory)
        shown: list[int] | None = []
        try:
            if not await _check_directory(journal, target, mode, out):
                return EXIT_USAGE
            notice = await journal.call(
                functools.partial(prepare_journal, force_new=args.force_new)
            )
            if notice is not None:
                out.notice(notice)
            if mode == "generate":
                requests = [_number_generate_request(requests[0], await journal.lines())]
            by_line = {request.line: request for request in requests}
            lines = await journal.sync(
                requests,
                retry_failed=args.retry_failed,
                forget_ids=target.name == EMBEDDED,
            )
            unpriced = [by_line[line.line] for line in lines if line.estimate is None]
            if unpriced:
                amounts, refused = await estimate_requests(target, unpriced)
                if refused:
                    return report_input_errors(out, InputFileError(source, refused))
                await journal.set_estimates(amounts)
                lines = await journal.lines(by_line)
            # From here on the manifest is written, however the run ends.
            shown = None if mode == "generate" else list(by_line)
            code = await _plan_and_run(
                args, out, target, journal, directory, by_line, lines, mode=mode
            )
            if code is not None:
                return code
        finally:
            with anyio.CancelScope(shield=True):
                if shown != []:
                    final = await journal.lines(shown)
                    manifest = await anyio.to_thread.run_sync(write_manifest, directory, final)
                await journal.close()
    return summarize(out, directory, manifest, final, mode=mode)


async def _plan_and_run(
    args: argparse.Namespace,
    out: Output,
    target: Target,
    journal: AsyncJournal,
    directory: Path,
    by_line: Mapping[int, Request],
    lines: list[Line],
    *,
    mode: str,
) -> int | None:
    done = await anyio.to_thread.run_sync(lambda: [is_done(directory, line) for line in lines])
    todo = [line for line, finished in zip(lines, done, strict=True) if not finished]
    to_create = [line for line in todo if line.generation_id is None]
    total = sum(line.estimate or 0.0 for line in lines)
    new_cost = sum(line.estimate or 0.0 for line in to_create)
    out.notice(
        f"{len(lines)} line(s): {len(lines) - len(todo)} done, {len(todo) - len(to_create)} "
        f"in flight, {len(to_create)} to create; estimated {money(total)} credits in all, "
        f"{money(new_cost)} for the new creates"
    )
    small = mode == "generate" and new_cost <= GENERATE_ASKS_ABOVE
    if not approve_cost(
        out,
        total=total,
        max_cost=args.max_cost,
        question=f"Create {len(to_create)} generation(s) for about {money(new_cost)} credits?",
        ask=bool(to_create) and not args.yes and not small,
    ):
        return EXIT_COST
    progress = BatchProgress(
        lines,
        out.progress_console,
        rate_wait=lambda: target.meter.waited,
        quiet=out.json_mode,
    )
    batch = Batch(
        target,
        journal,
        directory,
        by_line,
        progress,
        concurrency=args.concurrency,
        wait_timeout=args.wait_timeout,
    )
    with progress:
        await batch.run(todo)
    return None


async def cmd_batch(args: argparse.Namespace, out: Output) -> int:
    try:
        requests = await anyio.to_thread.run_sync(read_requests, args.prompts)
    except InputFileError as exc:
        return report_input_errors(out, exc)
    if args.redis is not None:
        from ._fleet_batch import run_fleet_batch

        return await run_fleet_batch(args, out, requests)
    return await _run_lines(args, out, requests, mode="batch", source=args.prompts)


async def cmd_generate(args: argparse.Namespace, out: Output) -> int:
    try:
        request = request_from_options(args)
    except InvalidParameterError as exc:
        return report_input_errors(out, InputFileError("generate", [InputError(0, exc.message)]))
    return await _run_lines(args, out, [request], mode="generate", source="generate")


# -- single-shot commands -----------------------------------------------------------------


async def cmd_estimate(args: argparse.Namespace, out: Output) -> int:
    try:
        if args.file is not None:
            requests = await anyio.to_thread.run_sync(read_requests, args.file)
        else:
            requests = [request_from_options(args)]
    except InputFileError as exc:
        return report_input_errors(out, exc)
    except InvalidParameterError as exc:
        return report_input_errors(out, InputFileError("estimate", [InputError(0, exc.message)]))
    async with open_target(target_options(args), notice=out.notice) as target:
        amounts, refused = await estimate_requests(target, requests)
    if refused:
        return report_input_errors(out, InputFileError(args.file or "estimate", refused))
    total = sum(amounts.values())
    rows = [{"line": r.line, "kind": r.kind, "credits": amounts[r.line]} for r in requests]

    def human() -> None:
        if args.file is not None and len(requests) <= 50:
            for r in requests:
                out.line(f"line {r.line:>5}  {r.kind:<5}  {money(amounts[r.line])}")
        out.line(f"{len(rows)} request(s): {money(total)} credits")

    out.result({"total": total, "currency": "credit", "lines": rows}, human)
    return EXIT_OK


def _generation_record(generation: Generation) -> dict[str, object]:
    return {
        "id": generation.id,
        "status": str(generation.status),
        "media_type": None if generation.media_type is None else str(generation.media_type),
        "prompt": generation.prompt,
        "cost": None if generation.cost is None else generation.cost.amount,
        "created_at": generation.created_at.isoformat(),
        "completed_at": None
        if generation.completed_at is None
        else generation.completed_at.isoformat(),
        "output_urls": list(generation.output_urls),
        "output_video_url": generation.output_video_url,
        "error_message": generation.error_message,
        "request_id": generation.request_id,
    }


def _generation_line(generation: Generation) -> str:
    cost = "-" if generation.cost is None else money(generation.cost.amount)
    prompt = (generation.prompt or "")[:60]
    error = f"  error: {generation.error_message}" if generation.error_message else ""
    return f"{generation.id}  {generation.status}  {cost} credits  {prompt}{error}"


async def cmd_get(args: argparse.Namespace, out: Output) -> int:
    async with open_target(target_options(args), notice=out.notice) as target:
        generation = await target.client.images.get(args.id)
    record = _generation_record(generation)

    def human() -> None:
        for key, value in record.items():
            if value not in (None, []):
                out.line(f"{key:>16}: {value}")

    out.result(record, human)
    return EXIT_OK


async def cmd_cancel(args: argparse.Namespace, out: Output) -> int:
    async with open_target(target_options(args), notice=out.notice) as target:
        generation = await target.client.images.cancel(args.id)
    out.result(_generation_record(generation), _generation_line(generation))
    return EXIT_OK


async def cmd_wait(args: argparse.Namespace, out: Output) -> int:
    results: dict[str, Generation] = {}
    timed_out: list[str] = []
    saved: dict[str, list[str]] = {}
    unsaved: dict[str, str] = {}
    directory: Path | None = None
    if args.out is not None:
        directory = Path(args.out)
        directory.mkdir(parents=True, exist_ok=True)
    async with open_target(target_options(args), notice=out.notice) as target:

        async def one(job_id: str) -> None:
            try:
                generation = await wait_until_done(target.client, job_id, within=args.wait_timeout)
            except WaitTimeoutError:
                timed_out.append(job_id)
                if not out.json_mode:
                    out.line(f"{job_id}  timed out after {args.wait_timeout:g}s")
                return
            results[job_id] = generation
            line = _generation_line(generation)
            if directory is not None and generation.status == "succeeded":
                try:
                    names = await save_outputs(
                        target.client, generation, directory, file_id(generation.id), video=False
                    )
                except AurousError as exc:
                    unsaved[job_id] = error_text(exc)
                    line += f"  not saved: {unsaved[job_id]}"
                else:
                    saved[job_id] = names
                    line += f"  -> {', '.join(names)}"
            if not out.json_mode:
                out.line(line)

        async with anyio.create_task_group() as tg:
            for job_id in args.ids:
                tg.start_soon(one, job_id)
    ok = not timed_out and not unsaved and all(g.status == "succeeded" for g in results.values())
    if out.json_mode:
        records = []
        for generation in results.values():
            record = _generation_record(generation)
            if directory is not None:
                record["files"] = saved.get(generation.id, [])
                record["save_error"] = unsaved.get(generation.id)
            records.append(record)
        out.result({"ok": ok, "generations": records, "timed_out": sorted(timed_out)})
    return EXIT_OK if ok else EXIT_FAILED


async def cmd_loras(args: argparse.Namespace, out: Output) -> int:
    async with open_target(target_options(args), notice=out.notice) as target:
        loras = [lora async for lora in target.client.loras.list()]
    records = [
        {
            "id": lora.id,
            "slug": lora.slug,
            "name": lora.name,
            "public": lora.is_public,
            "description": lora.description,
        }
        for lora in loras
    ]

    def human() -> None:
        width = max((len(lora.slug or "") for lora in loras), default=4)
        for lora in loras:
            out.line(f"{lora.slug or '-':<{width}}  {lora.id}  {lora.name}")

    out.result(records, human)
    return EXIT_OK


async def cmd_balance(args: argparse.Namespace, out: Output) -> int:
    async with open_target(target_options(args), notice=out.notice) as target:
        balance = await target.client.balance.get()
    record = {
        "credits": balance.credits,
        "held_credits": balance.held_credits,
        "available_credits": balance.available_credits,
        "currency": balance.currency,
        "billing_mode": None if balance.billing_mode is None else str(balance.billing_mode),
    }
    out.result(
        record,
        f"{money(balance.available_credits)} credits available "
        f"({money(balance.credits)} total, {money(balance.held_credits)} held)",
    )
    return EXIT_OK


async def cmd_usage(args: argparse.Namespace, out: Output) -> int:
    async with open_target(target_options(args), notice=out.notice) as target:
        client = target.client
        if args.events:
            events = []
            async for event in client.usage.events.list(limit=min(args.limit, 100)):
                events.append(event)
                if len(events) >= args.limit:
                    break
            records = [
                {
                    "id": e.id,
                    "type": str(e.type),
                    "amount": e.amount,
                    "generation_id": e.generation_id,
                    "created_at": e.created_at.isoformat(),
                    "description": e.description,
                }
                for e in events
            ]

            def human_events() -> None:
                for r in records:
                    out.line(
                        f"{r['created_at']}  {r['type']:<10} {money(float(r['amount']))}"  # type: ignore[arg-type]
                        f"  {r['generation_id'] or ''}  {r['description'] or ''}"
                    )

            out.result(records, human_events)
            return EXIT_OK
        start = datetime.now(timezone.utc) - timedelta(days=args.days)
        buckets = [b async for b in client.usage.list(start_time=start, bucket_width="1d")]
    rows = []
    for bucket in buckets:
        for group in bucket.groups or ():
            m = group.metrics
            rows.append(
                {
                    "bucket_start": bucket.bucket_start.isoformat(),
                    "requests": m.request_count,
                    "succeeded": m.successful_count,
                    "failed": m.failed_count,
                    "cancelled": m.cancelled_count,
                    "credits": m.credits_used,
                }
            )

    def human() -> None:
        out.line("day         requests  succeeded  failed  cancelled  credits")
        for r in rows:
            cells = [
                "-" if r[k] is None else str(r[k])
                for k in ("requests", "succeeded", "failed", "cancelled", "credits")
            ]
            widths = (8, 9, 6, 9, 7)
            out.line(
                f"{str(r['bucket_start'])[:10]}  "
                + "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))
            )

    out.result(rows, human)
    return EXIT_OK
