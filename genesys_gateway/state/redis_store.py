"""Conversations in Redis: every worker of every host sees the same states.

Each conversation is a Redis hash under ``f"{key}:{conversation_id}"`` with two fields,
``version`` and ``state`` (the state's JSON text), written together by one ``HSET``, so
a reader always gets a state with its own version (``HMGET`` reads both at once). A save
is one Lua script, atomic in Redis: it compares the stored version with the one expected
and writes only when they match (compare-and-swap), so of two workers saving the same
version at once exactly one wins; the other gets ``ConflictError`` and nothing is
written. ``ttl=`` makes a conversation expire that long after its last save.

A key holding something else (another type, a hash without a usable version, a state
that fails its checks) raises ``StateError`` and is left as it is. Redis and socket
errors become :class:`~genesys_gateway.errors.ConversationStoreError`, mapped once by
:data:`ERRORS`. ``redis`` is an optional dependency (``pip install genesys_gateway[redis]``)
imported only to recognise its exceptions.
"""

from __future__ import annotations

import math
import re
from typing import Any, ContextManager, Mapping

from ..checks import check_seconds
from ..errors import ConversationStoreError, StateError
from .schema import check_conversation_id, describe_id
from .store import (StoredState, check_expected_version, check_versions, decode_state,
                    encode_state, store_errors)

__all__ = ["RedisConversationStore", "error_table"]

# KEYS[1]: the conversation's key.
# ARGV[1]: the expected version ("" to create), ARGV[2]: the new version,
# ARGV[3]: the state's JSON text, ARGV[4]: time to live in ms ("" for none).
# Returns {status, detail}: {"ok", new version}, {"conflict", stored version or ""},
# {"wrongtype", the key's type} or {"corrupt", the stored version field}.
_SAVE = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then
    if ARGV[1] ~= '' then return {'conflict', ''} end
elseif kind ~= 'hash' then
    return {'wrongtype', kind}
else
    local stored = redis.call('HGET', KEYS[1], 'version')
    if not stored or not string.match(stored, '^[1-9]%d*$') then
        return {'corrupt', tostring(stored)}
    end
    if stored ~= ARGV[1] then return {'conflict', stored} end
end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'state', ARGV[3])
if ARGV[4] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return {'ok', ARGV[2]}
"""

_VERSION = re.compile(r"[1-9][0-9]{0,17}")


def error_table() -> tuple[tuple[type[BaseException], str], ...]:
    """What each Redis exception means, most specific first (the store's one edge)."""
    try:
        from redis import exceptions as rx
    except ImportError:  # a duck-typed client without the redis package
        return ((OSError, "a socket error"),)
    return (
        (rx.AuthenticationError, "Redis refused the credentials"),
        (rx.TimeoutError, "Redis did not answer in time"),
        (rx.ConnectionError, "Redis cannot be reached"),
        (rx.ReadOnlyError, "Redis is read-only (a replica?)"),
        (rx.ResponseError, "Redis refused the command"),
        (rx.RedisError, "Redis failed"),
        (OSError, "a socket error"),
    )


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class RedisConversationStore:
    """Conversation states in Redis, shared by every process using the same Redis and key.

    Args:
        redis_client: a ``redis.Redis`` (or compatible) client, with or without
            ``decode_responses``. Give it short ``socket_connect_timeout``/``socket_timeout``
            values: an unreachable Redis costs each load or save that long.
        key: prefix of every Redis key this store writes.
        ttl: seconds a conversation is kept after its last save; ``None`` keeps it.

    Attributes:
        prefix: the ``key`` prefix.
        ttl: as given.
    """

    def __init__(self, redis_client: Any, key: str = "genesys_gateway:conv", *,
                 ttl: float | None = None) -> None:
        if not isinstance(key, str) or not key:
            raise TypeError("key must be a non-empty string")
        if ttl is not None:
            check_seconds("ttl", ttl, positive=True)
        self._redis = redis_client
        self.prefix = key
        self.ttl = ttl
        self._ttl_ms = "" if ttl is None else str(max(1, math.ceil(ttl * 1000)))
        self._errors = error_table()
        self._save_script = redis_client.register_script(_SAVE)

    def __repr__(self) -> str:  # never the client: its repr may name hosts or credentials
        return f"RedisConversationStore(key={self.prefix!r}, ttl={self.ttl!r})"

    def key_for(self, conversation_id: str) -> str:
        """The Redis key of the conversation ``conversation_id``."""
        return f"{self.prefix}:{check_conversation_id(conversation_id)}"

    def _mapped(self, conversation_id: str, action: str) -> ContextManager[None]:
        return store_errors(conversation_id, action, self._errors)

    def load(self, conversation_id: str) -> StoredState | None:
        """The stored state and its version, or ``None`` when there is none (see
        :meth:`ConversationStore.load <genesys_gateway.ConversationStore.load>`)."""
        key = self.key_for(conversation_id)
        try:
            with self._mapped(conversation_id, "load"):
                version, text = self._redis.hmget(key, ["version", "state"])
        except ConversationStoreError as exc:
            if "WRONGTYPE" in str(exc.__cause__):
                raise self._wrong_type(conversation_id, key) from None
            raise
        if version is None and text is None:
            return None
        stored = _text(version) if version is not None else None
        if stored is None or not _VERSION.fullmatch(stored) or text is None:
            raise self._corrupt(conversation_id, key, stored)
        return StoredState(decode_state(text, conversation_id), int(stored))

    def save(self, state: Mapping[str, Any], expected_version: int | None) -> int:
        """Store ``state`` under ``state["id"]`` if the stored version is
        ``expected_version`` (``None``: create it); the new version (see
        :meth:`ConversationStore.save <genesys_gateway.ConversationStore.save>`)."""
        expected = check_expected_version(expected_version)
        conversation_id, text = encode_state(state)
        key = self.key_for(conversation_id)
        version = 1 if expected is None else expected + 1
        args = ["" if expected is None else str(expected), str(version), text, self._ttl_ms]
        with self._mapped(conversation_id, "save"):
            status, detail = (_text(part) for part in self._save_script(keys=[key], args=args))
        if status == "ok":
            return version
        if status == "conflict":
            stored = int(detail) if detail else None
            check_versions(conversation_id, expected, stored)  # raises: they differ
        if status == "wrongtype":
            raise self._wrong_type(conversation_id, key, detail)
        raise self._corrupt(conversation_id, key, detail)

    @staticmethod
    def _wrong_type(conversation_id: str, key: str, kind: str | None = None) -> StateError:
        what = f"a Redis {kind}" if kind else "a value that is not a Redis hash"
        return StateError(f"{describe_id(conversation_id)}: the Redis key {key} holds {what}, "
                          f"not a conversation", conversation_id=conversation_id)

    @staticmethod
    def _corrupt(conversation_id: str, key: str, stored: str | None) -> StateError:
        return StateError(f"{describe_id(conversation_id)}: the Redis key {key} is not a "
                          f"conversation (its version field is {stored!r})",
                          conversation_id=conversation_id)
