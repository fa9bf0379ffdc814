"""Fan-out: submit many generations concurrently, yielding each as it is accepted."""

from __future__ import annotations

import asyncio
import builtins
import functools
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from . import _validation as check
from ._errors import CostLimitExceededError, InvalidParameterError, OutcomeUnknownError
from ._price_shape import price_shape
from ._requester import Call, Requester, new_idempotency_key
from ._resources._base import Resource, path_id
from .models import Estimate, Generation

if TYPE_CHECKING:
    from ._waits import Waits

__all__ = [
    "CreateMany",
    "GenerationResource",
    "UnreportedCreate",
    "cancel_call",
    "fan_out",
    "fetch_call",
]

logger = logging.getLogger("aurous_async")

Request = Mapping[str, Any]


@attrs.frozen
class UnreportedCreate:
    """A create of a ``create_many`` batch that was in flight when the batch was closed.

    Attributes:
        index: the request's position in the batch.
        request: the request as it was sent, with its ``idempotency_key``.
        idempotency_key: the create's key. ``create(**request)`` with it returns the
            generation if the server accepted the first one, and creates it otherwise.
        generation: the accepted generation when the answer arrived while the batch was
            closing; ``None`` when the outcome is unknown.
    """

    index: int
    request: Mapping[str, Any] = attrs.field(repr=False)
    idempotency_key: str
    generation: Generation | None = None


class CreateMany(AsyncIterator[Generation]):
    """What ``create_many`` returns: the accepted generations, in acceptance order.

    Closing it early (``break`` inside ``async with``, ``aclose()``, or cancelling the
    consuming task) cancels the creates still in flight. A cancelled create may already
    have reached the server, so none is forgotten: each is listed in ``unreported`` with
    its idempotency key, and a warning is logged.

    Attributes:
        unreported: creates in flight when the batch was closed (filled as it closes).
        estimated_cost: the batch's estimated total in credits, set before the first
            create when ``max_cost`` was given (``None`` otherwise).
        actual_cost: the credits the API reported (``Generation.cost``) for the
            generations it accepted: those yielded so far, and any accepted while the
            batch was closing (see ``unreported``). Held while they run, charged as
            they succeed.
        accepted: how many generations have been yielded so far.
    """

    def __init__(self, run: Callable[[CreateMany], AsyncGenerator[Generation, None]]):
        self.unreported: list[UnreportedCreate] = []
        self.estimated_cost: float | None = None
        self.actual_cost = 0.0
        self.accepted = 0
        self._generator = run(self)

    def __aiter__(self) -> CreateMany:
        return self

    def __anext__(self) -> Awaitable[Generation]:
        return self._generator.__anext__()

    async def aclose(self) -> None:
        """Stop: cancel the creates in flight and list them in ``unreported``."""
        await self._generator.aclose()

    async def __aenter__(self) -> CreateMany:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (
            f"<CreateMany accepted={self.accepted} unreported={len(self.unreported)} "
            f"estimated_cost={self.estimated_cost} actual_cost={self.actual_cost:g}>"
        )


async def fan_out(
    requests: Iterable[Request],
    report: CreateMany,
    *,
    validate: Callable[[Request], dict[str, object]],
    create: Callable[[Request], Awaitable[Generation]],
    estimate: Callable[[Request], Awaitable[Estimate]],
    max_cost: float | None,
    max_concurrency: int,
) -> AsyncGenerator[Generation, None]:
    """Validate every request, optionally price them, then create them concurrently.

    Nothing is submitted unless every request is valid and, with ``max_cost``, the
    estimated total fits. Requests of one price shape (``price_shape``) are priced
    once. Creates run at most ``max_concurrency`` at a time (the client's governor
    paces them further); each generation is yielded as soon as the API accepts it.
    After a failed create no new one starts; those in flight finish and are yielded,
    then the first error is raised.
    Every create gets its idempotency key here, so one cancelled by an early close is
    reported in ``unreported`` with the key that resolves it. ``report`` receives the
    estimated and actual cost and the creates left unreported.
    """
    if max_concurrency < 1:
        raise InvalidParameterError("max_concurrency must be at least 1", param="max_concurrency")
    if max_cost is not None and not max_cost >= 0:
        raise InvalidParameterError("max_cost must be a non-negative number", param="max_cost")
    batch = builtins.list(requests)
    bodies = [validate(request) for request in batch]
    if max_cost is not None:
        report.estimated_cost = await _check_cost(batch, bodies, estimate, max_cost)
    pending: dict[asyncio.Task[Generation], UnreportedCreate] = {}
    loop = asyncio.get_running_loop()
    queue = enumerate(batch)
    failure: BaseException | None = None
    try:
        while True:
            while failure is None and len(pending) < max_concurrency:
                item = next(queue, None)
                if item is None:
                    break
                index, request = item
                if request.get("idempotency_key") is None:
                    request = {**request, "idempotency_key": new_idempotency_key()}
                task = loop.create_task(_call(create, request))
                pending[task] = UnreportedCreate(index, request, request["idempotency_key"])
            if not pending:
                break
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                del pending[task]
                error = task.exception()
                if error is not None:
                    failure = failure or error
                else:
                    generation = task.result()
                    report.accepted += 1
                    if generation.cost is not None:
                        report.actual_cost += generation.cost.amount
                    yield generation
        if failure is not None:
            raise failure
    finally:
        if pending:
            await _close_in_flight(pending, report.unreported)
            for late in report.unreported:
                if late.generation is not None and late.generation.cost is not None:
                    report.actual_cost += late.generation.cost.amount
        logger.info(
            "create_many: %d of %d request(s) accepted; estimated cost %s, actual %g credits",
            report.accepted,
            len(batch),
            "not asked" if report.estimated_cost is None else f"{report.estimated_cost:g}",
            report.actual_cost,
        )


