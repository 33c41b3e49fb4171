"""Turning a tool's return value into the text sent to the model.

* A ``str`` is sent verbatim.
* Anything else becomes compact JSON (``ensure_ascii=False``): dicts, lists, tuples,
  sets (sorted when possible), attrs instances (``attrs.asdict``), dataclasses,
  ``datetime``/``date``/``time`` (ISO 8601), ``Decimal`` (a string, keeping every
  digit), ``UUID`` (string), ``Enum`` (its value), objects with ``model_dump()``
  (pydantic). Anything else raises :class:`ResultSerializationError`, which the executor
  reports as an ``error`` run.
* Text longer than ``max_chars`` is cut and ends with a visible marker such as
  ``…[truncated 12345 chars]``; the total never exceeds ``max_chars``.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import uuid
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ToolArgumentsError

if TYPE_CHECKING:
    from .registry import Tool

__all__ = [
    "ResultSerializationError",
    "serialize_result",
    "truncate",
    "format_result",
    "validate_output",
    "json_default",
]

class ResultSerializationError(Exception):
    """A tool returned a value that cannot be turned into JSON."""


def json_default(value: Any) -> Any:
    """``json`` fallback for the non-JSON types a tool may reasonably return."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    if attrs.has(type(value)):
        return attrs.asdict(value, recurse=True)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        return dump(mode="json")
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_ENCODER_WITH_DEFAULT = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=json_default
)


def serialize_result(value: Any) -> str:
    """The full text for ``value`` (no truncation). Raises ResultSerializationError."""
    if isinstance(value, str):
        return str(value)
    try:
        return _ENCODER_WITH_DEFAULT.encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ResultSerializationError(f"{type(exc).__name__}: {exc}") from None


def truncation_marker(removed: int) -> str:
    return f"…[truncated {removed} chars]"


def truncate(text: str, max_chars: int) -> tuple[str, bool]:
    """``(text, False)`` when it fits, else a cut with a marker: ``(cut, True)``.

    The result is never longer than ``max_chars``; if even the marker does not fit, the
    text is simply cut.
    """
    if len(text) <= max_chars:
        return text, False
    keep = max_chars - len(truncation_marker(len(text) - max_chars))
    for _ in range(3):  # the marker's own length depends on the count it shows
        marker = truncation_marker(len(text) - keep)
        new_keep = max_chars - len(marker)
        if new_keep == keep:
            break
        keep = new_keep
    if keep < 0:
        return text[:max_chars], True
    marker = truncation_marker(len(text) - keep)
    return text[:keep] + marker, True


def format_result(value: Any, max_chars: int) -> tuple[str, bool]:
    """``(content, truncated)``: the text sent to the model for a tool's return value."""
    return truncate(serialize_result(value), max_chars)


def validate_output(tool: "Tool", value: Any, serialized: str | None = None) -> str | None:
    """Check ``value`` against ``tool.output_schema``: ``None`` if valid, else a message.

    The JSON-compatible form is validated (what the model would see): a ``str`` as
    itself, anything else as its JSON serialization read back. Pass ``serialized`` when
    already computed to avoid serializing twice.
    """
    validator = tool.output_validator
    if validator is None:
        return None
    if isinstance(value, str):
        data: Any = str(value)
    else:
        data = json.loads(serialized if serialized is not None else serialize_result(value))
    try:
        validator.validate(data, label=f"output of tool {tool.name!r}")
    except ToolArgumentsError as exc:
        return str(exc)
    return None
