"""The model behind :class:`~genesys_gateway.contrib.django.conversations.DjangoConversationStore`.

Run ``python manage.py migrate genesys_gateway`` once to create its table.
"""

from __future__ import annotations

from django.db import models

from ...constants import MAX_CONVERSATION_ID_CHARS

__all__ = ["ConversationState", "TABLE"]

#: The table's name (``Meta.db_table``).
TABLE = "genesys_gateway_conversation_state"


class ConversationState(models.Model):  # type: ignore[misc]  # Django ships no types
    """One conversation's state: ``data`` is the state's JSON text, ``version`` counts its
    saves (compare-and-swap: a save updates the row only where the version is the one the
    saver loaded)."""

    id = models.CharField(primary_key=True, max_length=MAX_CONVERSATION_ID_CHARS)
    version = models.PositiveIntegerField()
    data = models.TextField()
    updated_at = models.DateTimeField()

    objects = models.Manager()

    class Meta:
        app_label = "genesys_gateway"
        db_table = TABLE
        verbose_name = "conversation state"

    def __str__(self) -> str:
        return f"{self.id} (version {self.version})"
