"""The TokenStore contract, tested once for every store.

Each test names the stores it runs on (``indirect`` parametrisation of ``case``):

* ``memory`` - :class:`MemoryTokenStore` (shared by the threads using one instance)
* ``file`` - :class:`FileTokenStore` on a temporary file
* ``redis`` - :class:`RedisTokenStore` on a real redis-server (tests/fixtures_redis.py)
* ``django`` - :class:`DjangoCacheTokenStore` on Django's local-memory cache

The contract includes ``lock(key, timeout)``: a caller's timeout (its run's deadline)
bounds every wait for the refresh lock and ends it with ``TransportError(kind="deadline")``;
and ``single_flight`` over every store: bounded by that timeout, discarding a stored token
that cannot be sent, keeping a fetched token the store failed to keep.

What only one store does (file modes, symlinks, flock across processes, Redis lock expiry
after a killed holder, backend errors...) stays in that store's own test module.

No test sleeps to wait for something: waits are on events with a generous bound that is
only reached when a test fails, and the polling stores get an injected sleep that reports
when a waiter is polling.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
import time
from typing import Any, Callable, ContextManager

import pytest

from genesys_gateway.errors import ConfigurationError, TokenStoreError, TransportError
from genesys_gateway.http.file_store import FileTokenStore
from genesys_gateway.http.redis_store import RedisTokenStore
from genesys_gateway.http.tokens import (
    LockTiming,
    MemoryTokenStore,
    Token,
    TokenStore,
    single_flight,
    store_key,
)
from tests.store_helpers import fresh_token, get_token

KEY = store_key("https://login.example.test/oauth/token", "client-1")
OTHER = store_key("https://login.example.test/oauth/token", "client-2")

PATIENCE = 10.0  # bound on waiting for what must happen; reached only by a failing test
NO_ENTRY = 0.05  # how long a blocked waiter gets to (wrongly) enter, without a poll hook
MARGIN = 0.5  # how late a real-time timeout may fire (the contract's bound on a deadline)
POLL = 0.001  # the polling stores' poll interval in these tests

ALL = ["memory", "file", "redis", "django"]
POLLING = ["redis", "django"]  # stores that poll for their lock with an injectable sleep
PLANTABLE = ["file", "redis", "django"]  # stores with a backend a raw entry can be put in


# -- the stores under test ------------------------------------------------------------------


class StoreCase:
    """One kind of store: handles on one shared backend, as separate processes or workers
    would have them, and access to that backend behind the store's back."""

    def handle(
        self, *, on_wait: Callable[[], None] | None = None, impatient: bool = False
    ) -> TokenStore:
        """A store on the shared backend. ``on_wait`` is called whenever it polls for the
        lock (polling stores only); an ``impatient`` one raises :class:`TokenStoreError`
        instead of waiting for the lock (except the memory store, which cannot)."""
        raise NotImplementedError

    def plant(self, key: str, value: object) -> None:
        """Store ``value`` (JSON-like data) under ``key`` as the backend holds entries."""
        raise NotImplementedError


class MemoryCase(StoreCase):
    def __init__(self) -> None:
        self.store = MemoryTokenStore()

    def handle(self, *, on_wait=None, impatient=False):
        return self.store  # what a memory store shares is the instance itself


class FileCase(StoreCase):
    def __init__(self, path) -> None:
        self.path = path

    def handle(self, *, on_wait=None, impatient=False):
        return FileTokenStore(self.path, lock_timeout=0 if impatient else PATIENCE)

    def plant(self, key, value):
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps({key: value}).encode())
        finally:
            os.close(fd)


def polling_timing(on_wait: Callable[[], None] | None, impatient: bool) -> LockTiming:
    def sleep(seconds: float) -> None:
        if on_wait is not None:
            on_wait()
        time.sleep(seconds)  # the store's own poll interval, as in production

    return LockTiming(wait_timeout=0 if impatient else PATIENCE, poll_interval=POLL, sleep=sleep)