async def _close_in_flight(
    pending: dict[asyncio.Task[Generation], UnreportedCreate],
    unreported: list[UnreportedCreate],
) -> None:
    """Cancel the creates in flight and list each that may have been accepted."""
    for task in pending:
        task.cancel()
    # Shielded: a consumer closing us from a cancelled anyio scope would otherwise
    # interrupt this wait, and leave the creates running and unlisted.
    with anyio.CancelScope(shield=True):
        await asyncio.wait(pending)
    for task, create in pending.items():
        if task.cancelled():
            unreported.append(create)
        elif task.exception() is None:
            unreported.append(attrs.evolve(create, generation=task.result()))
        elif isinstance(task.exception(), OutcomeUnknownError):
            unreported.append(create)
    if unreported:
        logger.warning(
            "create_many was closed with %d create(s) in flight (%d accepted, the others "
            "of unknown outcome); see .unreported. Idempotency keys: %s",
            len(unreported),
            sum(1 for u in unreported if u.generation is not None),
            ", ".join(u.idempotency_key for u in unreported),
        )


async def _call(create: Callable[[Request], Awaitable[Generation]], request: Request) -> Generation:
    return await create(request)


async def _check_cost(
    batch: builtins.list[Request],
    bodies: builtins.list[dict[str, object]],
    estimate: Callable[[Request], Awaitable[Estimate]],
    max_cost: float,
) -> float:
    """The batch's estimated total: one estimate per price shape, times its requests.

    Raises:
        CostLimitExceededError: the total exceeds ``max_cost``.
    """
    counts: dict[str, int] = {}
    first: dict[str, Request] = {}
    for index, (request, body) in enumerate(zip(batch, bodies, strict=True)):
        shape = price_shape(body)
        # A shape that cannot be decided is priced on its own ("#" starts no JSON object).
        key = f"#{index}" if shape is None else shape
        counts[key] = counts.get(key, 0) + 1
        first.setdefault(key, request)
    prices = await asyncio.gather(*(estimate(first[key]) for key in counts))
    total = sum(price.amount * counts[key] for key, price in zip(counts, prices, strict=True))
    if total > max_cost:
        raise CostLimitExceededError(
            f"the {len(batch)} generation(s) are estimated at {total:g} credits, more than "
            f"max_cost={max_cost:g}; nothing was submitted",
            estimated=total,
            max_cost=max_cost,
        )
    return total


