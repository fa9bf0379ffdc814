"""``client.webhook_endpoints``: signed event delivery endpoints (contract §12, A11)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from .. import _validation as check
from .._errors import InvalidParameterError
from .._requester import Call
from ..models import DeletedWebhookEndpoint, WebhookEndpoint, WebhookTestFire
from ._base import Resource, body, path_id

__all__ = ["WebhookEndpoints"]


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def _scheme(url: str) -> None:
    """``https://`` only (§12.1), except ``http://`` to a loopback host.

    Only a local server (the emulator, which accepts plain http) can reach a loopback
    receiver; the real API refuses http and could never reach loopback anyway.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() == "https":
        return
    if parts.scheme.lower() == "http" and (parts.hostname or "") in _LOOPBACK:
        return
    raise InvalidParameterError(
        f"url: must be an https:// URL (plain http only for loopback hosts), got {url!r:.80}",
        param="url",
    )


class WebhookEndpoints(Resource):
    """Register, fetch, delete, re-key and test webhook endpoints.

    The API has no list or update endpoint; keep the ids you create.
    """

    async def create(
        self,
        *,
        url: str,
        events: Sequence[str],
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        timeout: float | None = None,
        api_version: str | None = None,
    ) -> WebhookEndpoint:
        """Register an endpoint (``POST /v1/webhook_endpoints``).

        The returned object carries the signing ``secret`` in plain text; this is the
        only read that does (besides ``rotate_secret``), so store it.

        Args:
            url: an ``https://`` URL of at most 2048 characters.
            events: event types, or ``["*"]`` for every type of the applied version.
            metadata: at most 50 keys, string values of at most 500 characters.

        Not retried after an ambiguous failure (no idempotency key exists for it): that
        raises ``OutcomeUnknownError``.
        """
        check.webhook_endpoint(url=url, events=events, description=description, metadata=metadata)
        _scheme(url)
        if list(events) != ["*"]:
            for event in events:
                check.choice(event, "events", check.TEST_EVENT_TYPES)
        call = Call(
            method="POST",
            path="/v1/webhook_endpoints",
            route="/v1/webhook_endpoints",
            json=body(
                url=url,
                events=list(events),
                description=description,
                metadata=None if metadata is None else dict(metadata),
            ),
            creates=True,
            timeout=timeout,
            api_version=api_version,
        )
        return await self._get_model(call, WebhookEndpoint)

    async def get(
        self, id: str, *, timeout: float | None = None, api_version: str | None = None
    ) -> WebhookEndpoint:
        """Fetch an endpoint (``GET /v1/webhook_endpoints/{id}``); ``secret`` is ``None``."""
        call = Call(
            method="GET",
            path=f"/v1/webhook_endpoints/{path_id(id)}",
            route="/v1/webhook_endpoints/{id}",
            idempotent=True,
            timeout=timeout,
            api_version=api_version,
        )
        return await self._get_model(call, WebhookEndpoint)

    async def delete(
        self, id: str, *, timeout: float | None = None, api_version: str | None = None
    ) -> DeletedWebhookEndpoint:
        """Delete an endpoint (``DELETE /v1/webhook_endpoints/{id}``); never 404s."""
        call = Call(
            method="DELETE",
            path=f"/v1/webhook_endpoints/{path_id(id)}",
            route="/v1/webhook_endpoints/{id}",
            idempotent=True,
            timeout=timeout,
            api_version=api_version,
        )
        return await self._get_model(call, DeletedWebhookEndpoint)

    async def rotate_secret(
        self, id: str, *, timeout: float | None = None, api_version: str | None = None
    ) -> WebhookEndpoint:
        """Mint a new signing secret, returned once (``POST .../rotate_secret``).

        The old secret keeps signing alongside the new one for 24 hours. Not retried
        after an ambiguous failure, since a retry would mint yet another secret.
        """
        call = Call(
            method="POST",
            path=f"/v1/webhook_endpoints/{path_id(id)}/rotate_secret",
            route="/v1/webhook_endpoints/{id}/rotate_secret",
            creates=True,
            timeout=timeout,
            api_version=api_version,
        )
        return await self._get_model(call, WebhookEndpoint)

    async def test(
        self,
        id: str,
        *,
        event_type: str,
        timeout: float | None = None,
        api_version: str | None = None,
    ) -> WebhookTestFire:
        """Enqueue a signed synthetic delivery of ``event_type`` (``POST .../test``).

        ``event_type`` must be one the endpoint subscribes to.
        """
        check.event_type(event_type)
        call = Call(
            method="POST",
            path=f"/v1/webhook_endpoints/{path_id(id)}/test",
            route="/v1/webhook_endpoints/{id}/test",
            json={"event_type": event_type},
            creates=True,
            timeout=timeout,
            api_version=api_version,
        )
        return await self._get_model(call, WebhookTestFire)
