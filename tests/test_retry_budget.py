"""RetryBudget on a fake clock, call_with_retry consulting it, and the client's threads
against an emulator that always fails: a bounded number of attempts in total, not
threads x max_attempts."""

import logging
import threading

import pytest

import genesys_gateway as gg
from genesys_gateway.http.retry import call_with_retry

HI = [{"role": "user", "content": "hi"}]


class Clock:
    def __init__(self, now=500.0):
        self.now = now

    def __call__(self):
        return self.now


def budget(**kwargs):
    clock = Clock()
    return gg.RetryBudget(clock=clock, **kwargs), clock


def retries_allowed(b, limit=10_000):
    n = 0
    while n < limit and b.try_retry():
        n += 1
    return n


# -- the budget ----------------------------------------------------------------------------


def test_defaults_and_repr():
    b = gg.RetryBudget()
    assert (b.ratio, b.min_per_second, b.window) == (0.2, 10.0, 10.0)
    assert repr(b) == "RetryBudget(ratio=0.2, min_per_second=10, window=10)"


def test_min_per_second_is_a_bucket_of_one_seconds_worth():
    b, clock = budget(ratio=0.2, min_per_second=10)
    assert retries_allowed(b) == 10
    clock.now += 0.5
    assert retries_allowed(b) == 5
    clock.now += 3600  # quiet for an hour: still one second's worth
    assert retries_allowed(b) == 10


def test_ratio_of_the_requests_in_the_window():
    b, clock = budget(ratio=0.2, min_per_second=0, window=10)
    assert retries_allowed(b) == 0
    for _ in range(10):
        b.record_request()
    assert b.available() == pytest.approx(2.0)
    assert retries_allowed(b) == 2
    clock.now += 5
    for _ in range(10):
        b.record_request()
    assert retries_allowed(b) == 2
    clock.now += 5.5  # the first ten requests (and their retries) left the window
    assert retries_allowed(b) == 0
    for _ in range(5):
        b.record_request()
    assert retries_allowed(b) == 1  # 0.2 x 15 in the window, 2 spent
    clock.now += 100  # everything left the window
    assert b.available() == 0
    b.record_request()
    assert retries_allowed(b) == 0


def test_ratio_is_spent_before_the_per_second_allowance():
    b, _ = budget(ratio=0.5, min_per_second=3)
    for _ in range(4):
        b.record_request()
    assert b.available() == pytest.approx(5.0)
    assert retries_allowed(b) == 5


def test_zero_budget_never_retries():
    b, _ = budget(ratio=0, min_per_second=0)
    for _ in range(100):
        b.record_request()
    assert not b.try_retry()


def test_threads_share_it_exactly():
    b, _ = budget(ratio=0.2, min_per_second=10)  # the clock never moves
    for _ in range(100):
        b.record_request()
    granted = []
    lock = threading.Lock()
    barrier = threading.Barrier(32)

    def worker():
        barrier.wait()
        mine = sum(b.try_retry() for _ in range(10))
        with lock:
            granted.append(mine)

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sum(granted) == 20 + 10


def test_spent_budget_warns_once_per_window(caplog):
    b, clock = budget(ratio=0, min_per_second=1, window=10)
    with caplog.at_level(logging.WARNING, logger="genesys_gateway.retry"):
        assert b.try_retry()
        assert not b.try_retry()
        assert not b.try_retry()
        clock.now += 11
        retries_allowed(b)
        assert not b.try_retry()
    assert [r.getMessage().startswith("Retry budget spent") for r in caplog.records] == [True, True]


@pytest.mark.parametrize("kwargs, option", [
    ({"ratio": -0.1}, "ratio"), ({"ratio": float("nan")}, "ratio"), ({"ratio": "0.2"}, "ratio"),
    ({"min_per_second": -1}, "min_per_second"), ({"min_per_second": float("inf")}, "min_per_second"),
    ({"window": 0}, "window"), ({"window": float("inf")}, "window"), ({"window": True}, "window"),
])
def test_bad_values_are_configuration_errors(kwargs, option):
    with pytest.raises(gg.ConfigurationError) as info:
        gg.RetryBudget(**kwargs)
    assert info.value.option == option


