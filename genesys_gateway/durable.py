"""Durable file replacement shared by the file-backed stores (token and conversation):
an atomic replace whose new content and rename survive a crash."""

from __future__ import annotations

import os
import secrets

__all__ = ["fsync_directory", "replace_file"]


def replace_file(path: str, payload: bytes, mode: int) -> None:
    """Atomically replace ``path`` with ``payload``: a new temporary file of exactly
    ``mode`` (whatever the umask) beside it, written and fsynced, renamed over ``path``,
    the rename made durable. ``OSError`` on failure, with the temporary file removed."""
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_directory(directory)


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
