"""Access tokens and the token-store protocol.

A store keeps tokens under a key derived from (token URL, client id) and offers a lock
so that only one refresher (thread, process or whole fleet, depending on the store)
fetches a new token while the others wait and then read its result.

Every wait for that lock can be bounded by the caller: ``lock(key, timeout=seconds)``
gives up after ``timeout`` seconds with :func:`deadline_error`, a non-retryable
``TransportError(kind="deadline")`` (the run's deadline passed: fetching the token
directly instead would be pointless), whatever the store's own, longer limits are. Those
own limits (a lock timeout, a wait timeout) still raise :class:`TokenStoreError`, after
which the caller fetches directly.

The polled-lock helpers at the end (:func:`polled_lock` and friends) are the lock of the
stores whose backend has no blocking lock (Redis, the Django cache): take it with an
atomic "add if absent", poll while another refresher holds it, give up on a timeout.
"""

from __future__ import annotations

import inspect
import logging
import re
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, ContextManager, Iterator, Protocol, runtime_checkable

import attrs

from ..at_fork import reinit_in_child
from ..checks import is_callable, seconds
from ..errors import TokenStoreError, TransportError

__all__ = [
    "Token",
    "TokenStore",
    "MemoryTokenStore",
    "store_key",
    "token_problem",
    "MAX_TOKEN_CHARS",
    "single_flight",
    "deadline_error",
    "LockTiming",
    "lock_timing",
    "wait_for_lock",
    "usable_token_check",
    "polled_lock",
]

logger = logging.getLogger("genesys_gateway.auth")

#: The longest access token sent (Genesys Cloud's are well under 2 KiB; servers commonly
#: refuse request headers over 8-16 KiB).
MAX_TOKEN_CHARS = 16384

# Visible ASCII only (RFC 6750's b64token is stricter): no spaces, controls or non-ASCII,
# which could split or corrupt the Authorization header.
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")


@attrs.frozen(repr=False)
class Token:
    """An access token as stores keep it (its ``repr`` never shows the token).

    Attributes:
        access_token: the token sent as ``Authorization: Bearer <access_token>``.
        expires_at: when the server says it expires, in wall-clock epoch seconds.
        refresh_at: when to fetch a new one (epoch seconds, shortly before expiry).
        token_type: the token type the server named (``"bearer"``).
    """

    access_token: str
    expires_at: float
    refresh_at: float
    token_type: str = "bearer"

    def usable(self, now: float) -> bool:
        """Whether it may still be sent at wall-clock time ``now`` (before ``refresh_at``)."""
        return now < self.refresh_at

    def to_dict(self) -> dict[str, str | float]:
        """The token as a JSON-ready dict (what shared stores write; see :meth:`from_dict`)."""
        return {
            "access_token": self.access_token,
            "expires_at": self.expires_at,
            "refresh_at": self.refresh_at,
            "token_type": self.token_type,
        }

    @classmethod
    def from_dict(cls, data: object) -> "Token | None":
        """A token from :meth:`to_dict` output, or ``None`` if ``data`` is not one."""
        if not isinstance(data, dict):
            return None
        try:
            token = data["access_token"]
            expires_at = float(data["expires_at"])
            refresh_at = float(data.get("refresh_at", expires_at))
            token_type = str(data.get("token_type", "bearer"))
        except (KeyError, TypeError, ValueError):
            return None
        if not isinstance(token, str) or not token:
            return None
        return cls(token, expires_at, refresh_at, token_type)

    def __repr__(self) -> str:
        return f"Token(expires_at={self.expires_at:.0f}, access_token=<redacted>)"


def token_problem(token: Token | str) -> str | None:
    """Why an access token (a :class:`Token` or its string) cannot be sent as a bearer
    token, or ``None`` when it can. The same check for fetched, stored and fixed tokens."""
    value = token.access_token if isinstance(token, Token) else token
    if not value:
        return "is empty"
    if len(value) > MAX_TOKEN_CHARS:
        return f"is longer than {MAX_TOKEN_CHARS} characters"
    if not _HEADER_SAFE.fullmatch(value):
        return "cannot be sent in a header"
    return None


def store_key(token_url: str, client_id: str) -> str:
    """The store key for one OAuth client at one token endpoint (no secret involved)."""
    import hashlib  # only token stores shared across processes need it

    digest = hashlib.sha256(f"{token_url}\n{client_id}".encode()).hexdigest()[:32]
    return f"genesys_gateway:token:{digest}"


