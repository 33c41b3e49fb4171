"""RedisRateLimiter against a real redis-server (fixtures in tests/fixtures_redis.py), and
a fleet of real processes sharing one budget against one emulator.

The limiter reads time on the Redis server, which a test cannot stop; instead of waiting,
the injected sleep moves the limiter's schedule back by the time it "slept"
(:class:`RedisTime`), as if that much time had passed. Small real delays between calls
(milliseconds) are allowed for with tolerances.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time

import pytest

redis = pytest.importorskip("redis")

import genesys_gateway as gg  # noqa: E402
from genesys_gateway.testing import GatewayEmulator  # noqa: E402
from tests.fixtures_redis import free_port  # noqa: E402
from tests.store_helpers import run_processes  # noqa: E402

HI = [{"role": "user", "content": "hi"}]
KEY = "test:rate"
FLEET_KEY = "test:fleet-rate"


class RedisTime:
    """An injected sleep that, instead of waiting, moves the schedule under ``key`` back by
    the seconds slept (as if they had passed on the Redis server), and records them."""

    def __init__(self, client, key=KEY, also=None):
        self.client, self.key, self.also = client, key, also
        self.slept = []
        self.created = time.monotonic()

    def approx(self, expected):
        """``expected``, give or take the real time that passed since this was created
        (the server's clock kept running while the test ran)."""
        return pytest.approx(expected, abs=time.monotonic() - self.created + 0.002)

    def __call__(self, seconds):
        assert seconds >= 0
        self.slept.append(seconds)
        if self.also is not None:
            self.also(seconds)
        micros = round(seconds * 1_000_000)
        for field in ("tat", "paused"):
            if self.client.hexists(self.key, field):
                self.client.hincrby(self.key, field, -micros)


def limiter(redis_client, per_minute=600, key=KEY, **kwargs):
    sleep = kwargs.pop("sleep", None) or RedisTime(redis_client, key)
    return gg.RedisRateLimiter(redis_client, per_minute=per_minute, key=key, sleep=sleep,
                               **kwargs), sleep


def chat_requests(em):
    return [r for r in em.requests if r.endpoint == "chat"]


# -- the schedule in Redis -----------------------------------------------------------------


def test_burst_is_one_seconds_worth_then_one_interval_apart(redis_client):
    lim, time_ = limiter(redis_client, per_minute=600)  # 10 a second
    assert lim.burst == 10
    for _ in range(10):
        lim.acquire()
    assert time_.slept == []
    lim.acquire()
    lim.acquire()
    assert time_.slept == time_.approx([0.1, 0.1])


def test_turn_after_the_timeout_raises_and_books_nothing(redis_client):
    lim, time_ = limiter(redis_client, per_minute=60)
    lim.acquire()
    with pytest.raises(gg.RateLimitError) as info:
        lim.acquire(timeout=0.5)
    assert info.value.retry_after == time_.approx(1.0)
    assert time_.slept == []
    lim.acquire(timeout=2)
    assert time_.slept == time_.approx([1.0])  # not 2: nothing was booked


def test_pause_is_shared_by_every_limiter_on_the_key(redis_server, redis_client):
    one = gg.RedisRateLimiter(redis_server.client(), per_minute=600, key=KEY)
    other, time_ = limiter(redis_server.client(), per_minute=600)
    elsewhere, elsewhere_time = limiter(redis_client, per_minute=600, key="test:elsewhere")
    one.pause(3)
    other.acquire()
    elsewhere.acquire()
    assert time_.slept == time_.approx([3.0])
    assert elsewhere_time.slept == []
    other.acquire()  # after a pause, one interval apart: no burst
    assert time_.slept == time_.approx([3.0, 0.1])


def test_pause_is_capped_and_ignores_nonsense(redis_client):
    lim, time_ = limiter(redis_client, max_pause=2)
    for seconds in (0, -1, float("nan")):
        lim.pause(seconds)
    assert not redis_client.exists(KEY)
    lim.pause(3600)
    lim.pause(1)  # never shortens a longer pause
    lim.acquire()
    assert time_.slept == time_.approx([2.0])


def test_pause_that_begins_while_waiting_moves_the_turn(redis_server, redis_client):
    other = gg.RedisRateLimiter(redis_server.client(), per_minute=60, key=KEY)
    paused = []

    def another_process_sees_a_429(_seconds):
        if not paused:
            paused.append(True)
            other.pause(5)

    lim, time_ = limiter(redis_client, per_minute=60, sleep=RedisTime(
        redis_client, also=another_process_sees_a_429))
    lim.acquire()
    lim.acquire()
    # the booked turn (1 s), then the rest of the pause (4 s), then a turn at its end
    assert time_.slept == time_.approx([1.0, 4.0])


def test_turns_are_atomic_across_threads(redis_server, redis_client):
    slept, lock = [], threading.Lock()

    def record(seconds):  # does not move the schedule: each booking shows in its wait
        with lock:
            slept.append(seconds)

    barrier = threading.Barrier(8)

    def worker():
        lim = gg.RedisRateLimiter(redis_server.client(), per_minute=6, key=KEY, sleep=record)
        barrier.wait()
        for _ in range(25):
            lim.acquire()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    # one turn every 10 s: 200 turns, the first at once, none booked twice
    assert sorted(round(s / 10) for s in slept) == list(range(1, 200))


def test_the_key_expires_once_its_state_is_in_the_past(redis_client):
    lim, _ = limiter(redis_client, per_minute=600)
    lim.acquire()
    assert 0 < redis_client.pttl(KEY) <= 1_100 + 50
    lim.pause(30)
    assert 30_000 < redis_client.pttl(KEY) <= 31_000 + 50
    assert set(redis_client.hkeys(KEY)) == {b"tat", b"paused"}
    assert redis_client.keys("*") == [KEY.encode()]


def test_unreachable_redis_lets_requests_through_and_warns_once(caplog):
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5,
                         retry=Retry(NoBackoff(), 0))
    slept = []
    lim = gg.RedisRateLimiter(client, per_minute=1, sleep=slept.append)
    with caplog.at_level(logging.WARNING, logger="genesys_gateway.rate_limit"):
        for _ in range(3):
            lim.acquire(timeout=0.1)
        lim.pause(5)
    assert slept == []
    assert len(caplog.records) == 1 and "without the shared limit" in caplog.text


