"""What a handler may ask for besides its arguments: :class:`ToolContext`, and finding the
parameter that asks for it (a leaf module: the registry and schema code both use it).
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
import types
import typing
from typing import Any, Callable, Mapping

import attrs

from ..errors import ToolDefinitionError

__all__ = ["ToolContext", "find_context_param", "is_context_annotation", "hint_target",
           "idempotency_key"]


def idempotency_key(conversation_id: str, call_id: str) -> str:
    """The idempotency key of tool call ``call_id`` of conversation ``conversation_id``:
    32 hex digits of ``sha256(conversation_id + "\\0" + call_id)``. The same for the same
    call wherever and whenever it runs (a retry, an approval, a resume in another
    process); different for different calls (a conversation never reuses a call id)."""
    import hashlib  # only for handlers that take a ToolContext

    digest = hashlib.sha256(f"{conversation_id}\0{call_id}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


@attrs.frozen
class ToolContext:
    """Per-call information for handlers that declare a ``ToolContext`` parameter.

    Attributes:
        call_id: the tool call's id (as the model sent it, or as repaired).
        deadline: a ``time.monotonic()`` value after which the call counts as timed out,
            or ``None``.
        cancelled: set when the call times out or is abandoned: long-running handlers
            should check it and return early, since a Python thread cannot be killed.
        idempotency_key: a string stable for this one tool call across retries, approval
            and resume (see :func:`idempotency_key`): pass it to the API the tool calls
            (a payment's idempotency key) or use it as a unique key in the tool's own
            table, so that a call run again after a crash has its effect once. ``None``
            when the executor is used directly without a conversation id.
    """

    call_id: str
    deadline: float | None = None
    cancelled: threading.Event = attrs.field(factory=threading.Event, eq=False)
    idempotency_key: str | None = None

    @property
    def is_cancelled(self) -> bool:
        """Whether :attr:`cancelled` is set."""
        return self.cancelled.is_set()

    def time_left(self) -> float | None:
        """Seconds until :attr:`deadline` (may be negative), or ``None`` without one."""
        return None if self.deadline is None else self.deadline - time.monotonic()


def hint_target(func: Any) -> Any:
    """The function whose annotations describe calling ``func`` (unwrapping partials, and
    a callable object's ``__call__``)."""
    while isinstance(func, functools.partial):
        func = func.func
    if inspect.isfunction(func) or inspect.ismethod(func):
        return func
    call = getattr(type(func), "__call__", None)
    return call if call is not None else func


def is_context_annotation(ann: Any) -> bool:
    """Whether ``ann`` is ``ToolContext`` (also as a string, ``Optional`` or ``Annotated``)."""
    if ann is ToolContext:
        return True
    if isinstance(ann, str):
        text = ann.strip().strip("'\"")
        return text == "ToolContext" or text.endswith(".ToolContext")
    origin = typing.get_origin(ann)
    if origin is typing.Annotated:
        return is_context_annotation(typing.get_args(ann)[0])
    if origin is typing.Union or origin is types.UnionType:
        members = [a for a in typing.get_args(ann) if a is not type(None)]
        return len(members) == 1 and is_context_annotation(members[0])
    return False


def find_context_param(handler: Callable[..., Any], *, tool_name: str,
                       localns: Mapping[str, Any] | None = None) -> str | None:
    """The name of the handler's ``ToolContext`` parameter, or ``None``.

    Raises :class:`ToolDefinitionError` for two such parameters, or one that cannot be
    passed by keyword.
    """
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):
        return None
    try:
        hints = typing.get_type_hints(hint_target(handler), localns=dict(localns or {}))
    except Exception:
        hints = {}  # fall back to the raw (possibly string) annotations
    found = [p for p in signature.parameters.values()
             if is_context_annotation(hints.get(p.name, p.annotation))]
    if not found:
        return None
    if len(found) > 1:
        raise ToolDefinitionError(
            f"tool {tool_name!r}: handler has more than one ToolContext parameter "
            f"({', '.join(p.name for p in found)})"
        )
    param = found[0]
    if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
        raise ToolDefinitionError(
            f"tool {tool_name!r}: the ToolContext parameter {param.name!r} must accept a "
            "keyword argument"
        )
    return param.name
