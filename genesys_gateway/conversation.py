"""The tool-calling loop: ``Conversation`` and ``RunResult``.

Each iteration takes a consistent snapshot of the registry, calls the model, runs the
turn's tool calls in parallel (through the client's :class:`ToolExecutor`) and appends
exactly one ``role: tool`` message per call id, in the order of the calls, on every
path — so the history sent next is always well paired.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import attrs

from . import telemetry
from .errors import ConfigurationError, GatewayError, TransportError
from .tools.executor import RepeatGuard, ToolCallRequest, ToolRun
from .models import FunctionCall, ToolCall, Usage, message_to_dict

if TYPE_CHECKING:
    from .client import GatewayClient

__all__ = ["Conversation", "RunResult"]



@attrs.frozen
class RunResult:
    """The outcome of one run (one user message and every model/tool round it caused)."""

    content: str | None
    stop_reason: str  # "completed" | "max_iterations" | "deadline"
    messages: list
    tool_runs: tuple[ToolRun, ...]
    iterations: int
    usage: Usage
    conversation_id: str

    @property
    def completed(self) -> bool:
        return self.stop_reason == "completed"


class Conversation:
    """A multi-turn conversation with a client; keeps its history across ``send`` calls.

    ``send`` is serialized per conversation (one turn at a time). A failed model call
    (an exception) leaves the history as it was before that ``send``.
    """

    def __init__(self, client: "GatewayClient", system: str | None = None) -> None:
        self.client = client
        self.id = str(uuid.uuid4())
        self.messages: list[dict] = []
        if system is not None:
            if not isinstance(system, str):
                raise TypeError("system must be a string")
            self.messages.append({"role": "system", "content": system})
        self._lock = threading.Lock()

    def send(self, text: str, *, deadline: float | None = None, **params: Any) -> RunResult:
        if not isinstance(text, str):
            raise TypeError(f"the prompt must be a string, got {type(text).__name__}")
        if deadline is not None and (isinstance(deadline, bool) or not isinstance(deadline, (int, float))
                                     or deadline <= 0):
            raise ConfigurationError(f"deadline must be a positive number of seconds, got {deadline!r}")
        with self._lock:
            messages = list(self.messages)
            messages.append({"role": "user", "content": text})
            result = _Run(self.client, self.id, messages, deadline, params).execute()
            self.messages = result.messages
            return result

    def __repr__(self) -> str:
        return f"Conversation(id={self.id!r}, {len(self.messages)} messages)"


class _Run:
    """The state of one run; ``execute`` drives the loop."""

    def __init__(self, client: "GatewayClient", conversation_id: str, messages: list,
                 deadline: float | None, params: dict) -> None:
        self.client = client
        self.conversation_id = conversation_id
        self.messages = messages
        self.params = params
        self.clock = client.clock
        self.deadline_at = None if deadline is None else self.clock() + deadline
        self.guard = RepeatGuard(client.max_repeated_calls)
        self.usage = Usage()
        self.tool_runs: list[ToolRun] = []
        self.iterations = 0

    def execute(self) -> RunResult:
        client = self.client
        telemetry.audit("run_start", conversation_id=self.conversation_id, model=client.model,
                        max_iterations=client.max_iterations)
        with telemetry.span("invoke_agent genesys_gateway",
                            **{"gen_ai.operation.name": "invoke_agent",
                               "gen_ai.provider.name": telemetry.SYSTEM,
                               "gen_ai.request.model": client.model,
                               "gen_ai.conversation.id": self.conversation_id}) as current:
            try:
                result = self._loop()
            except GatewayError as error:
                telemetry.set_error(current, error)
                telemetry.audit("run_end", conversation_id=self.conversation_id, stop_reason="error",
                                error=type(error).__name__, iterations=self.iterations)
                raise
            telemetry.set_attributes(current, **{
                "gen_ai.usage.input_tokens": result.usage.prompt_tokens,
                "gen_ai.usage.output_tokens": result.usage.completion_tokens,
                "genesys_gateway.stop_reason": result.stop_reason,
            })
        telemetry.audit("run_end", conversation_id=self.conversation_id, stop_reason=result.stop_reason,
                        iterations=result.iterations, tool_calls=len(result.tool_runs),
                        usage=attrs.asdict(result.usage))
        return result

    def _expired(self) -> bool:
        return self.deadline_at is not None and self.clock() >= self.deadline_at

    def _result(self, stop_reason: str, content: str | None) -> RunResult:
        return RunResult(content, stop_reason, self.messages, tuple(self.tool_runs),
                         self.iterations, self.usage, self.conversation_id)

    def _loop(self) -> RunResult:
        client = self.client
        registry = client.tools
        while self.iterations < client.max_iterations:
            if self._expired():
                return self._result("deadline", None)
            toolset = registry.snapshot() if registry is not None else None
            definitions = toolset.definitions if toolset is not None else None
            payload = client._payload(self.messages, definitions, self.params)
            try:
                response = client._chat(payload, deadline_at=self.deadline_at)
            except TransportError as error:
                if self.deadline_at is not None and (self._expired() or error.kind == "timeout"):
                    return self._result("deadline", None)
                raise
            except GatewayError:
                if self._expired():
                    return self._result("deadline", None)
                raise
            self.iterations += 1
            self.usage = self.usage + response.usage
            message = response.message
            if not message.tool_calls:
                self.messages.append(message_to_dict(message))
                return self._result("completed", _text(message.content))
            calls, requests, early = _normalize_calls(message.tool_calls)
            self.messages.append(message_to_dict(attrs.evolve(message, tool_calls=calls)))
            self._run_tools(toolset, requests, early)
            if self._expired():
                return self._result("deadline", None)
        return self._result("max_iterations", None)

    def _run_tools(self, toolset: Any, requests: list[ToolCallRequest],
                   early: dict[int, ToolRun]) -> None:
        executor = self.client.executor()
        runnable = [r for i, r in enumerate(requests) if i not in early]
        start_ns = time.time_ns()
        if toolset is None:
            from .tools.registry import ToolRegistry

            toolset = ToolRegistry().snapshot()
        ran = iter(executor.run(toolset, runnable, deadline=self.deadline_at, guard=self.guard))
        runs = [early[i] if i in early else next(ran) for i in range(len(requests))]
        for run in runs:
            self.messages.append({"role": "tool", "tool_call_id": run.call_id, "content": run.content})
            self.tool_runs.append(run)
            telemetry.tool_span(run.name or "", run.call_id, run.status, start_ns,
                                start_ns + int(run.duration_s * 1e9))
            if telemetry.audit_enabled():
                event = dict(conversation_id=self.conversation_id, tool=run.name, call_id=run.call_id,
                             status=run.status, duration_ms=round(run.duration_s * 1000, 3),
                             truncated=run.truncated, error=run.error)
                if self.client.audit_payloads:
                    event.update(arguments=run.arguments, content=run.content)
                telemetry.audit("tool_call", **event)


MISSING_NAME = "missing_tool_name"


def _normalize_calls(tool_calls: tuple[ToolCall, ...]):
    """Make every call safe to echo back to a strict server — a unique id (each must be
    paired with one tool message), a string name, JSON-string arguments, type "function" —
    and answer without running the calls whose id or arguments are missing or whose id
    repeats. Calls without a name go on to be answered as unknown tools."""
    seen: set[str] = set()
    calls: list[ToolCall] = []
    requests: list[ToolCallRequest] = []
    early: dict[int, ToolRun] = {}
    for index, call in enumerate(tool_calls):
        call_id = call.id
        problem, status = None, "error"
        if not call_id:
            call_id = f"call_missing_id_{index}"
            problem = "the tool call has no id; call the tool again"
        elif call_id in seen:
            original = call_id
            n = 2
            while f"{original}_{n}" in seen:
                n += 1
            call_id = f"{original}_{n}"
            problem = f"duplicate tool call id {original!r}; use a unique id per call"
        elif call.arguments is None:
            problem, status = "the tool call has no arguments; send a JSON object ({} for none)", \
                "invalid_arguments"
        seen.add(call_id)
        name = call.name or MISSING_NAME
        echoed = ToolCall(id=call_id, type="function",
                          function=FunctionCall(name=name, arguments=call.arguments or "{}"))
        calls.append(echoed if echoed != call else call)
        requests.append(ToolCallRequest(call_id, name, call.arguments))
        if problem is not None:
            content = f"Error: not run: {problem}"
            early[index] = ToolRun(call_id=call_id, name=name, arguments=None, status=status,
                                   content=content, error=problem, duration_s=0.0, truncated=False)
    return tuple(calls), requests, early


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            parts.append(part["text"])
        elif isinstance(part, str):
            parts.append(part)
    return "".join(parts)