@runtime_checkable
class TokenStore(Protocol):
    """Where tokens live. Implementations raise :class:`TokenStoreError` when unreachable;
    the caller then fetches a token directly (and logs it) rather than failing a request."""

    def get(self, key: str) -> Token | None:
        """The token stored under ``key``, or ``None``."""

    def set(self, key: str, token: Token) -> None:
        """Store ``token`` under ``key``, replacing any."""

    def invalidate(self, key: str, access_token: str) -> None:
        """Forget the token under ``key`` if it is still ``access_token`` (compare-and-delete,
        so a fresh token stored meanwhile by another refresher survives)."""
        ...

    def lock(self, key: str, timeout: float | None = None) -> ContextManager[None]:
        """Hold the refresh lock for ``key``; blocks until acquired. With ``timeout``
        (seconds, the caller's deadline), give up after that long with
        :func:`deadline_error`; ``None`` waits within the store's own limits only.

        A store written for 0.1, whose ``lock`` takes no ``timeout``, still works with
        :func:`single_flight`: its waits are then bounded by its own limits only."""
        ...


def deadline_error(what: str) -> TransportError:
    """What a lock waiter raises when the caller's ``timeout`` passes: the run's deadline
    passed while another refresher held ``what`` (not retryable, and not a reason to
    fetch a token directly as a :class:`TokenStoreError` would be)."""
    return TransportError(f"the deadline passed while another refresher held {what}",
                          kind="deadline")


def deadline_at(clock: Callable[[], float], timeout: float | None) -> float | None:
    """``clock()`` + ``timeout`` (``None``: no deadline); a negative timeout counts as 0."""
    return None if timeout is None else clock() + max(0.0, timeout)


