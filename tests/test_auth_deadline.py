"""Waiting for someone else's token refresh is bounded by the run's deadline.

End to end through ``client.run("x", deadline=1)`` against the real emulator, with the
refresh lock held by whoever holds it in production: another thread fetching from a slow
token endpoint (the in-memory store), another process holding the ``flock`` (the file
store), a refresher that crashed and left its lock key behind (Redis). The run must end
at its deadline, with ``stop_reason="deadline"``, without a token request of its own
(giving up on the lock is not a reason to fetch directly), well before the store's own
lock timeouts (60 s for the file, 15 s for Redis).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

import genesys_gateway as gg
from genesys_gateway.http.file_store import FileTokenStore
from genesys_gateway.http.tokens import store_key

DEADLINE = 1.0
MARGIN = 0.5  # the contract: the run ends within its deadline plus this
PATIENCE = 30.0  # a bound on waiting for what must happen; reached only by a failing test


class Signalling:
    """A transport that sets ``sent`` as a request to ``url`` goes out."""

    def __init__(self, inner: gg.Urllib3Transport, url: str) -> None:
        self.inner = inner
        self.url = url
        self.sent = threading.Event()

    def send(self, request):
        if request.url == self.url:
            self.sent.set()
        return self.inner.send(request)

    def close(self) -> None:
        self.inner.close()


def timed_run(client):
    started = time.monotonic()
    result = client.run("x", deadline=DEADLINE)
    return result, time.monotonic() - started


def assert_stopped_at_the_deadline(result, elapsed):
    assert result.stop_reason == "deadline"
    assert result.content is None
    assert elapsed < DEADLINE + MARGIN, f"the run took {elapsed:.2f}s"


def test_memory_store_waiter_gives_up_at_the_deadline(emulator, make_client):
    emulator.delay(PATIENCE, endpoint="token")  # a slow token endpoint (cut short by close())
    transport = Signalling(gg.Urllib3Transport(), emulator.token_url)
    client = make_client(transport=transport)
    outcome = []

    def first_run() -> None:  # no deadline: it holds the store's lock while it fetches
        try:
            outcome.append(client.run("first"))
        except gg.GatewayError as exc:  # the emulator closes under it at the end
            outcome.append(exc)

    refresher = threading.Thread(target=first_run, daemon=True)
    refresher.start()
    try:
        assert transport.sent.wait(PATIENCE), "the first run never asked for a token"
        result, elapsed = timed_run(client)
        assert_stopped_at_the_deadline(result, elapsed)
        assert emulator.token_requests == 1  # only the first run's: no direct fetch
    finally:
        emulator.close()  # ends the slow token request
        refresher.join(PATIENCE)
        transport.close()
    assert not refresher.is_alive() and len(outcome) == 1


HOLD_FLOCK = """
import fcntl, sys
with open(sys.argv[1], "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.read()  # until the parent closes our stdin
"""


def test_file_store_lock_held_by_another_process(emulator, make_client, tmp_path):
    store = FileTokenStore(tmp_path / "tokens.json")  # lock_timeout: the default 60 s
    holder = subprocess.Popen([sys.executable, "-c", HOLD_FLOCK, store.lock_path],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        client = make_client(auth=gg.ClientCredentials("client-id", "s3cr3t-value",
                                                       token_url=emulator.token_url, store=store))
        result, elapsed = timed_run(client)
        assert_stopped_at_the_deadline(result, elapsed)
        assert emulator.token_requests == 0
    finally:
        holder.stdin.close()
        holder.wait(PATIENCE)
    assert client.run("x", deadline=5).stop_reason == "completed"  # the lock is free again


def test_redis_lock_left_by_a_crashed_refresher(emulator, make_client, redis_client):
    from genesys_gateway.http.redis_store import RedisTokenStore

    store = RedisTokenStore(redis_client)  # lock_ttl 10 s, wait_timeout 15 s: the defaults
    key = store_key(emulator.token_url, "client-id")
    # What a refresher killed while fetching leaves behind: its lock, until lock_ttl.
    redis_client.set(f"genesys_gateway:{key}:lock", "a-crashed-refresher", px=10_000)
    client = make_client(auth=gg.ClientCredentials("client-id", "s3cr3t-value",
                                                   token_url=emulator.token_url, store=store))
    result, elapsed = timed_run(client)
    assert_stopped_at_the_deadline(result, elapsed)
    assert emulator.token_requests == 0
    assert redis_client.get(f"genesys_gateway:{key}:lock") == b"a-crashed-refresher"


@pytest.mark.parametrize("deadline", [0.2, 0.6])
def test_complete_raises_the_deadline_error_not_a_store_error(emulator, make_client, redis_client,
                                                              deadline):
    """Under ``complete()`` (no loop to turn it into a stop reason) the wait ends with a
    non-retryable ``TransportError(kind="deadline")``."""
    from genesys_gateway.http.redis_store import RedisTokenStore

    key = store_key(emulator.token_url, "client-id")
    redis_client.set(f"genesys_gateway:{key}:lock", "a-crashed-refresher", px=10_000)
    client = make_client(auth=gg.ClientCredentials(
        "client-id", "s3cr3t-value", token_url=emulator.token_url,
        store=RedisTokenStore(redis_client)))
    started = time.monotonic()
    with pytest.raises(gg.TransportError) as info:
        client.complete([{"role": "user", "content": "hi"}], deadline=deadline)
    assert time.monotonic() - started < deadline + MARGIN
    assert info.value.kind == "deadline" and not info.value.retryable
    assert emulator.token_requests == 0


def test_a_401_while_another_process_holds_the_file_lock(emulator, make_client, tmp_path):
    """Forgetting a refused token used to wait for the file lock outside any deadline (60 s);
    now the refused token is discarded under the lock, within the deadline."""
    store = FileTokenStore(tmp_path / "tokens.json")
    client = make_client(auth=gg.ClientCredentials("client-id", "s3cr3t-value",
                                                   token_url=emulator.token_url, store=store))
    assert client.run("warm up").stop_reason == "completed"
    emulator.revoke_tokens()  # the next chat request gets a 401
    holder = subprocess.Popen([sys.executable, "-c", HOLD_FLOCK, store.lock_path],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        result, elapsed = timed_run(client)
        assert_stopped_at_the_deadline(result, elapsed)
        assert emulator.token_requests == 1  # the warm-up's
    finally:
        holder.stdin.close()
        holder.wait(PATIENCE)
    assert client.run("x", deadline=5).stop_reason == "completed"
    assert emulator.token_requests == 2
