"""Conversations in the Django database: ``DjangoConversationStore``.

One row of :class:`~genesys_gateway.contrib.django.models.ConversationState` per
conversation (``python manage.py migrate genesys_gateway`` creates the table). A save is
compare-and-swap in one statement: ``UPDATE ... SET version = n + 1, data = ... WHERE
id = %s AND version = n``; the row count says whether it won. Creating is an ``INSERT``
in a savepoint, and a duplicate key (``IntegrityError``) means another worker created it
first. Both are :class:`~genesys_gateway.errors.ConflictError`, with nothing written.
Inside a transaction (``ATOMIC_REQUESTS``) a concurrent save of the same row waits for
that transaction to end, then loses (or wins, if it rolled back); the new state is
visible to others on commit.

The three statements are written as SQL on the alias's cursor (Django's connection,
transaction and error handling), not built by the ORM: compiling a queryset costs about
0.3 ms per statement, as much as the round trip to the database.

Database errors become :class:`~genesys_gateway.errors.ConversationStoreError`, mapped
once by :func:`error_table`.
"""

from __future__ import annotations

from typing import Any, ContextManager, Mapping, cast

from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from ...errors import ConfigurationError, StateError
from ...state.schema import check_conversation_id, describe_id
from ...state.store import (
    StoredState,
    check_expected_version,
    conflict,
    decode_state,
    encode_state,
    store_errors,
)
from .models import TABLE

__all__ = ["DjangoConversationStore", "error_table"]


def error_table() -> tuple[tuple[type[BaseException], str], ...]:
    """What each database exception means, most specific first (the store's one edge)."""
    from django.db import utils

    return (
        (utils.OperationalError, "the database cannot be reached or used"),
        (utils.ProgrammingError, "the database refused the query (has migrate been run?)"),
        (utils.InterfaceError, "the database connection is broken"),
        (utils.DatabaseError, "the database failed"),
    )


class DjangoConversationStore:
    """Conversation states in the database ``using`` (an alias of ``settings.DATABASES``).

    Its table is created by ``python manage.py migrate genesys_gateway``. Works on any
    database Django supports (tested on SQLite and PostgreSQL).

    Args:
        using: the database alias (default ``"default"``); one not in
            ``settings.DATABASES`` is a :class:`~genesys_gateway.ConfigurationError`.

    Attributes:
        using: the database alias.
    """

    def __init__(self, using: str = "default") -> None:
        if not isinstance(using, str) or using not in connections:
            raise ConfigurationError(
                f"using must be an alias of settings.DATABASES, got {using!r}", option="using")
        self.using = using
        self._errors = error_table()
        table = connections[using].ops.quote_name(TABLE)
        self._select = f"SELECT version, data FROM {table} WHERE id = %s"
        self._select_version = f"SELECT version FROM {table} WHERE id = %s"
        self._insert = (f"INSERT INTO {table} (id, version, data, updated_at) "
                        f"VALUES (%s, 1, %s, %s)")
        self._update = (f"UPDATE {table} SET version = %s, data = %s, updated_at = %s "
                        f"WHERE id = %s AND version = %s")

    def __repr__(self) -> str:
        return f"DjangoConversationStore(using={self.using!r})"

    def _mapped(self, conversation_id: str, action: str) -> ContextManager[None]:
        return store_errors(conversation_id, action, self._errors)

    def _execute(self, sql: str, params: list[Any]) -> tuple[Any, int]:
        """``(first row or None, row count)`` of one statement."""
        with connections[self.using].cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone() if cursor.description else None
            return row, cursor.rowcount

    def _stored_version(self, conversation_id: str) -> int | None:
        row, _ = self._execute(self._select_version, [conversation_id])
        return None if row is None else int(row[0])

    def load(self, conversation_id: str) -> StoredState | None:
        """The stored state and its version, or ``None`` when there is none (see
        :meth:`ConversationStore.load <genesys_gateway.ConversationStore.load>`)."""
        check_conversation_id(conversation_id)
        with self._mapped(conversation_id, "load"):
            row, _ = self._execute(self._select, [conversation_id])
        if row is None:
            return None
        version, data = row
        if type(version) is not int or version < 1:
            raise StateError(f"{describe_id(conversation_id)}: the database row has version "
                             f"{version!r}, not a positive integer",
                             conversation_id=conversation_id)
        if hasattr(data, "read"):  # a LOB (Oracle)
            data = data.read()
        return StoredState(decode_state(data, conversation_id), version)

    def save(self, state: Mapping[str, Any], expected_version: int | None) -> int:
        """Store ``state`` under ``state["id"]`` if the stored version is
        ``expected_version`` (``None``: create it); the new version (see
        :meth:`ConversationStore.save <genesys_gateway.ConversationStore.save>`)."""
        expected = check_expected_version(expected_version)
        conversation_id, text = encode_state(state)
        with self._mapped(conversation_id, "save"):
            now = connections[self.using].ops.adapt_datetimefield_value(timezone.now())
            if expected is None:
                try:
                    with cast(ContextManager[None], transaction.atomic(using=self.using)):
                        self._execute(self._insert, [conversation_id, text, now])
                except IntegrityError:
                    raise conflict(conversation_id, None,
                                   self._stored_version(conversation_id)) from None
                return 1
            _, updated = self._execute(
                self._update, [expected + 1, text, now, conversation_id, expected])
            if updated != 1:
                raise conflict(conversation_id, expected, self._stored_version(conversation_id))
        return expected + 1
