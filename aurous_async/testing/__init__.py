"""A faithful local emulator of the Aurous Labs API, for tests, demos and benchmarks.

```python
from aurous_async.testing import run_emulator

async with run_emulator(time_scale=50) as emu:
    ...  # point a client at emu.base_url with emu.api_key
```
"""

from __future__ import annotations

from ._faults import Fault, FaultKind, WebhookFault
from ._server import Emulator, SeededTeam, run_emulator, serve
from ._settings import (
    API_VERSION,
    DEMO_API_KEY,
    DOCUMENTED_BUCKETS,
    BucketSpec,
    EmulatorSettings,
)
from ._webhooks import Delivery

__all__ = [
    "API_VERSION",
    "DEMO_API_KEY",
    "DOCUMENTED_BUCKETS",
    "BucketSpec",
    "Delivery",
    "Emulator",
    "EmulatorSettings",
    "Fault",
    "FaultKind",
    "SeededTeam",
    "WebhookFault",
    "run_emulator",
    "serve",
]