class PollingCase(StoreCase):
    def make(self, **options) -> Any:
        """A store built with these constructor options (timing ones among them)."""
        raise NotImplementedError

    def handle(self, *, on_wait=None, impatient=False):
        return self.make(timing=polling_timing(on_wait, impatient))

    def lock_held(self, key: str) -> bool:
        raise NotImplementedError


class RedisCase(PollingCase):
    def __init__(self, client) -> None:
        self.client = client

    def make(self, **options):
        return RedisTokenStore(self.client, **options)

    def plant(self, key, value):
        self.client.set(f"genesys_gateway:{key}", json.dumps(value))

    def lock_held(self, key):
        return bool(self.client.exists(f"genesys_gateway:{key}:lock"))


class DjangoCase(PollingCase):
    def __init__(self, cache, store_class) -> None:
        self.cache = cache
        self.store_class = store_class

    def make(self, **options):
        return self.store_class(**options)

    def plant(self, key, value):
        self.cache.set(key, value)

    def lock_held(self, key):
        return self.cache.get(f"{key}:lock") is not None


def django_cache():
    """The default Django cache, a LocMemCache, as tests/django_env.py configures it."""
    pytest.importorskip("django")
    from tests.django_env import configure

    configure()  # the settings every test module shares (tests/django_env.py)
    from django.core.cache import caches

    return caches["default"]


@pytest.fixture
def case(request, tmp_path):
    name = request.param
    if name == "memory":
        yield MemoryCase()
    elif name == "file":
        yield FileCase(tmp_path / "tokens.json")
    elif name == "redis":
        yield RedisCase(request.getfixturevalue("redis_client"))
    elif name == "django":
        cache = django_cache()
        from genesys_gateway.contrib.django.cache import DjangoCacheTokenStore

        cache.clear()
        yield DjangoCase(cache, DjangoCacheTokenStore)
        cache.clear()
    else:  # pragma: no cover
        raise ValueError(name)


def stores(*names: str):
    return pytest.mark.parametrize("case", names, indirect=True)


# -- helpers --------------------------------------------------------------------------------


def lock_is_free(case: StoreCase) -> bool:
    """Whether another holder gets the lock for ``KEY`` at once. Impatient handles raise
    instead of waiting; a held memory lock would block, hence the thread. (A polling
    store returns early when a usable token is stored, so call this without one.)"""
    entered = threading.Event()

    def take() -> None:
        with contextlib.suppress(TokenStoreError):
            with case.handle(impatient=True).lock(KEY):
                entered.set()

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    thread.join(PATIENCE)
    return entered.is_set()


class Watched:
    """A store whose ``get`` calls ``on_get`` first (to see who has looked a token up)."""

    def __init__(self, store: TokenStore, on_get: Callable[[], None]) -> None:
        self.store = store
        self.on_get = on_get

    def get(self, key: str) -> Token | None:
        self.on_get()
        return self.store.get(key)

    def set(self, key: str, token: Token) -> None:
        self.store.set(key, token)

    def invalidate(self, key: str, access_token: str) -> None:
        self.store.invalidate(key, access_token)

    def lock(self, key: str, timeout: float | None = None) -> ContextManager[None]:
        return self.store.lock(key, timeout=timeout)


