"""A progress bar on stderr: redrawn in place on a terminal, one line per phase otherwise
(so a CI log gets a dozen lines, not thousands)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None, width: int = 28) -> None:
        self.total = max(1, total)
        self.done = 0
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = self.stream.isatty()
        self.phase = ""
        self.prefix = ""
        self.started = time.monotonic()

    def step(self, phase: str, detail: str = "") -> None:
        """Count one step, about to run *phase* for *detail*."""
        self.done = min(self.total, self.done + 1)
        phase = f"{self.prefix}{phase}"
        if self.tty:
            filled = self.width * self.done // self.total
            bar = "#" * filled + "-" * (self.width - filled)
            line = f"[{bar}] {100 * self.done // self.total:3d}% {self._elapsed()} {phase}: {detail}"
            self.stream.write("\r" + line[:110].ljust(110))
            self.stream.flush()
        elif phase.split(" round")[0] != self.phase.split(" round")[0]:
            self.stream.write(f"[{100 * self.done // self.total:3d}%] {self._elapsed()} {phase}\n")
            self.stream.flush()
        self.phase = phase

    def note(self, text: str) -> None:
        """A message on its own line (the bar is redrawn on the next step)."""
        self.stream.write(("\r" + " " * 110 + "\r" if self.tty else "") + text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\r" + " " * 110 + "\r")
        self.stream.write(f"benchmarks finished in {self._elapsed()}\n")
        self.stream.flush()

    def _elapsed(self) -> str:
        s = int(time.monotonic() - self.started)
        return f"{s // 60}:{s % 60:02d}"
