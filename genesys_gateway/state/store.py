"""The ``ConversationStore`` protocol, what every store shares, and the in-memory store.

A store keeps one state per conversation id with a version number: ``save(state, None)``
creates the conversation (version 1) and fails if it exists; ``save(state, n)`` replaces
version ``n`` with version ``n + 1`` and fails if the stored version is not ``n`` (another
worker saved first) or the conversation is gone. A failed save stores nothing and raises
:class:`~genesys_gateway.errors.ConflictError`. That is optimistic concurrency: two workers
that loaded version 4 and both try to save cannot both win.

``load`` checks what it reads with :func:`~.schema.check_state` (schema, history rules,
the id inside matching the id asked for) and raises
:class:`~genesys_gateway.errors.StateError` for anything unusable, leaving it stored as
it is. ``save`` runs only the checks that cost nothing next to the encoding (a mapping,
the supported version, a usable id, JSON data, the size limit): states come from
``Conversation.to_dict()``, and whatever is stored is checked again when loaded.
A store that cannot be reached raises
:class:`~genesys_gateway.errors.ConversationStoreError`.
"""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, NamedTuple, Protocol, runtime_checkable

from ..constants import MAX_STATE_BYTES
from ..errors import ConflictError, ConversationStoreError, StateError
from .schema import STATE_VERSION, check_conversation_id, check_state, conversation_id_problem, describe_id

__all__ = [
    "ConversationStore",
    "StoredState",
    "MemoryConversationStore",
    "encode_state",
    "decode_state",
    "parse_json",
    "check_expected_version",
    "check_versions",
    "conflict",
    "store_errors",
]

#: A store's exception table: each backend exception class, most specific first, with
#: what it means for the store.
ErrorTable = tuple[tuple[type[BaseException], str], ...]


@contextmanager
def store_errors(conversation_id: str, action: str, table: ErrorTable) -> Iterator[None]:
    """Map a backend exception listed in ``table`` to :class:`ConversationStoreError`
    naming the conversation, the action and what the exception means (a store's one
    exception edge)."""
    try:
        yield
    except tuple(kind for kind, _ in table) as exc:
        meaning = next(text for kind, text in table if isinstance(exc, kind))
        raise ConversationStoreError(
            f"{describe_id(conversation_id)}: cannot {action} it: {meaning} "
            f"({type(exc).__name__}: {exc})", conversation_id=conversation_id) from exc


class StoredState(NamedTuple):
    """What :meth:`ConversationStore.load` returns: the checked state and its version
    (pass the version to the next ``save``).

    Attributes:
        state: the conversation's state, as ``Conversation.to_dict()`` made it (checked).
        version: the stored version (1 after the first save, one more after each).
    """

    state: dict[str, Any]
    version: int


@runtime_checkable
class ConversationStore(Protocol):
    """Where conversations live between requests (any process, any host)."""

    def load(self, conversation_id: str) -> StoredState | None:
        """The stored state and its version, or ``None`` when there is none.

        Raises ``StateError`` for stored data that is not a usable state for this id,
        ``ConversationStoreError`` when the store cannot be used."""
        ...

    def save(self, state: Mapping[str, Any], expected_version: int | None) -> int:
        """Store ``state`` under ``state["id"]`` and return its new version.

        ``expected_version=None`` creates the conversation; an ``int`` replaces that
        version. Raises ``ConflictError`` (and stores nothing) when the stored version is
        not the one expected, ``StateError`` for a state that cannot be stored,
        ``ConversationStoreError`` when the store cannot be used."""
        ...


