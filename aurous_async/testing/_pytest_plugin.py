"""pytest fixtures for testing code that uses aurous_async, against the emulator.

Installed with the package and loaded by pytest on its own (the ``aurous_async`` entry point); it
only defines fixtures, so a suite that requests none of them is unaffected. The async
fixtures run under the anyio pytest plugin (installed with anyio): mark the tests
``@pytest.mark.anyio``.

```python
import pytest

from aurous_async import AsyncAurous
from aurous_async.testing import Emulator


@pytest.mark.anyio
async def test_generates(aurous_client: AsyncAurous, aurous_emulator: Emulator) -> None:
    image = await aurous_client.images.generate(prompt="a lighthouse")
    assert image.status == "succeeded"
```

Fixtures (each test gets its own emulator):

* ``aurous_clock``: one ``ScaledClock`` (100 times real time) shared by the emulator's
  jobs and rate limits and by ``aurous_client``'s pacing, retry waits and polls.
  ``aurous_emulator.advance(seconds)`` jumps it.
* ``aurous_emulator_settings``: the ``EmulatorSettings`` used; override the fixture to
  change them.
* ``aurous_emulator``: a running ``Emulator`` on a free loopback port.
* ``aurous_client``: an ``AsyncAurous`` connected to it, on ``aurous_clock``.
* ``aurous_env``: sets ``AUROUS_API_KEY`` and ``AUROUS_BASE_URL`` to the emulator's,
  for code that builds its own ``AsyncAurous()``; yields the emulator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from aurous_async import AsyncAurous, ScaledClock
    from aurous_async.testing import Emulator, EmulatorSettings

#: How many clock seconds pass per real second in the fixtures' shared clock.
CLOCK_SCALE = 100.0


@pytest.fixture
def aurous_clock() -> ScaledClock:
    """A clock running 100 times faster than real time, shared by emulator and client."""
    from aurous_async import ScaledClock

    return ScaledClock(CLOCK_SCALE)


@pytest.fixture
def aurous_emulator_settings(aurous_clock: ScaledClock) -> EmulatorSettings:
    """The emulator's settings: documented defaults, jobs and rate limits on ``aurous_clock``.

    Override this fixture to change them, e.g.
    ``return attrs.evolve(aurous_emulator_settings, initial_credits=5)``.
    """
    from aurous_async.testing import EmulatorSettings

    return EmulatorSettings(
        time_scale=aurous_clock.scale,
        clock=aurous_clock,
        rate_clock=aurous_clock,
        allow_http_webhooks=True,
    )


@pytest.fixture
async def aurous_emulator(
    aurous_emulator_settings: EmulatorSettings,
) -> AsyncIterator[Emulator]:
    """A running emulator on a free loopback port, stopped after the test."""
    from aurous_async.testing import run_emulator

    async with run_emulator(aurous_emulator_settings) as emulator:
        yield emulator


@pytest.fixture
async def aurous_client(
    aurous_emulator: Emulator, aurous_clock: ScaledClock
) -> AsyncIterator[AsyncAurous]:
    """An ``AsyncAurous`` connected to ``aurous_emulator`` with the demo team's key."""
    from aurous_async import AsyncAurous

    async with AsyncAurous(
        aurous_emulator.api_key, base_url=aurous_emulator.base_url, clock=aurous_clock
    ) as client:
        yield client


@pytest.fixture
def aurous_env(aurous_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """Point ``AUROUS_API_KEY`` and ``AUROUS_BASE_URL`` at ``aurous_emulator``."""
    monkeypatch.setenv("AUROUS_API_KEY", aurous_emulator.api_key)
    monkeypatch.setenv("AUROUS_BASE_URL", aurous_emulator.base_url)
    return aurous_emulator
