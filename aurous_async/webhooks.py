"""Receive Aurous webhooks: verify signed deliveries and dispatch typed events.

```python
from aurous_async.webhooks import WebhookVerificationError, verify

try:
    event = verify(raw_body, request_headers, secret=os.environ["AUROUS_WEBHOOK_SECRET"])
except WebhookVerificationError:
    ...  # answer 400 and ignore the delivery
if event.type == "image.completed":
    generation = event.generation
```

``verify``, ``sign`` and ``parse_callback`` are pure functions (no I/O);
``WebhookReceiver`` wraps them for ``aiohttp.web``, with deduplication by event id.
"""

from __future__ import annotations

from ._webhook_receiver import EventCallback, WebhookReceiver
from ._webhook_verify import (
    DEFAULT_TOLERANCE,
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    Callback,
    Event,
    VerificationFailure,
    WebhookVerificationError,
    parse_callback,
    sign,
    verify,
)

__all__ = [
    "DEFAULT_TOLERANCE",
    "EVENT_ID_HEADER",
    "EVENT_TYPE_HEADER",
    "SIGNATURE_HEADER",
    "Callback",
    "Event",
    "EventCallback",
    "VerificationFailure",
    "WebhookReceiver",
    "WebhookVerificationError",
    "parse_callback",
    "sign",
    "verify",
]
