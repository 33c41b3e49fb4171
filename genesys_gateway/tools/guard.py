"""The loop guard: stop a model that keeps making the same tool call."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from ..constants import DEFAULT_MAX_REPEATED_CALLS
from ..checks import check_positive_int
from .validation import canonical_json

__all__ = ["RepeatGuard"]


class RepeatGuard:
    """Stops a model that keeps calling the same tool with the same arguments.

    Keyed by (tool name, canonical JSON of the validated arguments); the call after
    ``max_repeats`` identical ones in a run gets status ``"repeated"``. Use one guard per
    run. Thread-safe.
    """

    def __init__(self, max_repeats: int = DEFAULT_MAX_REPEATED_CALLS) -> None:
        self.max_repeats = check_positive_int("max_repeats", max_repeats)
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    @staticmethod
    def _key(name: str, arguments: Any) -> tuple[str, str]:
        try:
            return name, canonical_json(arguments)
        except (TypeError, ValueError):  # not JSON (a caller outside the executor)
            return name, repr(arguments)

    def allow(self, name: str, arguments: Any) -> bool:
        """Record one call; ``False`` when it exceeds ``max_repeats`` (it is not counted)."""
        key = self._key(name, arguments)
        with self._lock:
            if self._counts[key] >= self.max_repeats:
                return False
            self._counts[key] += 1
            return True

    def count(self, name: str, arguments: Any) -> int:
        with self._lock:
            return self._counts[self._key(name, arguments)]

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def message(self) -> str:
        return (f"not run: repeated call (same tool and arguments already called "
                f"{self.max_repeats} times in this run)")
