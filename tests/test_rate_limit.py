"""TokenBucket (one process's rate limit) on fake clocks, and the client waiting for its
turn against the real emulator: up to the deadline, then RateLimitError without sending;
a 429 with Retry-After pauses the bucket. The emulator's own rate-limit mode is tested
here too. Fleet-wide limits (Redis) are in test_redis_rate_limit.py; the retry budget in
test_retry_budget.py."""

import math
import threading

import pytest

import genesys_gateway as gg
from genesys_gateway.testing import GatewayEmulator

HI = [{"role": "user", "content": "hi"}]


class FakeTime:
    """A clock and a sleep that advances it: waiting costs no real time."""

    def __init__(self, now=1000.0):
        self.now = now
        self.slept = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        assert seconds >= 0
        self.slept.append(seconds)
        self.now += seconds


def bucket(per_minute=300, **kwargs):
    t = FakeTime()
    return gg.TokenBucket(per_minute, clock=t.clock, sleep=t.sleep, **kwargs), t


def chat_requests(em):
    return [r for r in em.requests if r.endpoint == "chat"]


# -- the schedule --------------------------------------------------------------------------


def test_burst_is_one_seconds_worth_then_one_interval_apart():
    limiter, t = bucket(300)  # 5 a second, an interval of 0.2 s
    assert limiter.burst == 5
    for _ in range(5):
        limiter.acquire()
    assert t.slept == []
    limiter.acquire()
    limiter.acquire()
    assert t.slept == pytest.approx([0.2, 0.2])


def test_refill_never_holds_more_than_one_second():
    limiter, t = bucket(300)
    for _ in range(5):
        limiter.acquire()
    t.now += 0.4  # two turns come back
    limiter.acquire()
    limiter.acquire()
    assert t.slept == []
    limiter.acquire()
    assert t.slept == pytest.approx([0.2])
    t.now += 3600  # an hour of quiet still allows only one second's worth at once
    for _ in range(5):
        limiter.acquire()
    assert t.slept == pytest.approx([0.2])
    limiter.acquire()
    assert t.slept == pytest.approx([0.2, 0.2])


def test_slow_budget_has_a_burst_of_one():
    limiter, t = bucket(30)  # one request every 2 s
    assert limiter.burst == 1
    limiter.acquire()
    limiter.acquire()
    limiter.acquire()
    assert t.slept == pytest.approx([2.0, 2.0])


def test_turn_after_the_timeout_raises_at_once_and_books_nothing():
    limiter, t = bucket(60)  # one a second
    limiter.acquire()
    with pytest.raises(gg.RateLimitError) as info:
        limiter.acquire(timeout=0.5)
    assert t.slept == []  # did not wait: the turn was known to come too late
    assert info.value.retry_after == pytest.approx(1.0)
    assert info.value.status == 429 and info.value.code == "client.rate.limited"
    assert "not sent" in str(info.value)
    limiter.acquire(timeout=1.0)  # the refused turn was not booked: still 1 s away
    assert t.slept == pytest.approx([1.0])


def test_pause_delays_every_turn_then_restarts_without_a_burst():
    limiter, t = bucket(300)
    limiter.pause(7)
    limiter.acquire()
    assert t.slept == pytest.approx([7.0])
    limiter.acquire()
    assert t.slept == pytest.approx([7.0, 0.2])  # one interval apart, not a burst


def test_pause_is_capped_and_ignores_nonsense():
    limiter, t = bucket(300, max_pause=10)
    for seconds in (0, -5, float("nan")):
        limiter.pause(seconds)
    limiter.acquire()
    assert t.slept == []
    limiter.pause(3600)
    limiter.pause(2)  # a shorter pause never shortens a longer one
    limiter.acquire()
    assert t.slept == pytest.approx([10.0])


def test_pause_that_begins_while_waiting_moves_the_turn():
    t = FakeTime()
    calls = []

    def sleep_while_another_thread_sees_a_429(seconds):
        if not calls:
            limiter.pause(5)  # 5 s from the start of our 1 s wait
        calls.append(seconds)
        t.sleep(seconds)

    limiter = gg.TokenBucket(60, clock=t.clock, sleep=sleep_while_another_thread_sees_a_429)
    limiter.acquire()
    limiter.acquire()
    # waited for the booked turn (1 s), then for the rest of the pause (4 s): the turn is
    # booked anew at the pause's end, and the next one an interval later
    assert calls == pytest.approx([1.0, 4.0])
    assert t.now == pytest.approx(1005.0)
    limiter.acquire()
    assert calls == pytest.approx([1.0, 4.0, 1.0])


def test_pause_longer_than_the_timeout_while_waiting_raises():
    t = FakeTime()

    def sleep(seconds):
        limiter.pause(30)
        t.sleep(seconds)

    limiter = gg.TokenBucket(60, clock=t.clock, sleep=sleep)
    limiter.acquire()
    with pytest.raises(gg.RateLimitError) as info:
        limiter.acquire(timeout=10)
    assert info.value.retry_after == pytest.approx(29.0)
    assert t.slept == pytest.approx([1.0])


