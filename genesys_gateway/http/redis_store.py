"""A token store in Redis: one token and one refresher for a whole fleet of processes.

Tokens are JSON strings under ``f"{prefix}:{key}"`` with a Redis TTL ending at the
token's expiry. The refresh lock is ``SET lockkey <random> NX PX lock_ttl``, released by
a compare-and-delete script (only the holder's random value deletes it), so a refresher
that crashed stops blocking the others after ``lock_ttl`` and a slow one never deletes a
successor's lock.

While waiting for the lock, :meth:`RedisTokenStore.lock` also watches the token: as soon
as another process has stored a usable one it returns without the lock (the caller
re-reads the store under the "lock" and finds it), so waiters do not queue up behind each
other just to read a token.

Every Redis or socket error becomes :class:`TokenStoreError`; the client then logs a
warning and fetches a token directly instead of failing the request. ``redis`` is an
optional dependency (``pip install genesys_gateway[redis]``) and is only imported to
recognise its exceptions.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import time
from contextlib import contextmanager
from typing import Any, Callable, ContextManager, Iterator

from ..errors import TokenStoreError
from .tokens import LockTiming, Token, lock_timing, polled_lock, usable_token_check

__all__ = ["RedisTokenStore"]

logger = logging.getLogger("genesys_gateway.auth")

# KEYS[1] = lock key, ARGV[1] = the holder's random value.
_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS[1] = token key, ARGV[1] = the access token to forget.
_INVALIDATE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, data = pcall(cjson.decode, raw)
if ok and type(data) == 'table' and data['access_token'] == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def _backend_errors() -> tuple[type[BaseException], ...]:
    try:
        import redis.exceptions
    except ImportError:  # a duck-typed client without the redis package
        return (OSError,)
    return (redis.exceptions.RedisError, OSError)


class RedisTokenStore:
    """Tokens in Redis, shared by every process that uses the same Redis and prefix.

    Args:
        redis_client: a ``redis.Redis`` (or compatible) client. Give it short
            ``socket_connect_timeout``/``socket_timeout`` values (and a modest ``retry``):
            an unreachable Redis costs each token lookup that long before the client falls
            back to fetching the token directly.
        key: prefix of every Redis key this store writes.
        lock_ttl: seconds after which an unreleased refresh lock expires: how long a
            crashed refresher can block the others, so keep it above a token request's
            worst-case duration (default: :class:`~genesys_gateway.LockTiming`'s).
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
        prefix: the ``key`` prefix.
    """

    def __init__(
        self,
        redis_client: Any,
        key: str = "genesys_gateway",
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
        self._redis = redis_client
        self.prefix = key
        self._errors = _backend_errors()
        self._release_script = redis_client.register_script(_RELEASE_LOCK)
        self._invalidate_script = redis_client.register_script(_INVALIDATE)

    def __repr__(self) -> str:  # never the client: its repr may name hosts or credentials
        return f"RedisTokenStore(key={self.prefix!r}, lock_ttl={self.timing.lock_ttl:g})"

    def _token_key(self, key: str) -> str:
        return f"{self.prefix}:{key}"

    def _lock_key(self, key: str) -> str:
        return f"{self.prefix}:{key}:lock"

    @contextmanager
    def _mapped(self, action: str) -> Iterator[None]:
        """Turn Redis and socket errors into TokenStoreError (the one exception edge)."""
        try:
            yield
        except self._errors as exc:
            raise TokenStoreError(f"Redis token store: {action} failed: {type(exc).__name__}: {exc}") from exc

    # -- TokenStore protocol ---------------------------------------------------------------

    def get(self, key: str) -> Token | None:
        """The token stored under ``key`` in Redis, or ``None``."""
        with self._mapped("GET"):
            raw = self._redis.get(self._token_key(key))
        if raw is None:
            return None
        try:
            data = json.loads(raw)
        except (TypeError, ValueError):
            logger.warning("Ignoring a malformed token in Redis under %s", self._token_key(key))
            return None
        token = Token.from_dict(data)
        if token is None:
            logger.warning("Ignoring a malformed token in Redis under %s", self._token_key(key))
        return token

    def set(self, key: str, token: Token) -> None:
        """Store ``token`` under ``key``, expiring with it (an expired token is not stored)."""
        ttl_ms = math.ceil((token.expires_at - time.time()) * 1000)
        if ttl_ms <= 0:
            return  # already expired: storing it would only make others use a dead token
        payload = json.dumps(token.to_dict(), separators=(",", ":"))
        with self._mapped("SET"):
            self._redis.set(self._token_key(key), payload, px=ttl_ms)

    def invalidate(self, key: str, access_token: str) -> None:
        """Forget the token under ``key`` if it is still ``access_token`` (atomically, in a
        Lua script)."""
        with self._mapped("invalidate"):
            self._invalidate_script(keys=[self._token_key(key)], args=[access_token])

    def lock(self, key: str, timeout: float | None = None) -> ContextManager[None]:
        """Hold the fleet-wide refresh lock for ``key``, or return early without it once
        another process has stored a usable token (the caller re-checks ``get``). Waits
        at most ``timeout`` seconds (the caller's deadline error) and at most the timing's
        ``wait_timeout`` (:class:`TokenStoreError`)."""
        lock_key = self._lock_key(key)
        value = secrets.token_hex(16)
        ttl_ms = max(1, math.ceil(self.timing.lock_ttl * 1000))

        def try_acquire() -> bool:
            with self._mapped("lock"):
                return bool(self._redis.set(lock_key, value, nx=True, px=ttl_ms))

        return polled_lock(
            try_acquire,
            lambda: self._release(lock_key, value),
            usable_token_check(self, key),
            self.timing,
            f"the Redis token lock {lock_key}",
            timeout,
        )

    def _release(self, lock_key: str, value: str) -> None:
        try:
            self._release_script(keys=[lock_key], args=[value])
        except self._errors as exc:  # the lock will expire after lock_ttl anyway
            logger.warning(
                "Could not release the Redis token lock %s (%s); it expires by itself",
                lock_key,
                type(exc).__name__,
            )