class Progress:
    """Where ``n`` threads running single_flight are: how often each has looked the token
    up (through :class:`Watched`), and which have polled for the lock."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.gets: dict[int, int] = {}
        self.pollers: set[int] = set()
        self.changed = threading.Condition()

    def looked(self) -> None:
        with self.changed:
            me = threading.get_ident()
            self.gets[me] = self.gets.get(me, 0) + 1
            self.changed.notify_all()

    def polled(self) -> None:
        with self.changed:
            self.pollers.add(threading.get_ident())
            self.changed.notify_all()

    def everyone_looked(self) -> bool:
        return len(self.gets) == self.n

    def others_waiting_or_past(self) -> bool:
        me = threading.get_ident()
        return self.everyone_looked() and all(
            thread in self.pollers or count >= 2
            for thread, count in self.gets.items()
            if thread != me
        )

    def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(condition, timeout)


class Boom(Exception):
    pass


# -- get, set, invalidate -------------------------------------------------------------------


@stores(*ALL)
def test_get_of_a_missing_key_is_none(case):
    store = case.handle()
    assert store.get(KEY) is None
    store.set(OTHER, fresh_token("other"))
    assert store.get(KEY) is None


@stores(*ALL)
def test_set_then_get_round_trips_every_field(case):
    store = case.handle()
    now = time.time()
    token = Token("tok.abc-123", now + 1234.5678, now + 1000.25, token_type="Bearer")
    store.set(KEY, token)
    got = store.get(KEY)
    assert got == token
    assert (got.access_token, got.expires_at, got.refresh_at, got.token_type) == (
        "tok.abc-123", now + 1234.5678, now + 1000.25, "Bearer"
    )
    assert case.handle().get(KEY) == token  # another worker, process or run sees it too
    replacement = fresh_token("newer")
    store.set(KEY, replacement)
    assert case.handle().get(KEY) == replacement


@stores(*ALL)
def test_invalidate_is_compare_and_delete(case):
    store = case.handle()
    store.set(KEY, fresh_token("new"))
    store.set(OTHER, fresh_token("other"))
    store.invalidate(KEY, "stale")  # another refresher already replaced the stale token
    assert store.get(KEY).access_token == "new"
    store.invalidate(KEY, "new")
    assert store.get(KEY) is None
    assert store.get(OTHER).access_token == "other"  # other keys are untouched
    store.invalidate(KEY, "new")  # nothing there any more: no error
    store.invalidate("never-stored", "x")


# -- expiry ---------------------------------------------------------------------------------


@stores(*ALL)
def test_a_token_due_for_refresh_is_kept_but_not_served(case):
    store = case.handle()
    now = time.time()
    due = Token("due", now + 120, now - 1)  # still valid, but past its refresh time
    store.set(KEY, due)
    assert store.get(KEY) == due  # the store keeps it; usability is the caller's call
    fetches = []

    def fetch():
        fetches.append(1)
        return fresh_token("renewed")

    assert get_token(store, KEY, fetch).access_token == "renewed"
    assert fetches == [1]
    assert store.get(KEY).access_token == "renewed"


@stores(*POLLING)
def test_an_expired_token_is_not_stored(case):
    store = case.handle()
    store.set(KEY, Token("old", time.time() - 1, time.time() - 61))
    assert store.get(KEY) is None


# -- the lock -------------------------------------------------------------------------------


@stores(*ALL)
def test_lock_excludes_a_second_holder_until_released(case):
    holder = case.handle()
    polling = threading.Event()
    waiter = case.handle(on_wait=polling.set)
    order = []

    def second_holder() -> None:
        with waiter.lock(KEY):
            order.append("waiter in")

    thread = threading.Thread(target=second_holder, daemon=True)
    with holder.lock(KEY):
        thread.start()
        if isinstance(case, PollingCase):
            assert polling.wait(PATIENCE)  # it tried, was refused, and polls
        else:
            thread.join(NO_ENTRY)  # blocked in threading.Lock or flock: give it a chance
        assert order == [] and thread.is_alive()
        order.append("holder out")
    thread.join(PATIENCE)
    assert order == ["holder out", "waiter in"]


@stores(*ALL)
def test_lock_is_released_on_exit_and_on_exceptions(case):
    store = case.handle()
    with store.lock(KEY):
        pass
    assert lock_is_free(case)
    with pytest.raises(Boom, match="while refreshing"):
        with store.lock(KEY):
            raise Boom("while refreshing")
    assert lock_is_free(case)


@stores(*ALL)
def test_set_and_invalidate_work_while_holding_the_lock(case):
    store = case.handle(impatient=True)  # a store that locked itself out raises, not hangs
    with store.lock(KEY):  # single_flight stores its token under the lock
        store.set(KEY, fresh_token("a"))
        store.invalidate(KEY, "a")
        store.set(KEY, fresh_token("b"))
    assert store.get(KEY).access_token == "b"


@pytest.mark.parametrize(
    "case, sharing",
    [
        ("memory", "one instance"),
        ("file", "one instance"),
        ("file", "instance per thread"),
        ("redis", "one instance"),
        ("redis", "instance per thread"),
        ("django", "one instance"),
        ("django", "instance per thread"),
    ],
    indirect=["case"],
)
def test_single_flight_with_n_threads_fetches_once(case, sharing):
    n = 8
    progress = Progress(n)
    shared = case.handle(on_wait=progress.polled)
    polls = isinstance(case, PollingCase)
    fetches = []

    def fetch() -> Token:
        fetches.append(1)
        # Hold the lock until every thread has found no token, and every other one is
        # waiting for the lock (seen when a store polls) or got past it (a broken lock):
        # then only the lock and the re-check under it keep the others from fetching.
        assert progress.wait_until(progress.everyone_looked, PATIENCE), "a thread never looked"
        settled = progress.wait_until(
            progress.others_waiting_or_past, PATIENCE if polls else NO_ENTRY
        )
        assert settled or not polls, "a waiter never polled"
        return fresh_token(f"token-{len(fetches)}")

    barrier = threading.Barrier(n)
    seen, errors = [], []

    def worker() -> None:
        store = shared if sharing == "one instance" else case.handle(on_wait=progress.polled)
        barrier.wait()
        try:
            seen.append(get_token(Watched(store, progress.looked), KEY, fetch).access_token)
        except Exception as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PATIENCE * 2)
    assert errors == []
    assert seen == ["token-1"] * n
    assert len(fetches) == 1
    shared.invalidate(KEY, "token-1")
    assert lock_is_free(case)  # released by the refresher, not left to expire


# -- malformed entries ----------------------------------------------------------------------


@stores(*PLANTABLE)
@pytest.mark.parametrize(
    "entry",
    [
        "not a token",
        {"access_token": 5, "expires_at": 9e9},
        {"access_token": "x", "expires_at": "later"},
        {"expires_at": 9e9},
    ],
    ids=["string", "non-string token", "non-numeric expiry", "no token"],
)
def test_malformed_entry_reads_as_none_with_a_warning_then_set_replaces_it(case, entry, caplog):
    case.plant(KEY, entry)
    store = case.handle()
    with caplog.at_level(logging.WARNING, logger="genesys_gateway.auth"):
        assert store.get(KEY) is None
    assert "malformed" in caplog.text
    store.invalidate(KEY, "some-token")  # foreign data does not trip compare-and-delete
    token = fresh_token("replacement")
    store.set(KEY, token)
    assert store.get(KEY) == token


# -- waiting for a polled lock ---------------------------------------------------------------


@stores(*POLLING)
def test_a_waiter_proceeds_without_the_lock_once_a_usable_token_appears(case):
    holder = case.handle()
    sleeps = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:  # the holder stores its token while we wait
            holder.set(KEY, fresh_token("from-holder"))

    waiter = case.make(timing=LockTiming(poll_interval=0.25, sleep=sleep))
    with holder.lock(KEY):
        with waiter.lock(KEY):  # does not hold the lock, but the token is there
            assert waiter.get(KEY).access_token == "from-holder"
        assert case.lock_held(KEY)  # still the holder's
    assert sleeps == [0.25, 0.25, 0.25]
    assert not case.lock_held(KEY)


@stores(*POLLING)
def test_a_waiter_gives_up_after_wait_timeout_with_token_store_error(case):
    now = [0.0]
    sleeps = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    holder = case.handle()
    waiter = case.make(wait_timeout=1.0, poll_interval=0.25, sleep=sleep, clock=lambda: now[0])
    with holder.lock(KEY):
        with pytest.raises(TokenStoreError, match="timed out after 1s"):
            with waiter.lock(KEY):
                pytest.fail("must not get here")
        assert case.lock_held(KEY)  # the waiter did not take or break the holder's lock
    assert sleeps == [0.25] * 4
    assert now[0] == pytest.approx(1.0)


# -- the caller's timeout: lock(key, timeout) ------------------------------------------------
#
# A caller (the client, with its run's deadline) bounds its wait for the refresh lock; when
# that passes first the waiter raises TransportError(kind="deadline"), not TokenStoreError
# (which would make the client fetch directly). The polling stores are timed on their
# injected clock and sleep; the memory and file stores block in threading.Lock and flock,
# so they are timed for real with a short timeout and the contract's margin.


class FakeTime:
    """An injected clock and sleep: sleeping advances the clock and is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds

    def timing(self, **fields: float) -> LockTiming:
        return LockTiming(sleep=self.sleep, clock=self.clock, **fields)


