"""``client.images``: image generations (contract §8.2-§8.7)."""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from .. import _validation as check
from .._errors import InvalidParameterError
from .._fanout import GenerationResource
from .._requester import Call
from ..models import Estimate, Generation, LoraWeight, LoraWeightDict
from ._base import AsyncPager, Page, body, page_from, params, path_id
from ._output import OutputStream, fetch_output, output_call, save_output

__all__ = ["Images"]


def image_body(
    *,
    prompt: str,
    negative_prompt: str | None,
    lora_id: str | None,
    loras: Sequence[LoraWeight | LoraWeightDict] | None,
    character_id: str | None,
    size: str | None,
    width: int | None,
    height: int | None,
    steps: int | None,
    guidance_scale: float | None,
    cfg_rescale: float | None,
    denoise_strength: float | None,
    seed: int | None,
    count: int | None,
    enhance_prompt: bool | None,
    webhook_url: str | None,
    reference_image_urls: Sequence[str] | None,
) -> dict[str, object]:
    """Validate an image request (the create and estimate DTO) and build its JSON body."""
    check.image_request(
        prompt=prompt,
        negative_prompt=negative_prompt,
        lora_id=lora_id,
        loras=loras,
        character_id=character_id,
        size=size,
        width=width,
        height=height,
        steps=steps,
        guidance_scale=guidance_scale,
        cfg_rescale=cfg_rescale,
        denoise_strength=denoise_strength,
        seed=seed,
        count=count,
        webhook_url=webhook_url,
        reference_image_urls=reference_image_urls,
    )
    return body(
        prompt=prompt,
        negative_prompt=negative_prompt,
        lora_id=lora_id,
        loras=None if loras is None else check.lora_stack(loras),
        character_id=character_id,
        size=size,
        width=width,
        height=height,
        steps=steps,
        guidance_scale=guidance_scale,
        cfg_rescale=cfg_rescale,
        denoise_strength=denoise_strength,
        seed=seed,
        count=count,
        enhance_prompt=enhance_prompt,
        webhook_url=webhook_url,
        reference_image_urls=None if reference_image_urls is None else list(reference_image_urls),
    )


#: The ``create()`` arguments of the request DTO, in ``image_body`` order.
IMAGE_FIELDS = (
    "prompt",
    "negative_prompt",
    "lora_id",
    "loras",
    "character_id",
    "size",
    "width",
    "height",
    "steps",
    "guidance_scale",
    "cfg_rescale",
    "denoise_strength",
    "seed",
    "count",
    "enhance_prompt",
    "webhook_url",
    "reference_image_urls",
)


