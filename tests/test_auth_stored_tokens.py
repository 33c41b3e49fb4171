"""What the client does with what it finds in (or fails to put into) a shared store.

* A stored ``access_token`` that cannot be sent in a header (CR/LF, non-Latin-1, controls,
  spaces) is logged without its value, discarded and replaced by one fresh token, for
  every run sharing the store (file, Redis, Django cache).
* When storing a freshly fetched token fails (the store died during the refresh), the
  fetched token is kept and used: one token request, not two.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time

import pytest

import genesys_gateway as gg
from genesys_gateway.errors import TokenStoreError
from genesys_gateway.http.file_store import FileTokenStore
from genesys_gateway.http.tokens import Token, store_key
from tests.fixtures_redis import RedisServer, free_port

PATIENCE = 30.0

BAD_TOKENS = {
    "crlf": "tok\r\nX-Injected: yes",
    "lf": "tok\nmore",
    "non-latin-1": "tok\u2014\u4e16",
    "latin-1": "tok\xe9t\xe9",
    "space": "tok en",
    "control": "tok\x00\x7f",
}


def entry(access_token: str) -> dict[str, object]:
    now = time.time()  # usable for an hour: only its characters are wrong
    return {"access_token": access_token, "expires_at": now + 3600, "refresh_at": now + 3000,
            "token_type": "bearer"}


def django_cache():
    """The default Django cache (configured like tests/test_django.py when run alone)."""
    django = pytest.importorskip("django")
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}})
        django.setup()
    from django.core.cache import caches

    return caches["default"]


@pytest.fixture(params=["file", "redis", "django"])
def planted(request, tmp_path):
    """``(store, plant(key, value))`` for one kind of shared store."""
    if request.param == "file":
        path = tmp_path / "tokens.json"

        def plant(key, value):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({key: value}, f)

        yield FileTokenStore(path), plant
    elif request.param == "redis":
        from genesys_gateway.http.redis_store import RedisTokenStore

        client = request.getfixturevalue("redis_client")
        yield RedisTokenStore(client), lambda key, value: client.set(f"genesys_gateway:{key}",
                                                                     json.dumps(value))
    else:
        from genesys_gateway.contrib.django.cache import DjangoCacheTokenStore

        cache = django_cache()
        cache.clear()
        yield DjangoCacheTokenStore(), cache.set
        cache.clear()


@pytest.mark.parametrize("bad", list(BAD_TOKENS.values()), ids=list(BAD_TOKENS))
def test_a_bad_stored_token_is_discarded_and_refetched(emulator, make_client, planted, bad, caplog):
    store, plant = planted
    key = store_key(emulator.token_url, "client-id")
    plant(key, entry(bad))

    def credentials():
        return gg.ClientCredentials("client-id", "s3cr3t-value", token_url=emulator.token_url,
                                    store=store)

    with caplog.at_level(logging.DEBUG):
        result = make_client(auth=credentials()).run("hello")
    assert result.stop_reason == "completed"
    assert emulator.token_requests == 1
    fresh = store.get(key).access_token
    assert fresh != bad
    assert [r.headers["authorization"] for r in emulator.requests if r.endpoint == "chat"] == [
        "Bearer " + fresh]
    assert "cannot be sent in a header" in caplog.text and "discard" in caplog.text
    assert bad not in caplog.text and repr(bad) not in caplog.text
    # The rest of the fleet (another client, as another process would be) reads the fresh one.
    assert make_client(auth=credentials()).run("again").stop_reason == "completed"
    assert emulator.token_requests == 1


def test_an_oversized_stored_token_is_discarded(emulator, make_client, planted):
    store, plant = planted
    key = store_key(emulator.token_url, "client-id")
    plant(key, entry("x" * 20_000))
    auth = gg.ClientCredentials("client-id", "s3cr3t-value", token_url=emulator.token_url,
                                store=store)
    assert make_client(auth=auth).run("hello").stop_reason == "completed"
    assert emulator.token_requests == 1 and len(store.get(key).access_token) < 20_000


# -- a store that dies during the refresh ----------------------------------------------------


class SetFails:
    """A store whose ``set`` fails as a store that just died would (everything else works)."""

    def __init__(self, store):
        self.store = store
        self.sets = 0

    def get(self, key):
        return self.store.get(key)

    def set(self, key, token):
        self.sets += 1
        raise TokenStoreError("Redis token store: SET failed: ConnectionError: gone")

    def invalidate(self, key, access_token):
        self.store.invalidate(key, access_token)

    def lock(self, key, timeout=None):
        return self.store.lock(key, timeout=timeout)


def test_a_failed_set_keeps_the_fetched_token(emulator, make_client, redis_client, caplog):
    from genesys_gateway.http.redis_store import RedisTokenStore

    store = SetFails(RedisTokenStore(redis_client))
    auth = gg.ClientCredentials("client-id", "s3cr3t-value", token_url=emulator.token_url,
                                store=store)
    client = make_client(auth=auth)
    with caplog.at_level(logging.WARNING, logger="genesys_gateway.auth"):
        assert client.run("hello").stop_reason == "completed"
    assert store.sets == 1 and emulator.token_requests == 1
    assert "could not store" in caplog.text
    assert client.run("again").stop_reason == "completed"
    assert emulator.token_requests == 1  # the kept token serves the next runs too


def start_redis(tmp_path) -> tuple[subprocess.Popen, RedisServer]:
    """A private redis-server (this test kills it), ready when it says so on stdout."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not on PATH")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path), "--logfile", ""],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if "Ready to accept connections" in line:
            return proc, RedisServer("127.0.0.1", port)
    proc.wait(PATIENCE)
    pytest.fail("redis-server did not start")


