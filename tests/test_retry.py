import email.utils

import attrs
import pytest

import genesys_gateway as gg
from genesys_gateway.http.retry import call_with_retry, is_retryable, parse_retry_after


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


def api(status, retry_after=None):
    cls = gg.errors.error_for_status(status)
    return cls(status, "x", retry_after=retry_after)


def failing(errors, result="ok"):
    errors = list(errors)
    calls = []

    def attempt(n):
        calls.append(n)
        if errors:
            raise errors.pop(0)
        return result

    return attempt, calls


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried(status):
    sleeps = Sleeps()
    policy = gg.ExponentialBackoff(sleep=sleeps, random=lambda: 1.0)
    attempt, calls = failing([api(status), api(status)])
    assert call_with_retry(policy, attempt) == "ok"
    assert calls == [1, 2, 3]
    assert sleeps == [0.5, 1.0]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_other_4xx_are_never_retried(status):
    sleeps = Sleeps()
    policy = gg.ExponentialBackoff(sleep=sleeps)
    attempt, calls = failing([api(status)])
    with pytest.raises(gg.APIError) as info:
        call_with_retry(policy, attempt)
    assert info.value.status == status
    assert calls == [1] and sleeps == []


def test_backoff_is_capped_exponential_with_full_jitter():
    sleeps = Sleeps()
    policy = gg.ExponentialBackoff(max_attempts=7, base_delay=0.5, max_delay=3.0, sleep=sleeps,
                                   random=lambda: 1.0)
    attempt, _ = failing([api(503)] * 6)
    call_with_retry(policy, attempt)
    assert sleeps == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    half = Sleeps()
    attempt, _ = failing([api(503)] * 3)
    call_with_retry(attrs.evolve(policy, sleep=half, random=lambda: 0.5), attempt)
    assert half == [0.25, 0.5, 1.0]


def test_attempts_are_bounded_and_last_error_raised():
    sleeps = Sleeps()
    policy = gg.ExponentialBackoff(max_attempts=3, sleep=sleeps)
    attempt, calls = failing([api(500), api(502), api(503), api(504)])
    with pytest.raises(gg.ServerError) as info:
        call_with_retry(policy, attempt)
    assert info.value.status == 503
    assert calls == [1, 2, 3] and len(sleeps) == 2


def test_retry_after_is_honoured_and_capped():
    sleeps = Sleeps()
    policy = gg.ExponentialBackoff(sleep=sleeps, max_retry_after=10)
    attempt, _ = failing([api(429, retry_after=7.0)])
    call_with_retry(policy, attempt)
    assert sleeps == [7.0]
    attempt, calls = failing([api(429, retry_after=42.0)])
    with pytest.raises(gg.RateLimitError) as info:
        call_with_retry(policy, attempt)
    assert info.value.retry_after == 42.0 and calls == [1] and sleeps == [7.0]


def test_parse_retry_after_seconds_and_http_date():
    assert parse_retry_after("42") == 42.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("") is None and parse_retry_after(None) is None
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now=lambda: now) == pytest.approx(30.0)


def test_connection_errors_are_retried_but_not_tls():
    assert is_retryable(gg.TransportError("refused", kind="refused"))
    assert is_retryable(gg.TransportError("reset", kind="closed"))
    assert not is_retryable(gg.TransportError("bad cert", kind="tls"))
    sleeps = Sleeps()
    attempt, calls = failing([gg.TransportError("refused", kind="refused")])
    assert call_with_retry(gg.ExponentialBackoff(sleep=sleeps), attempt) == "ok"
    assert calls == [1, 2]


def test_programming_errors_are_not_retried():
    sleeps = Sleeps()
    attempt, calls = failing([KeyError("bug")])
    with pytest.raises(KeyError):
        call_with_retry(gg.ExponentialBackoff(sleep=sleeps), attempt)
    assert calls == [1] and sleeps == []


def test_total_deadline_stops_retrying():
    now = [0.0]
    sleeps = []

    def sleep(s):
        sleeps.append(s)
        now[0] += s

    policy = gg.ExponentialBackoff(max_attempts=10, base_delay=1.0, max_delay=1.0, deadline=2.5,
                                   sleep=sleep, random=lambda: 1.0)
    attempt, calls = failing([api(503)] * 9)
    with pytest.raises(gg.ServerError):
        call_with_retry(policy, attempt, clock=lambda: now[0])
    assert sleeps == [1.0, 1.0] and calls == [1, 2, 3]


def test_no_retry_and_immutability():
    attempt, calls = failing([api(503)])
    with pytest.raises(gg.ServerError):
        call_with_retry(gg.NoRetry(), attempt)
    assert calls == [1]
    policy = gg.ExponentialBackoff()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.max_attempts = 9
    assert attrs.evolve(policy, max_attempts=9).max_attempts == 9
    with pytest.raises(ValueError):
        gg.ExponentialBackoff(max_attempts=0)