class Images(GenerationResource):
    """Create, price, fetch, list, cancel, wait for and download image generations."""

    _request_fields = frozenset({*IMAGE_FIELDS, "idempotency_key"})

    def _body(self, request: Mapping[str, Any]) -> dict[str, object]:
        if "prompt" not in request:
            raise InvalidParameterError("prompt is required", param="prompt")
        values: dict[str, Any] = {name: request.get(name) for name in IMAGE_FIELDS}
        return image_body(**values)

    async def _create_from(self, request: Mapping[str, Any]) -> Generation:
        return await self.create(**request)

    async def _estimate_from(self, request: Mapping[str, Any]) -> Estimate:
        fields = {k: v for k, v in request.items() if k != "idempotency_key"}
        return await self.estimate(**fields)

    async def generate(
        self,
        *,
        prompt: str,
        negative_prompt: str | None = None,
        lora_id: str | None = None,
        loras: Sequence[LoraWeight | LoraWeightDict] | None = None,
        character_id: str | None = None,
        size: str | None = None,
        width: int | None = None,
        height: int | None = None,
        steps: int | None = None,
        guidance_scale: float | None = None,
        cfg_rescale: float | None = None,
        denoise_strength: float | None = None,
        seed: int | None = None,
        count: int | None = None,
        enhance_prompt: bool | None = None,
        webhook_url: str | None = None,
        reference_image_urls: Sequence[str] | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        wait_timeout: float | None = None,
        raise_on_failure: bool = False,
    ) -> Generation:
        """Create an image generation and wait until it is terminal (``create`` + ``wait``).

        Takes ``create``'s arguments; ``timeout`` bounds the create call, ``wait_timeout``
        the wait (default: no limit).

        Raises:
            WaitTimeoutError: not terminal within ``wait_timeout`` (the job keeps running).
            GenerationFailedError: with ``raise_on_failure``, it ended other than
                ``succeeded``.
        """
        created = await self.create(
            prompt=prompt,
            negative_prompt=negative_prompt,
            lora_id=lora_id,
            loras=loras,
            character_id=character_id,
            size=size,
            width=width,
            height=height,
            steps=steps,
            guidance_scale=guidance_scale,
            cfg_rescale=cfg_rescale,
            denoise_strength=denoise_strength,
            seed=seed,
            count=count,
            enhance_prompt=enhance_prompt,
            webhook_url=webhook_url,
            reference_image_urls=reference_image_urls,
            idempotency_key=idempotency_key,
            timeout=timeout,
        )
        return await self._finish(created, wait_timeout, raise_on_failure)

    async def create(
        self,
        *,
        prompt: str,
        negative_prompt: str | None = None,
        lora_id: str | None = None,
        loras: Sequence[LoraWeight | LoraWeightDict] | None = None,
        character_id: str | None = None,
        size: str | None = None,
        width: int | None = None,
        height: int | None = None,
        steps: int | None = None,
        guidance_scale: float | None = None,
        cfg_rescale: float | None = None,
        denoise_strength: float | None = None,
        seed: int | None = None,
        count: int | None = None,
        enhance_prompt: bool | None = None,
        webhook_url: str | None = None,
        reference_image_urls: Sequence[str] | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        api_version: str | None = None,
    ) -> Generation:
        """Start an image generation (``POST /v1/images``); returns it ``queued``.

        Every argument is checked before anything is sent. The call is retried on
        transient failures under one ``Idempotency-Key`` (yours, or a fresh UUID4), so a
        retry never creates a second generation.

        Args:
            prompt: 1-4000 characters, not only whitespace.
            lora_id: one style (id or slug); exclusive with ``loras``.
            loras: a stack of 1-4 styles with weights 0.0-2.0, each a ``LoraWeight`` or
                a dict ``{"lora": ..., "weight": ...}``; exclusive with ``lora_id``.
            character_id: a ``ready`` character; exclusive with ``reference_image_urls``.
            size: a preset ``<2k|4k>_<w>_<h>``; exclusive with ``width``/``height``.
            width, height: both or neither, each 1024-4096 (snapped to 32 by the server).
            count: 1-4 images (price x count).
            reference_image_urls: 1-6 ``file_...`` ids or ``https://`` URLs.
            idempotency_key: 1-256 characters; reuse it to retry a call safely later.
            timeout: this call's total deadline in seconds (default: the client's).
            api_version: this call's ``Aurous-Version`` (default: the client's).

        Raises:
            InvalidParameterError: an argument breaks a documented constraint.
            InsufficientCreditsError: the team's available credits are too low.
            OutcomeUnknownError: the last attempt's outcome is unknown; retry with
                ``err.idempotency_key``.
        """
        payload = image_body(
            prompt=prompt,
            negative_prompt=negative_prompt,
            lora_id=lora_id,
            loras=loras,
            character_id=character_id,
            size=size,
            width=width,
            height=height,
            steps=steps,
            guidance_scale=guidance_scale,
            cfg_rescale=cfg_rescale,
            denoise_strength=denoise_strength,
            seed=seed,
            count=count,
            enhance_prompt=enhance_prompt,
            webhook_url=webhook_url,
            reference_image_urls=reference_image_urls,
        )
        return await self._submit(
            "/v1/images",
            payload,
            idempotency_key=idempotency_key,
            timeout=timeout,
            api_version=api_version,
        )

    async def estimate(
        self,
        *,
        prompt: str,
        negative_prompt: str | None = None,
        lora_id: str | None = None,
        loras: Sequence[LoraWeight | LoraWeightDict] | None = None,
        character_id: str | None = None,
        size: str | None = None,
        width: int | None = None,
        height: int | None = None,
        steps: int | None = None,
        guidance_scale: float | None = None,
        cfg_rescale: float | None = None,
        denoise_strength: float | None = None,
        seed: int | None = None,
        count: int | None = None,
        enhance_prompt: bool | None = None,
        webhook_url: str | None = None,
        reference_image_urls: Sequence[str] | None = None,
        timeout: float | None = None,
        api_version: str | None = None,
    ) -> Estimate:
        """Price an image request without creating anything (``POST /v1/images/estimate``).

        Takes the same arguments as ``create`` and validates them the same way.
        """
        payload = image_body(
            prompt=prompt,
            negative_prompt=negative_prompt,
            lora_id=lora_id,
            loras=loras,
            character_id=character_id,
            size=size,
            width=width,
            height=height,
            steps=steps,
            guidance_scale=guidance_scale,
            cfg_rescale=cfg_rescale,
            denoise_strength=denoise_strength,
            seed=seed,
            count=count,
            enhance_prompt=enhance_prompt,
            webhook_url=webhook_url,
            reference_image_urls=reference_image_urls,
        )
        return await self._price(
            "/v1/images/estimate", payload, timeout=timeout, api_version=api_version
        )

    async def get(
        self, id: str, *, timeout: float | None = None, api_version: str | None = None
    ) -> Generation:
        """Fetch one generation, image or video (``GET /v1/images/{id}``)."""
        return await self._fetch(id, timeout=timeout, api_version=api_version)

    def list(
        self,
        *,
        limit: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
        timeout: float | None = None,
        api_version: str | None = None,
    ) -> AsyncPager[Generation]:
        """Iterate the team's image and video generations, newest first (``GET /v1/images``).

        Pages are fetched as the iteration goes. ``limit`` (1-100) is the page size.
        ``starting_after`` starts below a given id; ``ending_before`` walks towards newer
        rows from a given id instead. The two are exclusive.
        """
        check.page_limit(limit)
        check.exclusive(starting_after=starting_after, ending_before=ending_before)
        newer = ending_before is not None

        async def fetch(cursor: str | None) -> Page[Generation]:
            query = params(
                limit=limit,
                starting_after=None if newer else cursor,
                ending_before=cursor if newer else None,
            )
            call = Call(
                method="GET",
                path="/v1/images",
                route="/v1/images",
                params=query,
                idempotent=True,
                timeout=timeout,
                api_version=api_version,
            )
            page = page_from(await self._send(call), Generation)
            if newer and page.data:
                # Walking towards newer rows, the next cursor is this page's newest row.
                return Page(page.data, page.has_more, page.data[0].id, page.request_id)
            return page

        return AsyncPager(fetch, first_cursor=ending_before if newer else starting_after)

    async def cancel(
        self, id: str, *, timeout: float | None = None, api_version: str | None = None
    ) -> Generation:
        """Cancel a queued or processing generation, image or video (idempotent)."""
        return await self._cancel(id, timeout=timeout, api_version=api_version)

    async def download(
        self,
        image: Generation | str,
        *,
        index: int = 0,
        timeout: float | None = None,
    ) -> bytes:
        """Return the bytes of output ``index`` (``GET /v1/images/{id}/output/{n}``).

        With a ``Generation``, its signed output URL is used (no API key is sent); with an
        id, the output route is called with the API key.

        Raises:
            GoneError: the output is past its retention (410 ``output_expired``).
            UnprocessableEntityError: the generation ended without output (422).
        """
        check.output_index(index)
        url = _output_url(image, index)
        reply = await fetch_output(
            self,
            url,
            route=_OUTPUT_ROUTE,
            timeout=timeout,
        )
        return reply

    async def save(
        self,
        image: Generation | str,
        path: str | os.PathLike[str],
        *,
        index: int = 0,
        timeout: float | None = None,
    ) -> anyio.Path:
        """Stream output ``index`` into ``path``; returns the path written.

        The bytes go to disk in chunks (memory stays flat whatever the size) through a
        partial file beside ``path``, renamed into place once complete: ``path`` is
        whole or absent. A save that fails or is cancelled part-way resumes from the
        partial next time (``Range``). ``timeout`` bounds the whole transfer.

        Raises:
            GoneError: the output is past its retention (410 ``output_expired``).
            UnprocessableEntityError: the generation ended without output (422).
            OSError: the file could not be written.
        """
        check.output_index(index)
        return await save_output(
            self, _output_url(image, index), path, route=_OUTPUT_ROUTE, timeout=timeout
        )

    def iter_bytes(
        self,
        image: Generation | str,
        *,
        index: int = 0,
        timeout: float | None = None,
    ) -> OutputStream:
        """Output ``index`` in chunks as they arrive, for piping it elsewhere.

        ``async with client.images.iter_bytes(image) as chunks: async for chunk in
        chunks: ...``; leaving the block early closes the connection.
        """
        check.output_index(index)
        call = output_call(_output_url(image, index), route=_OUTPUT_ROUTE, timeout=timeout)
        return OutputStream(self._requester, call)


_OUTPUT_ROUTE = "/v1/images/{id}/output/{n}"


def _output_url(image: Generation | str, index: int) -> str:
    if isinstance(image, str):
        return f"/v1/images/{path_id(image)}/output/{index}"
    urls: builtins.list[str] = list(image.output_urls or ())
    if index < len(urls):
        return urls[index]
    return f"/v1/images/{path_id(image.id)}/output/{index}"
