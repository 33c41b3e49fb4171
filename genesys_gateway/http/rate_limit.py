"""Client-side rate limits: the :class:`RateLimiter` protocol and :class:`TokenBucket`.

A limiter hands out *turns*: one turn per HTTP request to the gateway. The schedule is a
GCRA ("generic cell rate algorithm"), a token bucket kept as one number: ``tat``, the
time at which the bucket would be full again. A request may start at ``tat - tau`` (or
now, if later), and each request pushes ``tat`` one interval (``60 / per_minute``
seconds) further. ``tau`` is ``burst - 1`` intervals, where ``burst = per_minute / 60``:
a bucket holds at most one second's worth of its budget, so a fleet's combined rate
stays smooth instead of arriving in per-minute clumps.

Turns are *reserved*: :meth:`RateLimiter.acquire` books the next free turn and sleeps
until it, so waiters are served in order without polling. A turn that would come later
than the caller's ``timeout`` is not booked: :class:`~genesys_gateway.errors.RateLimitError`
is raised at once, without sending. A 429 with ``Retry-After`` pauses the limiter
(:meth:`RateLimiter.pause`): no turn starts before the pause ends, turns then restart one
interval apart (no burst), and a waiter whose booked turn falls inside a pause that began
while it slept waits for the pause's end and books again.

Policies decide, injected functions sleep and read clocks: :class:`TokenBucket` takes
``clock=`` and ``sleep=``; :class:`~genesys_gateway.http.redis_rate_limit.RedisRateLimiter`
keeps the same schedule in Redis for a whole fleet.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Callable, Protocol, runtime_checkable

from ..checks import check_positive, check_seconds
from ..constants import DEFAULT_MAX_PAUSE
from ..errors import APIError, RateLimitError

__all__ = ["RateLimiter", "ScheduledLimiter", "TokenBucket", "take_turn", "turn_refused", "gcra_tolerance",
           "wait_for_turn", "paused_by"]

#: Waits shorter than this (one microsecond, Redis's resolution) are rounding, not waits.
_RESOLUTION = 1e-6


@runtime_checkable
class RateLimiter(Protocol):
    """What the client needs from a rate limiter (one turn per HTTP request)."""

    def acquire(self, timeout: float | None = None) -> None:
        """Wait for this caller's turn to send one request, at most ``timeout`` seconds
        (``None``: as long as it takes). When the turn would come later, raise
        :class:`~genesys_gateway.errors.RateLimitError` (the request is not sent)."""
        ...

    def pause(self, seconds: float) -> None:
        """Start no turn for ``seconds`` (a 429's ``Retry-After``); every caller sharing
        this limiter's budget waits."""
        ...


def wait_for_turn(limiter: RateLimiter | None, deadline_at: float | None,
                  clock: Callable[[], float]) -> float | None:
    """Wait for ``limiter``'s turn (if there is a limiter) up to ``deadline_at``, a
    ``clock()`` time; return the seconds then left until ``deadline_at`` (``None``: no
    deadline). Without a limiter this is only the subtraction."""
    if limiter is not None:
        limiter.acquire(None if deadline_at is None else deadline_at - clock())
    return None if deadline_at is None else deadline_at - clock()


def paused_by(limiter: RateLimiter | None, error: APIError) -> APIError:
    """``error``, after pausing ``limiter`` when it is a 429 with ``Retry-After``: every
    caller sharing the limiter's budget then waits until the server's time."""
    if limiter is not None and error.status == 429 and error.retry_after:
        limiter.pause(error.retry_after)
    return error


def gcra_tolerance(per_minute: float) -> tuple[float, float]:
    """``(interval, tau)`` in seconds for ``per_minute`` turns a minute and a burst of
    one second's worth (at least one turn)."""
    interval = 60.0 / per_minute
    return interval, max(0.0, per_minute / 60.0 - 1.0) * interval


def turn_refused(wait: float, timeout: float | None) -> RateLimitError:
    """The error for a turn that comes after the caller's deadline."""
    limit = "" if timeout is None else f" (deadline in {max(timeout, 0.0):.3f} s)"
    return RateLimitError(
        429, f"Rate limiter: the next turn is in {wait:.3f} s, after the deadline{limit}; "
        "the request was not sent", "client.rate.limited", retry_after=wait)


def take_turn(
    reserve: Callable[[float | None], tuple[bool, float]],
    paused_for: Callable[[], float],
    sleep: Callable[[float], None],
    timeout: float | None,
) -> None:
    """The waiting half of :meth:`RateLimiter.acquire`, shared by the limiters.

    ``reserve(timeout)`` books a turn: ``(True, wait)`` when booked ``wait`` seconds from
    now, ``(False, wait)`` when that turn would come after ``timeout`` (nothing booked).
    ``paused_for()`` is how long the limiter stays paused. Time already waited counts
    against ``timeout``.
    """
    waited = 0.0
    while True:
        left = None if timeout is None else max(0.0, timeout - waited)
        booked, wait = reserve(left)
        if not booked:
            raise turn_refused(wait, left)
        if wait <= 0:
            return
        sleep(wait)
        waited += wait
        paused = paused_for()  # a 429 seen while we slept: our turn may fall in the pause
        if paused <= 0:
            return
        left = None if timeout is None else timeout - waited
        if left is not None and paused > left:
            raise turn_refused(paused, left)
        sleep(paused)
        waited += paused


class ScheduledLimiter:
    """What the limiters share: the budget (``per_minute``, bursts of one second's worth),
    waiting for a turn on a schedule kept by ``_reserve``/``_paused_for``, and capping a
    pause at ``max_pause`` before ``_pause_for`` records it. Subclasses keep the schedule
    (in this process, or in Redis)."""

    def __init__(self, per_minute: float, sleep: Callable[[float], None],
                 max_pause: float) -> None:
        self.per_minute = check_positive("per_minute", per_minute)
        check_seconds("max_pause", max_pause)
        self.max_pause = float(max_pause)
        self._sleep = sleep

    @property
    def burst(self) -> float:
        """Requests that may start at once after a quiet second."""
        return max(1.0, self.per_minute / 60.0)

    def acquire(self, timeout: float | None = None) -> None:
        """Wait for this caller's turn to send one request, at most ``timeout`` seconds
        (``None``: as long as it takes). A turn that would come later raises
        :class:`~genesys_gateway.RateLimitError` at once (the request is not sent)."""
        take_turn(self._reserve, self._paused_for, self._sleep, timeout)

    def pause(self, seconds: float) -> None:
        """Start no turn for ``seconds`` (a 429's ``Retry-After``, capped at
        ``max_pause``); every caller sharing this budget waits. Ignores values <= 0."""
        if not seconds > 0:  # also refuses NaN
            return
        self._pause_for(min(seconds, self.max_pause))

    def _reserve(self, timeout: float | None) -> tuple[bool, float]:
        raise NotImplementedError

    def _paused_for(self) -> float:
        raise NotImplementedError

    def _pause_for(self, seconds: float) -> None:
        raise NotImplementedError


class TokenBucket(ScheduledLimiter):
    """A rate limit for one process: ``per_minute`` requests a minute, in bursts of at
    most ``per_minute / 60`` (one second's worth). Thread-safe; share one per process
    (processes sharing a budget need :class:`RedisRateLimiter`).

    Args:
        per_minute: requests allowed per minute (Genesys Cloud allows 300 per token).
        clock: a monotonic clock in seconds (injectable for tests).
        sleep: the function that waits for a turn (injectable for tests).
        max_pause: a 429's ``Retry-After`` pauses the bucket at most this many seconds.

    Attributes:
        per_minute: requests allowed per minute.
        max_pause: the longest pause, in seconds.
    """

    def __init__(
        self,
        per_minute: float = 300,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        max_pause: float = DEFAULT_MAX_PAUSE,
    ) -> None:
        super().__init__(per_minute, sleep, max_pause)
        self._interval, self._tau = gcra_tolerance(self.per_minute)
        self._clock = clock
        self._lock = threading.Lock()
        self._tat = -math.inf  # the bucket is full
        self._paused_until = -math.inf

    def _pause_for(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def _reserve(self, timeout: float | None) -> tuple[bool, float]:
        with self._lock:
            now = self._clock()
            tat = max(self._tat, now, self._paused_until + self._tau)
            wait = tat - self._tau - now
            wait = wait if wait > _RESOLUTION else 0.0  # float drift is not a wait
            if timeout is not None and wait > timeout:
                return False, wait
            self._tat = tat + self._interval
            return True, wait

    def _paused_for(self) -> float:
        with self._lock:
            return self._paused_until - self._clock()

    def __repr__(self) -> str:
        return f"TokenBucket(per_minute={self.per_minute:g})"
