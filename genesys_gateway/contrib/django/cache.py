"""A token store in Django's cache: one token for every worker that shares the cache.

Tokens are stored as plain dicts (``Token.to_dict()``) with a cache timeout ending at the
token's expiry. The refresh lock is ``cache.add(lock key, random value, lock_ttl)``,
which is atomic on the memcached, Redis, database and local-memory backends; waiters
poll, and return early as soon as a usable token appears (the caller re-reads it), like
:class:`~genesys_gateway.http.redis_store.RedisTokenStore`.

Two operations are "read, compare, delete" without a server-side script, so they are
not atomic: releasing the lock (a lock that expired and was taken over in between could
be deleted, letting a third process refresh as well) and :meth:`invalidate` (a fresh
token stored in between could be deleted, costing one extra token request). Both races
need a refresh slower than ``lock_ttl`` or two 401s within microseconds; the cost is an
extra token request, never a wrong token. Use the Redis store for a strict guarantee.

Django timeouts are whole seconds on some backends (the Redis backend truncates), so
timeouts are rounded up to at least one second. Any exception raised by the cache
backend becomes :class:`TokenStoreError`: the client logs it and fetches a token
directly instead of failing the request.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from contextlib import contextmanager
from typing import Any, Callable, ContextManager, Iterator

from ...errors import TokenStoreError
from ...http.tokens import LockTiming, Token, lock_timing, polled_lock, usable_token_check

__all__ = ["DjangoCacheTokenStore"]

logger = logging.getLogger("genesys_gateway.auth")


class DjangoCacheTokenStore:
    """Tokens in the Django cache ``cache_alias``.

    Args:
        cache_alias: the alias in ``settings.CACHES`` (default ``"default"``); every
            worker sharing that cache shares one token.
        lock_ttl: seconds after which an unreleased refresh lock expires (rounded up to
            whole seconds; default: :class:`~genesys_gateway.LockTiming`'s).
        wait_timeout: seconds a waiter polls for the lock before
            :class:`~genesys_gateway.TokenStoreError` (the caller then fetches directly).
        poll_interval: seconds between attempts while waiting.
        sleep: how to wait between attempts (injectable for tests).
        clock: the monotonic clock ``wait_timeout`` is measured on (injectable for tests).
        timing: the same as one :class:`~genesys_gateway.LockTiming`; the individual
            arguments, when given, override its fields. Invalid values raise
            :class:`~genesys_gateway.ConfigurationError` naming the field.

    Attributes:
        timing: the lock's timing in force.
        cache_alias: the cache alias.
    """

    def __init__(
        self,
        cache_alias: str = "default",
        lock_ttl: float | None = None,
        wait_timeout: float | None = None,
        poll_interval: float | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
        *,
        timing: LockTiming | None = None,
    ) -> None:
        self.timing = lock_timing(
            timing,
            lock_ttl=lock_ttl,
            wait_timeout=wait_timeout,
            poll_interval=poll_interval,
            sleep=sleep,
            clock=clock,
        )
        self.cache_alias = cache_alias

    def __repr__(self) -> str:
        return f"DjangoCacheTokenStore(cache_alias={self.cache_alias!r})"

    @property
    def cache(self) -> Any:
        """The cache (looked up per call: Django's cache handles are per thread)."""
        from django.core.cache import caches

        with self._mapped("lookup"):
            return caches[self.cache_alias]

    @contextmanager
    def _mapped(self, action: str) -> Iterator[None]:
        """The exception edge: whatever the backend raises (redis, pymemcache, database
        errors...) becomes TokenStoreError, so the client degrades to a direct fetch."""
        try:
            yield
        except TokenStoreError:
            raise
        except Exception as exc:  # backends raise their own, unrelated exception types
            raise TokenStoreError(
                f"Django cache {self.cache_alias!r}: {action} failed: {type(exc).__name__}: {exc}"
            ) from exc

    # -- TokenStore protocol ---------------------------------------------------------------

    def get(self, key: str) -> Token | None:
        """The token stored under ``key`` in the cache, or ``None`` (a malformed
        entry is logged and ignored)."""
        cache = self.cache
        with self._mapped("get"):
            data = cache.get(key)
        if data is None:
            return None
        token = Token.from_dict(data)
        if token is None:
            logger.warning("Ignoring a malformed token in the Django cache under %s", key)
        return token

    def set(self, key: str, token: Token) -> None:
        """Store ``token`` under ``key``, expiring with it (an expired token is not stored)."""
        timeout = math.ceil(token.expires_at - time.time())
        if timeout <= 0:
            return  # already expired
        cache = self.cache
        with self._mapped("set"):
            cache.set(key, token.to_dict(), timeout=timeout)

    def invalidate(self, key: str, access_token: str) -> None:
        """Forget the token under ``key`` if it is still ``access_token``."""
        cache = self.cache
        with self._mapped("invalidate"):
            current = Token.from_dict(cache.get(key))
            if current is not None and current.access_token == access_token:
                cache.delete(key)

    def lock(self, key: str, timeout: float | None = None) -> ContextManager[None]:
        """Hold the refresh lock for ``key``, or return early without it once another
        worker has stored a usable token (the caller re-checks ``get``). Waits
        at most ``timeout`` seconds (the caller's deadline error) and at most the timing's
        ``wait_timeout`` (:class:`TokenStoreError`)."""
        lock_key = f"{key}:lock"
        value = secrets.token_hex(16)
        ttl = max(1, math.ceil(self.timing.lock_ttl))
        cache = self.cache

        def try_acquire() -> bool:
            with self._mapped("lock"):
                return bool(cache.add(lock_key, value, timeout=ttl))

        def release() -> None:
            try:
                if cache.get(lock_key) == value:
                    cache.delete(lock_key)
            except Exception as exc:  # it expires after lock_ttl anyway
                logger.warning(
                    "Could not release the token lock %s (%s); it expires by itself",
                    lock_key,
                    type(exc).__name__,
                )

        return polled_lock(
            try_acquire,
            release,
            usable_token_check(self, key),
            self.timing,
            f"the token lock {lock_key} in Django cache {self.cache_alias!r}",
            timeout,
        )
