"""Conversation state that outlives a request: its format (version 1), its checks, and
the stores that keep it between requests (memory, files, Redis; Django in
``genesys_gateway.contrib.django.conversations``).

This wing imports only ``errors``, ``checks`` and ``constants`` from the core; the
conversation builds on it, never the other way round.
"""

from .file_store import FileConversationStore
from .redis_store import RedisConversationStore
from .schema import STATE_SCHEMA, STATE_VERSION, check_state
from .store import ConversationStore, MemoryConversationStore, StoredState

__all__ = [
    "STATE_SCHEMA",
    "STATE_VERSION",
    "check_state",
    "ConversationStore",
    "StoredState",
    "MemoryConversationStore",
    "FileConversationStore",
    "RedisConversationStore",
]
