"""The tools wing: registering tools and running the calls of one assistant turn.

``registry`` (Tool, ToolSet, ToolRegistry, the decorator), ``context`` (ToolContext and
finding a handler's context parameter), ``schema`` and ``docstrings`` (schemas from type
hints), ``validation`` (compiled JSON Schema validators), ``calls`` (ToolCallRequest,
ToolRun and their statuses), ``serialization`` (tool results to text), ``executor`` and
``pool`` (running calls with timeouts), ``guard`` (the repeated-call guard), ``loading``
(finding a registry by ``module:attribute``).

Nothing here imports the client, the loop or the HTTP wing.
"""

from .executor import ToolExecutor
from .registry import Tool, ToolContext, ToolRegistry, ToolSet, make_tool

__all__ = ["Tool", "ToolContext", "ToolExecutor", "ToolRegistry", "ToolSet", "make_tool"]
