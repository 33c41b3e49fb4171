"""The tool-calling loop: one engine that any caller drives with explicit inputs.

A :class:`Loop` gets everything it needs from whoever builds it (the client): the model
call, a provider of the current tools, the tool executor and frozen options. It imports
nothing from the client. Each iteration takes a consistent snapshot of the tools, calls the
model, has the executor answer every tool call of the turn (in parallel, one
``role: tool`` message per call id, in the order of the calls), and appends the results,
so the history sent next is always well paired.

A conversation's run also gets a :class:`~.session.Session`: the loop trims the history
before each model call, holds the calls of ``requires_approval`` tools (the run stops with
``"approval_required"``), and :meth:`Loop.resume_events` runs the approved ones.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, Callable, Generator, Iterator

import attrs

from . import telemetry
from .errors import GatewayError
from .models import ChatResponse, Usage, message_to_dict
from .output import FINAL_ANSWER_TOOL, OutputSpec
from .result import PendingCall, RunResult, StopReason
from .run_options import (RUN_ARGUMENTS, LoopOptions, ModelCall, RunOptions, StreamingModelCall,
                          new_conversation_id)
from .session import Session, request_of
from .events import Event, ModelCallFinished, RunFinished, TextDelta, ToolCallFinished, ToolCallStarted
from .tools.calls import ToolCallRequest, ToolRun, plan_calls
from .tools.executor import ToolExecutor
from .tools.guard import RepeatGuard
from .tools.registry import ToolSet
from .tools.validation import parse_arguments

__all__ = ["Loop", "LoopOptions", "ModelCall", "RunOptions", "RUN_ARGUMENTS", "drain"]

#: finish_reason values of an answer that did not complete, and the stop reason each gives.
_CUT_SHORT: dict[str | None, StopReason] = {"length": "length", "content_filter": "content_filter"}

_LIMITED = "not run: the run's tool-call limit was reached"


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

    def prompt(self, prompt: str, **options: Any) -> RunResult:
        """``GatewayClient.run``: ``prompt`` opens a new conversation; ``options`` are checked."""
        run = RunOptions.build("run", **options)
        return self.run(new_conversation_id(), [{"role": "user", "content": prompt}], run)

    def events(self, conversation_id: str, messages: list[dict[str, Any]],
               run: RunOptions = RunOptions(), session: Session | None = None,
               ) -> Generator[Event, None, None]:
        """The run as events, ending with :class:`RunFinished`. Closing the generator early
        stops the run: tools not yet started are cancelled, running ones are signalled
        (``ToolContext.cancelled``), and no further model call is made. ``session`` (a
        conversation's; changed in place) holds pending calls, calls that ran, trimming."""
        return _Run(self, conversation_id, messages, run, session).events()

    def resume_events(self, conversation_id: str, messages: list[dict[str, Any]],
                      run: RunOptions, session: Session, approved: list[PendingCall],
                      denied: list[tuple[PendingCall, str]]) -> Generator[Event, None, None]:
        """Continue a run that stopped with ``"approval_required"``: run the ``approved``
        calls with their stored arguments, answer the ``denied`` ones with the reason, then
        call the model again, unless calls are still pending (checked by
        :meth:`Session.decide`)."""
        return _Run(self, conversation_id, messages, run, session).events((approved, denied))

    def cancelled(self, conversation_id: str, messages: list[dict[str, Any]],
                  pending: tuple[PendingCall, ...] = ()) -> RunResult:
        """The result of a run closed before its end (stop reason ``"cancelled"``)."""
        return RunResult(None, "cancelled", messages, (), 0, Usage(), conversation_id,
                         pending=pending)


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
                 run: RunOptions, session: Session | None) -> None:
        self.loop = loop
        self.options = loop.options
        self.run = run
        self.conversation_id = conversation_id
        self.messages = messages
        self.clock = loop.options.clock
        self.max_iterations = run.max_iterations or loop.options.max_iterations
        self.deadline_at = None if run.deadline is None else self.clock() + run.deadline
        self.guard: RepeatGuard | None = None  # made by the first turn with tool calls
        self.usage = Usage()
        self.tool_runs: list[ToolRun] = []
        self.iterations = 0
        self.finish_reason: str | None = None
        self.limits = run.limits or loop.options.limits
        self.tool_calls: Counter[str] = Counter()  # calls run, per tool (for the limits)
        self.output = run.output
        self.output_retries = (run.output_retries if run.output_retries is not None
                               else loop.options.output_retries)
        self.corrections = 0  # each one adds a model call to max_iterations
        self.params = ({**run.params, **self.output.request_params()} if self.output is not None
                       else run.params)
        self.session = session if session is not None else Session()
        self.quiet = run.quiet  # nobody reads the events but RunFinished: none are made
        # trimming keeps the turn this run works on: from its user message on
        self.protect = next((i for i in range(len(messages) - 1, -1, -1)
                             if messages[i].get("role") == "user"), len(messages))

    def events(self, decisions: tuple[list[PendingCall], list[tuple[PendingCall, str]]] | None
               = None) -> Generator[Event, None, None]:
        model = self.options.model
        telemetry.audit("run_start", conversation_id=self.conversation_id, model=model,
                        max_iterations=self.max_iterations)
        with telemetry.agent_span(model, self.conversation_id) as current:
            try:
                result = yield from (self._loop() if decisions is None
                                     else self._resume(*decisions))
            except GatewayError as error:
                telemetry.set_error(current, error)
                telemetry.audit("run_end", conversation_id=self.conversation_id, stop_reason="error",
                                error=type(error).__name__, iterations=self.iterations)
                raise
            except GeneratorExit:
                telemetry.audit("run_end", conversation_id=self.conversation_id,
                                stop_reason="cancelled", iterations=self.iterations)
                raise
            if current is not None:
                telemetry.set_attributes(current, **{
                    "gen_ai.usage.input_tokens": result.usage.prompt_tokens,
                    "gen_ai.usage.output_tokens": result.usage.completion_tokens,
                    "genesys_gateway.stop_reason": result.stop_reason,
                })
        if telemetry.audit_enabled():  # attrs.asdict costs more than the rest of the check
            telemetry.audit("run_end", conversation_id=self.conversation_id,
                            stop_reason=result.stop_reason, iterations=result.iterations,
                            tool_calls=len(result.tool_runs), usage=attrs.asdict(result.usage))
        yield RunFinished(result)

    def _remaining(self) -> float | None:
        """Seconds left before the deadline (``None``: no deadline; ``<= 0``: passed)."""
        return None if self.deadline_at is None else self.deadline_at - self.clock()

    def _expired(self) -> bool:
        remaining = self._remaining()
        return remaining is not None and remaining <= 0

    def _result(self, stop_reason: StopReason, content: str | None,
                output: Any = None) -> RunResult:
        return RunResult(content, stop_reason, self.messages, tuple(self.tool_runs),
                         self.iterations, self.usage, self.conversation_id, self.finish_reason,
                         output, tuple(self.session.pending))

    def _loop(self) -> Generator[Event, None, RunResult]:
        run = self.run
        while self.iterations - self.corrections < self.max_iterations:
            remaining = self._remaining()
            if remaining is not None and remaining <= 0:
                return self._result("deadline", None)
            if self.limits is not None and not self.limits.model_call_allowed(
                    self.iterations, self.usage.total_tokens):
                return self._result("usage_limit", None)
            dropped = self.session.trim(self.messages, self.protect)
            if dropped:
                self.protect -= dropped
                telemetry.audit("history_trimmed", conversation_id=self.conversation_id,
                                messages=dropped)
            sent = len(self.messages)
            toolset = self.loop.tools()
            definitions = toolset.definitions if toolset is not None else None
            if self.output is not None:  # in tool mode, with the final_answer tool
                definitions = self.output.tools(definitions, toolset.names if toolset else ())
            streamed = self.loop.stream_complete if run.streaming else None
            try:
                if streamed is not None:
                    response = yield from _deltas(streamed(
                        self.messages, tools=definitions, deadline=remaining,
                        extra_body=run.extra_body, extra_headers=run.extra_headers, **self.params))
                else:
                    response = self.loop.complete(
                        self.messages, tools=definitions,
                        deadline=remaining, extra_body=run.extra_body, extra_headers=run.extra_headers,
                        **self.params)
            except GatewayError:  # a timeout is "deadline" only when the run's deadline passed
                if self._expired():
                    return self._result("deadline", None)
                raise
            self.iterations += 1
            self.usage = self.usage + response.usage
            self.session.measure(response.usage.prompt_tokens, sent)
            self.finish_reason = response.finish_reason
            message = response.message
            text = _text(message.content)
            if not self.quiet:
                if text and streamed is None:
                    yield TextDelta(text)
                yield ModelCallFinished(self.iterations, self.finish_reason, response.usage)
            if not message.tool_calls:
                self.messages.append(message_to_dict(message))
                stop = _CUT_SHORT.get(self.finish_reason, "completed")
                if self.output is None or stop != "completed":
                    return self._result(stop, text)
                result = self._answer(text, None)
                if result is not None:
                    return result
                continue
            calls = message.tool_calls
            ids = self.session.fresh_ids([c.id for c in calls])
            requests = plan_calls([(i, c.function.name, c.function.arguments)
                                   for i, c in zip(ids, calls)])
            echoed = message_to_dict(message)  # its calls as answered: ids repaired, "{}"
            echoed["tool_calls"] = [{"id": r.call_id, "type": "function", "function": {
                "name": r.name, "arguments": r.arguments_json if r.arguments_json is not None
                else "{}"}} for r in requests]
            self.messages.append(echoed)
            finals = [r for r in requests if r.name == FINAL_ANSWER_TOOL and r.problem is None
                      and self.output is not None and self.output.mode == "tool"]
            if finals and len(finals) == len(requests):
                result = self._answer(finals[0].arguments_json, finals)
                if result is not None:
                    return result
                continue
            requests, held = self.session.hold(toolset, [r for r in requests if r not in finals])
            requests, limited = self._within_limits(requests)
            yield from self._tools(toolset, requests)
            self.messages.extend(OutputSpec.not_taken(f.call_id) for f in finals)
            if held:
                telemetry.audit("approval_required", conversation_id=self.conversation_id,
                                calls=[call.call_id for call in held])
            if (stopped := self._stopped_after_tools(limited)) is not None:
                return stopped
        return self._result("max_iterations", None)

    def _resume(self, approved: list[PendingCall], denied: list[tuple[PendingCall, str]],
                ) -> Generator[Event, None, RunResult]:
        """Answer the decided calls (denied ones with the reason, approved ones by running
        them), then go on with the loop unless calls are still pending."""
        self.session.settle([c.call_id for c in approved] + [c.call_id for c, _ in denied])
        telemetry.audit("approval_decided", conversation_id=self.conversation_id,
                        approved=[c.call_id for c in approved],
                        denied=[c.call_id for c, _ in denied])
        for call, reason in denied:
            run = ToolRun(call.call_id, call.name, call.arguments, "denied",
                          f"Error: not run: the call was denied: {reason or 'no reason given'}",
                          reason or "denied")
            if not self.quiet:
                yield ToolCallFinished(run)
            self._record([run], time.time_ns())
        requests, limited = self._within_limits([request_of(call) for call in approved])
        yield from self._tools(self.loop.tools(), requests)
        if (stopped := self._stopped_after_tools(limited)) is not None:
            return stopped
        return (yield from self._loop())

    def _stopped_after_tools(self, limited: bool) -> RunResult | None:
        """Why the run stops after a turn's tools, or ``None`` to go on."""
        if self.session.pending:
            return self._result("approval_required", None)
        if limited:
            return self._result("usage_limit", None)
        if self._expired():
            return self._result("deadline", None)
        return None

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

    def _answer(self, raw: str | None, calls: list[ToolCallRequest] | None) -> RunResult | None:
        """Read a final answer (text, or the first of ``calls`` to ``final_answer``): the
        run's result, or ``None`` after asking the model for a correction."""
        assert self.output is not None
        retry = self.corrections < self.output_retries
        reading = self.output.read(raw, None if calls is None else [c.call_id for c in calls],
                                   retry=retry)
        self.messages.extend(reading.messages)
        if reading.ok:
            return self._result("completed", raw, reading.output)
        telemetry.audit("output_invalid", conversation_id=self.conversation_id,
                        attempt=self.corrections + 1, problem=reading.problem)
        if not retry:
            return self._result("invalid_output", raw)
        self.corrections += 1
        return None

    def _tools(self, toolset: ToolSet | None, requests: list[ToolCallRequest],
               ) -> Generator[Event, None, None]:
        """Run the turn's calls: ``ToolCallStarted`` for each call about to run, then
        ``ToolCallFinished`` as each ends; the tool messages go in the order of the calls."""
        for request in () if self.quiet else requests:
            if request.problem is None and toolset is not None and request.name in toolset:
                yield ToolCallStarted(request.call_id, request.name,
                                      parse_arguments(request.arguments_json)[0])
        if self.guard is None:
            self.guard = RepeatGuard(self.options.max_repeated_calls)
        start_ns = time.time_ns()
        runs: list[ToolRun | None] = [None] * len(requests)
        finished = self.loop.executor().iter_runs(toolset, requests, deadline=self.deadline_at,
                                                  guard=self.guard,
                                                  conversation_id=self.conversation_id)
        try:
            for index, tool_run in finished:
                runs[index] = tool_run
                self.session.record(tool_run)  # at once: a closed turn must not run it again
                if not self.quiet:
                    yield ToolCallFinished(tool_run)
        finally:
            finished.close()  # closed early: cancel what has not finished
            for request, done in zip(requests, runs):  # may have started: never again
                if done is None and request.problem is None:
                    self.session.mark_ran(request.call_id)
        self._record([r for r in runs if r is not None], start_ns)

    def _record(self, runs: list[ToolRun], start_ns: int) -> None:
        """Append one tool message per run, in call order, with its span and audit event."""
        traced, audited = telemetry.tracing(), telemetry.audit_enabled()
        for run in runs:
            self.messages.append({"role": "tool", "tool_call_id": run.call_id, "content": run.content})
            self.tool_runs.append(run)
            self.session.record(run)
            if traced:
                telemetry.tool_span(run.name, run.call_id, run.status, start_ns,
                                    start_ns + int(run.duration_s * 1e9))
            if audited:
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
                response: ChatResponse = stop.value
                return response
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
