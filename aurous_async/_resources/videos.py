"""``client.videos``: video generations (contract §8.9, A3, A4)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import anyio

from .. import _validation as check
from .._errors import InvalidParameterError
from .._fanout import GenerationResource
from ..models import Estimate, Generation
from ._base import body, path_id
from ._output import OutputStream, fetch_output, output_call, save_output

__all__ = ["Videos"]


def video_body(
    *,
    video_lora_id: str,
    prompt: str | None,
    first_frame_url: str | None,
    last_frame_url: str | None,
    resolution: str | None,
    ratio: str | None,
    duration: int | None,
    seed: int | None,
    camera_fixed: bool | None,
    watermark: bool | None,
    enhance_prompt: bool | None,
    webhook_url: str | None,
) -> dict[str, object]:
    """Validate a video request (the create and estimate DTO) and build its JSON body."""
    check.video_request(
        video_lora_id=video_lora_id,
        prompt=prompt,
        first_frame_url=first_frame_url,
        last_frame_url=last_frame_url,
        resolution=resolution,
        ratio=ratio,
        duration=duration,
        seed=seed,
        webhook_url=webhook_url,
    )
    return body(
        video_lora_id=video_lora_id,
        prompt=prompt,
        first_frame_url=first_frame_url,
        last_frame_url=last_frame_url,
        resolution=resolution,
        ratio=ratio,
        duration=duration,
        seed=seed,
        camera_fixed=camera_fixed,
        watermark=watermark,
        enhance_prompt=enhance_prompt,
        webhook_url=webhook_url,
    )


#: The ``create()`` arguments of the request DTO, in ``video_body`` order.
VIDEO_FIELDS = (
    "video_lora_id",
    "prompt",
    "first_frame_url",
    "last_frame_url",
    "resolution",
    "ratio",
    "duration",
    "seed",
    "camera_fixed",
    "watermark",
    "enhance_prompt",
    "webhook_url",
)


class Videos(GenerationResource):
    """Create, price, poll, wait for, cancel and download video generations.

    Videos share the generation resource with images: ``get`` and ``cancel`` go through
    ``/v1/images/{id}`` (there is no ``GET /v1/videos/{id}``), and ``client.images.list()``
    lists videos too.
    """

    _request_fields = frozenset({*VIDEO_FIELDS, "idempotency_key"})

    def _body(self, request: Mapping[str, Any]) -> dict[str, object]:
        if "video_lora_id" not in request:
            raise InvalidParameterError("video_lora_id is required", param="video_lora_id")
        values: dict[str, Any] = {name: request.get(name) for name in VIDEO_FIELDS}
        return video_body(**values)

    async def _create_from(self, request: Mapping[str, Any]) -> Generation:
        return await self.create(**request)

    async def _estimate_from(self, request: Mapping[str, Any]) -> Estimate:
        fields = {k: v for k, v in request.items() if k != "idempotency_key"}
        return await self.estimate(**fields)

    async def generate(
        self,
        *,
        video_lora_id: str,
        prompt: str | None = None,
        first_frame_url: str | None = None,
        last_frame_url: str | None = None,
        resolution: str | None = None,
        ratio: str | None = None,
        duration: int | None = None,
        seed: int | None = None,
        camera_fixed: bool | None = None,
        watermark: bool | None = None,
        enhance_prompt: bool | None = None,
        webhook_url: str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        wait_timeout: float | None = None,
        raise_on_failure: bool = False,
    ) -> Generation:
        """Create a video generation and wait until it is terminal (``create`` + ``wait``).

        Takes ``create``'s arguments; ``timeout`` bounds the create call, ``wait_timeout``
        the wait (default: no limit).

        Raises:
            WaitTimeoutError: not terminal within ``wait_timeout`` (the job keeps running).
            GenerationFailedError: with ``raise_on_failure``, it ended other than
                ``succeeded``.
        """
        created = await self.create(
            video_lora_id=video_lora_id,
            prompt=prompt,
            first_frame_url=first_frame_url,
            last_frame_url=last_frame_url,
            resolution=resolution,
            ratio=ratio,
            duration=duration,
            seed=seed,
            camera_fixed=camera_fixed,
            watermark=watermark,
            enhance_prompt=enhance_prompt,
            webhook_url=webhook_url,
            idempotency_key=idempotency_key,
            timeout=timeout,
        )
        return await self._finish(created, wait_timeout, raise_on_failure)

    async def create(
        self,
        *,
        video_lora_id: str,
        prompt: str | None = None,
        first_frame_url: str | None = None,
        last_frame_url: str | None = None,
        resolution: str | None = None,
        ratio: str | None = None,
        duration: int | None = None,
        seed: int | None = None,
        camera_fixed: bool | None = None,
        watermark: bool | None = None,
        enhance_prompt: bool | None = None,
        webhook_url: str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        api_version: str | None = None,
    ) -> Generation:
        """Start a video generation (``POST /v1/videos``); returns it ``queued``.

        Retried on transient failures under one ``Idempotency-Key``, like image creates.

        Args:
            video_lora_id: the video model (id or slug).
            prompt: optional text guidance.
            first_frame_url, last_frame_url: a ``file_...`` id or an ``https://`` URL of
                at most 2048 characters; a last frame needs a first frame.
            resolution: ``480p``, ``720p`` or ``1080p``.
            ratio: ``16:9``, ``4:3``, ``1:1``, ``3:4``, ``9:16`` or ``21:9``.
            duration: seconds, 2-12 (the server's default is 5).
            seed: ``-1`` for random.
            idempotency_key: 1-256 characters; reuse it to retry a call safely later.
        """
        payload = video_body(
            video_lora_id=video_lora_id,
            prompt=prompt,
            first_frame_url=first_frame_url,
            last_frame_url=last_frame_url,
            resolution=resolution,
            ratio=ratio,
            duration=duration,
            seed=seed,
            camera_fixed=camera_fixed,
            watermark=watermark,
            enhance_prompt=enhance_prompt,
            webhook_url=webhook_url,
        )
        return await self._submit(
            "/v1/videos",
            payload,
            idempotency_key=idempotency_key,
            timeout=timeout,
            api_version=api_version,
        )

    async def estimate(
        self,
        *,
        video_lora_id: str,
        prompt: str | None = None,
        first_frame_url: str | None = None,
        last_frame_url: str | None = None,
        resolution: str | None = None,
        ratio: str | None = None,
        duration: int | None = None,
        seed: int | None = None,
        camera_fixed: bool | None = None,
        watermark: bool | None = None,
        enhance_prompt: bool | None = None,
        webhook_url: str | None = None,
        timeout: float | None = None,
        api_version: str | None = None,
    ) -> Estimate:
        """Price a video request without creating anything (``POST /v1/videos/estimate``)."""
        payload = video_body(
            video_lora_id=video_lora_id,
            prompt=prompt,
            first_frame_url=first_frame_url,
            last_frame_url=last_frame_url,
            resolution=resolution,
            ratio=ratio,
            duration=duration,
            seed=seed,
            camera_fixed=camera_fixed,
            watermark=watermark,
            enhance_prompt=enhance_prompt,
            webhook_url=webhook_url,
        )
        return await self._price(
            "/v1/videos/estimate", payload, timeout=timeout, api_version=api_version
        )

    async def get(
        self, id: str, *, timeout: float | None = None, api_version: str | None = None
    ) -> Generation:
        """Poll one video (``GET /v1/images/{id}`` with its ``vid_`` id, contract A3)."""
        return await self._fetch(id, timeout=timeout, api_version=api_version)

    async def cancel(
        self, id: str, *, timeout: float | None = None, api_version: str | None = None
    ) -> Generation:
        """Cancel a queued or processing video (``POST /v1/images/{id}/cancel``)."""
        return await self._cancel(id, timeout=timeout, api_version=api_version)

    async def download(
        self,
        video: Generation | str,
        *,
        start: int | None = None,
        end: int | None = None,
        timeout: float | None = None,
    ) -> bytes:
        """Return the video's bytes (``GET /v1/videos/{id}/output``).

        ``start``/``end`` (inclusive byte offsets, as in HTTP ``Range``) read part of the
        file: ``start=0, end=1023`` is the first KiB, ``start=1024`` the rest from there.

        Raises:
            GoneError: the output is past its retention (410 ``output_expired``).
            UnprocessableEntityError: the video ended without output (422).
        """
        check.byte_range(start, end)
        headers = {}
        if start is not None or end is not None:
            first = 0 if start is None else start
            headers["Range"] = f"bytes={first}-{'' if end is None else end}"
        return await fetch_output(
            self,
            _output_url(video),
            route=_OUTPUT_ROUTE,
            timeout=timeout,
            headers=headers,
        )

    async def save(
        self,
        video: Generation | str,
        path: str | os.PathLike[str],
        *,
        timeout: float | None = None,
    ) -> anyio.Path:
        """Stream the video into ``path``; returns the path written.

        The bytes go to disk in chunks (memory stays flat whatever the size) through a
        partial file beside ``path``, renamed into place once complete: ``path`` is
        whole or absent. A save that fails or is cancelled part-way resumes from the
        partial next time (``Range``). ``timeout`` bounds the whole transfer.

        Raises:
            GoneError: the output is past its retention (410 ``output_expired``).
            UnprocessableEntityError: the video ended without output (422).
            OSError: the file could not be written.
        """
        return await save_output(
            self, _output_url(video), path, route=_OUTPUT_ROUTE, timeout=timeout
        )

    def iter_bytes(self, video: Generation | str, *, timeout: float | None = None) -> OutputStream:
        """The video in chunks as they arrive, for piping it elsewhere.

        ``async with client.videos.iter_bytes(video) as chunks: async for chunk in
        chunks: ...``; leaving the block early closes the connection.
        """
        call = output_call(_output_url(video), route=_OUTPUT_ROUTE, timeout=timeout)
        return OutputStream(self._requester, call)


_OUTPUT_ROUTE = "/v1/videos/{id}/output"


def _output_url(video: Generation | str) -> str:
    if isinstance(video, str):
        return f"/v1/videos/{path_id(video)}/output"
    if video.output_video_url:
        return video.output_video_url
    return f"/v1/videos/{path_id(video.id)}/output"
