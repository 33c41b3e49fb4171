"""Retry policies.

Three separate things: *whether* to retry and *how long* to wait are the policy's
decision (:meth:`RetryPolicy.delay`); *who sleeps* is the injected ``sleep`` function,
called by :func:`call_with_retry`, never by the policy's decision logic.
"""

from __future__ import annotations

import math
import random
import time
from typing import Callable, Protocol, TypeVar, runtime_checkable

import attrs

from ..constants import (
    DEFAULT_BASE_DELAY,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_DELAY,
    DEFAULT_MAX_RETRY_AFTER,
    RETRY_STATUSES,
)
from ..errors import APIError, GatewayError, RateLimitError, TransportError
from .retry_budget import RetryBudget

__all__ = [
    "RetryPolicy",
    "ExponentialBackoff",
    "NoRetry",
    "call_with_retry",
    "parse_retry_after",
    "is_retryable",
]

T = TypeVar("T")


@runtime_checkable
class RetryPolicy(Protocol):
    """What the client needs from a retry policy.

    The data members are read-only properties so that immutable implementations (such as
    the frozen :class:`ExponentialBackoff` and :class:`NoRetry`) satisfy the protocol: a
    plain ``max_attempts: int`` member would demand a settable attribute.
    """

    @property
    def max_attempts(self) -> int:
        """How many attempts at most, counting the first."""
        ...

    @property
    def deadline(self) -> float | None:
        """Seconds the attempts may take in total, or ``None`` for no bound."""
        ...

    @property
    def sleep(self) -> Callable[[float], None]:
        """The function that waits between attempts (``time.sleep``, or a fake in tests)."""
        ...

    def delay(self, attempt: int, error: GatewayError) -> float | None:
        """Seconds to wait before attempt ``attempt + 1`` after ``error``; ``None``: give up."""
        ...


def is_retryable(error: BaseException) -> bool:
    """Transient by nature: a retryable HTTP status or a connection that failed or was
    closed before any response (a chat completion has no side effect, so replaying is safe)."""
    if isinstance(error, RateLimitError):  # includes the token endpoint's 400 "rate limit exceeded"
        return True
    if isinstance(error, APIError):
        return error.status in RETRY_STATUSES
    if isinstance(error, TransportError):
        return error.retryable
    return False


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """``Retry-After`` as seconds: an integer/decimal number of seconds, or an HTTP date."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        import email.utils  # an HTTP date: rare, and email.utils costs ~10 ms to import

        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - now()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


@attrs.frozen
class ExponentialBackoff:
    """Capped exponential backoff with full jitter, honouring ``Retry-After``.

    Retries 408/429/500/502/503/504 and connections that failed before a response; never
    other 4xx. ``max_attempts`` counts the first try. A ``Retry-After`` above
    ``max_retry_after`` is not waited for: the error is raised at once (with its
    ``retry_after``). ``deadline`` bounds the total seconds spent across attempts.
    Immutable: change with ``attrs.evolve``.

    Attributes:
        max_attempts: attempts at most, counting the first (default 4; at least 1).
        base_delay: the cap of the first wait, in seconds (default 0.5); it doubles with
            each attempt.
        max_delay: the largest cap, in seconds (default 8).
        max_retry_after: the longest ``Retry-After`` waited for, in seconds (default 60).
        deadline: seconds all attempts may take together, or ``None`` (default).
        sleep: the function that waits (``time.sleep``; a fake in tests).
        random: a ``[0, 1)`` source for the jitter (``random.random``; a fixed one in
            tests).
    """

    max_attempts: int = attrs.field(default=DEFAULT_MAX_ATTEMPTS, validator=attrs.validators.ge(1))
    base_delay: float = attrs.field(default=DEFAULT_BASE_DELAY, validator=attrs.validators.ge(0))
    max_delay: float = attrs.field(default=DEFAULT_MAX_DELAY, validator=attrs.validators.ge(0))
    max_retry_after: float = attrs.field(
        default=DEFAULT_MAX_RETRY_AFTER, validator=attrs.validators.ge(0)
    )
    deadline: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.gt(0))
    )
    sleep: Callable[[float], None] = attrs.field(default=time.sleep, eq=False, repr=False)
    random: Callable[[], float] = attrs.field(default=random.random, eq=False, repr=False)

    def delay(self, attempt: int, error: GatewayError) -> float | None:
        """Seconds to wait before attempt ``attempt + 1`` after ``error``: the server's
        ``Retry-After`` when it sent one (``None`` above ``max_retry_after``), else a
        random share of ``min(max_delay, base_delay * 2 ** (attempt - 1))``. ``None``
        (give up) after ``max_attempts`` or for an error not worth retrying."""
        if attempt >= self.max_attempts or not is_retryable(error):
            return None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            return float(retry_after)
        # int ** int is typed Any (a negative exponent gives a float): the cap is a float.
        cap: float = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return self.random() * cap


@attrs.frozen
class NoRetry:
    """Every error is raised at once.

    Attributes:
        max_attempts: always 1.
        deadline: ``None``: no bound (one attempt).
        sleep: unused (nothing is waited for); there to satisfy :class:`RetryPolicy`.
    """

    max_attempts: int = 1
    deadline: float | None = None
    sleep: Callable[[float], None] = attrs.field(default=time.sleep, eq=False, repr=False)

    def delay(self, attempt: int, error: GatewayError) -> float | None:
        """Always ``None``: give up."""
        return None


def call_with_retry(
    policy: RetryPolicy,
    attempt_fn: Callable[[int], T],
    *,
    clock: Callable[[], float] = time.monotonic,
    deadline_at: float | None = None,
    on_retry: Callable[[int, GatewayError, float], None] | None = None,
    budget: RetryBudget | None = None,
) -> T:
    """Call ``attempt_fn(attempt)`` until it returns, the policy gives up, waiting would
    pass the policy's deadline or ``deadline_at`` (a ``clock()`` time), or the client's
    retry ``budget`` is spent. Only :class:`GatewayError` is retried; programming errors
    propagate at once."""
    if budget is not None:
        budget.record_request()
    start = clock()
    limit = deadline_at
    if policy.deadline is not None:
        own = start + policy.deadline
        limit = own if limit is None else min(limit, own)
    attempt = 1
    while True:
        try:
            return attempt_fn(attempt)
        except GatewayError as error:
            wait = policy.delay(attempt, error)
            if wait is None:
                raise
            if limit is not None and clock() + wait >= limit:
                raise
            if budget is not None and not budget.try_retry():
                raise
            if on_retry is not None:
                on_retry(attempt, error, wait)
            if wait > 0:
                policy.sleep(wait)
            attempt += 1
