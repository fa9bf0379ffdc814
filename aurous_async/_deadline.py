"""Call deadlines: one timer per distinct timeout for every call in flight.

A timer per call (``asyncio.timeout``, ``anyio.fail_after``) costs a timer-heap entry and
a pair of awaits on every request, though nearly every call ends long before its
deadline. Calls with the same timeout start in order, so their deadlines are in order
too: they join one insertion-ordered group, and a single timer, armed for the oldest,
serves the whole group. A call that ends in time only leaves the group's dict.

When a deadline passes, its task is cancelled the way ``asyncio.timeout`` does it
(``Task.cancel``, then ``Task.uncancel`` on the way out), and the ``with`` block raises
``TimeoutError``. A cancellation from anywhere else propagates untouched.

A deadline may also start deferred: nothing is armed on entry, and ``arm()`` later arms
it for the time it would have had (its own timer: a late arrival would break a group's
order). The requester defers a call's deadline while its only await is a first attempt
the transport bounds by a shorter timeout of its own, which is nearly every call, and
arms it before anything else it waits for (a permit, a retry).

A deadline can be paused around a wait that must not count against it (the requester's
wait for a rate-limit permit): ``pause()`` stops it and says how much time was left,
``resume(left)`` restarts it with that much time, on a timer of its own.

Python 3.10 has no ``Task.uncancel``: there, each call gets an anyio cancel scope, armed
on entry.
"""

from __future__ import annotations

import asyncio
import math
import sys
from types import TracebackType
from typing import Protocol, cast

import anyio

__all__ = ["Deadlines"]

_NATIVE = sys.version_info >= (3, 11)
#: Groups kept while idle; beyond this many, idle ones are dropped when a new one is made.
_IDLE_GROUPS_KEPT = 32