def test_protocol_repr_and_checks():
    client = redis.Redis(host="127.0.0.1", port=1, password="hunter2")
    lim = gg.RedisRateLimiter(client, per_minute=300, key="pfx")
    assert isinstance(lim, gg.RateLimiter)
    assert repr(lim) == "RedisRateLimiter(per_minute=300, key='pfx')"
    for kwargs, option in (({"per_minute": 0}, "per_minute"), ({"key": ""}, "key"),
                           ({"max_pause": -1}, "max_pause")):
        with pytest.raises(gg.ConfigurationError) as info:
            gg.RedisRateLimiter(client, **kwargs)
        assert info.value.option == option


# -- clients sharing a key -----------------------------------------------------------------


def test_turn_after_the_deadline_raises_without_sending(redis_client, emulator):
    lim, time_ = limiter(redis_client, per_minute=60)
    auth = gg.BearerToken(emulator.issue_token())
    with gg.GatewayClient(base_url=emulator.url, auth=auth, rate_limiter=lim) as client:
        client.complete(HI)
        with pytest.raises(gg.RateLimitError):
            client.complete(HI, deadline=0.5)
        assert len(emulator.requests) == 1
        assert time_.slept == []


def test_a_429_seen_by_one_client_pauses_another(redis_server, redis_client, emulator):
    token = emulator.issue_token()
    first = gg.GatewayClient(base_url=emulator.url, auth=gg.BearerToken(token), retry=gg.NoRetry(),
                             rate_limiter=gg.RedisRateLimiter(redis_server.client(), key=KEY))
    lim, time_ = limiter(redis_client)  # another Redis connection, the same key
    other = gg.GatewayClient(base_url=emulator.url, auth=gg.BearerToken(token), rate_limiter=lim)
    emulator.fail(429, headers={"Retry-After": "2"})
    with first, other:
        with pytest.raises(gg.RateLimitError):
            first.complete(HI)
        other.complete(HI)
    assert time_.slept == time_.approx([2.0])
    assert [r.status for r in chat_requests(emulator)] == [429, 200]


