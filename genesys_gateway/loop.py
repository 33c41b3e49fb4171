"""The tool-calling loop: one engine that any caller drives with explicit inputs.

A :class:`Loop` gets everything it needs from whoever builds it (the client): the model
call, a provider of the current tools, the tool executor and frozen options. It imports
nothing from the client. Each iteration takes a consistent snapshot of the tools, calls the
model, has the executor answer every tool call of the turn (in parallel, one
``role: tool`` message per call id, in the order of the calls), and appends the results,
so the history sent next is always well paired.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, Callable, Generator, Iterator, Mapping, Protocol, Sequence

import attrs

from . import checks, telemetry
from .errors import GatewayError
from .limits import Limits, optional_limits
from .models import ChatResponse, FunctionCall, ToolCall, Usage, message_to_dict
from .params import check_extra, check_model_params, headers_repr
from .result import RunResult, StopReason
from .events import Event, ModelCallFinished, RunFinished, TextDelta, ToolCallFinished, ToolCallStarted
from .tools.calls import ToolCallRequest, ToolRun, plan_calls
from .tools.executor import ToolExecutor
from .tools.guard import RepeatGuard
from .tools.registry import ToolSet
from .tools.validation import parse_arguments

__all__ = ["Loop", "LoopOptions", "ModelCall", "RunOptions", "drain"]

#: finish_reason values of an answer that did not complete, and the stop reason each gives.
_CUT_SHORT: dict[str | None, StopReason] = {"length": "length", "content_filter": "content_filter"}

#: The keyword arguments of ``run()``/``send()`` besides model parameters.
RUN_ARGUMENTS = frozenset({"deadline", "max_iterations", "extra_body", "extra_headers", "limits"})
_LIMITED = "not run: the run's tool-call limit was reached"


class ModelCall(Protocol):
    """One chat-completions call (``GatewayClient.complete`` has this shape)."""

    def __call__(self, messages: Sequence[Mapping[str, Any]], *,
                 tools: Sequence[Mapping[str, Any]] | None = None,
                 deadline: float | None = None,
                 extra_body: Mapping[str, Any] | None = None,
                 extra_headers: Mapping[str, str] | None = None,
                 **params: Any) -> ChatResponse: ...


class StreamingModelCall(Protocol):
    """One chat-completions call streamed: yields the answer's text as it arrives, returns
    the whole response (``ChatCall.stream`` behind the client's arguments)."""

    def __call__(self, messages: Sequence[Mapping[str, Any]], *,
                 tools: Sequence[Mapping[str, Any]] | None = None,
                 deadline: float | None = None,
                 extra_body: Mapping[str, Any] | None = None,
                 extra_headers: Mapping[str, str] | None = None,
                 **params: Any) -> Generator[str, None, ChatResponse]: ...


@attrs.frozen
class LoopOptions:
    """The loop's side of the client's options."""

    model: str = attrs.field(validator=checks.non_empty_str)
    max_iterations: int = attrs.field(validator=checks.positive_int)
    max_repeated_calls: int = attrs.field(validator=checks.positive_int)
    audit_payloads: bool = attrs.field(default=False, validator=checks.boolean)
    clock: Callable[[], float] = attrs.field(default=time.monotonic, eq=False)
    limits: Limits | None = attrs.field(default=None, validator=optional_limits)


@attrs.frozen
class RunOptions:
    """What one ``run()``/``send()`` asked for, checked once: a ``deadline`` in seconds,
    a ``max_iterations`` overriding the client's, model parameters, ``extra_body`` and
    ``extra_headers``."""

    deadline: float | None = attrs.field(default=None, validator=checks.optional_positive)
    max_iterations: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(checks.positive_int))
    params: Mapping[str, Any] = attrs.field(factory=dict)
    extra_body: Mapping[str, Any] | None = None
    extra_headers: Mapping[str, str] | None = attrs.field(default=None, repr=headers_repr)
    limits: Limits | None = attrs.field(default=None, validator=optional_limits)
    streaming: bool = False
    """A run read as events (``stream()``): its model calls stream when the loop can."""

    @classmethod
    def build(cls, where: str, *, deadline: float | None = None, max_iterations: int | None = None,
              extra_body: Mapping[str, Any] | None = None,
              extra_headers: Mapping[str, str] | None = None, limits: Limits | None = None,
              **params: Any) -> RunOptions:
        """Checked options; an unknown keyword is a ``TypeError`` naming it."""
        return cls(deadline, max_iterations,
                   check_model_params(params, where=where, also_known=RUN_ARGUMENTS),
                   check_extra("extra_body", extra_body), check_extra("extra_headers", extra_headers),
                   limits, streaming=where == "stream")


