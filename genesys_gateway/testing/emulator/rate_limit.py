"""The emulator's rate limit: R chat requests per second per bearer token, as Genesys Cloud
limits requests per client-credentials token; beyond it, a 429 with ``Retry-After``.

Deliberately written apart from the SDK's own limiters (a plain token bucket refilled
continuously, not their reserved-turn schedule), so that a bug in those cannot hide in
the server that tests them.
"""

from __future__ import annotations

import math
import threading
from typing import Callable

__all__ = ["RequestRateLimit"]


class RequestRateLimit:
    """Per-token buckets of ``burst`` requests refilled at ``per_second``; off until
    :meth:`configure` is given a rate. Thread-safe."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._per_second: float | None = None
        self._burst = 0.0
        self._buckets: dict[str, tuple[float, float]] = {}  # token -> (requests left, at)
        self.refused = 0
        """429s answered because a token was over its rate."""

    def configure(self, per_second: float | None, burst: float | None = None) -> None:
        if per_second is not None and not (math.isfinite(per_second) and per_second > 0):
            raise ValueError(f"per_second must be a positive number or None, got {per_second!r}")
        if burst is not None and not (math.isfinite(burst) and burst >= 1):
            raise ValueError(f"burst must be a number >= 1, got {burst!r}")
        with self._lock:
            self._per_second = per_second
            self._burst = burst if burst is not None else max(1.0, per_second or 1.0)
            self._buckets.clear()

    def check(self, token: str) -> int | None:
        """``None`` when ``token`` may make a request now (and it is counted), else the
        whole seconds to wait (the ``Retry-After``, at least 1)."""
        with self._lock:
            rate = self._per_second
            if rate is None:
                return None
            now = self._clock()
            left, at = self._buckets.get(token, (self._burst, now))
            left = min(self._burst, left + max(0.0, now - at) * rate)
            if left >= 1:
                self._buckets[token] = (left - 1, now)
                return None
            self._buckets[token] = (left, now)
            self.refused += 1
            return max(1, math.ceil((1 - left) / rate))