# -- call_with_retry -----------------------------------------------------------------------


def failing_attempts(n_errors):
    calls = []

    def attempt(n):
        calls.append(n)
        if len(calls) <= n_errors:
            raise gg.ServerError(503, "down")
        return "ok"

    return attempt, calls


def test_call_with_retry_raises_without_a_retry_when_spent():
    b, _ = budget(ratio=0, min_per_second=1)
    policy = gg.ExponentialBackoff(sleep=lambda s: None)
    attempt, calls = failing_attempts(10)
    with pytest.raises(gg.ServerError):
        call_with_retry(policy, attempt, budget=b)
    assert calls == [1, 2]  # the one retry the budget allowed
    attempt, calls = failing_attempts(1)
    with pytest.raises(gg.ServerError):
        call_with_retry(policy, attempt, budget=b)
    assert calls == [1]


def test_budget_is_only_spent_on_retries_that_would_happen():
    b, _ = budget(ratio=0, min_per_second=5)
    attempt, calls = failing_attempts(10)
    with pytest.raises(gg.ServerError):
        call_with_retry(gg.NoRetry(), attempt, budget=b)
    with pytest.raises(gg.BadRequestError):
        call_with_retry(gg.ExponentialBackoff(sleep=lambda s: None),
                        lambda n: (_ for _ in ()).throw(gg.BadRequestError(400, "no")), budget=b)
    assert b.available() == 5
    attempt, calls = failing_attempts(2)
    assert call_with_retry(gg.ExponentialBackoff(sleep=lambda s: None), attempt, budget=b) == "ok"
    assert b.available() == 3


# -- the client ----------------------------------------------------------------------------


def storm(em, *, threads=32, max_attempts=6, **client_kwargs):
    """``threads`` threads each make one call to an emulator that always answers 503;
    returns how many chat requests reached it."""
    em.fail(503, times=threads * max_attempts + 100)
    retry = gg.ExponentialBackoff(max_attempts=max_attempts, sleep=lambda s: None)
    client = gg.GatewayClient(base_url=em.url, auth=gg.BearerToken(em.issue_token()),
                              retry=retry, **client_kwargs)
    barrier = threading.Barrier(threads)
    errors = []

    def worker():
        barrier.wait()
        try:
            client.complete(HI)
        except gg.ServerError as error:
            errors.append(error)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    with client:
        for th in workers:
            th.start()
        for th in workers:
            th.join()
    assert len(errors) == threads
    return len([r for r in em.requests if r.endpoint == "chat"])


def test_retry_storm_is_bounded_by_the_budget(emulator):
    # a frozen clock makes the allowance exact: 0.2 x 32 requests + 10 a second
    sent = storm(emulator, retry_budget=gg.RetryBudget(clock=Clock()))
    assert 32 + 10 <= sent <= 32 + int(0.2 * 32) + 10
    assert sent < 32 * 6 / 3


def test_default_budget_bounds_a_storm(emulator):
    import time

    started = time.monotonic()
    sent = storm(emulator)
    elapsed = time.monotonic() - started
    assert sent <= 32 + 0.2 * 32 + 10 + 10 * elapsed + 1
    assert sent < 32 * 6 / 2


def test_without_a_budget_every_thread_makes_every_attempt(emulator):
    assert storm(emulator, retry_budget=None) == 32 * 6


def test_each_client_gets_its_own_budget(make_client):
    a, b = make_client(), make_client()
    assert isinstance(a.retry_budget, gg.RetryBudget)
    assert a.retry_budget is not b.retry_budget
    assert make_client(retry_budget=None).retry_budget is None
    shared = gg.RetryBudget()
    assert make_client(retry_budget=shared).retry_budget is shared
    with pytest.raises(gg.ConfigurationError) as info:
        make_client(retry_budget=0.2)
    assert info.value.option == "retry_budget"