def _hit_a_429(port, url, token, barrier, results):
    lim = gg.RedisRateLimiter(redis.Redis(host="127.0.0.1", port=port), key=KEY)
    with gg.GatewayClient(base_url=url, auth=gg.BearerToken(token), retry=gg.NoRetry(),
                          rate_limiter=lim) as client:
        barrier.wait(timeout=60)
        try:
            client.complete(HI)
        except gg.RateLimitError as error:
            results.put((time.time(), error.retry_after))


def test_a_429_seen_by_another_process_pauses_this_one(redis_server, redis_client, emulator):
    spawn = multiprocessing.get_context("spawn")  # the emulator's threads live in this process
    emulator.fail(429, headers={"Retry-After": "3"})
    [(seen_at, retry_after)] = run_processes(
        spawn, _hit_a_429, (redis_server.port, emulator.url, emulator.issue_token()), 1, timeout=60)
    assert retry_after == 3
    lim, time_ = limiter(redis_client)
    before = time.time()
    lim.acquire()
    after = time.time()
    [waited] = time_.slept
    assert 3 - (after - seen_at) - 0.05 <= waited <= 3 - (before - seen_at) + 0.002


# -- a fleet of processes ------------------------------------------------------------------

FLEET_PROCESSES = 8
FLEET_CALLS = 50
RATE = 60  # requests per second the emulator allows per token


def _fleet_worker(port, url, token_url, barrier, results):
    r = redis.Redis(host="127.0.0.1", port=port)
    limiter = gg.RedisRateLimiter(r, per_minute=RATE * 60, key=FLEET_KEY)
    # one token for the whole fleet, as the gateway's limit is per token
    auth = gg.ClientCredentials("fleet", "secret", token_url=token_url,
                                store=gg.RedisTokenStore(r, key="test:fleet-token"))
    times, errors = [], []
    with gg.GatewayClient(base_url=url, auth=auth, retry=gg.NoRetry(), rate_limiter=limiter) as client:
        client.complete(HI)  # warm-up: the token and a connection, before the clock starts
        barrier.wait(timeout=60)
        # empty the bucket (its burst of one second's worth is tested above): what is
        # measured is the rate the fleet sustains
        with pytest.raises(gg.RateLimitError):
            while True:
                limiter.acquire(timeout=0)
        barrier.wait(timeout=60)
        for _ in range(FLEET_CALLS):
            try:
                client.complete(HI)
            except gg.GatewayError as error:
                errors.append(repr(error))
            times.append(time.time())
    results.put((times, errors))


def test_a_fleet_of_processes_shares_one_rate(redis_server, redis_client):
    spawn = multiprocessing.get_context("spawn")  # the emulator's threads live in this process
    with GatewayEmulator() as em:
        em.limit_rate(RATE)
        outcomes = run_processes(spawn, _fleet_worker, (redis_server.port, em.url, em.token_url),
                                 FLEET_PROCESSES, timeout=90)
        assert em.rate_limited == 0
        assert em.token_requests == 1
        assert len(chat_requests(em)) == FLEET_PROCESSES * (FLEET_CALLS + 1)
    assert [errors for _, errors in outcomes] == [[]] * FLEET_PROCESSES
    times = sorted(t for process_times, _ in outcomes for t in process_times)
    rate = (len(times) - 1) / (times[-1] - times[0])
    print(f"\nfleet: {len(times)} calls by {FLEET_PROCESSES} processes, combined rate "
          f"{rate:.1f}/s for an allowed {RATE}/s")
    assert RATE * 0.9 <= rate <= RATE * 1.1
