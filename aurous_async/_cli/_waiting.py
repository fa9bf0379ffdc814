"""The one place the command waits for a generation to end."""

from __future__ import annotations

from .._client import AsyncAurous
from ..models import Generation

__all__ = ["wait_until_done"]


async def wait_until_done(
    client: AsyncAurous, job: Generation | str, *, within: float | None = None
) -> Generation:
    """Return ``job`` once it is terminal; a failed generation is returned, not raised.

    Every wait shares the client's one poll scheduler. Raises ``TimeoutError``
    (``WaitTimeoutError``) when ``within`` seconds pass first.
    """
    return await client.wait(job, timeout=within)
