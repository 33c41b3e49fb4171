"""The tools wing: registering tools and running the calls of one assistant turn.

``registry`` (Tool, ToolSet, ToolRegistry, the decorator), ``context`` (ToolContext and
finding a handler's context parameter), ``schema`` and ``docstrings`` (schemas from type
hints), ``validation`` (compiled JSON Schema validators), ``calls`` (ToolCallRequest,
ToolRun and their statuses), ``serialization`` (tool results to text), ``executor`` and
``pool`` (running calls with timeouts), ``guard`` (the repeated-call guard), ``loading``
(finding a registry by ``module:attribute``).

Nothing here imports the client, the loop or the HTTP wing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy_exports import lazy_exports

if TYPE_CHECKING:  # at run time each name loads on first use (PEP 562)
    from .calls import ToolCallRequest, ToolRun, ToolRunStatus, plan_calls
    from .context import ToolContext
    from .executor import ToolExecutor
    from .guard import RepeatGuard
    from .loading import load_registry
    from .registry import Tool, ToolRegistry, ToolSet, make_tool

__all__ = [
    "RepeatGuard", "Tool", "ToolCallRequest", "ToolContext", "ToolExecutor", "ToolRegistry",
    "ToolRun", "ToolRunStatus", "ToolSet", "load_registry", "make_tool", "plan_calls",
]

_MODULES = {
    ".calls": "ToolCallRequest ToolRun ToolRunStatus plan_calls",
    ".context": "ToolContext",
    ".executor": "ToolExecutor",
    ".guard": "RepeatGuard",
    ".loading": "load_registry",
    ".registry": "Tool ToolRegistry ToolSet make_tool",
}

__getattr__, __dir__ = lazy_exports(__name__, globals(), _MODULES, __all__)