class KillsRedisAfterTheTokenResponse:
    """A transport that kills redis-server once the token endpoint has answered: the store
    dies between the fetch and the set."""

    def __init__(self, inner, token_url: str, proc: subprocess.Popen) -> None:
        self.inner, self.token_url, self.proc = inner, token_url, proc

    def send(self, request):
        response = self.inner.send(request)
        if request.url == self.token_url and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(PATIENCE)
        return response

    def close(self) -> None:
        self.inner.close()


def test_redis_killed_during_the_refresh_costs_no_second_token_request(
        emulator, make_client, tmp_path, caplog):
    redis = pytest.importorskip("redis")
    from genesys_gateway.http.redis_store import RedisTokenStore

    proc, server = start_redis(tmp_path)
    try:
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # What the store's docs advise: short timeouts, a modest retry (here none: redis-py's
        # default retries a dead server three times with seconds of backoff).
        client_redis = redis.Redis(host=server.host, port=server.port, socket_timeout=2,
                                   socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))
        store = RedisTokenStore(client_redis)
        transport = KillsRedisAfterTheTokenResponse(gg.Urllib3Transport(), emulator.token_url,
                                                    proc)
        auth = gg.ClientCredentials("client-id", "s3cr3t-value", token_url=emulator.token_url,
                                    store=store)
        client = make_client(auth=auth, transport=transport)
        with caplog.at_level(logging.WARNING, logger="genesys_gateway.auth"):
            result = client.run("hello")
        assert proc.poll() is not None  # it really died mid-refresh
        assert result.stop_reason == "completed"
        assert emulator.token_requests == 1
        assert "could not store" in caplog.text
        transport.close()
        client_redis.close()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(PATIENCE)
        proc.stdout.close()


def test_a_stored_token_is_only_trusted_if_it_is_usable_and_header_safe():
    """The same checks for stored and fresh tokens, at the unit level (no store needed)."""
    from genesys_gateway.http.tokens import token_problem

    now = time.time()
    assert token_problem(Token("abc.DEF-123_~+/=", now + 60, now + 30)) is None
    for bad in BAD_TOKENS.values():
        assert token_problem(Token(bad, now + 60, now + 30)) == "cannot be sent in a header"
    assert token_problem(Token("x" * 20_000, now + 60, now + 30)) is not None


def test_a_refused_token_is_replaced_in_the_shared_store(emulator, make_client, planted):
    """A 401 discards the refused token from the store (compare-and-delete) and stores the
    fresh one, which the rest of the fleet then uses without a token request of its own."""
    store, _plant = planted
    key = store_key(emulator.token_url, "client-id")

    def credentials():
        return gg.ClientCredentials("client-id", "s3cr3t-value", token_url=emulator.token_url,
                                    store=store)

    assert make_client(auth=credentials()).run("one").stop_reason == "completed"
    refused = store.get(key).access_token
    emulator.revoke_tokens()
    assert make_client(auth=credentials()).run("two").stop_reason == "completed"
    fresh = store.get(key).access_token
    assert fresh != refused and emulator.token_requests == 2
    assert make_client(auth=credentials()).run("three").stop_reason == "completed"
    assert emulator.token_requests == 2
    statuses = [r.status for r in emulator.requests if r.endpoint == "chat"]
    assert statuses == [200, 401, 200, 200]
