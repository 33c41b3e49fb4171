"""Static check, not a test: the shipped retry policies satisfy :class:`RetryPolicy`.

Run ``mypy --strict tests/typing/check_retry.py`` and ``pyright tests/typing/check_retry.py``;
both must report no error. ``ExponentialBackoff`` and ``NoRetry`` are frozen attrs classes,
so this fails if ``RetryPolicy`` ever declares a settable data member again.
"""

from __future__ import annotations

import genesys_gateway as gg
from genesys_gateway.http.retry import RetryPolicy


def takes_policy(policy: RetryPolicy) -> int:
    return policy.max_attempts


backoff: RetryPolicy = gg.ExponentialBackoff(max_attempts=2, base_delay=0.1)
no_retry: RetryPolicy = gg.NoRetry()
via_package: gg.RetryPolicy = gg.ExponentialBackoff()

attempts: int = takes_policy(gg.ExponentialBackoff(deadline=5.0)) + takes_policy(gg.NoRetry())
deadline: float | None = backoff.deadline
wait: float | None = no_retry.delay(1, gg.ServerError(503, "unavailable"))
no_retry.sleep(0.0)

policies: list[RetryPolicy] = [backoff, no_retry, via_package]
for policy in policies:
    assert isinstance(policy, RetryPolicy)

client = gg.GatewayClient(base_url="https://example.invalid", auth=gg.BearerToken("t"),
                          retry=gg.NoRetry())
client_with_backoff = gg.GatewayClient(base_url="https://example.invalid", auth=gg.BearerToken("t"),
                                       retry=gg.ExponentialBackoff(max_attempts=3))
