"""Names of fleet mode's Redis keys: one namespace per API base URL and API key.

The key itself never appears in a name, only a keyed hash of it. The namespace is a
Redis Cluster hash tag (``{...}``), so every key of one team lives in one slot and the
multi-key scripts stay valid on a cluster. ``v1`` is the schema version of the data
model (docs/contract-notes.md, "Fleet mode"): a change of layout changes it.
"""

from __future__ import annotations

import hashlib
import hmac

import attrs

__all__ = ["SCHEMA_VERSION", "Namespace"]

SCHEMA_VERSION = "v1"


def _digest(label: bytes, value: str) -> str:
    return hmac.new(label, value.encode(), hashlib.sha256).hexdigest()[:16]


def _normal_base_url(base_url: str) -> str:
    return base_url.strip().rstrip("/").lower()


@attrs.frozen
class Namespace:
    """The Redis names of one team's shared state.

    Attributes:
        tag: ``{aurous:v1:<hash of the base URL>:<hash of the API key>}``.
    """

    tag: str

    @classmethod
    def for_team(cls, base_url: str, api_key: str) -> Namespace:
        """The namespace of ``api_key`` on ``base_url`` (the key is only hashed)."""
        url_hash = _digest(b"aurous-fleet-base-url", _normal_base_url(base_url))
        key_hash = _digest(b"aurous-fleet-api-key", api_key)
        return cls(f"{{aurous:{SCHEMA_VERSION}:{url_hash}:{key_hash}}}")

    def bucket(self, name: str) -> str:
        """The hash holding one bucket's shared model."""
        return f"{self.tag}:bucket:{name}"

    def inflight(self, name: str) -> str:
        """The sorted set of one bucket's requests in flight (seq by grant time)."""
        return f"{self.tag}:inflight:{name}"

    @property
    def processes(self) -> str:
        """The sorted set of live processes (id by expiry time)."""
        return f"{self.tag}:procs"

    @property
    def rejoin(self) -> str:
        """The time (Redis ``TIME``) at which processes back from losing Redis go back to
        the shared buckets together."""
        return f"{self.tag}:rejoin"

    @property
    def events(self) -> str:
        """The pub/sub channel of verified webhook events."""
        return f"{self.tag}:events"

    def batch(self, batch_id: str, part: str) -> str:
        """One key of a fleet batch (``part``: stream, meta, status, records, counts,
        closed; see ``_redis_batch``)."""
        return f"{self.tag}:batch:{batch_id}:{part}"