@attrs.frozen
class Loop:
    """The engine: ``complete`` calls the model, ``tools()`` gives the current tools (or
    ``None``), ``executor()`` the tool executor."""

    complete: ModelCall
    tools: Callable[[], ToolSet | None]
    executor: Callable[[], ToolExecutor]
    options: LoopOptions
    stream_complete: StreamingModelCall | None = None
    """The model call of a streamed run (``RunOptions.streaming``), if the client streams."""

    def run(self, conversation_id: str, messages: list[dict[str, Any]],
            run: RunOptions = RunOptions()) -> RunResult:
        """Drive the loop from ``messages`` (ending with the user's) to a :class:`RunResult`.
        ``messages`` is extended in place; a failed model call raises its error."""
        return drain(self.events(conversation_id, messages, run))

    def events(self, conversation_id: str, messages: list[dict[str, Any]],
               run: RunOptions = RunOptions()) -> Generator[Event, None, None]:
        """The run as events, ending with :class:`RunFinished`. Closing the generator early
        stops the run: tools not yet started are cancelled, running ones are signalled
        (``ToolContext.cancelled``), and no further model call is made."""
        return _Run(self, conversation_id, messages, run).events()

    def cancelled(self, conversation_id: str, messages: list[dict[str, Any]]) -> RunResult:
        """The result of a run closed before its end (stop reason ``"cancelled"``)."""
        return RunResult(None, "cancelled", messages, (), 0, Usage(), conversation_id)


def drain(events: Iterator[Event]) -> RunResult:
    """Consume ``events`` to the end; the :class:`RunFinished` result."""
    result = None
    for event in events:
        if isinstance(event, RunFinished):
            result = event.result
    assert result is not None, "a run always ends with RunFinished"
    return result


