"""Durable file replacement helpers shared by the file-backed stores (token and
conversation): making a rename survive a crash."""

from __future__ import annotations

import os

__all__ = ["fsync_directory"]


def fsync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable; best effort (not every filesystem allows
    opening or syncing a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
