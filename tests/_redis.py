"""Real redis-server processes for the fleet-mode tests (a pytest plugin module).

``redis_server`` is one server for the session; ``redis_url`` flushes it before each
test. ``redis_factory`` starts private servers for tests that stop, restart or
password-protect theirs. Without ``redis-server`` on PATH the tests are skipped, except
under CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

__all__ = ["RedisServer", "redis_factory", "redis_server", "redis_url"]

_START_TIMEOUT = 10.0
_PID_LINE = re.compile(rb"process_id:(\d+)\r\n")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        message = "redis-server is not on PATH (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


class RedisServer:
    """One redis-server process on a free loopback port, without persistence."""

    def __init__(self, password: str | None = None) -> None:
        self.port = _free_port()
        self.password = password
        self._process: subprocess.Popen[bytes] | None = None
        self._started = False

    @property
    def url(self) -> str:
        """The server's URL (with the password, if it has one)."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server (again, empty, on the same port) and wait for it to answer.

        The port was free when it was picked, but another test run on this machine (CI
        runs two suites side by side) may take it first: only this process's own answer
        counts, and a first start moves to another free port if it lost the race."""
        attempts = 1 if self._started else 5
        for attempt in range(attempts):
            if self._start_once():
                self._started = True
                return
            if attempt + 1 < attempts:
                self.port = _free_port()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def _start_once(self) -> bool:
        command = [_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--loglevel", "warning"]
        if self.password:
            command += ["--requirepass", self.password]
        process = self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while self._answering_pid() != process.pid:
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                return False
            time.sleep(0.01)
        return True

    def _answering_pid(self) -> int | None:
        """The pid of the server answering on the port (``INFO server``), if any."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                if self.password:
                    sock.sendall(f"AUTH {self.password}\r\n".encode())
                    if not sock.recv(64).startswith(b"+OK"):
                        return None
                sock.sendall(b"INFO server\r\n")
                reply = b""
                while (found := _PID_LINE.search(reply)) is None:
                    chunk = sock.recv(4096)
                    if not chunk:
                        return None
                    reply += chunk
        except OSError:
            return None
        return int(found[1])

    def stop(self) -> None:
        """Kill the server (by its pid) and wait for it to go."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a stopped process must run to die
            process.kill()
            process.wait(timeout=10)

    def restart(self) -> None:
        """Kill the server and start an empty one on the same port."""
        self.stop()
        self.start()

    def pause(self) -> None:
        """SIGSTOP the server: connections stay open, nothing answers."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT the server."""
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def flushall(self) -> None:
        """Empty every database."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            if self.password:
                sock.sendall(f"AUTH {self.password}\r\n".encode())
                assert sock.recv(64).startswith(b"+OK")
            sock.sendall(b"FLUSHALL\r\n")
            assert sock.recv(64).startswith(b"+OK")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole session, killed by pid at the end."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL, flushed (FLUSHALL) for this test."""
    redis_server.flushall()
    return redis_server.url


@pytest.fixture
def redis_factory() -> Iterator[Callable[..., RedisServer]]:
    """Start private servers (``redis_factory(password=...)``); all killed after the test."""
    started: list[RedisServer] = []

    def start(password: str | None = None) -> RedisServer:
        server = RedisServer(password)
        started.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()