def gives_up_at_the_deadline(waiter: TokenStore, timeout: float) -> TransportError:
    """Wait for the held lock with ``timeout``; return the deadline error raised."""
    with pytest.raises(TransportError) as info:
        with waiter.lock(KEY, timeout=timeout):
            pytest.fail("the waiter must not get the held lock")
    assert info.value.kind == "deadline" and not info.value.retryable
    assert not isinstance(info.value, TokenStoreError)
    return info.value


@stores(*ALL)
def test_a_free_lock_is_taken_at_once_with_a_timeout(case):
    store = case.handle()
    for timeout in (5.0, 0.0, -1.0):  # zero or less: one attempt, no wait
        with store.lock(KEY, timeout=timeout):
            store.set(KEY, fresh_token(f"t{timeout}"))
        store.invalidate(KEY, f"t{timeout}")
        assert lock_is_free(case)


@stores("memory", "file")
@pytest.mark.parametrize("timeout", [0.2, 0.0])
def test_a_blocking_store_gives_up_at_the_timeout_with_the_deadline_error(case, timeout):
    holder, waiter = case.handle(), case.handle()  # own limits: PATIENCE
    with holder.lock(KEY):
        started = time.monotonic()
        error = gives_up_at_the_deadline(waiter, timeout)
        elapsed = time.monotonic() - started
    assert timeout <= elapsed < timeout + MARGIN
    assert "deadline" in str(error)
    assert lock_is_free(case)  # the holder's exit released it; the waiter left nothing


