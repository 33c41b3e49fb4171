"""A retry budget shared by a client's threads: retries stay a fraction of the traffic.

A retry policy bounds the attempts of *one* call; when the gateway fails for everyone,
N threads each retrying ``max_attempts`` times multiply the load on a service that is
already down. :class:`RetryBudget` bounds retries per client, as Finagle's retry budget
and botocore's retry quota do: the client's threads together may retry at most ``ratio``
of the requests they started in the last ``window`` seconds, plus ``min_per_second``
retries a second (so that a client sending little can still retry). When the budget is
spent the error is raised without a retry.

Requests are counted once per call (its first attempt), retries once per retry. The
window is kept in ten slots, so memory is constant; the per-second allowance is a token
bucket holding one second's worth. The clock is injected.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Callable

from ..checks import check_seconds
from ..constants import DEFAULT_RETRY_MIN_PER_SECOND, DEFAULT_RETRY_RATIO, DEFAULT_RETRY_WINDOW
from ..errors import ConfigurationError

__all__ = ["RetryBudget"]

logger = logging.getLogger("genesys_gateway.retry")

_SLOTS = 10
_EPSILON = 1e-9  # 0.1 * 10 is 0.9999999999999999 in floating point


def _non_negative(option: str, value: Any) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or value < 0):
        raise ConfigurationError(f"{option} must be a finite number >= 0, got {value!r}",
                                 option=option)
    return float(value)


class RetryBudget:
    """Retries allowed to all threads of one client together.

    Args:
        ratio: retries allowed per request started in the last ``window`` seconds.
        min_per_second: retries allowed each second whatever the traffic (a bucket of
            one second's worth).
        window: seconds of traffic the ratio is taken over.
        clock: a monotonic clock in seconds (injectable for tests).

    Thread-safe. ``GatewayClient`` creates one per client unless given another (or
    ``retry_budget=None``, which turns the budget off).
    """

    def __init__(
        self,
        ratio: float = DEFAULT_RETRY_RATIO,
        min_per_second: float = DEFAULT_RETRY_MIN_PER_SECOND,
        window: float = DEFAULT_RETRY_WINDOW,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ratio = _non_negative("ratio", ratio)
        self.min_per_second = _non_negative("min_per_second", min_per_second)
        check_seconds("window", window, positive=True)
        self.window = float(window)
        self._clock = clock
        self._lock = threading.Lock()
        self._width = self.window / _SLOTS
        self._requests = [0] * _SLOTS
        self._retries = [0] * _SLOTS  # retries paid for by the ratio, per slot
        now = clock()
        self._slot = math.floor(now / self._width)
        # the per-second allowance: a bucket of one second's worth (at least one retry)
        self._capacity = max(1.0, self.min_per_second) if self.min_per_second > 0 else 0.0
        self._tokens = self._capacity
        self._filled_at = now
        self._warned_at = -math.inf

    def record_request(self) -> None:
        """A call started (its first attempt): it adds ``ratio`` to the budget."""
        with self._lock:
            self._requests[self._advance(self._clock())] += 1

    def try_retry(self) -> bool:
        """Spend one retry: ``True`` when the budget allows it, else ``False`` (and the
        caller raises the error without retrying)."""
        with self._lock:
            now = self._clock()
            slot = self._advance(now)
            if self.ratio * sum(self._requests) - sum(self._retries) >= 1 - _EPSILON:
                self._retries[slot] += 1
                return True
            self._refill(now)
            if self._tokens >= 1 - _EPSILON:
                self._tokens -= 1
                return True
            if now - self._warned_at >= self.window:
                self._warned_at = now
                logger.warning("Retry budget spent: errors are raised without retries "
                               "(%r)", self)
            return False

    def available(self) -> float:
        """How many retries the budget allows right now."""
        with self._lock:
            now = self._clock()
            self._advance(now)
            self._refill(now)
            ratio_part = max(0.0, self.ratio * sum(self._requests) - sum(self._retries))
            return ratio_part + self._tokens

    def _advance(self, now: float) -> int:
        """Forget the slots that left the window; the index of the current slot."""
        slot = math.floor(now / self._width)
        if slot > self._slot:
            for k in range(self._slot + 1, min(slot, self._slot + _SLOTS) + 1):
                self._requests[k % _SLOTS] = 0
                self._retries[k % _SLOTS] = 0
            self._slot = slot
        return self._slot % _SLOTS

    def _refill(self, now: float) -> None:
        if now > self._filled_at:
            self._tokens = min(self._capacity,
                               self._tokens + (now - self._filled_at) * self.min_per_second)
        self._filled_at = max(self._filled_at, now)

    def __repr__(self) -> str:
        return (f"RetryBudget(ratio={self.ratio:g}, min_per_second={self.min_per_second:g}, "
                f"window={self.window:g})")
