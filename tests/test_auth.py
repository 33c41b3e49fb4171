"""ClientCredentials token lifecycle with injected clocks (MockTransport: a unit test)."""

import contextlib
import json
import threading

import pytest

import genesys_gateway as gg
from genesys_gateway.http.auth import HTTPContext
from genesys_gateway.testing import MockTransport, json_response
from genesys_gateway.http.tokens import store_key


class TokenServer:
    def __init__(self, expires_in=3600):
        self.expires_in = expires_in
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self, request):
        with self.lock:
            self.count += 1
            n = self.count
        return json_response(200, {"access_token": f"tok-{n}", "token_type": "bearer",
                                   "expires_in": self.expires_in})


def context(server, sleeps=None):
    return HTTPContext(MockTransport(server), gg.ExponentialBackoff(sleep=sleeps or (lambda s: None)))


def test_token_cached_until_shortly_before_expiry():
    now = [1000.0]
    server = TokenServer(expires_in=3600)
    auth = gg.ClientCredentials("id", "secret", token_url="https://login.mypurecloud.com/oauth/token",
                                now=lambda: now[0])
    http = context(server)
    assert auth.authorization(http) == "Bearer tok-1"
    now[0] += 3600 - 61
    assert auth.authorization(http) == "Bearer tok-1"
    now[0] += 2  # inside the 60 s margin
    assert auth.authorization(http) == "Bearer tok-2"
    assert server.count == 2


def test_short_lived_tokens_refresh_at_half_life():
    now = [0.0]
    server = TokenServer(expires_in=100)
    auth = gg.ClientCredentials("id", "secret", token_url="https://login.x/oauth/token", now=lambda: now[0])
    http = context(server)
    auth.authorization(http)
    now[0] = 49.0
    auth.authorization(http)
    now[0] = 51.0
    auth.authorization(http)
    assert server.count == 2


def test_invalidate_forces_one_refresh():
    server = TokenServer()
    auth = gg.ClientCredentials("id", "secret", token_url="https://login.x/oauth/token")
    http = context(server)
    first = auth.authorization(http)
    assert auth.invalidate(first) is True
    assert auth.authorization(http) == "Bearer tok-2"
    assert auth.invalidate("Bearer stale") is True
    assert auth.authorization(http) == "Bearer tok-2"  # a stale 401 does not drop the fresh token


class BrokenStore:
    def get(self, key):
        raise gg.TokenStoreError("store down")

    def set(self, key, token):
        raise gg.TokenStoreError("store down")

    def invalidate(self, key, access_token):
        raise gg.TokenStoreError("store down")

    @contextlib.contextmanager
    def lock(self, key):
        raise gg.TokenStoreError("store down")
        yield


def test_unreachable_store_degrades_to_direct_fetch(caplog):
    server = TokenServer()
    auth = gg.ClientCredentials("id", "secret", token_url="https://login.x/oauth/token", store=BrokenStore())
    http = context(server)
    with caplog.at_level("WARNING", logger="genesys_gateway.auth"):
        assert auth.authorization(http) == "Bearer tok-1"
    assert "store" in caplog.text and "tok-1" not in caplog.text
    assert auth.invalidate("Bearer tok-1")
    assert auth.authorization(http) == "Bearer tok-2"


def test_store_is_shared_between_credentials_objects():
    server = TokenServer()
    store = gg.MemoryTokenStore()
    url = "https://login.x/oauth/token"
    a = gg.ClientCredentials("id", "secret", token_url=url, store=store)
    b = gg.ClientCredentials("id", "secret", token_url=url, store=store)
    http = context(server)
    assert a.authorization(http) == b.authorization(http)
    assert server.count == 1
    assert store.get(store_key(url, "id")).access_token == "tok-1"


@pytest.mark.parametrize("body", [b"{}", b"not json", json.dumps({"access_token": ""}).encode(),
                                  json.dumps({"access_token": "x", "expires_in": -5}).encode()])
def test_bad_token_responses_are_response_format_errors(body):
    from genesys_gateway.http.transport import HTTPResponse

    auth = gg.ClientCredentials("id", "secret", token_url="https://login.x/oauth/token")
    http = HTTPContext(MockTransport(lambda r: HTTPResponse(200, {}, body)), gg.NoRetry())
    with pytest.raises(gg.ResponseFormatError):
        auth.authorization(http)


def test_secret_echoed_by_server_is_redacted():
    auth = gg.ClientCredentials("id", "hunter2-secret", token_url="https://login.x/oauth/token")
    handler = lambda r: json_response(401, {"error": "invalid_client",  # noqa: E731
                                            "error_description": "bad secret hunter2-secret"})
    with pytest.raises(gg.AuthenticationError) as info:
        auth.authorization(HTTPContext(MockTransport(handler), gg.NoRetry()))
    assert "hunter2-secret" not in str(info.value) + repr(info.value.body)


@pytest.mark.parametrize("args", [("", "s"), ("id", ""), (None, "s")])
def test_bad_credentials_arguments(args):
    with pytest.raises(gg.ConfigurationError):
        gg.ClientCredentials(*args)
    with pytest.raises(gg.ConfigurationError):
        gg.BearerToken("")
