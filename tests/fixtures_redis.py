"""A real ``redis-server`` for the Redis token store tests.

Import the fixtures into ``conftest.py``::

    from tests.fixtures_redis import redis_server, redis_client  # noqa: F401

``redis_server`` (session) starts ``redis-server`` on a free loopback port in a temporary
directory with persistence off, waits until it answers PING and stops it at teardown.
Without ``redis-server`` on PATH the tests are skipped, except when the ``CI`` environment
variable is set: then they fail, because CI must run them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass

import pytest

__all__ = ["redis_server", "redis_client", "RedisServer", "free_port"]

START_TIMEOUT = 10.0


@dataclass(frozen=True)
class RedisServer:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def client(self, **kwargs):
        import redis

        return redis.Redis(host=self.host, port=self.port, **kwargs)


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_ping(proc: subprocess.Popen, port: int) -> bool:
    """Poll with PING until the server answers, it exits, or START_TIMEOUT passes."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2, socket_timeout=0.5)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            try:
                if client.ping():
                    return True
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                pass
            except redis.exceptions.BusyLoadingError:
                pass
            time.sleep(0.02)  # between PING attempts, bounded by the deadline
        return False
    finally:
        client.close()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _skip_or_fail(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message + "; CI must run the Redis tests", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    try:
        import redis  # noqa: F401
    except ImportError:
        _skip_or_fail("the redis package is not installed (pip install redis)")
    exe = shutil.which("redis-server")
    if exe is None:
        _skip_or_fail("redis-server is not on PATH (apt-get install redis-server)")
    workdir = tmp_path_factory.mktemp("redis")
    last_output = ""
    for _attempt in range(3):  # a free port can be taken between the probe and the bind
        port = free_port()
        log_path = workdir / f"redis-{port}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [
                    exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", str(workdir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if _wait_for_ping(proc, port):
            try:
                yield RedisServer("127.0.0.1", port)
            finally:
                _stop(proc)
            return
        _stop(proc)
        last_output = log_path.read_text(errors="replace")[-2000:]
    pytest.fail(f"redis-server did not start:\n{last_output}", pytrace=False)


@pytest.fixture
def redis_client(redis_server):
    """A client on an emptied database."""
    client = redis_server.client()
    client.flushdb()
    try:
        yield client
    finally:
        client.close()