@stores(*POLLING)
def test_a_polling_store_gives_up_at_the_timeout_with_the_deadline_error(case):
    fake = FakeTime()
    holder = case.handle()
    waiter = case.make(timing=fake.timing(poll_interval=0.25))  # wait_timeout: 15 s
    with holder.lock(KEY):
        gives_up_at_the_deadline(waiter, 1.0)
        assert case.lock_held(KEY)  # the holder's lock is neither taken nor broken
    assert fake.sleeps == [0.25] * 4 and fake.now == pytest.approx(1.0)


@stores(*POLLING)
def test_a_polling_store_never_sleeps_past_the_timeout(case):
    fake = FakeTime()
    waiter = case.make(timing=fake.timing(poll_interval=0.3))
    with case.handle().lock(KEY):
        gives_up_at_the_deadline(waiter, 1.0)
        gives_up_at_the_deadline(waiter, 0.0)  # a passed deadline: one attempt, no sleep
    assert fake.sleeps == pytest.approx([0.3, 0.3, 0.3, 0.1])
    assert fake.now == pytest.approx(1.0)


@stores(*POLLING)
@pytest.mark.parametrize("wait_timeout, timeout, raised", [
    (0.5, 1.0, TokenStoreError),  # the store's own limit first: the caller fetches directly
    (1.0, 0.5, TransportError),  # the caller's deadline first: give up, no direct fetch
    (1.0, 1.0, TransportError),  # both at once: the deadline has passed all the same
])
def test_the_earlier_of_the_timeout_and_the_wait_timeout_decides(case, wait_timeout, timeout,
                                                                 raised):
    fake = FakeTime()
    waiter = case.make(timing=fake.timing(poll_interval=0.25, wait_timeout=wait_timeout))
    with case.handle().lock(KEY):
        with pytest.raises(raised):
            with waiter.lock(KEY, timeout=timeout):
                pytest.fail("must not get here")
    assert fake.now == pytest.approx(min(wait_timeout, timeout))


