"""One rate budget for a fleet of processes, kept in Redis.

The schedule is :class:`~genesys_gateway.http.rate_limit.TokenBucket`'s (a GCRA with
reserved turns, a burst of one second's worth), held in one Redis hash (``tat`` and
``paused``, integer microseconds) and changed only by one Lua script, so booking a turn
or pausing is atomic across every process and host sharing the key.

Time is Redis's: the script reads ``TIME`` on the server. The processes of a fleet run
on hosts whose clocks disagree, and a shared schedule needs one clock; the script
returns durations ("your turn is in 12.5 ms"), which each process then waits with its
own (injectable) ``sleep``. The key expires once its state is in the past (an expired
key and a full bucket are the same thing), so nothing is left behind.

Redis being down must not stop the service: a failed script call is logged (at most once
a minute) and the request goes ahead unlimited, as it would without a limiter; the
gateway's own 429s, which pause the retry policy, still protect the budget. ``redis`` is
an optional dependency and is only imported to recognise its exceptions.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable

from ..checks import check_non_empty_str
from ..constants import DEFAULT_MAX_PAUSE, DEFAULT_RATE_LIMIT_KEY
from .rate_limit import ScheduledLimiter, gcra_tolerance

__all__ = ["RedisRateLimiter", "RATE_LIMIT_SCRIPT"]

logger = logging.getLogger("genesys_gateway.rate_limit")

_WARN_EVERY = 60.0  # seconds between warnings about an unreachable Redis

#: KEYS[1] = the limiter's hash. ARGV[1] = "acquire" | "pause" | "paused".
#: acquire: ARGV[2] interval, ARGV[3] tau, ARGV[4] timeout (-1: none), all microseconds;
#:   returns {1, wait} when a turn was booked ``wait`` us from now, {0, wait} otherwise.
#: pause: ARGV[2] microseconds; returns 0. paused: returns the microseconds left of a pause.
RATE_LIMIT_SCRIPT = """
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('HGET', KEYS[1], 'tat')) or now
local paused = tonumber(redis.call('HGET', KEYS[1], 'paused')) or 0
local op = ARGV[1]
local function keep(until_us)
    local ms = math.ceil((until_us - now) / 1000) + 1000
    redis.call('PEXPIRE', KEYS[1], string.format('%.0f', ms))
end
if op == 'paused' then
    return math.max(0, paused - now)
end
if op == 'pause' then
    local untl = now + tonumber(ARGV[2])
    if untl > paused then
        redis.call('HSET', KEYS[1], 'paused', string.format('%.0f', untl))
        keep(math.max(untl, tat))
    end
    return 0
end
local interval, tau, timeout = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
tat = math.max(tat, now, paused + tau)
local wait = math.max(0, tat - tau - now)
if timeout >= 0 and wait > timeout then
    return {0, wait}
end
tat = tat + interval
redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', tat))
keep(math.max(tat, paused))
return {1, wait}
"""


def _backend_errors() -> tuple[type[BaseException], ...]:
    try:
        import redis.exceptions
    except ImportError:  # a duck-typed client without the redis package
        return (OSError,)
    return (redis.exceptions.RedisError, OSError)


def _us(seconds: float) -> int:
    return max(0, math.ceil(seconds * 1_000_000))


class RedisRateLimiter(ScheduledLimiter):
    """One rate budget shared by every process (on any host) that uses the same Redis and
    ``key``: ``per_minute`` requests a minute for all of them together, in bursts of at
    most ``per_minute / 60``. A 429 with ``Retry-After`` seen by any of them pauses all.

    Args:
        redis_client: a ``redis.Redis`` (or compatible) client. Give it short
            ``socket_connect_timeout``/``socket_timeout`` values: an unreachable Redis
            costs each request that long before it goes ahead unlimited.
        per_minute: requests allowed per minute for the whole fleet (Genesys Cloud allows
            300 per token: give every process sharing a token the same ``key``).
        key: the Redis key holding the schedule.
        sleep: the function that waits for a turn (injectable for tests).
        max_pause: a 429's ``Retry-After`` pauses the fleet at most this many seconds.

    Attributes:
        per_minute: requests allowed per minute for the whole fleet.
        max_pause: the longest pause, in seconds.
        key: the Redis key holding the schedule.
    """

    def __init__(
        self,
        redis_client: Any,
        per_minute: float = 300,
        key: str = DEFAULT_RATE_LIMIT_KEY,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_pause: float = DEFAULT_MAX_PAUSE,
    ) -> None:
        super().__init__(per_minute, sleep, max_pause)
        self.key = check_non_empty_str("key", key)
        interval, tau = gcra_tolerance(self.per_minute)
        self._interval_us, self._tau_us = _us(interval), _us(tau)
        self._redis = redis_client
        self._script = redis_client.register_script(RATE_LIMIT_SCRIPT)
        self._errors = _backend_errors()
        self._warned_at = -math.inf

    def _pause_for(self, seconds: float) -> None:
        self._call("pause", _us(seconds))

    def _reserve(self, timeout: float | None) -> tuple[bool, float]:
        reply = self._call("acquire", self._interval_us, self._tau_us,
                           -1 if timeout is None else _us(timeout))
        if reply is None:  # Redis is unreachable: go ahead, unlimited
            return True, 0.0
        booked, wait_us = reply
        return bool(int(booked)), int(wait_us) / 1_000_000

    def _paused_for(self) -> float:
        reply = self._call("paused")
        return 0.0 if reply is None else int(reply) / 1_000_000

    def _call(self, op: str, *args: int) -> Any:
        try:
            return self._script(keys=[self.key], args=[op, *args])
        except self._errors as exc:
            now = time.monotonic()
            if now - self._warned_at >= _WARN_EVERY:
                self._warned_at = now
                logger.warning("Rate limiter: Redis failed (%s: %s); requests go ahead "
                               "without the shared limit", type(exc).__name__, exc)
            return None

    def __repr__(self) -> str:  # never the client: its repr may name hosts or credentials
        return f"RedisRateLimiter(per_minute={self.per_minute:g}, key={self.key!r})"
