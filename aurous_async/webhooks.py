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

``verify``, ``sign`` and ``parse_callback`` are pure functions (no I/O).
``WebhookReceiver`` adds deduplication by event id and dispatch to callbacks, in any
web framework: ``await receiver.handle(raw_body, headers)`` returns the
``WebhookResponse`` to answer with (``receiver.app()`` is a ready ``aiohttp.web`` app).
Attach the receiver to a client (``client.attach_webhooks(receiver)``) and its waits end
the moment their event arrives.
"""

from __future__ import annotations

from ._webhook_receiver import EventCallback, WebhookReceiver, WebhookResponse
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
    "WebhookResponse",
    "WebhookVerificationError",
    "parse_callback",
    "sign",
    "verify",
]
