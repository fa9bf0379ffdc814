"""Redis URLs for fleet mode: checked before anything connects, shown without a password."""

from __future__ import annotations

import urllib.parse

from .._errors import InvalidParameterError

__all__ = ["redact", "validate_redis_url"]

_SCHEMES = ("redis", "rediss", "unix")


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe for logs and messages)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparsable Redis URL>"
    if parts.password is None and "password" not in parts.query:
        return url
    if parts.password is not None:
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{user}:***@{host}")
    if "password" in parts.query:
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        hidden = [(name, "***" if name == "password" else value) for name, value in query]
        parts = parts._replace(query=urllib.parse.urlencode(hidden, safe="*"))
    return urllib.parse.urlunsplit(parts)


def validate_redis_url(url: str) -> str:
    """Check a Redis URL's shape; return it unchanged.

    Accepts ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` (TLS) and
    ``unix:///path/to/socket[?db=N]``.

    Raises:
        InvalidParameterError: the URL is not a string of that shape (its message shows
            the URL with the password redacted).
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidParameterError("redis_url must be a non-empty string", param="redis_url")
    shown = redact(url)
    if any(char.isspace() for char in url):
        raise _bad(shown, "it contains white space")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # raises ValueError when it is not a number in range
    except ValueError:
        raise _bad(shown, "it does not parse as a URL (check the port)") from None
    if parts.scheme not in _SCHEMES:
        raise _bad(shown, "the scheme must be redis://, rediss:// or unix://")
    if parts.scheme == "unix":
        if not parts.path:
            raise _bad(shown, "a unix:// URL needs a socket path")
        return url
    if not parts.hostname:
        raise _bad(shown, "it names no host")
    if port == 0:
        raise _bad(shown, "the port must be 1-65535")
    database = parts.path.strip("/")
    if database and not database.isdigit():
        raise _bad(shown, "the path must be a database number, e.g. /0")
    return url


def _bad(shown: str, why: str) -> InvalidParameterError:
    return InvalidParameterError(f"malformed redis_url {shown!r}: {why}", param="redis_url")