class MemoryTokenStore:
    """The default store: tokens in this process, one refresher per key across threads."""

    def __init__(self) -> None:
        self._tokens: dict[str, Token] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        reinit_in_child(self, MemoryTokenStore._after_fork)

    def _after_fork(self) -> None:
        """In a forked child: fresh locks (a parent thread may have been refreshing, holding
        one). The tokens stay: they are valid in the child too."""
        self._locks = {}
        self._guard = threading.Lock()

    def get(self, key: str) -> Token | None:
        """The token stored under ``key``, or ``None``."""
        return self._tokens.get(key)

    def set(self, key: str, token: Token) -> None:
        """Store ``token`` under ``key``, replacing any."""
        self._tokens[key] = token

    def invalidate(self, key: str, access_token: str) -> None:
        """Forget the token under ``key`` if it is still ``access_token``."""
        with self._guard:
            current = self._tokens.get(key)
            if current is not None and current.access_token == access_token:
                del self._tokens[key]

    @contextmanager
    def lock(self, key: str, timeout: float | None = None) -> Iterator[None]:
        """Hold this process's refresh lock for ``key``; with ``timeout``, wait at most that long."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        if timeout is None:
            acquired = lock.acquire()
        elif timeout <= 0:
            acquired = lock.acquire(blocking=False)
        else:
            acquired = lock.acquire(timeout=timeout)
        if not acquired:
            raise deadline_error("the in-memory token lock")
        try:
            yield
        finally:
            lock.release()

    def __repr__(self) -> str:
        return f"MemoryTokenStore({len(self._tokens)} tokens)"


def single_flight(
    store: TokenStore,
    key: str,
    fetch: Callable[[], Token],
    now: Callable[[], float] = time.time,
    *,
    timeout: float | None = None,
    problem: Callable[[Token], str | None] = token_problem,
) -> Token:
    """The usable token under ``key``, fetching one only if none is there: check, take the
    store's lock, check again (another refresher may have finished meanwhile), fetch, store.
    Whoever shares the store (threads, processes, a fleet) shares one refresh.

    ``timeout`` bounds the wait for the lock (see :meth:`TokenStore.lock`). ``problem``
    (default :func:`token_problem`) vets a stored token (``None``: fine, else why not,
    completing "the token ..."): a token with a problem is logged
    (never its value), discarded from the store under the lock and replaced. A fetched
    token that cannot be stored (the store died meanwhile) is used all the same, with a
    warning, rather than fetched again.
    """

    def acceptable(token: Token | None) -> Token | None:
        if token is None or not token.usable(now()):
            return None
        return token if problem(token) is None else None

    token = acceptable(store.get(key))
    if token is not None:
        return token
    fetched: Token | None = None
    try:
        with _lock(store, key, timeout):
            stored = store.get(key)
            token = acceptable(stored)
            if token is not None:
                return token
            if stored is not None and stored.usable(now()):
                _discard(store, key, stored, problem(stored))
            fetched = fetch()
            try:
                store.set(key, fetched)
            except TokenStoreError as e:
                logger.warning("could not store the fetched token, using it without storing "
                               "it: %s", e)
            return fetched
    except TokenStoreError as e:
        if fetched is None:
            raise
        logger.warning("token store failed after a token was fetched, using that token: %s", e)
        return fetched


def _lock(store: TokenStore, key: str, timeout: float | None) -> ContextManager[None]:
    """``store.lock(key, timeout=timeout)``, or ``store.lock(key)`` for a store whose lock
    takes no timeout (written against 0.1)."""
    if timeout is None or not _takes_timeout(store):
        return store.lock(key)
    return store.lock(key, timeout=timeout)


def _takes_timeout(store: TokenStore) -> bool:
    try:
        parameters = inspect.signature(store.lock).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "timeout" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _discard(store: TokenStore, key: str, token: Token, problem: str | None) -> None:
    """Log (never the value) and compare-and-delete a stored token that must not be used."""
    logger.warning("discarding the stored access token (it %s); fetching a new one", problem)
    try:
        store.invalidate(key, token.access_token)
    except TokenStoreError as e:  # the fresh token replaces it anyway
        logger.warning("could not discard the stored access token: %s", e)


# -- lock timing and polled locks (the Redis and Django cache stores) --------------------


@attrs.frozen(kw_only=True)
class LockTiming:
    """How a store's refresh lock behaves in time, for stores whose lock expires by itself
    and is waited for by polling (Redis, the Django cache). Invalid values raise
    :class:`ConfigurationError` naming the field.

    Attributes:
        lock_ttl: seconds until an unreleased lock expires: how long a crashed refresher can
            block the others (default 10); keep it above a token request's worst case.
        wait_timeout: seconds a waiter polls before :class:`TokenStoreError`, after which
            it fetches directly (default 15; ``math.inf``: as long as it takes).
        poll_interval: seconds between attempts while waiting (default 0.05).
        sleep: how to wait between attempts (injectable for tests).
        clock: the monotonic clock ``wait_timeout`` is measured on (injectable for tests).
    """

    lock_ttl: float = attrs.field(default=10.0, validator=seconds(positive=True))
    wait_timeout: float = attrs.field(default=15.0, validator=seconds(allow_infinity=True))
    poll_interval: float = attrs.field(default=0.05, validator=seconds())
    sleep: Callable[[float], None] = attrs.field(default=time.sleep, validator=is_callable, repr=False)
    clock: Callable[[], float] = attrs.field(default=time.monotonic, validator=is_callable, repr=False)


def lock_timing(
    timing: LockTiming | None = None,
    *,
    lock_ttl: float | None = None,
    wait_timeout: float | None = None,
    poll_interval: float | None = None,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] | None = None,
) -> LockTiming:
    """``timing`` (default :class:`LockTiming()`) with the fields given here replaced: how
    the stores combine their ``timing=`` argument with their individual keyword arguments."""
    given = {"lock_ttl": lock_ttl, "wait_timeout": wait_timeout,
             "poll_interval": poll_interval, "sleep": sleep, "clock": clock}
    changes: dict[str, Any] = {name: value for name, value in given.items() if value is not None}
    return attrs.evolve(timing if timing is not None else LockTiming(), **changes)


def wait_for_lock(
    try_acquire: Callable[[], bool],
    usable_token_exists: Callable[[], bool],
    timing: LockTiming,
    what: str,
    timeout: float | None = None,
) -> bool:
    """Poll until ``try_acquire()`` succeeds (``True``) or a usable token appears
    (``False``: proceed without the lock). Raises :func:`deadline_error` after the
    caller's ``timeout``, else :class:`TokenStoreError` after ``timing.wait_timeout``
    seconds, both measured on ``timing.clock``; never sleeps past either."""
    patience = timing.clock() + timing.wait_timeout
    deadline = deadline_at(timing.clock, timeout)
    while True:
        if try_acquire():
            return True
        if usable_token_exists():
            return False
        now = timing.clock()
        if deadline is not None and now >= deadline:
            raise deadline_error(what)
        if now >= patience:
            raise TokenStoreError(f"timed out after {timing.wait_timeout:g}s waiting for {what}")
        end = patience if deadline is None else min(patience, deadline)
        timing.sleep(min(timing.poll_interval, end - now))


def usable_token_check(store: TokenStore, key: str) -> Callable[[], bool]:
    """A check that ``store`` holds a usable token under ``key`` (another refresher's result)."""

    def usable_token_exists() -> bool:
        token = store.get(key)
        return token is not None and token.usable(time.time()) and token_problem(token) is None

    return usable_token_exists


@contextmanager
def polled_lock(
    try_acquire: Callable[[], bool],
    release: Callable[[], None],
    usable_token_exists: Callable[[], bool],
    timing: LockTiming,
    what: str,
    timeout: float | None = None,
) -> Iterator[None]:
    """Hold a lock taken by polling ``try_acquire`` (see :func:`wait_for_lock`), released
    with ``release``; or go on without it once a usable token appeared."""
    if not wait_for_lock(try_acquire, usable_token_exists, timing, what, timeout):
        yield
        return
    try:
        yield
    finally:
        release()
