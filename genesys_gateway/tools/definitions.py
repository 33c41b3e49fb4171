"""A tool snapshot's definitions with their JSON encoded once.

A :class:`~genesys_gateway.tools.registry.ToolSet` is immutable, so the JSON of its tool
definitions is the same in every request that offers them: :class:`EncodedDefinitions`
is the list of definitions (it is a ``list``, read-only by convention) carrying that JSON,
which :func:`genesys_gateway.payload.json_body` splices into the body instead of encoding
the definitions again on every model call.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

__all__ = ["EncodedDefinitions", "encode"]


def encode(value: Any) -> str:
    """JSON as request bodies are written: compact, not ASCII-escaped."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class EncodedDefinitions(list):  # type: ignore[type-arg]  # list[dict[str, Any]]
    """Tool definitions and ``encoded``, their JSON (see the module's docstring)."""

    __slots__ = ("encoded",)

    def __init__(self, definitions: Iterable[dict[str, Any]], encoded: str | None = None) -> None:
        super().__init__(definitions)
        self.encoded: str = encode(list(self)) if encoded is None else encoded
