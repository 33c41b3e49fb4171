"""Conversations as files: one file per conversation, for one host (or a shared local disk).

``directory/<sha256 of the id>.json`` holds ``{"version": <n>, "state": <the state>}``.
The name is a hash, so any id (slashes, dots, ``..``, unicode) maps to one plain file name
inside the directory and never to a path elsewhere; the id itself is inside the state,
and a file whose state has another id is refused as foreign.

Writes replace the file atomically (a temporary file in the same directory, ``fsync``,
``os.replace``, ``fsync`` of the directory), so a reader sees the old state or the new
one, never half of one, and a crash mid-write loses only the new turn. Files are created
with mode 0600 and the directory (when this store creates it) with 0700.

A save compares and swaps under an exclusive ``flock`` on ``<hash>.lock`` (one lock file
per conversation, kept: deleting lock files races with their users) and, within one
process, a thread lock: the stored version is read, compared with the one expected, and
the new file written while no other saver of that conversation can run. Two processes
saving at once: exactly one wins, the other gets ``ConflictError`` and writes nothing.
The version is read from the file's first bytes, where this store writes it; a file whose
version cannot be read is refused (``StateError``, left as it is), and one holding the
expected version is replaced even if its state would not load (as the Redis and Django
stores do: the version is what compare-and-swap compares; ``load`` checks the state).
``flock`` is reliable on local filesystems; do not share the directory over NFS.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import stat
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from ..checks import check_seconds
from ..at_fork import reinit_in_child
from ..durable import replace_file
from ..constants import DEFAULT_STORE_LOCK_TIMEOUT, MAX_STATE_BYTES
from ..errors import ConversationStoreError, StateError
from .schema import check_conversation_id, check_state, describe_id
from .store import StoredState, check_expected_version, check_versions, encode_state, parse_json

__all__ = ["FileConversationStore"]

_FILE_MODE = 0o600
_DIR_MODE = 0o700
_ENVELOPE_BYTES = 64
_HEAD = re.compile(rb'\{"version":([1-9][0-9]{0,17}),"state":\{')  # as _envelope writes it  # what the file adds to the state's JSON text, at most
_STRIPES = 16  # thread locks per store, chosen by id hash (flock excludes other stores)


def _fresh_thread_locks(store: FileConversationStore) -> None:
    """Thread locks for ``store`` (again in a forked child: locks held by the parent's
    other threads would never be released there)."""
    store._thread_locks = tuple(threading.Lock() for _ in range(_STRIPES))


class FileConversationStore:
    """Conversation states in ``directory``, one file per conversation id.

    Args:
        directory: created (mode 0700) on the first save if missing; ``~`` is expanded.
        lock_timeout: seconds a save waits for another save of the same conversation
            before raising :class:`~genesys_gateway.ConversationStoreError`.
        poll_interval: seconds between attempts to take the ``flock`` while waiting.

    Attributes:
        directory: the absolute directory path.
        lock_timeout: as given, in seconds.
        poll_interval: as given, in seconds.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        lock_timeout: float = DEFAULT_STORE_LOCK_TIMEOUT,
        poll_interval: float = 0.005,
    ) -> None:
        check_seconds("lock_timeout", lock_timeout)
        check_seconds("poll_interval", poll_interval, positive=True)
        self.directory = os.path.abspath(os.path.expanduser(os.fspath(directory)))
        self.lock_timeout = float(lock_timeout)
        self.poll_interval = float(poll_interval)
        self._thread_locks: tuple[threading.Lock, ...] = ()
        _fresh_thread_locks(self)
        reinit_in_child(self, _fresh_thread_locks)

    def __repr__(self) -> str:
        return f"FileConversationStore({self.directory!r})"

    def path_for(self, conversation_id: str) -> str:
        """The file that holds (or will hold) the conversation ``conversation_id``."""
        check_conversation_id(conversation_id)
        return os.path.join(self.directory, _file_name(conversation_id) + ".json")

    # -- ConversationStore ------------------------------------------------------------------

    def load(self, conversation_id: str) -> StoredState | None:
        """The stored state and its version, or ``None`` when there is none (see
        :meth:`ConversationStore.load <genesys_gateway.ConversationStore.load>`)."""
        path = self.path_for(conversation_id)
        envelope = self._read(path, conversation_id)
        if envelope is None:
            return None
        state, version = envelope
        return StoredState(check_state(state, conversation_id=conversation_id), version)

    def save(self, state: Mapping[str, Any], expected_version: int | None) -> int:
        """Store ``state`` under ``state["id"]`` if the stored version is
        ``expected_version`` (``None``: create it); the new version (see
        :meth:`ConversationStore.save <genesys_gateway.ConversationStore.save>`)."""
        expected = check_expected_version(expected_version)
        conversation_id, text = encode_state(state)
        version = 1 if expected is None else expected + 1
        payload = _envelope(version, text)
        path = self.path_for(conversation_id)
        with self._locked(conversation_id, path):
            current = self._read(path, conversation_id, "save", version_only=True)
            check_versions(conversation_id, expected, None if current is None else current[1])
            self._write(path, payload, conversation_id)
        return version

    # -- locking ------------------------------------------------------------------------------

    @contextmanager
    def _locked(self, conversation_id: str, path: str) -> Iterator[None]:
        deadline = time.monotonic() + self.lock_timeout
        thread_lock = self._thread_locks[hash(path) % _STRIPES]
        if not thread_lock.acquire(timeout=self.lock_timeout):
            raise self._timed_out(conversation_id)
        try:
            fd = self._flock(path[: -len(".json")] + ".lock", conversation_id, deadline)
            try:
                yield
            finally:
                os.close(fd)  # the only descriptor: closing it releases the flock
        finally:
            thread_lock.release()

    def _timed_out(self, conversation_id: str) -> ConversationStoreError:
        return ConversationStoreError(
            f"{describe_id(conversation_id)}: timed out after {self.lock_timeout:g} s waiting "
            f"for another save of it to finish", conversation_id=conversation_id)

    def _flock(self, lock_path: str, conversation_id: str, deadline: float) -> int:
        self._ensure_directory(conversation_id)
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        with self._mapped(conversation_id, "save", f"open the lock file {lock_path}"):
            fd = os.open(lock_path, flags, _FILE_MODE)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise self._timed_out(conversation_id) from None
                    time.sleep(self.poll_interval)  # another process is saving: a few ms
                except OSError as exc:
                    raise self._store_error(conversation_id, "save", f"lock {lock_path}",
                                            exc) from exc
        except BaseException:
            os.close(fd)
            raise

    # -- files ----------------------------------------------------------------------------------

    @staticmethod
    def _store_error(conversation_id: str, action: str, step: str,
                     exc: OSError) -> ConversationStoreError:
        return ConversationStoreError(
            f"{describe_id(conversation_id)}: cannot {action} it: cannot {step}: "
            f"{exc.strerror or exc}", conversation_id=conversation_id)

    @contextmanager
    def _mapped(self, conversation_id: str, action: str, step: str) -> Iterator[None]:
        """Turn ``OSError`` into ``ConversationStoreError`` (this store's one edge)."""
        try:
            yield
        except OSError as exc:
            raise self._store_error(conversation_id, action, step, exc) from exc

    def _ensure_directory(self, conversation_id: str) -> None:
        with self._mapped(conversation_id, "save", f"create the directory {self.directory}"):
            os.makedirs(self.directory, mode=_DIR_MODE, exist_ok=True)

    def _read(self, path: str, conversation_id: str, action: str = "load", *,
              version_only: bool = False) -> tuple[Any, int] | None:
        """``(state as stored, version)`` of the file, ``None`` if there is none, or
        ``StateError`` when it is not a conversation file (left as it is). With
        ``version_only``, the state is ``None`` when the version could be read from the
        file's first bytes (the whole file is parsed only when it could not)."""
        def refuse(problem: str) -> StateError:
            return StateError(f"{describe_id(conversation_id)}: the file {path} {problem}",
                              conversation_id=conversation_id)

        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise refuse("is a symbolic link, not a conversation file") from None
            raise self._store_error(conversation_id, action, f"read {path}", exc) from exc
        try:
            with self._mapped(conversation_id, action, f"read {path}"):
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    raise refuse("is not a regular file")
                if info.st_size > MAX_STATE_BYTES + _ENVELOPE_BYTES:
                    raise refuse(f"is larger than {MAX_STATE_BYTES + _ENVELOPE_BYTES} bytes")
                chunks = []
                if version_only:
                    head = os.read(fd, 48)
                    match = _HEAD.match(head)
                    if match:
                        return None, int(match.group(1))
                    chunks.append(head)
                while chunk := os.read(fd, 1 << 20):
                    chunks.append(chunk)
        finally:
            os.close(fd)
        data = parse_json(b"".join(chunks), conversation_id, what=f"the file {path}",
                          limit=MAX_STATE_BYTES + _ENVELOPE_BYTES)
        version = data.get("version") if isinstance(data, dict) else None
        if type(version) is not int or version < 1 or not isinstance(data.get("state"), dict):
            raise refuse('is not a conversation file ({"version": n, "state": {...}} expected)')
        inner = data["state"].get("id")
        if inner != conversation_id:
            raise refuse(f"belongs to {describe_id(inner)}")
        return data["state"], version

    def _write(self, path: str, payload: bytes, conversation_id: str) -> None:
        """Atomically replace ``path`` with ``payload`` (temp file 0600, fsync, rename)."""
        with self._mapped(conversation_id, "save", f"write {path}"):
            replace_file(path, payload, _FILE_MODE)


def _envelope(version: int, text: str) -> bytes:
    """The file's bytes: ``{"version":<n>,"state":<text>}`` (version first: see _HEAD)."""
    return f'{{"version":{version},"state":{text}}}'.encode("ascii")


def _file_name(conversation_id: str) -> str:
    return hashlib.sha256(conversation_id.encode("utf-8")).hexdigest()