def test_threads_each_get_their_own_turn():
    frozen = FakeTime()
    waits = []
    lock = threading.Lock()

    def record(seconds):  # does not advance the clock: every booking is visible in its wait
        with lock:
            waits.append(seconds)

    limiter = gg.TokenBucket(300, clock=frozen.clock, sleep=record)
    barrier = threading.Barrier(32)

    def worker():
        barrier.wait()
        for _ in range(20):
            limiter.acquire()

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    # 640 turns: 5 at once (no sleep), then one every 0.2 s, none booked twice
    assert len(waits) == 640 - 5
    assert sorted(round(w / 0.2) for w in waits) == list(range(1, 636))


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), "300", True])
def test_bad_per_minute_is_a_configuration_error(value):
    with pytest.raises(gg.ConfigurationError) as info:
        gg.TokenBucket(value)
    assert info.value.option == "per_minute"


def test_protocol_and_repr():
    assert isinstance(gg.TokenBucket(), gg.RateLimiter)
    assert repr(gg.TokenBucket(120)) == "TokenBucket(per_minute=120)"


# -- the client ----------------------------------------------------------------------------


def test_client_waits_for_its_turn(make_client, emulator):
    t = FakeTime()
    limiter = gg.TokenBucket(60, clock=t.clock, sleep=t.sleep)
    client = make_client(rate_limiter=limiter, clock=t.clock)
    for _ in range(3):
        client.complete(HI)
    assert t.slept == pytest.approx([1.0, 1.0])
    assert len(chat_requests(emulator)) == 3
    assert client.rate_limiter is limiter


def test_turn_after_the_deadline_raises_without_sending(make_client, emulator):
    t = FakeTime()
    client = make_client(rate_limiter=gg.TokenBucket(60, clock=t.clock, sleep=t.sleep),
                         clock=t.clock)
    client.complete(HI)
    sent = len(emulator.requests)
    with pytest.raises(gg.RateLimitError) as info:
        client.complete(HI, deadline=0.5)
    assert info.value.retry_after == pytest.approx(1.0)
    with pytest.raises(gg.RateLimitError):
        client.run("hi", deadline=0.5)
    assert len(emulator.requests) == sent  # nothing was sent, not even a token request
    assert t.slept == []
    client.complete(HI, deadline=5)  # a turn within the deadline is waited for
    assert t.slept == pytest.approx([1.0])


def test_429_with_retry_after_pauses_the_bucket(make_client, emulator):
    t = FakeTime()
    limiter = gg.TokenBucket(6000, clock=t.clock, sleep=t.sleep)
    first = make_client(rate_limiter=limiter, clock=t.clock, retry=gg.NoRetry())
    other = make_client(rate_limiter=limiter, clock=t.clock)  # another client, same budget
    emulator.fail(429, headers={"Retry-After": "7"})
    with pytest.raises(gg.RateLimitError) as info:
        first.complete(HI)
    assert info.value.retry_after == 7
    other.complete(HI)
    assert t.slept == pytest.approx([7.0])


def test_429_without_retry_after_does_not_pause(make_client, emulator):
    t = FakeTime()
    client = make_client(rate_limiter=gg.TokenBucket(6000, clock=t.clock, sleep=t.sleep),
                         clock=t.clock, retry=gg.NoRetry())
    emulator.fail(429, headers={"Retry-After": None})
    with pytest.raises(gg.RateLimitError):
        client.complete(HI)
    client.complete(HI)
    assert t.slept == []


def test_rate_limiter_option_is_checked(make_client):
    with pytest.raises(gg.ConfigurationError) as info:
        make_client(rate_limiter=object())
    assert info.value.option == "rate_limiter"
    assert make_client().rate_limiter is None


# -- the emulator's rate limit -------------------------------------------------------------


def test_emulator_limits_each_token_and_answers_genesys_429():
    t = FakeTime()
    with GatewayEmulator(clock=t.clock) as em:
        em.limit_rate(2)
        one, two = em.issue_token(), em.issue_token()
        with gg.GatewayClient(base_url=em.url, auth=gg.BearerToken(one), retry=gg.NoRetry()) as a, \
                gg.GatewayClient(base_url=em.url, auth=gg.BearerToken(two), retry=gg.NoRetry()) as b:
            a.complete(HI)
            a.complete(HI)
            with pytest.raises(gg.RateLimitError) as info:
                a.complete(HI)
            b.complete(HI)  # another token, its own budget
            assert em.rate_limited == 1
            t.now += 0.5  # one request's worth comes back
            a.complete(HI)
            with pytest.raises(gg.RateLimitError):
                a.complete(HI)
            em.limit_rate(None)
            for _ in range(5):
                a.complete(HI)
            assert em.rate_limited == 2
            em.reset()
            assert em.rate_limited == 0
    error = info.value
    assert error.retry_after == 1
    assert error.code == "too.many.requests.retry.after"
    assert error.message == "Rate limit exceeded the maximum. Retry the request in [1] seconds"
    assert error.body["status"] == 429 and error.body["contextId"] == error.correlation_id


def test_emulator_retry_after_is_the_wait_in_whole_seconds():
    t = FakeTime()
    with GatewayEmulator(clock=t.clock) as em:
        em.limit_rate(0.25)  # one request every 4 s
        with gg.GatewayClient(base_url=em.url, auth=gg.BearerToken(em.issue_token()),
                              retry=gg.NoRetry()) as client:
            client.complete(HI)
            t.now += 1.5
            with pytest.raises(gg.RateLimitError) as info:
                client.complete(HI)
    assert info.value.retry_after == math.ceil(4 - 1.5)


@pytest.mark.parametrize("args", [(0,), (-1,), (float("nan"),), (10, 0.5)])
def test_emulator_rate_limit_arguments_are_checked(args):
    em = GatewayEmulator()
    with pytest.raises(ValueError):
        em.limit_rate(*args)
