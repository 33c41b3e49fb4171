"""The Django app: settings, get_client(), the cache token store, the real test client."""

from __future__ import annotations

import threading
import time

import pytest

django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402

from tests.django_env import PLACEHOLDER, SECRET, configure  # noqa: E402

configure(root_urlconf=__name__)

from django.apps import apps  # noqa: E402
from django.core.cache import caches  # noqa: E402
from django.core.cache.backends.base import BaseCache  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

import genesys_gateway as gg  # noqa: E402
from genesys_gateway.contrib.django import get_client, reset_client  # noqa: E402
from genesys_gateway.contrib.django.apps import GenesysGatewayConfig  # noqa: E402
from genesys_gateway.contrib.django.cache import DjangoCacheTokenStore  # noqa: E402
from genesys_gateway.errors import TokenStoreError  # noqa: E402
from genesys_gateway.http.tokens import store_key  # noqa: E402
from tests.store_helpers import MP, fresh_token, get_token, run_processes  # noqa: E402

registry = gg.ToolRegistry()  # named by TOOLS below


# -- the "project": one view, this module is the URLconf ---------------------------------


def ask(request):
    response = get_client().complete([{"role": "user", "content": request.GET["q"]}])
    return JsonResponse({"answer": response.message.content})


urlpatterns = [path("ask", ask)]


class BrokenCache(BaseCache):
    """A cache backend whose server is down."""

    def __init__(self, location, params):
        super().__init__(params)

    def _down(self, *args, **kwargs):
        raise ConnectionRefusedError(111, "Connection refused")

    get = set = add = delete = _down


# -- fixtures -------------------------------------------------------------------------------


def gateway_settings(em, **extra):
    values = {
        "BASE_URL": em.url,
        "TOKEN_URL": em.token_url,
        "CLIENT_ID": "django-client",
        "CLIENT_SECRET": SECRET,
    }
    values.update(extra)
    return values


@pytest.fixture
def configured(emulator):
    caches["default"].clear()
    with override_settings(GENESYS_GATEWAY=gateway_settings(emulator), ROOT_URLCONF=__name__):
        yield emulator
    reset_client()


# -- get_client and the view ----------------------------------------------------------------


def test_view_through_django_test_client(configured):
    em = configured
    http = Client()
    for _ in range(3):
        response = http.get("/ask", {"q": "hi"})
        assert response.status_code == 200
        assert response.json() == {"answer": "Echo: hi"}
    assert len(em.chat_requests) == 3
    assert em.token_requests == 1


def test_get_client_is_one_client_per_process(configured):
    first = get_client()
    assert get_client() is first
    seen = []
    barrier = threading.Barrier(8)

    def worker():
        barrier.wait()
        seen.append(get_client())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert all(c is first for c in seen) and len(seen) == 8
    assert isinstance(first, gg.GatewayClient)


def test_changing_settings_replaces_the_client(configured):
    em = configured
    first = get_client()
    with override_settings(GENESYS_GATEWAY=gateway_settings(em, MODEL="other-model")):
        second = get_client()
        assert second is not first and second.model == "other-model"
        with pytest.raises(gg.GatewayError):
            first.executor()  # the replaced client was closed
    assert get_client() is not second


def test_tokens_live_in_the_django_cache(configured):
    em = configured
    get_client().complete([{"role": "user", "content": "one"}])
    entry = caches["default"].get(store_key(em.token_url, "django-client"))
    assert isinstance(entry, dict) and entry["access_token"]
    # A "new worker" (a fresh client, empty in-process state) reuses the cached token.
    reset_client()
    get_client().complete([{"role": "user", "content": "two"}])
    get_client().complete([{"role": "user", "content": "three"}])
    assert em.token_requests == 1


def test_extra_keys_tools_and_cache_alias(emulator):
    with override_settings(
        CACHES={
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "tokens": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                       "LOCATION": "tokens"},
        },
        GENESYS_GATEWAY=gateway_settings(
            emulator, MAX_ITERATIONS=2, TOOLS=f"{__name__}:registry", CACHE_ALIAS="tokens"
        ),
    ):
        try:
            client = get_client()
            assert client.max_iterations == 2 and client.tools is registry
            client.complete([{"role": "user", "content": "hi"}])
            assert caches["tokens"].get(store_key(emulator.token_url, "django-client")) is not None
            assert caches["default"].get(store_key(emulator.token_url, "django-client")) is None
        finally:
            reset_client()