@pytest.mark.parametrize("lock_timeout, timeout, raised", [
    (0.1, 5.0, TokenStoreError),
    (5.0, 0.1, TransportError),
])
def test_file_store_the_earlier_of_timeout_and_lock_timeout_decides(tmp_path, lock_timeout,
                                                                    timeout, raised):
    holder = FileTokenStore(tmp_path / "tokens.json")
    waiter = FileTokenStore(tmp_path / "tokens.json", lock_timeout=lock_timeout)
    with holder.lock(KEY):
        started = time.monotonic()
        with pytest.raises(raised):
            with waiter.lock(KEY, timeout=timeout):
                pytest.fail("must not get here")
    assert time.monotonic() - started < min(lock_timeout, timeout) + MARGIN


def test_file_store_threads_of_one_store_wait_with_their_timeout(tmp_path):
    """Two threads on one FileTokenStore: the second waits on the thread lock, bounded."""
    store = FileTokenStore(tmp_path / "tokens.json")
    errors = []

    def waiter() -> None:
        started = time.monotonic()
        try:
            with store.lock(KEY, timeout=0.2):
                pass
        except TransportError as exc:
            errors.append((exc.kind, time.monotonic() - started))

    with store.lock(KEY):
        thread = threading.Thread(target=waiter)
        thread.start()
        thread.join(PATIENCE)
    assert len(errors) == 1 and errors[0][0] == "deadline" and errors[0][1] < 0.2 + MARGIN


@stores(*POLLING)
def test_a_polling_waiter_does_not_return_early_for_a_token_it_cannot_send(case):
    """Return-early-on-a-usable-token must not be fooled by a stored bad token."""
    fake = FakeTime()
    holder = case.handle()
    holder.set(KEY, fresh_token("bad\r\ntoken"))
    waiter = case.make(timing=fake.timing(poll_interval=0.25))
    with holder.lock(KEY):
        gives_up_at_the_deadline(waiter, 0.5)


# -- single_flight over every store -----------------------------------------------------------


@stores(*ALL)
def test_single_flight_bounds_its_wait_for_the_lock_with_timeout(case):
    fetches = []
    waiter = case.handle()
    if isinstance(case, PollingCase):
        waiter = case.make(timing=FakeTime().timing(poll_interval=0.25))
    with case.handle().lock(KEY):
        with pytest.raises(TransportError) as info:
            single_flight(waiter, KEY, lambda: fetches.append(1) or fresh_token("x"),
                          timeout=0.2)
    assert info.value.kind == "deadline" and fetches == []


@stores(*ALL)
@pytest.mark.parametrize("bad", ["tok\r\nX-Evil: 1", "tok\u2014", "tok en", "x" * 20_000])
def test_single_flight_discards_a_stored_token_it_cannot_send(case, bad, caplog):
    store = case.handle()
    store.set(KEY, fresh_token(bad))
    with caplog.at_level(logging.WARNING, logger="genesys_gateway.auth"):
        token = single_flight(store, KEY, lambda: fresh_token("good"), timeout=PATIENCE)
    assert token.access_token == "good" and store.get(KEY).access_token == "good"
    assert "discarding the stored access token" in caplog.text and bad not in caplog.text


@stores(*ALL)
def test_single_flight_keeps_the_fetched_token_when_storing_it_fails(case, caplog):
    class SetFails(Watched):
        def set(self, key: str, token: Token) -> None:
            raise TokenStoreError("the store died")

    fetches = []

    def fetch() -> Token:
        fetches.append(1)
        return fresh_token("fetched")

    with caplog.at_level(logging.WARNING, logger="genesys_gateway.auth"):
        token = single_flight(SetFails(case.handle(), lambda: None), KEY, fetch, timeout=PATIENCE)
    assert token.access_token == "fetched" and fetches == [1]
    assert "could not store the fetched token" in caplog.text
    assert lock_is_free(case)


