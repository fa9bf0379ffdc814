"""A chat bot: one long-lived AsyncAurous client serving many users at once.

    AUROUS_API_KEY=al_live_... python bot.py

Each request runs in a task of its own; all of them share the client's connection pool,
rate governor and poll scheduler, so a thousand users waiting cost no more polling than
the API's budget allows. A user who gives up (``/cancel``, or a new prompt) has the
generation cancelled on the server as well, so it stops costing credits.
"""

from __future__ import annotations

import asyncio
import contextlib

import anyio

from aurous_async import APIStatusError, AsyncAurous, Generation


class ImageBot:
    """Turns each user's prompt into an image; one request per user at a time."""

    def __init__(self, client: AsyncAurous, *, patience: float = 300) -> None:
        self._client = client
        self._patience = patience
        self._requests: dict[str, asyncio.Task[str]] = {}

    def ask(self, user: str, prompt: str) -> asyncio.Task[str]:
        """Start a request for ``user`` (replacing any still running); the task gives the reply."""
        self.give_up(user)
        task = asyncio.create_task(self._generate(prompt))
        self._requests[user] = task
        task.add_done_callback(lambda done: self._forget(user, done))
        return task

    def give_up(self, user: str) -> None:
        """The user no longer wants their image: stop the request and the job."""
        task = self._requests.pop(user, None)
        if task is not None:
            task.cancel()

    def _forget(self, user: str, task: asyncio.Task[str]) -> None:
        if self._requests.get(user) is task:
            del self._requests[user]

    async def _generate(self, prompt: str) -> str:
        # Shielded: a user who leaves while the create is in flight must not leave a
        # job running unseen; it is awaited and cancelled below.
        create = asyncio.ensure_future(self._client.images.create(prompt=prompt))
        try:
            image = await asyncio.shield(create)
            image = await self._client.wait(image, timeout=self._patience)
        except asyncio.CancelledError:
            with anyio.CancelScope(shield=True):
                await self._cancel(create)
            raise
        return _reply(image)

    async def _cancel(self, create: asyncio.Future[Generation]) -> None:
        try:
            image = await create
        except Exception:
            return  # the create failed: no job to stop
        with contextlib.suppress(APIStatusError):  # it ended meanwhile: nothing to stop
            await self._client.images.cancel(image.id)


def _reply(image: Generation) -> str:
    if image.status == "succeeded":
        return f"Here you go: {image.output_urls[0]}"
    return f"Sorry, that did not work ({image.status}: {image.error_message or 'no reason given'})"


async def main() -> None:
    async with AsyncAurous() as client:  # AUROUS_API_KEY, AUROUS_BASE_URL
        bot = ImageBot(client)
        ada = bot.ask("ada", "a lighthouse at dusk")
        bob = bot.ask("bob", "a red fox in the snow")
        await asyncio.sleep(1)
        bot.give_up("bob")  # bob typed /cancel
        print("ada:", await ada)
        print("bob cancelled:", bob.cancelled())


if __name__ == "__main__":
    asyncio.run(main())