def encode_state(state: Mapping[str, Any]) -> tuple[str, str]:
    """``(conversation id, compact JSON text)`` of a state about to be saved.

    The text is ASCII (``ensure_ascii``), so its length is its size in bytes."""
    if not isinstance(state, Mapping):
        raise StateError(f"a state must be a mapping, got {type(state).__name__}")
    conversation_id = state.get("id")
    problem = conversation_id_problem(conversation_id)
    if problem is not None:
        raise StateError(f"cannot save a state whose id {problem}")
    assert isinstance(conversation_id, str)  # checked just above
    version = state.get("version")
    if type(version) is not int or version != STATE_VERSION:
        raise StateError(f"{describe_id(conversation_id)}: cannot save state version "
                         f"{version!r} (this SDK writes version {STATE_VERSION})",
                         conversation_id=conversation_id)
    data = state if type(state) is dict else dict(state)
    try:
        text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    except RecursionError:
        raise StateError(f"{describe_id(conversation_id)}: the state is nested too deeply",
                         conversation_id=conversation_id) from None
    except (TypeError, ValueError) as exc:
        raise StateError(f"{describe_id(conversation_id)}: the state is not JSON data: {exc}",
                         conversation_id=conversation_id) from None
    if len(text) > MAX_STATE_BYTES:
        raise StateError(f"{describe_id(conversation_id)}: the state is {len(text)} bytes of "
                         f"JSON, more than the {MAX_STATE_BYTES} a store keeps",
                         conversation_id=conversation_id)
    return conversation_id, text


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(raw: str | bytes, conversation_id: str, what: str = "the stored state",
               limit: int = MAX_STATE_BYTES) -> Any:
    """``raw`` parsed as JSON, or ``StateError`` naming the conversation."""
    def refuse(problem: str) -> StateError:
        return StateError(f"{describe_id(conversation_id)}: {what} {problem}",
                          conversation_id=conversation_id)

    if len(raw) > limit:
        raise refuse(f"is larger than {limit} bytes")
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise refuse(f"is not valid JSON ({exc.msg} at char {exc.pos}; "
                     f"truncated or corrupt?)") from None
    except RecursionError:
        raise refuse("is nested too deeply") from None
    except ValueError as exc:  # NaN/Infinity, bytes that are not UTF-8
        raise refuse(f"is not valid JSON ({exc})") from None


def decode_state(raw: str | bytes, conversation_id: str) -> dict[str, Any]:
    """The checked state stored as the JSON text ``raw`` under ``conversation_id``."""
    return check_state(parse_json(raw, conversation_id), conversation_id=conversation_id)


def check_expected_version(expected_version: object) -> int | None:
    """``None`` or a version (an ``int`` >= 1); else ``TypeError``/``ValueError``."""
    if expected_version is None:
        return None
    if type(expected_version) is not int:
        raise TypeError(f"expected_version must be an int or None, "
                        f"got {type(expected_version).__name__}")
    if expected_version < 1:
        raise ValueError(f"expected_version must be >= 1, got {expected_version}")
    return expected_version


def check_versions(conversation_id: str, expected: int | None, stored: int | None) -> None:
    """Raise :class:`ConflictError` unless a save expecting ``expected`` may replace what
    is stored (``stored``; ``None`` when nothing is)."""
    if expected != stored:
        raise conflict(conversation_id, expected, stored)


def conflict(conversation_id: str, expected: int | None, stored: int | None) -> ConflictError:
    """The :class:`ConflictError` of a save expecting ``expected`` that found ``stored``."""
    name = describe_id(conversation_id)
    if expected is None:
        problem = f"{name} already exists (version {stored})"
    elif stored is None:
        problem = f"{name} does not exist (version {expected} was expected)"
    elif stored == expected:  # it changed and changed back while this save ran
        problem = f"{name} changed while it was being saved"
    else:
        problem = (f"{name} is at version {stored}, not {expected}: "
                   f"another worker saved it first")
    return ConflictError(f"{problem}; nothing was saved", conversation_id=conversation_id,
                         expected_version=expected, stored_version=stored)


class MemoryConversationStore:
    """States kept in this process's memory (tests, scripts, a single-process server).

    States are kept as JSON text, so what ``load`` returns is a fresh copy and a state
    changed after ``save`` does not change what is stored. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[str, int]] = {}

    def __repr__(self) -> str:
        return f"MemoryConversationStore({len(self._entries)} conversations)"

    def load(self, conversation_id: str) -> StoredState | None:
        """The stored state and its version, or ``None`` when there is none (see
        :meth:`ConversationStore.load <genesys_gateway.ConversationStore.load>`)."""
        check_conversation_id(conversation_id)
        with self._lock:
            entry = self._entries.get(conversation_id)
        if entry is None:
            return None
        text, version = entry
        return StoredState(decode_state(text, conversation_id), version)

    def save(self, state: Mapping[str, Any], expected_version: int | None) -> int:
        """Store ``state`` under ``state["id"]`` if the stored version is
        ``expected_version`` (``None``: create it); the new version (see
        :meth:`ConversationStore.save <genesys_gateway.ConversationStore.save>`)."""
        expected = check_expected_version(expected_version)
        conversation_id, text = encode_state(state)
        with self._lock:
            entry = self._entries.get(conversation_id)
            check_versions(conversation_id, expected, None if entry is None else entry[1])
            version = 1 if expected is None else expected + 1
            self._entries[conversation_id] = (text, version)
        return version
