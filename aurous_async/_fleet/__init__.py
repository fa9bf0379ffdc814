"""Fleet mode: state shared by every process on one API key (rate budget, wake-ups).

``_protocol`` is the interface the governor and the waits use; ``LocalBuckets`` is the
in-process implementation, ``RedisBuckets`` and ``RedisRelay`` the Redis one (needs the
``aurous-async[redis]`` extra; imported only when fleet mode is asked for).
"""

from __future__ import annotations

from ._local import BucketTimings, LocalBuckets
from ._membership import Membership, local_share
from ._protocol import EventRelay, Observation, Reservation, SharedBuckets, Ticket

__all__ = [
    "BucketTimings",
    "EventRelay",
    "LocalBuckets",
    "Membership",
    "Observation",
    "Reservation",
    "SharedBuckets",
    "Ticket",
    "local_share",
]
