"""History trimming of a 500-message conversation, before a model call. Target: ≤ 1 ms.

``python benchmarks/trimming.py`` (``--quick`` for a smoke run).

The history: a system message, then turns of a user message, an assistant message with
two tool calls, their two results, and the answer (5 messages a turn, texts of 200-800
characters), 500 messages in all, the last a new user message. Cases:

* ``cold``: no measure of the last request (a restored state without one): every message
  is estimated by characters, and half the history is dropped;
* ``measured``: the last response's ``prompt_tokens`` covers all but the last two
  messages; the limit drops half the history;
* ``under``: measured, and under the limit: nothing to drop (the common case).

Each round trims a fresh shallow copy (not timed); medians are reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from genesys_gateway.trimming import Measured, estimate, trim_history  # noqa: E402

TARGET_S = 1e-3


def history(messages: int = 500) -> list[dict[str, Any]]:
    """A realistic history of ``messages`` messages ending with a new user message."""
    out: list[dict[str, Any]] = [{"role": "system", "content": "You are a helpful agent. " * 20}]
    turn = 0
    while len(out) < messages - 1:
        ids = [f"call_{turn}_a", f"call_{turn}_b"]
        out += [
            {"role": "user", "content": f"Question {turn}: " + "what about the order? " * 12},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": i, "type": "function",
                 "function": {"name": "lookup", "arguments": '{"order": %d}' % turn}}
                for i in ids]},
            *({"role": "tool", "tool_call_id": i, "content": '{"total": 42.5, "items": '
               + '"x" ' * 150 + '}'} for i in ids),
            {"role": "assistant", "content": "The order totals 42.5. " * 30},
        ]
        turn += 1
    del out[messages - 1:]
    out.append({"role": "user", "content": "And now?"})
    return out


def cases() -> dict[str, tuple[list[dict[str, Any]], int, Measured | None]]:
    base = history()
    full = estimate(base, None)
    measured = Measured(full, len(base) - 2)
    return {"cold": (base, full // 2, None),
            "measured": (base, full // 2, measured),
            "under": (base, full * 2, measured)}


def measure(rounds: int) -> list[tuple[str, float, int]]:
    """``(case, median seconds, messages removed)`` for each case."""
    rows = []
    for name, (base, limit, measured) in cases().items():
        samples = []
        removed = 0
        for _ in range(rounds):
            messages = list(base)
            protect = len(messages) - 1
            start = time.perf_counter()
            removed, _ = trim_history(messages, limit, protect_from=protect, measured=measured)
            samples.append(time.perf_counter() - start)
        rows.append((name, statistics.median(samples), removed))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few rounds (smoke run)")
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args(argv)
    rounds = 20 if args.quick else args.rounds
    print(f"trimming a {len(history())}-message history, {rounds} rounds, medians "
          f"(target ≤ {TARGET_S * 1e3:g} ms)")
    worst = 0.0
    for name, seconds, removed in measure(rounds):
        worst = max(worst, seconds)
        print(f"  {name:<9} {seconds * 1e6:8.1f} µs   {removed:3d} messages dropped")
    return 0 if args.quick or worst <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
