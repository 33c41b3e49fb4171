"""Timing shared by the standalone micro-benchmark scripts (``benchmarks/sse.py``,
``benchmarks/structured_output.py``)."""

from __future__ import annotations

import time

__all__ = ["best"]


def best(fns: dict[str, object], repeats: int, number: int) -> dict[str, float]:
    """Best seconds per call of each zero-argument function, measured interleaved."""
    out = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(number):
                fn()  # type: ignore[operator]
            out[name] = min(out[name], (time.perf_counter() - start) / number)
    return out
