"""A token store backed by a JSON file, for scripts and cron jobs that run repeatedly.

The file holds ``{store key: Token.to_dict(), ...}`` so several OAuth clients can share
it. It is written with mode 0600 by atomic replacement (temporary file in the same
directory, ``fsync``, ``os.replace``), so a reader never sees a half-written file.

Refreshes are serialised across processes by an exclusive ``flock`` on a sidecar file
(``path + ".lock"``) and across threads of one process by a ``threading.Lock`` (``flock``
belongs to an open file description, so two threads opening the lock file separately
would not exclude each other reliably). The lock is per file, not per key: scripts
rarely refresh several clients at once, and it keeps the read-modify-write of the shared
file safe.

A file that is corrupt, not owned by the current user, or readable/writable by group or
others is ignored with a warning and replaced on the next :meth:`FileTokenStore.set`.
Failures to create, lock or write the file raise :class:`TokenStoreError`, which makes
the client fetch a token directly instead of failing the request. A caller's
``lock(key, timeout=...)`` that passes first raises the deadline error instead
(:func:`~genesys_gateway.http.tokens.deadline_error`).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from ..at_fork import reinit_in_child
from ..errors import TokenStoreError
from ..checks import check_seconds
from ..durable import replace_file
from .tokens import Token, deadline_at, deadline_error

__all__ = ["FileTokenStore"]

logger = logging.getLogger("genesys_gateway.auth")

_MAX_FILE_BYTES = 1 << 20  # a token file is a few hundred bytes per client
_FILE_MODE = 0o600
_DIR_MODE = 0o700


class FileTokenStore:
    """Tokens in a JSON file (mode 0600), shared by every process that uses the same path.

    Args:
        path: the token file; ``~`` is expanded; its directory is created (0700) on
            first write if missing.
        lock_timeout: seconds :meth:`lock` waits for another refresher before raising
            :class:`TokenStoreError` (the caller then fetches directly); ``None`` waits
            forever.
        poll_interval: seconds between attempts to take another process's ``flock``
            while waiting.

    Invalid values raise :class:`~genesys_gateway.errors.ConfigurationError` naming the
    argument, checked like the fields of :class:`~genesys_gateway.http.tokens.LockTiming`.
    That class itself does not fit: an ``flock`` has no time-to-live (the kernel drops it
    when its holder dies), and a thread waiting on the same store blocks on a
    ``threading.Lock`` rather than polling a clock.

    Attributes:
        path: the token file's absolute path.
        lock_path: the lock file beside it (``path + ".lock"``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lock_timeout: float | None = 60.0,
        poll_interval: float = 0.01,
    ) -> None:
        if lock_timeout is not None:
            check_seconds("lock_timeout", lock_timeout)
        check_seconds("poll_interval", poll_interval)
        self.path = os.path.abspath(os.path.expanduser(os.fspath(path)))
        self.lock_path = self.path + ".lock"
        self._lock_timeout = lock_timeout
        self._poll_interval = poll_interval
        self._thread_lock = threading.Lock()
        self._owner: int | None = None  # thread ident holding the exclusive lock
        self._depth = 0
        self._fd: int | None = None  # the lock file's descriptor, open while locking or locked
        reinit_in_child(self, FileTokenStore._after_fork)

    def __repr__(self) -> str:
        return f"FileTokenStore({self.path!r})"

    # -- TokenStore protocol ---------------------------------------------------------------

    def get(self, key: str) -> Token | None:
        """The token stored under ``key`` in the file, or ``None`` (a malformed
        entry is logged and ignored)."""
        entry = self._read().get(key)
        if entry is None:
            return None
        token = Token.from_dict(entry)
        if token is None:
            logger.warning("Ignoring a malformed token entry in %s", self.path)
        return token

    def set(self, key: str, token: Token) -> None:
        """Store ``token`` under ``key`` (under the ``flock``; expired entries are dropped)."""
        with self._exclusive():
            data = self._valid_entries(self._read())
            data[key] = token.to_dict()
            self._write(data)

    def invalidate(self, key: str, access_token: str) -> None:
        """Forget the token under ``key`` if it is still ``access_token``."""
        with self._exclusive():
            data = self._read()
            current = Token.from_dict(data.get(key))
            if current is None or current.access_token != access_token:
                return
            data = self._valid_entries(data)
            data.pop(key, None)
            self._write(data)

    @contextmanager
    def lock(self, key: str, timeout: float | None = None) -> Iterator[None]:
        """Hold the refresh lock (for every key of this file) until the block exits.
        Waits at most ``timeout`` seconds (the caller's deadline error), and at most
        ``lock_timeout`` (:class:`TokenStoreError`)."""
        with self._exclusive(timeout):
            yield

    # -- locking ---------------------------------------------------------------------------

    @contextmanager
    def _exclusive(self, timeout: float | None = None) -> Iterator[None]:
        """The thread lock plus the ``flock``; re-entrant within one thread, so ``set``
        inside ``lock`` (the normal refresh path) does not deadlock. Gives up at the
        caller's ``timeout`` (deadline error) or the store's ``lock_timeout``
        (:class:`TokenStoreError`), whichever comes first."""
        me = threading.get_ident()
        if self._owner == me:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        patience = deadline_at(time.monotonic, self._lock_timeout)
        deadline = deadline_at(time.monotonic, timeout)
        if not self._thread_lock.acquire(timeout=self._wait_for(patience, deadline)):
            raise self._gave_up(patience, deadline)
        try:
            fd = self._flock(patience, deadline)
            try:
                self._owner, self._depth = me, 1
                try:
                    yield
                finally:
                    self._owner, self._depth = None, 0
            finally:
                self._fd = None
                os.close(fd)  # closing the only descriptor releases the flock
        finally:
            self._thread_lock.release()

    def _after_fork(self) -> None:
        """In a forked child: a fresh thread lock, and if a parent thread held or was
        taking the file lock at the moment of the fork, this process's copy of its
        descriptor closed. An ``flock`` belongs to the open file, which the copy shares:
        kept open, it would hold the lock for every process until this child exits, long
        after the parent released it. (If the forking thread itself holds the lock, it goes
        on to release it.)"""
        if self._owner is not None and self._owner == threading.get_ident():
            return
        fd, self._fd = self._fd, None
        self._thread_lock = threading.Lock()
        self._owner, self._depth = None, 0
        if fd is not None:
            os.close(fd)

    @staticmethod
    def _wait_for(*ends: float | None) -> float:
        """Seconds until the earliest of ``ends`` (``-1``: none, wait forever)."""
        bounded = [end for end in ends if end is not None]
        return -1 if not bounded else max(0.0, min(bounded) - time.monotonic())

    def _gave_up(self, patience: float | None, deadline: float | None) -> Exception:
        """The error for a wait that ended at the earlier of the two ends (the deadline
        when they coincide: it has passed either way)."""
        if deadline is not None and (patience is None or deadline <= patience):
            return deadline_error(f"the token file lock {self.lock_path}")
        return TokenStoreError(f"timed out waiting for the token file lock {self.lock_path}")

    def _flock(self, patience: float | None, deadline: float | None) -> int:
        """Open the sidecar lock file and take an exclusive flock on it."""
        self._ensure_dir()
        try:
            fd = os.open(
                self.lock_path,
                os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                _FILE_MODE,
            )
        except OSError as exc:
            raise TokenStoreError(
                f"cannot open the token lock file {self.lock_path}: {exc.strerror}"
            ) from exc
        self._fd = fd  # one at a time: the thread lock is held
        try:
            while True:
                try:
                    if patience is None and deadline is None:
                        fcntl.flock(fd, fcntl.LOCK_EX)
                    else:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    left = self._wait_for(patience, deadline)
                    if left <= 0:
                        raise self._gave_up(patience, deadline) from None
                    time.sleep(min(self._poll_interval, left))
                except OSError as exc:
                    raise TokenStoreError(
                        f"cannot lock {self.lock_path}: {exc.strerror}"
                    ) from exc
        except BaseException:
            self._fd = None
            os.close(fd)
            raise

    # -- file access -----------------------------------------------------------------------

    def _ensure_dir(self) -> None:
        directory = os.path.dirname(self.path)
        try:
            os.makedirs(directory, mode=_DIR_MODE, exist_ok=True)
        except OSError as exc:
            raise TokenStoreError(
                f"cannot create the token directory {directory}: {exc.strerror}"
            ) from exc

    def _read(self) -> dict[str, object]:
        """The file's mapping, or ``{}`` if it is missing or must be ignored."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                logger.warning("Ignoring token file %s: it is a symbolic link", self.path)
                return {}
            raise TokenStoreError(f"cannot read the token file {self.path}: {exc.strerror}") from exc
        try:
            st = os.fstat(fd)
            if st.st_uid != os.getuid():
                logger.warning(
                    "Ignoring token file %s: owned by uid %d, not by the current user",
                    self.path,
                    st.st_uid,
                )
                return {}
            if st.st_mode & 0o077:
                logger.warning(
                    "Ignoring token file %s: its mode %o gives access to group or others "
                    "(expected 600)",
                    self.path,
                    st.st_mode & 0o777,
                )
                return {}
            with os.fdopen(os.dup(fd), "rb") as fh:
                raw = fh.read(_MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise TokenStoreError(f"cannot read the token file {self.path}: {exc.strerror}") from exc
        finally:
            os.close(fd)
        if len(raw) > _MAX_FILE_BYTES:
            logger.warning("Ignoring token file %s: larger than %d bytes", self.path, _MAX_FILE_BYTES)
            return {}
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            logger.warning("Ignoring token file %s: not valid JSON", self.path)
            return {}
        if not isinstance(data, dict):
            logger.warning("Ignoring token file %s: expected a JSON object", self.path)
            return {}
        return data

    @staticmethod
    def _valid_entries(data: dict[str, object]) -> dict[str, object]:
        """Entries worth keeping on rewrite: well-formed and not yet expired."""
        now = time.time()
        kept: dict[str, object] = {}
        for key, entry in data.items():
            token = Token.from_dict(entry)
            if isinstance(key, str) and token is not None and token.expires_at > now:
                kept[key] = token.to_dict()
        return kept

    def _write(self, data: dict[str, object]) -> None:
        """Atomically replace the file with ``data`` (temp file 0600, fsync, rename)."""
        self._ensure_dir()
        payload = json.dumps(data, separators=(",", ":"), sort_keys=True).encode("utf-8")
        try:
            replace_file(self.path, payload, _FILE_MODE)
        except OSError as exc:
            raise TokenStoreError(f"cannot write the token file {self.path}: {exc.strerror}") from exc