class GenerationResource(Resource):
    """Base of ``client.images`` and ``client.videos``: creates plus the client's waits."""

    #: The keyword arguments of ``create`` a fan-out request may carry.
    _request_fields: frozenset[str] = frozenset()

    def __init__(self, requester: Requester, waits: Waits | None = None) -> None:
        super().__init__(requester)
        self._waits = waits

    async def _submit(
        self,
        path: str,
        payload: dict[str, object],
        *,
        idempotency_key: str | None,
        timeout: float | None,
        api_version: str | None,
    ) -> Generation:
        """POST a create under one Idempotency-Key, minted here before any attempt."""
        key = check.idempotency_key(idempotency_key) or new_idempotency_key()
        call = Call(
            method="POST",
            path=path,
            route=path,
            json=payload,
            idempotency_key=key,
            creates=True,
            timeout=timeout,
            api_version=api_version,
        )
        return await self._get_model(call, Generation)

    async def _price(
        self,
        path: str,
        payload: dict[str, object],
        *,
        timeout: float | None,
        api_version: str | None,
    ) -> Estimate:
        """POST an estimate: nothing is created, so it is retried like a read."""
        call = Call(
            method="POST",
            path=path,
            route=path,
            json=payload,
            idempotent=True,
            timeout=timeout,
            api_version=api_version,
        )
        return await self._get_model(call, Estimate)

    def _fetch(
        self, id: str, *, timeout: float | None, api_version: str | None
    ) -> Awaitable[Generation]:
        return self._get_model(fetch_call(id, timeout, api_version), Generation)

    def _cancel(
        self, id: str, *, timeout: float | None, api_version: str | None
    ) -> Awaitable[Generation]:
        return self._get_model(cancel_call(id, timeout, api_version), Generation)

    def _waiter(self) -> Waits:
        if self._waits is None:
            raise RuntimeError("this resource is not attached to a client's poller")
        return self._waits

    def _check_request(self, request: Request) -> dict[str, object]:
        if not isinstance(request, Mapping):
            raise InvalidParameterError(
                f"each request must be a mapping of create() arguments, got {request!r}",
                param="requests",
            )
        unknown = sorted(set(request) - self._request_fields)
        if unknown:
            raise InvalidParameterError(
                f"unknown create() argument(s) in a request: {', '.join(unknown)}",
                param=unknown[0],
            )
        return self._body(request)

    def _body(self, request: Request) -> dict[str, object]:
        raise NotImplementedError

    async def _create_from(self, request: Request) -> Generation:
        raise NotImplementedError

    async def _estimate_from(self, request: Request) -> Estimate:
        raise NotImplementedError

    def create_many(
        self,
        requests: Iterable[Request],
        *,
        max_cost: float | None = None,
        max_concurrency: int = 32,
    ) -> CreateMany:
        """Create many generations concurrently; yield each as the API accepts it.

        Each request is a mapping of ``create()`` keyword arguments. Every request is
        validated before anything is sent. With ``max_cost``, the batch is priced first,
        one estimate per price shape (requests that differ only in parameters that never
        change the price -- prompt, negative prompt, seed, callback URL, reference
        images, character -- share one), and refused with ``CostLimitExceededError``,
        nothing submitted, if the total exceeds it. The returned batch reports its
        ``estimated_cost`` and, as generations are accepted, their ``actual_cost``.
        Creates share the client's governor, so a large batch is paced, not refused.

        To stop early, iterate inside ``async with`` (or call ``aclose()``): the creates
        still in flight are cancelled and listed in ``.unreported`` with their
        idempotency keys, since the server may have accepted them.

        Raises:
            InvalidParameterError: a request is invalid (nothing was submitted).
            CostLimitExceededError: the estimate exceeds ``max_cost`` (nothing submitted).
        """
        return CreateMany(
            functools.partial(
                fan_out,
                requests,
                validate=self._check_request,
                create=self._create_from,
                estimate=self._estimate_from,
                max_cost=max_cost,
                max_concurrency=max_concurrency,
            )
        )

    async def _finish(
        self, generation: Generation, wait_timeout: float | None, raise_on_failure: bool
    ) -> Generation:
        return await self._waiter().wait(
            generation, timeout=wait_timeout, raise_on_failure=raise_on_failure
        )


def fetch_call(id: str, timeout: float | None, api_version: str | None = None) -> Call:
    """``GET /v1/images/{id}``: images and videos alike are fetched there (A3)."""
    return _generation_call(
        "GET", f"/v1/images/{path_id(id)}", "/v1/images/{id}", timeout, api_version
    )


def cancel_call(id: str, timeout: float | None, api_version: str | None = None) -> Call:
    """``POST /v1/images/{id}/cancel``: videos too, in the ``images_post`` bucket."""
    return _generation_call(
        "POST", f"/v1/images/{path_id(id)}/cancel", "/v1/images/{id}/cancel", timeout, api_version
    )


def _generation_call(
    method: str, path: str, route: str, timeout: float | None, api_version: str | None
) -> Call:
    """``Call(method=..., path=..., route=..., idempotent=True, timeout=...,
    api_version=...)``, built from a tuple: binding the keywords of a 16-field tuple
    costs about 1 us, on every ``get`` and every poll."""
    return Call._make((method, path, route, *_IDEMPOTENT_MIDDLE, timeout, api_version))


#: The fields of an idempotent call between ``route`` and ``timeout``, as keywords leave them.
_IDEMPOTENT_MIDDLE = Call(method="", path="", route="", idempotent=True)[3:-2]
