"""Redis URLs: validated before anything connects, shown without their password."""

from __future__ import annotations

import pytest

from aurous_async._errors import InvalidParameterError
from aurous_async._fleet._redis_link import RedisLink
from aurous_async._fleet._redis_url import redact, validate_redis_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
        ("rediss://app:hunter2@cache/1", "rediss://app:***@cache/1"),
        ("redis://cache:6379/0?password=hunter2&ssl=x", "redis://cache:6379/0?password=***&ssl=x"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
        ("unix:///run/redis.sock?db=2", "unix:///run/redis.sock?db=2"),
    ],
)
def test_redact_hides_the_password_and_keeps_the_rest(url: str, shown: str) -> None:
    """The shown URL keeps scheme, user, host, port and database, never the password."""
    assert redact(url) == shown
    assert validate_redis_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379",
        "redis://",
        "redis://127.0.0.1:99999/0",
        "redis://127.0.0.1:0/0",
        "redis://h/x",
        "",
        "redis:// h",
        "unix://",
    ],
)
def test_malformed_urls_are_usage_errors(url: str) -> None:
    """Each malformed URL is an InvalidParameterError naming ``redis_url``."""
    with pytest.raises(InvalidParameterError) as caught:
        validate_redis_url(url)
    assert caught.value.param == "redis_url"


def test_a_link_shows_only_the_redacted_url() -> None:
    """Neither the repr nor the URL attribute of a link holds the password."""
    link = RedisLink("redis://:hunter2@127.0.0.1:6379/0")
    assert "hunter2" not in repr(link)
    assert link.url == "redis://:***@127.0.0.1:6379/0"
    assert "hunter2" not in repr(link.client)
