"""Run limits: ``gg.Limits``, checked before each model call and each tool call."""

from __future__ import annotations

from typing import Any, Mapping

import attrs

from .checks import check_positive_int
from .errors import ConfigurationError

__all__ = ["Limits", "optional_limits"]


def _optional_count(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        check_positive_int(attribute.name, value)


def _per_tool(value: Any) -> dict[str, int]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigurationError("per_tool must map tool names to counts", option="per_tool")
    return {name: check_positive_int(f"per_tool[{name!r}]", count) for name, count in value.items()}


@attrs.frozen
class Limits:
    """Bounds on one run, per client (``GatewayClient(limits=...)``) or per run
    (``run(..., limits=...)``, which replaces the client's).

    When a model call or a tool call would exceed one, the run stops with stop reason
    ``"usage_limit"`` and keeps everything done so far in ``messages``, ``tool_runs`` and
    ``usage``; tool calls of the turn that were not run are answered with an error tool
    message, so the history stays well paired.

    Attributes:
        max_total_tokens: no model call is made once the run's usage reached this many
            tokens (the call that crosses it is not stopped midway).
        max_requests: model calls in the run.
        max_tool_calls: tool calls run in the run (all tools together).
        per_tool: tool calls run per tool name.
    """

    max_total_tokens: int | None = attrs.field(default=None, validator=_optional_count)
    max_requests: int | None = attrs.field(default=None, validator=_optional_count)
    max_tool_calls: int | None = attrs.field(default=None, validator=_optional_count)
    per_tool: Mapping[str, int] = attrs.field(factory=dict, converter=_per_tool)

    def model_call_allowed(self, requests: int, total_tokens: int) -> bool:
        """Whether one more model call fits, after ``requests`` calls using
        ``total_tokens`` tokens."""
        return ((self.max_requests is None or requests < self.max_requests)
                and (self.max_total_tokens is None or total_tokens < self.max_total_tokens))

    def tool_call_allowed(self, name: str, calls: int, calls_of_tool: int) -> bool:
        """Whether one more call of tool ``name`` fits, after ``calls`` tool calls of which
        ``calls_of_tool`` were of ``name``."""
        limit = self.per_tool.get(name)
        return ((self.max_tool_calls is None or calls < self.max_tool_calls)
                and (limit is None or calls_of_tool < limit))


def optional_limits(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """An attrs validator: ``None`` or a :class:`Limits`."""
    if value is not None and not isinstance(value, Limits):
        raise ConfigurationError(f"{attribute.name} must be a gg.Limits, got {type(value).__name__}",
                                 option=attribute.name)
