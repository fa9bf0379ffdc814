from __future__ import annotations

import signal

import pytest

pytest_plugins = ["_redis"]  # real redis-server fixtures for the fleet-mode tests

# The Ctrl-C tests send SIGINT to CLI subprocesses, which inherit an ignored SIGINT from
# a runner that ignores it (a background job of a shell script starts that way).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def anyio_backend() -> str:
    """The anyio pytest plugin's event loop: asyncio."""
    return "asyncio"