class Deadlines:
    """Hands out ``with`` blocks that raise ``TimeoutError`` once ``timeout`` has passed."""

    def __init__(self) -> None:
        self._groups: dict[float, _Group] = {}

    def limit(
        self,
        timeout: float,
        *,
        deferred: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> _Limit | _Deferred | _ScopeLimit:
        """A ``with`` block ending at ``timeout`` seconds of loop time from its start.

        ``deferred``: armed only by ``arm()`` (then for the same end), not on entry.
        ``loop``: the loop the call runs in, if the caller knows it; a deferred deadline
        reads only its time. (Looking the running loop up costs a ``getpid`` system call
        per lookup before Python 3.12.)
        """
        if not _NATIVE:  # Python 3.10 (tests switch it on for 3.11+ too)
            return _ScopeLimit(timeout)
        if deferred:
            return _Deferred((loop or asyncio.get_running_loop()).time() + timeout)
        loop = asyncio.get_running_loop()
        group = self._groups.get(timeout)
        if group is None or group.loop is not loop:
            if len(self._groups) >= _IDLE_GROUPS_KEPT:
                self._drop_idle_groups()
            group = self._groups[timeout] = _Group(loop)
        return _Limit(group, loop.time() + timeout)

    def _drop_idle_groups(self) -> None:
        """Forget groups with no call in flight (callers computing a fresh timeout for
        every call would otherwise make a group each)."""
        for timeout, group in list(self._groups.items()):
            if not group.calls:
                if group.timer is not None:
                    group.timer.cancel()
                del self._groups[timeout]


class _Task(Protocol):
    """What a deadline uses of ``asyncio.Task`` (3.11+; typed here for the 3.10 checker)."""

    def cancel(self, msg: object = None) -> bool: ...
    def cancelling(self) -> int: ...
    def uncancel(self) -> int: ...


class _Group:
    """The calls in flight with one timeout, oldest first, and the timer of the oldest."""

    __slots__ = ("calls", "loop", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.calls: dict[_Limit, None] = {}
        self.timer: asyncio.TimerHandle | None = None

    def add(self, call: _Limit) -> None:
        self.calls[call] = None
        if self.timer is None:
            self.timer = self.loop.call_at(call.when, self.expire)

    def expire(self) -> None:
        self.timer = None
        now = self.loop.time()
        calls = self.calls
        while calls:
            oldest = next(iter(calls))
            if oldest.when > now:
                self.timer = self.loop.call_at(oldest.when, self.expire)
                return
            del calls[oldest]
            oldest.expire()


class _Limit:
    """One call's deadline (Python 3.11+), in its group's timer or (armed late) its own."""

    __slots__ = ("_cancelling", "_group", "_task", "_timer", "expired", "when")

    def __init__(self, group: _Group | None, when: float) -> None:
        self._group = group
        self._timer: asyncio.TimerHandle | None = None
        self.when = when
        self.expired = False

    def __enter__(self) -> _Limit:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a call deadline needs a running task")
        self._task = cast(_Task, task)
        self._cancelling = self._task.cancelling()
        if self._group is not None:
            self._group.add(self)
        return self

    def arm(self) -> None:
        """Armed on entry already."""

    def pause(self) -> float | None:
        """Stop the deadline; returns the seconds it had left (``None``: it already fired)."""
        if self.expired:
            return None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        elif self._group is not None:
            self._group.calls.pop(self, None)
            self._group = None
        return self.when - asyncio.get_running_loop().time()

    def resume(self, left: float | None) -> None:
        """Restart a paused deadline with ``left`` seconds (on a timer of its own)."""
        if left is not None:
            loop = asyncio.get_running_loop()
            self.when = loop.time() + left
            self.fire_alone(loop)

    def fire_alone(self, loop: asyncio.AbstractEventLoop) -> None:
        """Expire at ``when`` on a timer of its own (a limit in no group)."""
        self._timer = loop.call_at(self.when, self.expire)

    def expire(self) -> None:
        self.expired = True
        self._task.cancel("aurous_async: call deadline")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.expired:
            if self._timer is not None:
                self._timer.cancel()
            elif self._group is not None:
                self._group.calls.pop(self, None)
            return
        # Our cancel request is withdrawn in any case; it is ours to turn into a timeout
        # only if no other cancellation was requested meanwhile.
        if self._task.uncancel() <= self._cancelling and isinstance(exc, asyncio.CancelledError):
            raise TimeoutError from exc


class _Deferred:
    """A deadline armed only by ``arm()``, for the end it had from its start (3.11+).

    Until then it is nothing but that end: the ``_Limit`` (on its own timer, since it
    joins no group's order) is made when armed. Arming happens just before the call
    awaits something; a cancellation requested before that point would have been
    delivered at an earlier await, so the task's cancel count then is its count on entry.
    """

    __slots__ = ("_limit", "when")

    def __init__(self, when: float) -> None:
        self._limit: _Limit | None = None
        self.when = when

    def __enter__(self) -> _Deferred:
        return self

    def arm(self) -> None:
        """Arm the deadline (at once if its end has passed); nothing if armed already."""
        if self._limit is None:
            self._limit = _Limit(None, self.when).__enter__()
            self._limit.fire_alone(asyncio.get_running_loop())

    def pause(self) -> float | None:
        """Stop the deadline; returns the seconds it had left (``None``: it already fired)."""
        if self._limit is not None:
            return self._limit.pause()
        return self.when - asyncio.get_running_loop().time()

    def resume(self, left: float | None) -> None:
        """Restart a paused deadline with ``left`` seconds (still unarmed if it was)."""
        if self._limit is not None:
            self._limit.resume(left)
        elif left is not None:
            self.when = asyncio.get_running_loop().time() + left

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._limit is not None:
            self._limit.__exit__(exc_type, exc, tb)


class _ScopeLimit:
    """One call's deadline as an anyio cancel scope (Python 3.10)."""

    __slots__ = ("_scope",)

    def __init__(self, timeout: float) -> None:
        self._scope = anyio.CancelScope(deadline=anyio.current_time() + timeout)

    def __enter__(self) -> _ScopeLimit:
        self._scope.__enter__()
        return self

    def arm(self) -> None:
        """Armed on entry already."""

    def pause(self) -> float | None:
        """Stop the deadline; returns the seconds it had left (``None``: it already fired)."""
        if self._scope.cancel_called:
            return None
        left = self._scope.deadline - anyio.current_time()
        self._scope.deadline = math.inf
        return left

    def resume(self, left: float | None) -> None:
        """Restart a paused deadline with ``left`` seconds."""
        if left is not None:
            self._scope.deadline = anyio.current_time() + left

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._scope.__exit__(exc_type, exc, tb)
        if self._scope.cancelled_caught:
            raise TimeoutError from exc
