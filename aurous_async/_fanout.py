"""Fan-out: submit many generations concurrently, yielding each as it is accepted."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from . import _validation as check
from ._errors import CostLimitExceededError, InvalidParameterError
from ._requester import Call, Requester, new_idempotency_key
from ._resources._base import Resource, path_id
from .models import Estimate, Generation

if TYPE_CHECKING:
    from ._waits import Waits

__all__ = ["GenerationResource", "fan_out"]

Request = Mapping[str, Any]


async def fan_out(
    requests: Iterable[Request],
    *,
    validate: Callable[[Request], dict[str, object]],
    create: Callable[[Request], Awaitable[Generation]],
    estimate: Callable[[Request], Awaitable[Estimate]],
    max_cost: float | None,
    max_concurrency: int,
) -> AsyncGenerator[Generation, None]:
    """Validate every request, optionally price them, then create them concurrently.

    Nothing is submitted unless every request is valid and, with ``max_cost``, the
    estimated total fits. Identical requests are priced once. Creates run at most
    ``max_concurrency`` at a time (the client's governor paces them further); each
    generation is yielded as soon as the API accepts it. After a failed create no new
    one starts; those in flight finish and are yielded, then the first error is raised.
    """
    if max_concurrency < 1:
        raise InvalidParameterError("max_concurrency must be at least 1", param="max_concurrency")
    if max_cost is not None and not max_cost >= 0:
        raise InvalidParameterError("max_cost must be a non-negative number", param="max_cost")
    batch = builtins.list(requests)
    bodies = [validate(request) for request in batch]
    if max_cost is not None:
        await _check_cost(batch, bodies, estimate, max_cost)
    pending: set[asyncio.Task[Generation]] = set()
    loop = asyncio.get_running_loop()
    queue = iter(batch)
    failure: BaseException | None = None
    try:
        while True:
            while failure is None and len(pending) < max_concurrency:
                request = next(queue, None)
                if request is None:
                    break
                pending.add(loop.create_task(_call(create, request)))
            if not pending:
                break
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                error = task.exception()
                if error is not None:
                    failure = failure or error
                else:
                    yield task.result()
        if failure is not None:
            raise failure
    finally:
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _call(create: Callable[[Request], Awaitable[Generation]], request: Request) -> Generation:
    return await create(request)


async def _check_cost(
    batch: builtins.list[Request],
    bodies: builtins.list[dict[str, object]],
    estimate: Callable[[Request], Awaitable[Estimate]],
    max_cost: float,
) -> None:
    counts: dict[str, int] = {}
    first: dict[str, Request] = {}
    for request, body in zip(batch, bodies, strict=True):
        key = json.dumps(body, sort_keys=True, default=str)
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
        """``GET /v1/images/{id}``: images and videos alike are fetched there (A3)."""
        call = _generation_call(
            "GET", f"/v1/images/{path_id(id)}", "/v1/images/{id}", timeout, api_version
        )
        return self._get_model(call, Generation)

    def _cancel(
        self, id: str, *, timeout: float | None, api_version: str | None
    ) -> Awaitable[Generation]:
        """``POST /v1/images/{id}/cancel``: videos too, in the ``images_post`` bucket."""
        call = _generation_call(
            "POST",
            f"/v1/images/{path_id(id)}/cancel",
            "/v1/images/{id}/cancel",
            timeout,
            api_version,
        )
        return self._get_model(call, Generation)

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
    ) -> AsyncIterator[Generation]:
        """Create many generations concurrently; yield each as the API accepts it.

        Each request is a mapping of ``create()`` keyword arguments. Every request is
        validated before anything is sent. With ``max_cost``, the batch is priced first
        (identical requests once) and refused with ``CostLimitExceededError``, nothing
        submitted, if the estimate exceeds it. Creates share the client's governor, so a
        large batch is paced, not refused.

        Raises:
            InvalidParameterError: a request is invalid (nothing was submitted).
            CostLimitExceededError: the estimate exceeds ``max_cost`` (nothing submitted).
        """
        return fan_out(
            requests,
            validate=self._check_request,
            create=self._create_from,
            estimate=self._estimate_from,
            max_cost=max_cost,
            max_concurrency=max_concurrency,
        )

    async def _finish(
        self, generation: Generation, wait_timeout: float | None, raise_on_failure: bool
    ) -> Generation:
        return await self._waiter().wait(
            generation, timeout=wait_timeout, raise_on_failure=raise_on_failure
        )


def _generation_call(
    method: str, path: str, route: str, timeout: float | None, api_version: str | None
) -> Call:
    return Call(
        method=method,
        path=path,
        route=route,
        idempotent=True,
        timeout=timeout,
        api_version=api_version,
    )