class _Run:
    """The state of one run."""

    def __init__(self, loop: Loop, conversation_id: str, messages: list[dict[str, Any]],
                 run: RunOptions) -> None:
        self.loop = loop
        self.options = loop.options
        self.run = run
        self.conversation_id = conversation_id
        self.messages = messages
        self.clock = loop.options.clock
        self.max_iterations = run.max_iterations or loop.options.max_iterations
        self.deadline_at = None if run.deadline is None else self.clock() + run.deadline
        self.guard = RepeatGuard(loop.options.max_repeated_calls)
        self.usage = Usage()
        self.tool_runs: list[ToolRun] = []
        self.iterations = 0
        self.finish_reason: str | None = None
        self.limits = run.limits or loop.options.limits
        self.tool_calls = Counter[str]()  # calls run, per tool (for the limits)

    def events(self) -> Generator[Event, None, None]:
        model = self.options.model
        telemetry.audit("run_start", conversation_id=self.conversation_id, model=model,
                        max_iterations=self.max_iterations)
        with telemetry.span("invoke_agent genesys_gateway",
                            **{"gen_ai.operation.name": "invoke_agent",
                               "gen_ai.provider.name": telemetry.SYSTEM,
                               "gen_ai.request.model": model,
                               "gen_ai.conversation.id": self.conversation_id}) as current:
            try:
                result = yield from self._loop()
            except GatewayError as error:
                telemetry.set_error(current, error)
                telemetry.audit("run_end", conversation_id=self.conversation_id, stop_reason="error",
                                error=type(error).__name__, iterations=self.iterations)
                raise
            except GeneratorExit:
                telemetry.audit("run_end", conversation_id=self.conversation_id,
                                stop_reason="cancelled", iterations=self.iterations)
                raise
            telemetry.set_attributes(current, **{
                "gen_ai.usage.input_tokens": result.usage.prompt_tokens,
                "gen_ai.usage.output_tokens": result.usage.completion_tokens,
                "genesys_gateway.stop_reason": result.stop_reason,
            })
        telemetry.audit("run_end", conversation_id=self.conversation_id, stop_reason=result.stop_reason,
                        iterations=result.iterations, tool_calls=len(result.tool_runs),
                        usage=attrs.asdict(result.usage))
        yield RunFinished(result)

    def _remaining(self) -> float | None:
        """Seconds left before the deadline (``None``: no deadline; ``<= 0``: passed)."""
        return None if self.deadline_at is None else self.deadline_at - self.clock()

    def _expired(self) -> bool:
        remaining = self._remaining()
        return remaining is not None and remaining <= 0

    def _result(self, stop_reason: StopReason, content: str | None) -> RunResult:
        return RunResult(content, stop_reason, self.messages, tuple(self.tool_runs),
                         self.iterations, self.usage, self.conversation_id, self.finish_reason)

    def _loop(self) -> Generator[Event, None, RunResult]:
        run = self.run
        while self.iterations < self.max_iterations:
            remaining = self._remaining()
            if remaining is not None and remaining <= 0:
                return self._result("deadline", None)
            if self.limits is not None and not self.limits.model_call_allowed(
                    self.iterations, self.usage.total_tokens):
                return self._result("usage_limit", None)
            toolset = self.loop.tools()
            tools = toolset.definitions if toolset is not None else None
            streamed = self.loop.stream_complete if run.streaming else None
            try:
                if streamed is not None:
                    response = yield from _deltas(streamed(
                        self.messages, tools=tools, deadline=remaining, extra_body=run.extra_body,
                        extra_headers=run.extra_headers, **run.params))
                else:
                    response = self.loop.complete(
                        self.messages, tools=tools, deadline=remaining, extra_body=run.extra_body,
                        extra_headers=run.extra_headers, **run.params)
            except GatewayError:  # a timeout is "deadline" only when the run's deadline passed
                if self._expired():
                    return self._result("deadline", None)
                raise
            self.iterations += 1
            self.usage = self.usage + response.usage
            self.finish_reason = response.finish_reason
            message = response.message
            text = _text(message.content)
            if text and streamed is None:
                yield TextDelta(text)
            yield ModelCallFinished(self.iterations, self.finish_reason, response.usage)
            if not message.tool_calls:
                self.messages.append(message_to_dict(message))
                return self._result(_CUT_SHORT.get(self.finish_reason, "completed"), text)
            requests = plan_calls((c.id, c.name, c.arguments) for c in message.tool_calls)
            echoed = tuple(ToolCall(id=r.call_id, type="function", function=FunctionCall(
                name=r.name, arguments=r.arguments_json if r.arguments_json is not None else "{}"))
                for r in requests)
            self.messages.append(message_to_dict(attrs.evolve(message, tool_calls=echoed)))
            requests, limited = self._within_limits(requests)
            yield from self._tools(toolset, requests)
            if limited:
                return self._result("usage_limit", None)
            if self._expired():
                return self._result("deadline", None)
        return self._result("max_iterations", None)

    def _within_limits(self, requests: list[ToolCallRequest]) -> tuple[list[ToolCallRequest], bool]:
        """The turn's calls, those over a limit marked not to run; whether any was."""
        if self.limits is None:
            return requests, False
        limited = False
        out = []
        for request in requests:
            if request.problem is None:
                if self.limits.tool_call_allowed(request.name, sum(self.tool_calls.values()),
                                                 self.tool_calls[request.name]):
                    self.tool_calls[request.name] += 1
                else:
                    request = attrs.evolve(request, problem=_LIMITED, problem_status="rejected")
                    limited = True
            out.append(request)
        return out, limited

    def _tools(self, toolset: ToolSet | None, requests: list[ToolCallRequest],
               ) -> Generator[Event, None, None]:
        """Run the turn's calls: ``ToolCallStarted`` for each call about to run, then
        ``ToolCallFinished`` as each ends; the tool messages go in the order of the calls."""
        for request in requests:
            if request.problem is None and toolset is not None and request.name in toolset:
                yield ToolCallStarted(request.call_id, request.name,
                                      parse_arguments(request.arguments_json)[0])
        start_ns = time.time_ns()
        runs: list[ToolRun | None] = [None] * len(requests)
        finished = self.loop.executor().iter_runs(toolset, requests, deadline=self.deadline_at,
                                                  guard=self.guard)
        try:
            for index, tool_run in finished:
                runs[index] = tool_run
                yield ToolCallFinished(tool_run)
        finally:
            finished.close()  # closed early: cancel what has not finished
        self._record([r for r in runs if r is not None], start_ns)

    def _record(self, runs: list[ToolRun], start_ns: int) -> None:
        """Append one tool message per run, in call order, with its span and audit event."""
        for run in runs:
            self.messages.append({"role": "tool", "tool_call_id": run.call_id, "content": run.content})
            self.tool_runs.append(run)
            telemetry.tool_span(run.name, run.call_id, run.status, start_ns,
                                start_ns + int(run.duration_s * 1e9))
            if telemetry.audit_enabled():
                event: dict[str, Any] = dict(
                    conversation_id=self.conversation_id, tool=run.name, call_id=run.call_id,
                    status=run.status, duration_ms=round(run.duration_s * 1000, 3),
                    truncated=run.truncated, error=run.error)
                if self.options.audit_payloads:
                    event.update(arguments=run.arguments, content=run.content)
                telemetry.audit("tool_call", **event)


def _deltas(call: Generator[str, None, ChatResponse]) -> Generator[Event, None, ChatResponse]:
    """A streamed model call's text as ``TextDelta`` events; its response. Closed early,
    the call is closed (and its HTTP response with it)."""
    try:
        while True:
            try:
                piece = next(call)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            yield TextDelta(piece)
    finally:
        call.close()


def _text(content: Any) -> str:
    """The text of a message's content (a string, or a list of text parts)."""
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
