"""aurous_async: an asyncio-native SDK for the Aurous Labs image and video generation API.

```python
from aurous_async import AsyncAurous

async with AsyncAurous() as client:  # AUROUS_API_KEY, AUROUS_BASE_URL
    image = await client.images.create(prompt="a lighthouse at dusk", size="2k_16_9")
```

Every public name lives here; the modules behind it are private.
"""

from __future__ import annotations

import logging

from ._client import AsyncAurous
from ._clock import Clock, ScaledClock, SystemClock
from ._config import (
    API_VERSION,
    DEFAULT_LIMITS,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUTS,
    Limits,
    RetryPolicy,
    Timeouts,
)
from ._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AurousError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    CostLimitExceededError,
    GenerationFailedError,
    GoneError,
    InsufficientCreditsError,
    InvalidParameterError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnprocessableEntityError,
    WaitTimeoutError,
)
from ._fanout import CreateMany, UnreportedCreate
from ._polling import DEFAULT_POLLING, PollPolicy
from ._ratelimit import BucketState
from ._resources._base import (
    AsyncPager,
    Page,
)
from ._version import __version__
from .models import (
    TERMINAL_STATUSES,
    Balance,
    BillingMode,
    Character,
    CharacterAttributes,
    CharacterRef,
    CharacterStatus,
    Cost,
    CostBreakdown,
    DeletedCharacter,
    DeletedFile,
    DeletedWebhookEndpoint,
    Estimate,
    EventType,
    File,
    FilePurpose,
    Generation,
    GenerationStatus,
    ImagePricing,
    Lora,
    LoraRef,
    LoraWeight,
    MediaType,
    OpenStrEnum,
    Pose,
    Pricing,
    Team,
    UploadClassification,
    UploadTicket,
    UsageBucket,
    UsageEvent,
    UsageEventType,
    UsageGroup,
    UsageMetrics,
    VideoLora,
    VideoPricing,
    WebhookEndpoint,
    WebhookTestFire,
)

# Quiet by default: the application decides whether the SDK's records are shown.
logging.getLogger("aurous_async").addHandler(logging.NullHandler())

__all__ = [
    "API_VERSION",
    "DEFAULT_LIMITS",
    "DEFAULT_POLLING",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUTS",
    "TERMINAL_STATUSES",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncAurous",
    "AsyncPager",
    "AurousError",
    "AuthenticationError",
    "BadRequestError",
    "Balance",
    "BillingMode",
    "BucketState",
    "Character",
    "CharacterAttributes",
    "CharacterRef",
    "CharacterStatus",
    "Clock",
    "ConflictError",
    "Cost",
    "CostBreakdown",
    "CostLimitExceededError",
    "CreateMany",
    "DeletedCharacter",
    "DeletedFile",
    "DeletedWebhookEndpoint",
    "Estimate",
    "EventType",
    "File",
    "FilePurpose",
    "Generation",
    "GenerationFailedError",
    "GenerationStatus",
    "GoneError",
    "ImagePricing",
    "InsufficientCreditsError",
    "InvalidParameterError",
    "Limits",
    "Lora",
    "LoraRef",
    "LoraWeight",
    "MediaType",
    "NotFoundError",
    "OpenStrEnum",
    "OutcomeUnknownError",
    "Page",
    "PermissionDeniedError",
    "PollPolicy",
    "Pose",
    "Pricing",
    "RateLimitError",
    "RetryPolicy",
    "ScaledClock",
    "ServerError",
    "SystemClock",
    "Team",
    "Timeouts",
    "UnprocessableEntityError",
    "UnreportedCreate",
    "UploadClassification",
    "UploadTicket",
    "UsageBucket",
    "UsageEvent",
    "UsageEventType",
    "UsageGroup",
    "UsageMetrics",
    "VideoLora",
    "VideoPricing",
    "WaitTimeoutError",
    "WebhookEndpoint",
    "WebhookTestFire",
    "__version__",
]
