"""The tools wing: registering tools and running the calls of one assistant turn.

``registry`` (Tool, ToolSet, ToolRegistry, the decorator), ``context`` (ToolContext and
finding a handler's context parameter), ``schema`` and ``docstrings`` (schemas from type
hints), ``validation`` (compiled JSON Schema validators), ``calls`` (ToolCallRequest,
ToolRun and their statuses), ``serialization`` (tool results to text), ``executor`` and
``pool`` (running calls with timeouts), ``guard`` (the repeated-call guard), ``loading``
(finding a registry by ``module:attribute``).

Nothing here imports the client, the loop or the HTTP wing.
"""

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