@stores("memory", "redis")
def test_a_store_whose_lock_takes_no_timeout_still_works(case):
    """A TokenStore written for 0.1 (``lock(key)`` only) is called without the timeout."""

    class Legacy(Watched):
        def lock(self, key: str) -> ContextManager[None]:  # type: ignore[override]
            return self.store.lock(key)

    token = single_flight(Legacy(case.handle(), lambda: None), KEY, lambda: fresh_token("old"),
                          timeout=0.5)
    assert token.access_token == "old"


# -- timing options -------------------------------------------------------------------------

BAD_TIMING = [
    ("lock_ttl", 0),
    ("lock_ttl", -1.0),
    ("lock_ttl", math.inf),
    ("lock_ttl", math.nan),
    ("lock_ttl", "10"),
    ("wait_timeout", -0.5),
    ("wait_timeout", math.nan),
    ("wait_timeout", True),
    ("poll_interval", -1),
    ("poll_interval", math.inf),
    ("sleep", 0.1),
    ("clock", "monotonic"),
]


@pytest.mark.parametrize("field, value", BAD_TIMING)
def test_lock_timing_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ConfigurationError, match=f"^{field} must be") as info:
        LockTiming(**{field: value})
    assert isinstance(info.value, ValueError)  # what the stores raised before


def test_lock_timing_defaults_and_edges():
    timing = LockTiming()
    assert (timing.lock_ttl, timing.wait_timeout, timing.poll_interval) == (10.0, 15.0, 0.05)
    assert timing.sleep is time.sleep and timing.clock is time.monotonic
    assert LockTiming(wait_timeout=0, poll_interval=0).wait_timeout == 0
    assert LockTiming(wait_timeout=math.inf).wait_timeout == math.inf  # wait as long as it takes
    with pytest.raises(TypeError):
        LockTiming(1.0)  # keyword-only: five numbers/callables in a row would be unreadable


@stores(*POLLING)
@pytest.mark.parametrize(
    "field, value",
    [
        ("lock_ttl", 0),
        ("wait_timeout", -1),
        ("poll_interval", math.nan),
        ("sleep", 1),
        ("clock", 1),
    ],
)
def test_polling_stores_check_their_timing_keywords(case, field, value):
    with pytest.raises(ConfigurationError, match=f"^{field} must be"):
        case.make(**{field: value})


@stores(*POLLING)
def test_polling_stores_take_a_lock_timing_and_keywords_override_it(case):
    assert case.make().timing == LockTiming()
    assert case.make(lock_ttl=3, wait_timeout=4).timing == LockTiming(lock_ttl=3, wait_timeout=4)
    timing = LockTiming(lock_ttl=3, poll_interval=0.5)
    assert case.make(timing=timing).timing == timing
    overridden = case.make(timing=timing, poll_interval=0.25)
    assert overridden.timing == LockTiming(lock_ttl=3, poll_interval=0.25)
    with pytest.raises(ConfigurationError, match="^lock_ttl"):
        case.make(timing=timing, lock_ttl=-3)


@pytest.mark.parametrize(
    "option, value",
    [
        ("lock_timeout", -1),
        ("lock_timeout", math.inf),
        ("lock_timeout", math.nan),
        ("lock_timeout", "60"),
        ("poll_interval", -0.01),
        ("poll_interval", math.inf),
    ],
)
def test_file_store_checks_its_lock_options_the_same_way(tmp_path, option, value):
    with pytest.raises(ConfigurationError, match=f"^{option} must be"):
        FileTokenStore(tmp_path / "tokens.json", **{option: value})


def test_file_store_lock_options_accept_none_and_zero(tmp_path):
    FileTokenStore(tmp_path / "tokens.json", lock_timeout=None, poll_interval=0)
    FileTokenStore(tmp_path / "tokens.json", lock_timeout=0)
