"""Tools: :class:`Tool`, :class:`ToolSet` snapshots, :class:`ToolRegistry` and its decorator.

Everything about a tool is checked once, at registration (name, handler, schemas,
timeout); the hot path only reads immutable objects. The registry is copy-on-write:
each mutation builds a new :class:`ToolSet` under a lock, so :meth:`ToolRegistry.snapshot`
is a plain attribute read and a snapshot never changes while a run uses it.

A handler receives the validated arguments as keyword arguments. It may declare one
extra keyword parameter annotated :class:`ToolContext` to receive the call id, its
deadline and a ``cancelled`` event set when the call times out.
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
import re
import sys
import threading
import types
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, TypeVar, overload

import attrs

from ..errors import ToolArgumentsError, ToolDefinitionError
from .context import ToolContext, find_context_param
from .definitions import EncodedDefinitions

if TYPE_CHECKING:  # validators are compiled (fastjsonschema) with the first tool
    from .validation import SchemaValidator

__all__ = ["Tool", "ToolContext", "ToolSet", "ToolRegistry", "make_tool"]  # ToolContext: re-export

logger = logging.getLogger("genesys_gateway.tools")

F = TypeVar("F", bound=Callable[..., Any])

TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_MAX_LISTED_NAMES = 20


@attrs.frozen(eq=False)
class Tool:
    """A registered tool. Build one with :func:`make_tool` or a registry; never mutate it.

    Attributes:
        name: the name the model calls it by.
        description: what the model is told it does.
        parameters: the JSON Schema of its arguments.
        handler: the function called with the validated arguments.
        validator: the compiled ``parameters`` schema.
        timeout: seconds a call may take (``None``: the client's ``tool_timeout``).
        output_schema: the JSON Schema its results are checked against, or ``None``.
        output_validator: the compiled ``output_schema``, or ``None``.
        context_param: the handler's :class:`ToolContext` parameter name, or ``None``.
        is_async: whether the handler is a coroutine function (run on an event loop).
        converter: turns validated JSON arguments into the handler's annotated types
            (decorated functions only), or ``None``.
        definition: the OpenAI tool definition sent to the model.
        label: what validation errors call the arguments.
        requires_approval: a call stops the run with ``"approval_required"`` until a
            person approves it (``conversation.resume(approve=[...])``).
    """

    name: str
    description: str
    parameters: dict[str, Any] = attrs.field(repr=False)
    handler: Callable[..., Any]
    validator: SchemaValidator = attrs.field(repr=False)
    timeout: float | None = None
    output_schema: dict[str, Any] | None = attrs.field(default=None, repr=False)
    output_validator: SchemaValidator | None = attrs.field(default=None, repr=False)
    context_param: str | None = None
    is_async: bool = False
    converter: Callable[[dict[str, Any]], dict[str, Any]] | None = attrs.field(default=None, repr=False)
    definition: dict[str, Any] = attrs.field(factory=dict, repr=False)
    label: str = attrs.field(default="arguments", repr=False)
    requires_approval: bool = False

    def validate_arguments(self, arguments: Any) -> dict[str, Any]:
        """A validated copy of ``arguments`` with defaults applied, or ``ToolArgumentsError``."""
        validated: dict[str, Any] = self.validator.validate(arguments, label=self.label)
        return validated


def _is_async(handler: Any) -> bool:
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)
    )


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not TOOL_NAME_RE.match(name):
        raise ToolDefinitionError(
            f"tool name {name!r} is invalid: use 1-64 characters from a-z, A-Z, 0-9, '_' and '-'"
        )


def make_tool(
    name: str,
    description: str,
    parameters: dict[str, Any],
    handler: Callable[..., Any],
    *,
    timeout: float | None = None,
    output_schema: dict[str, Any] | None = None,
    converter: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    localns: Mapping[str, Any] | None = None,
    requires_approval: bool = False,
) -> Tool:
    """Check every part of a tool definition once and build the immutable :class:`Tool`.

    Raises :class:`ToolDefinitionError` naming the tool and the offending part.
    """
    _check_name(name)
    context_param = find_context_param(handler, tool_name=name, localns=localns)
    return _build_tool(name, description, parameters, handler, timeout=timeout,
                       output_schema=output_schema, converter=converter,
                       context_param=context_param, requires_approval=requires_approval)


def _build_tool(
    name: str,
    description: str,
    parameters: dict[str, Any],
    handler: Callable[..., Any],
    *,
    timeout: float | None,
    output_schema: dict[str, Any] | None,
    converter: Callable[[dict[str, Any]], dict[str, Any]] | None,
    context_param: str | None,
    requires_approval: bool = False,
) -> Tool:
    where = f"tool {name!r}"
    if not callable(handler):
        raise ToolDefinitionError(f"{where}: handler must be callable, got {type(handler).__name__}")
    if not isinstance(description, str):
        raise ToolDefinitionError(
            f"{where}: description must be a string, got {type(description).__name__}"
        )
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout) or timeout <= 0
    ):
        raise ToolDefinitionError(f"{where}: timeout must be None or a positive number of seconds, got {timeout!r}")
    if not isinstance(requires_approval, bool):
        raise ToolDefinitionError(f"{where}: requires_approval must be True or False, "
                                  f"got {requires_approval!r}")
    if not isinstance(parameters, dict):
        raise ToolDefinitionError(
            f"{where}: parameters must be a JSON schema dict, got {type(parameters).__name__}"
        )
    if parameters.get("type") != "object":
        raise ToolDefinitionError(
            f"{where}: parameters must be a schema of \"type\": \"object\", got type "
            f"{parameters.get('type')!r}"
        )
    from .validation import get_validator

    validator = get_validator(parameters, label=f"{where}: parameters")
    output_validator = None
    if output_schema is not None:
        output_validator = get_validator(output_schema, label=f"{where}: output_schema")
        output_schema = copy.deepcopy(output_schema)
    parameters = copy.deepcopy(parameters)  # later edits of the caller's dict change nothing
    definition = {"type": "function",
                  "function": {"name": name, "description": description, "parameters": parameters}}
    return Tool(
        name=name, description=description, parameters=parameters, handler=handler,
        timeout=float(timeout) if timeout is not None else None, output_schema=output_schema,
        validator=validator, output_validator=output_validator, context_param=context_param,
        is_async=_is_async(handler), converter=converter, definition=definition,
        label=f"arguments for tool {name!r}", requires_approval=requires_approval,
    )


def _unknown_tool_message(name: Any, names: tuple[str, ...]) -> str:
    if not names:
        return f"unknown tool {name!r}: no tools are available"
    listed = ", ".join(names[:_MAX_LISTED_NAMES])
    if len(names) > _MAX_LISTED_NAMES:
        listed += f", … ({len(names) - _MAX_LISTED_NAMES} more)"
    return f"unknown tool {name!r}; available tools: {listed}"


@attrs.frozen(eq=False)
class ToolSet:
    """An immutable, consistent view of a registry's tools at one version.

    ``definitions`` is built once per version: the list of OpenAI tool definitions to
    put in a request as-is, with their JSON encoded once. Treat it (and the dicts in it)
    as read-only.
    """

    tools: tuple[Tool, ...] = ()
    version: int = 0
    by_name: Mapping[str, Tool] = attrs.field(init=False, repr=False)
    definitions: list[dict[str, Any]] = attrs.field(init=False, repr=False)
    names: tuple[str, ...] = attrs.field(init=False)
    _index: dict[str, Tool] = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        index = {t.name: t for t in self.tools}
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "by_name", types.MappingProxyType(index))
        object.__setattr__(self, "definitions", EncodedDefinitions(t.definition for t in self.tools))
        object.__setattr__(self, "names", tuple(index))

    def get(self, name: str) -> Tool | None:
        return self._index.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __len__(self) -> int:
        return len(self.tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self.tools)

    def unknown_tool_message(self, name: Any) -> str:
        """``unknown tool 'x'; available tools: a, b`` (the list is capped)."""
        return _unknown_tool_message(name, self.names)

    def validate_arguments(self, name: str, arguments: Any) -> dict[str, Any]:
        """Validated arguments with defaults applied; ``ToolArgumentsError`` otherwise."""
        tool = self._index.get(name)
        if tool is None:
            raise ToolArgumentsError(self.unknown_tool_message(name))
        return tool.validate_arguments(arguments)


class ToolRegistry:
    """A thread-safe, copy-on-write collection of tools.

    ``register``/``unregister`` and the decorator may be called while runs are in
    flight: each run reads one :meth:`snapshot` per model call.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._toolset = ToolSet()

    # ------------------------------------------------------------------ mutation

    def register(
        self,
        name: str,
        description: str,
        parameters: dict[str, Any],
        handler: Callable[..., Any],
        timeout: float | None = None,
        output_schema: dict[str, Any] | None = None,
        replace: bool = False,
        requires_approval: bool = False,
    ) -> Tool:
        """Register a handler with an explicit JSON schema; returns the :class:`Tool`.
        ``requires_approval=True``: calls wait for a person's approval (see :class:`Tool`)."""
        tool = make_tool(name, description, parameters, handler, timeout=timeout,
                         output_schema=output_schema, requires_approval=requires_approval)
        self.add(tool, replace=replace)
        return tool

    def add(self, tool: Tool, *, replace: bool = False) -> None:
        """Add an already-built :class:`Tool` (e.g. one taken from another registry)."""
        if not isinstance(tool, Tool):
            raise ToolDefinitionError(f"expected a Tool, got {type(tool).__name__}")
        with self._lock:
            current = self._toolset
            if tool.name in current and not replace:
                raise ToolDefinitionError(
                    f"tool {tool.name!r} is already registered (pass replace=True to replace it)"
                )
            if tool.name in current:
                tools = tuple(tool if t.name == tool.name else t for t in current.tools)
            else:
                tools = current.tools + (tool,)
            self._toolset = ToolSet(tools, current.version + 1)
        logger.debug("registered tool %r", tool.name)

    @overload
    def tool(self, func: F, /) -> F: ...

    @overload
    def tool(self, func: None = None, /, *, name: str | None = None,
             description: str | None = None, timeout: float | None = None,
             output_schema: dict[str, Any] | None = None,
             replace: bool = False, requires_approval: bool = False) -> Callable[[F], F]: ...

    def tool(
        self,
        func: F | None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
        output_schema: dict[str, Any] | None = None,
        replace: bool = False,
        requires_approval: bool = False,
    ) -> F | Callable[[F], F]:
        """Decorator: ``@registry.tool`` or ``@registry.tool(name=..., timeout=...)``.

        The schema comes from the type hints, the description from the docstring's first
        paragraph (unless given), parameter descriptions from its ``Args:`` section. The
        decorated function is returned unchanged. ``requires_approval=True``: calls wait
        for a person's approval (``conversation.resume``).
        """
        localns = sys._getframe(1).f_locals  # resolves classes local to the defining scope

        def decorate(f: F) -> F:
            tool_name = name if name is not None else getattr(f, "__name__", None)
            if tool_name is None:
                raise ToolDefinitionError(f"{f!r} has no __name__: pass name=... to @tool")
            _check_name(tool_name)
            context_param = find_context_param(f, tool_name=tool_name, localns=localns)
            from .schema import function_schema  # schemas from type hints: with the first @tool

            derived = function_schema(f, tool_name=tool_name, localns=localns,
                                      skip=frozenset({context_param} if context_param else ()))
            tool = _build_tool(
                tool_name, description if description is not None else derived.description,
                derived.parameters, f, timeout=timeout, output_schema=output_schema,
                converter=derived.call_converter, context_param=context_param,
                requires_approval=requires_approval,
            )
            self.add(tool, replace=replace)
            return f

        if func is None:
            return decorate
        if not callable(func):
            raise ToolDefinitionError(
                "@registry.tool takes keyword options only, e.g. @registry.tool(name='x')"
            )
        return decorate(func)

    def unregister(self, name: str) -> Tool:
        """Remove a tool and return it; ``KeyError`` if no such tool is registered."""
        with self._lock:
            current = self._toolset
            tool = current.get(name)
            if tool is None:
                raise KeyError(name)
            self._toolset = ToolSet(tuple(t for t in current.tools if t.name != name),
                                    current.version + 1)
        logger.debug("unregistered tool %r", name)
        return tool

    # ------------------------------------------------------------------ reading

    def snapshot(self) -> ToolSet:
        """The current immutable :class:`ToolSet` (an attribute read, no copying)."""
        return self._toolset

    def definitions(self) -> list[dict[str, Any]]:
        """The OpenAI tool definitions of the current snapshot (a new list; read-only dicts)."""
        return list(self._toolset.definitions)

    def validate_arguments(self, name: str, arguments: Any) -> dict[str, Any]:
        """Arguments with schema defaults applied (a new dict), or ``ToolArgumentsError``.

        The caller's dict is never mutated. An unknown tool also raises
        ``ToolArgumentsError``, listing the available tools.
        """
        return self._toolset.validate_arguments(name, arguments)

    def names(self) -> list[str]:
        """The registered tools' names, in registration order."""
        return list(self._toolset.names)

    def get(self, name: str) -> Tool | None:
        """The tool registered as ``name``, or ``None``."""
        return self._toolset.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._toolset

    def __len__(self) -> int:
        return len(self._toolset)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._toolset.tools)

    def __repr__(self) -> str:
        return f"<ToolRegistry {list(self._toolset.names)!r}>"