# -- configuration errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    "drop, named",
    [("CLIENT_ID", "settings.GENESYS_GATEWAY['CLIENT_ID']"),
     ("CLIENT_SECRET", "settings.GENESYS_GATEWAY['CLIENT_SECRET']"),
     ("BASE_URL", "settings.GENESYS_GATEWAY['REGION']")],
)
def test_missing_key_is_improperly_configured(emulator, drop, named):
    values = gateway_settings(emulator)
    del values[drop]
    with override_settings(GENESYS_GATEWAY=values):
        with pytest.raises(ImproperlyConfigured) as info:
            get_client()
    assert named in str(info.value)
    assert SECRET not in str(info.value)


def test_missing_or_malformed_setting(emulator):
    with override_settings():
        del settings.GENESYS_GATEWAY
        with pytest.raises(ImproperlyConfigured, match=r"settings\.GENESYS_GATEWAY is missing"):
            get_client()
    with override_settings(GENESYS_GATEWAY=["not", "a", "dict"]):
        with pytest.raises(ImproperlyConfigured, match="must be a dict"):
            get_client()
    with override_settings(GENESYS_GATEWAY=gateway_settings(emulator, CACHE_ALIAS="nope")):
        with pytest.raises(ImproperlyConfigured, match=r"\['CACHE_ALIAS'\]"):
            get_client()
    with override_settings(GENESYS_GATEWAY=gateway_settings(emulator, TOOLS="nowhere_xyz:tools")):
        with pytest.raises(ImproperlyConfigured, match=r"\['TOOLS'\]"):
            get_client()


def test_app_ready_validates_settings(emulator):
    config = apps.get_app_config("genesys_gateway")
    assert isinstance(config, GenesysGatewayConfig)
    assert config.name == "genesys_gateway.contrib.django"
    config.ready()  # the placeholder settings are valid
    values = gateway_settings(emulator)
    del values["CLIENT_SECRET"]
    with override_settings(GENESYS_GATEWAY=values):
        with pytest.raises(ImproperlyConfigured, match=r"\['CLIENT_SECRET'\]"):
            config.ready()


# -- DjangoCacheTokenStore specifics (its TokenStore contract: test_token_stores.py) --------

KEY = store_key("https://login.example.test/oauth/token", "client-1")


def test_store_backend_errors_become_token_store_errors():
    with override_settings(CACHES={
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "broken": {"BACKEND": f"{__name__}.BrokenCache"},
    }):
        store = DjangoCacheTokenStore("broken")
        for action in (lambda: store.get(KEY), lambda: store.set(KEY, fresh_token("a")),
                       lambda: store.invalidate(KEY, "a")):
            with pytest.raises(TokenStoreError) as info:
                action()
            assert isinstance(info.value.__cause__, ConnectionRefusedError)
        with pytest.raises(TokenStoreError):
            with store.lock(KEY):
                pass


def test_store_backend_down_degrades_to_a_direct_fetch(emulator, caplog):
    with override_settings(
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
                "broken": {"BACKEND": f"{__name__}.BrokenCache"}},
        GENESYS_GATEWAY=gateway_settings(emulator, CACHE_ALIAS="broken"),
    ):
        try:
            reply = get_client().complete([{"role": "user", "content": "hi"}])
            assert reply.message.content == "Echo: hi"
            assert "token store unavailable" in caplog.text
        finally:
            reset_client()


# -- workers sharing a real Redis-backed Django cache ---------------------------------------


def _cache_worker(counter_key, barrier, results):
    store = DjangoCacheTokenStore("shared", poll_interval=0.01)
    cache = caches["shared"]

    def fetch():
        n = cache.incr(counter_key)
        time.sleep(0.3)
        return fresh_token(f"token-{n}")

    barrier.wait(timeout=30)
    results.put(get_token(store, KEY, fetch).access_token)


def test_eight_workers_sharing_a_redis_cache_refresh_once(redis_server):
    shared = {"BACKEND": "django.core.cache.backends.redis.RedisCache",
              "LOCATION": redis_server.url}
    with override_settings(CACHES={
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "shared": shared,
    }):
        caches["shared"].clear()
        caches["shared"].set("fetches", 0, timeout=None)
        caches["shared"].close()  # no connection inherited by the forked workers
        tokens = run_processes(MP, _cache_worker, ("fetches",), 8, timeout=30)
        assert tokens == ["token-1"] * 8
        assert caches["shared"].get("fetches") == 1
        caches["shared"].clear()
