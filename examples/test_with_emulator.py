"""Testing your own code against the emulator, with the fixtures aurous_async installs.

The fixtures (``aurous_emulator``, ``aurous_client``, ``aurous_clock``, ``aurous_env``)
come with the package; pytest loads them by itself. They run under the anyio plugin,
which comes with the SDK: mark the tests ``@pytest.mark.anyio``.

    pytest test_with_emulator.py

(In the SDK's own repository, whose suite does not load the plugin by itself, add
``-p aurous_async.testing._pytest_plugin``.)
"""

from __future__ import annotations

import pytest

from aurous_async import AsyncAurous, GenerationFailedError, GoneError, WaitTimeoutError
from aurous_async.testing import Emulator, Fault

pytestmark = pytest.mark.anyio


# The code under test: in your project it lives in your package and is imported.
async def illustrate(client: AsyncAurous, story: str, *, patience: float = 600) -> bytes:
    """Generate a picture for a story and return its image bytes."""
    image = await client.images.generate(prompt=story, wait_timeout=patience, raise_on_failure=True)
    return await client.images.download(image)


async def test_returns_the_picture(aurous_client: AsyncAurous) -> None:
    """A story gets a PNG back."""
    picture = await illustrate(aurous_client, "a fox asleep in the snow")
    assert picture.startswith(b"\x89PNG")


async def test_a_failed_generation_is_an_error(
    aurous_client: AsyncAurous, aurous_emulator: Emulator
) -> None:
    """A forced failure reaches the caller as GenerationFailedError."""
    aurous_emulator.force_next_outcome("failed", "the GPU caught fire")
    with pytest.raises(GenerationFailedError, match="the GPU caught fire"):
        await illustrate(aurous_client, "a fox asleep in the snow")


async def test_a_flaky_api_is_retried_without_charging_twice(
    aurous_client: AsyncAurous, aurous_emulator: Emulator
) -> None:
    """A 503, then a create whose answer is lost: retried, and only one job exists."""
    aurous_emulator.inject(Fault("status", match="POST /v1/images", status=503))
    aurous_emulator.inject(Fault("drop_after_commit", match="POST /v1/images"))
    picture = await illustrate(aurous_client, "a fox asleep in the snow")
    assert picture.startswith(b"\x89PNG")
    assert len(aurous_emulator.generations()) == 1


async def test_a_stuck_job_times_out(aurous_client: AsyncAurous, aurous_emulator: Emulator) -> None:
    """A job stuck in processing ends in WaitTimeoutError once the patience has passed."""
    aurous_emulator.force_next_outcome("processing")  # this job never finishes
    with pytest.raises(WaitTimeoutError):
        # 30 s on the fixtures' clock, which runs 100 times faster than real time.
        await illustrate(aurous_client, "a fox asleep in the snow", patience=30)


async def test_outputs_expire_after_a_day(
    aurous_client: AsyncAurous, aurous_emulator: Emulator
) -> None:
    """Jumping the virtual clock a day ahead makes the outputs expire (410)."""
    image = await aurous_client.images.generate(prompt="a fox asleep in the snow")
    aurous_emulator.advance(25 * 3600)
    with pytest.raises(GoneError):
        await aurous_client.images.download(image)
