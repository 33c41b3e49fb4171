"""RedisTokenStore specifics against a real redis-server (fixtures in tests/fixtures_redis.py).

The TokenStore contract (round trip, compare-and-delete, expiry, the lock, single flight
across threads, malformed entries, waiting for the lock) is tested for every store in
test_token_stores.py."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import socket
import time

import pytest

redis = pytest.importorskip("redis")

from genesys_gateway.errors import TokenStoreError  # noqa: E402
from genesys_gateway.http.redis_store import RedisTokenStore  # noqa: E402
from genesys_gateway.http.tokens import Token, store_key  # noqa: E402
from tests.store_helpers import MP, fresh_token, get_token, run_processes  # noqa: E402

KEY = store_key("https://login.example.test/oauth/token", "client-1")
FETCHES = "test:fetches"
FETCHED_AT = "test:fetched_at"


def counting_fetch(client, hold: float):
    """A token endpoint stand-in: counts calls in Redis and is slow while the lock is held."""

    def fetch() -> Token:
        n = client.incr(FETCHES)
        client.set(FETCHED_AT, repr(time.time()))
        time.sleep(hold)
        return fresh_token(f"token-{n}")

    return fetch


# -- child processes (module level so they work with fork and spawn) -----------------------


def _race_worker(port, lock_ttl, barrier, results):
    client = redis.Redis(host="127.0.0.1", port=port)
    store = RedisTokenStore(client, lock_ttl=lock_ttl, wait_timeout=20.0, poll_interval=0.01)
    barrier.wait(timeout=30)
    token = get_token(store, KEY, counting_fetch(client, hold=0.3))
    results.put(token.access_token)


def _crashing_refresher(port, locked_event, lock_ttl):
    client = redis.Redis(host="127.0.0.1", port=port)
    store = RedisTokenStore(client, lock_ttl=lock_ttl)
    with store.lock(KEY):
        locked_event.set()
        time.sleep(60)  # "fetching" until SIGKILLed


def _client_worker(port, base_url, token_url, barrier, results):
    """A whole SDK client per process: ClientCredentials with a RedisTokenStore."""
    import genesys_gateway as gg

    store = RedisTokenStore(redis.Redis(host="127.0.0.1", port=port), poll_interval=0.01)
    auth = gg.ClientCredentials("fleet-client", "fleet-secret", token_url=token_url, store=store)
    with gg.GatewayClient(base_url=base_url, auth=auth, retry=gg.NoRetry()) as client:
        barrier.wait(timeout=60)
        reply = client.complete([{"role": "user", "content": "hi"}])
    results.put((reply.message.content, store.get(store_key(token_url, "fleet-client")).access_token))


# -- fleet behaviour ----------------------------------------------------------------------


def test_eight_processes_refresh_once_and_share_the_token(redis_server, redis_client):
    tokens = run_processes(MP, _race_worker, (redis_server.port, 10.0), 8, timeout=30)
    assert int(redis_client.get(FETCHES)) == 1
    assert tokens == ["token-1"] * 8
    assert not redis_client.exists(f"genesys_gateway:{KEY}:lock")  # released


def test_eight_sdk_clients_in_eight_processes_make_one_token_request(redis_server, redis_client):
    from genesys_gateway.testing import GatewayEmulator

    spawn = multiprocessing.get_context("spawn")  # the emulator's threads live in this process
    with GatewayEmulator() as em:
        em.delay(0.3, times=8, endpoint="token")  # a slow login host widens the race
        outcomes = run_processes(
            spawn, _client_worker, (redis_server.port, em.url, em.token_url), 8, timeout=60
        )
        assert em.token_requests == 1
        assert len(em.chat_requests) == 8
    assert {content for content, _ in outcomes} == {"Echo: hi"}
    assert len({token for _, token in outcomes}) == 1


def test_killed_refresher_blocks_others_only_until_lock_ttl(redis_server, redis_client):
    lock_ttl = 0.5
    locked = MP.Event()
    refresher = MP.Process(target=_crashing_refresher, args=(redis_server.port, locked, lock_ttl))
    refresher.start()
    assert locked.wait(timeout=20), "the refresher never got the lock"
    lock_key = f"genesys_gateway:{KEY}:lock"
    remaining = redis_client.pttl(lock_key) / 1000
    orphaned_until = time.time() + remaining
    assert 0 < remaining <= lock_ttl
    os.kill(refresher.pid, signal.SIGKILL)
    refresher.join(timeout=10)
    assert refresher.exitcode == -signal.SIGKILL

    started = time.monotonic()
    tokens = run_processes(MP, _race_worker, (redis_server.port, lock_ttl), 4, timeout=30)
    elapsed = time.monotonic() - started
    assert tokens == ["token-1"] * 4
    assert int(redis_client.get(FETCHES)) == 1
    # Nobody refreshed while the dead process's lock lived, and the refresh came soon after
    # it expired (process start-up included in the bound).
    fetched_at = float(redis_client.get(FETCHED_AT))
    assert orphaned_until - 0.05 <= fetched_at < orphaned_until + 2.0
    assert elapsed < lock_ttl + 5.0


# -- Redis specifics (the TokenStore contract itself is in test_token_stores.py) ---------


def test_token_is_json_under_the_prefix_with_a_ttl_until_expiry(redis_client):
    store = RedisTokenStore(redis_client, key="pfx")
    store.set(KEY, fresh_token("abc", lifetime=120))
    ttl = redis_client.pttl(f"pfx:{KEY}")
    assert 110_000 < ttl <= 120_000  # Redis drops it when the token expires
    assert json.loads(redis_client.get(f"pfx:{KEY}"))["access_token"] == "abc"
    assert redis_client.keys("*") == [f"pfx:{KEY}".encode()]


def test_non_json_value_is_ignored_with_warning(redis_client, caplog):
    store = RedisTokenStore(redis_client)
    redis_client.set(f"genesys_gateway:{KEY}", b"not json")
    with caplog.at_level(logging.WARNING, logger="genesys_gateway.auth"):
        assert store.get(KEY) is None
    assert "malformed" in caplog.text
    store.invalidate(KEY, "x")  # the Lua script copes with undecodable data
    assert redis_client.get(f"genesys_gateway:{KEY}") == b"not json"


def test_release_only_deletes_own_lock(redis_client):
    store = RedisTokenStore(redis_client)
    lock_key = f"genesys_gateway:{KEY}:lock"
    with store.lock(KEY):
        redis_client.delete(lock_key)  # as if our lock_ttl ran out; someone else takes it
        assert redis_client.set(lock_key, "someone-else", nx=True, px=5000)
    assert redis_client.get(lock_key) == b"someone-else"


def test_lock_ttl_is_the_lock_keys_expiry(redis_client):
    store = RedisTokenStore(redis_client, lock_ttl=2.5)
    with store.lock(KEY):
        assert 2_000 < redis_client.pttl(f"genesys_gateway:{KEY}:lock") <= 2_500


def test_unreachable_redis_raises_token_store_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # redis-py retries a refused connection for ~3 s by default; not what this test is about.
    client = redis.Redis(
        host="127.0.0.1", port=port, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    store = RedisTokenStore(client)
    with pytest.raises(TokenStoreError) as info:
        store.get(KEY)
    assert isinstance(info.value.__cause__, redis.exceptions.ConnectionError)
    with pytest.raises(TokenStoreError):
        store.set(KEY, fresh_token("x"))
    with pytest.raises(TokenStoreError):
        store.invalidate(KEY, "x")
    with pytest.raises(TokenStoreError):
        with store.lock(KEY):
            pass


def test_repr_does_not_show_the_client():
    client = redis.Redis(host="127.0.0.1", port=1, password="hunter2")
    text = repr(RedisTokenStore(client, key="pfx"))
    assert text == "RedisTokenStore(key='pfx', lock_ttl=10)"
    assert "hunter2" not in text
