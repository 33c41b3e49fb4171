"""Audit logging and optional OpenTelemetry spans.

The audit logger ``genesys_gateway.audit`` emits one JSON object per event at INFO.
Nothing is built when no handler listens. Payloads (messages, arguments, results) are
included only when the client was created with ``audit_payloads=True``. Credentials and
tokens are never part of any event.

OpenTelemetry is optional (``pip install genesys_gateway[otel]``); spans follow the GenAI
semantic conventions: ``invoke_agent genesys_gateway`` for a run, ``chat {model}`` for a
model call and ``execute_tool {name}`` for a tool call, the latter two nested under the
run's span. Without opentelemetry-api installed, span helpers are no-ops.
"""

from __future__ import annotations

import importlib.util
import sys
import json
import logging
import time
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, Generator, Mapping, Protocol, Sequence, Union, cast

if TYPE_CHECKING:
    from .models import ChatResponse

logger = logging.getLogger("genesys_gateway")
logger.addHandler(logging.NullHandler())
audit_logger = logging.getLogger("genesys_gateway.audit")
audit_logger.addHandler(logging.NullHandler())

# OpenTelemetry is an optional dependency, so it is never imported statically: a static
# import would not type-check where the extra is absent. The protocols below describe the
# part of the opentelemetry-api surface used here; its Span, Tracer and TracerProvider
# satisfy them.

#: An OpenTelemetry attribute value (``opentelemetry.util.types.AttributeValue``).
AttributeValue = Union[str, bool, int, float, Sequence[str], Sequence[bool], Sequence[int], Sequence[float]]


class _Span(Protocol):
    def set_attribute(self, key: str, value: AttributeValue) -> None: ...

    def set_status(self, status: Any, description: str | None = None) -> None: ...

    def end(self, end_time: int | None = None) -> None: ...


class _Tracer(Protocol):
    def start_span(
        self, name: str, *, attributes: Mapping[str, AttributeValue], start_time: int
    ) -> _Span: ...

    def start_as_current_span(
        self, name: str, *, attributes: Mapping[str, AttributeValue], record_exception: bool
    ) -> AbstractContextManager[_Span]: ...


class _TracerProvider(Protocol):
    def get_tracer(self, instrumenting_module_name: str) -> _Tracer: ...


class _TraceAPI(Protocol):
    """The ``opentelemetry.trace`` module, as used here.

    ``Status`` and ``StatusCode`` values are opaque here: they are only handed back to
    ``Span.set_status`` (an enum class cannot be described by a protocol that both mypy and
    pyright accept). ``ProxyTracerProvider`` is the API's default provider (it is not in the
    module's ``__all__``).
    """

    @property
    def ProxyTracerProvider(self) -> type[object]: ...

    @property
    def StatusCode(self) -> Any: ...

    def Status(self, status_code: Any, description: str | None = None) -> Any: ...

    def get_tracer_provider(self) -> _TracerProvider: ...


def _trace_api() -> _TraceAPI | None:
    """OpenTelemetry's trace API if the application has imported it, else ``None``.

    Never imported here: a tracer provider can only have been configured by code that
    imported ``opentelemetry.trace`` first, so without it there is nothing to record, and
    ``import genesys_gateway`` loads no optional package."""
    module = sys.modules.get("opentelemetry.trace")
    return None if module is None else cast(_TraceAPI, module)

__all__ = ["audit", "audit_enabled", "span", "agent_span", "tool_span", "tracing",
           "otel_available", "SYSTEM"]

SYSTEM = "genesys_cloud"


def otel_available() -> bool:
    """Whether OpenTelemetry's API is installed (spans are recorded once the application
    has configured a tracer provider)."""
    return importlib.util.find_spec("opentelemetry") is not None


def audit_enabled() -> bool:
    return audit_logger.isEnabledFor(logging.INFO)


def audit(event: str, **fields: object) -> None:
    """Emit one audit event (a JSON object) if anyone listens."""
    if not audit_logger.isEnabledFor(logging.INFO):
        return
    record: dict[str, object] = {"event": event, "ts": round(time.time(), 6)}
    record.update(fields)
    audit_logger.info(json.dumps(record, ensure_ascii=False, default=str, separators=(",", ":")))


_tracers: dict[int, _Tracer] = {}


def _tracer() -> _Tracer | None:
    """This library's tracer, or ``None`` without opentelemetry or while no tracer provider
    is installed (the API's default proxy makes only non-recording spans: skipping them
    keeps the hot path free)."""
    trace = _trace_api()
    if trace is None:
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider):
        return None
    tracer = _tracers.get(id(provider))
    if tracer is None:
        _tracers.clear()
        tracer = _tracers[id(provider)] = provider.get_tracer("genesys_gateway")
    return tracer


def _attributes(values: Mapping[str, object]) -> dict[str, AttributeValue]:
    """The values that are not ``None``. OpenTelemetry checks the rest itself: a value of an
    unsupported type is dropped with a warning, it never fails the call."""
    return {k: cast(AttributeValue, v) for k, v in values.items() if v is not None}


@contextmanager
def _otel_span(
    tracer: _Tracer, name: str, attributes: Mapping[str, AttributeValue]
) -> Generator[_Span, None, None]:
    with tracer.start_as_current_span(name, attributes=attributes, record_exception=True) as s:
        yield s


def span(name: str, **attributes: object) -> AbstractContextManager[_Span | None]:
    """A current span (child of whatever span is current) or a no-op context."""
    tracer = _tracer()
    if tracer is None:
        return nullcontext(None)
    return _otel_span(tracer, name, _attributes(attributes))


def tracing() -> bool:
    """Whether spans are recorded (OpenTelemetry imported, a tracer provider installed)."""
    return _tracer() is not None


def agent_span(model: str, conversation_id: str) -> AbstractContextManager[_Span | None]:
    """The span of one run (``invoke_agent genesys_gateway``), or a no-op context yielding
    None; its attributes are built only when it is recorded."""
    tracer = _tracer()
    if tracer is None:
        return nullcontext(None)
    return _otel_span(tracer, "invoke_agent genesys_gateway", {
        "gen_ai.operation.name": "invoke_agent", "gen_ai.provider.name": SYSTEM,
        "gen_ai.request.model": model, "gen_ai.conversation.id": conversation_id})


def chat_span(model: str, server: str) -> AbstractContextManager[_Span | None]:
    """The span of one model call (``chat {model}``), or a no-op context yielding None."""
    tracer = _tracer()
    if tracer is None:
        return nullcontext(None)
    return _otel_span(tracer, f"chat {model}", {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": SYSTEM,
        "gen_ai.request.model": model, "server.address": server})


def record_response(current: _Span | None, response: ChatResponse) -> None:
    """Response attributes of a model-call span."""
    set_attributes(current, **{
        "gen_ai.response.model": response.model, "gen_ai.response.id": response.id,
        "gen_ai.usage.input_tokens": response.usage.prompt_tokens,
        "gen_ai.usage.output_tokens": response.usage.completion_tokens,
        "gen_ai.response.finish_reasons": [c.finish_reason or "" for c in response.choices]})


def set_attributes(current: _Span | None, **attributes: object) -> None:
    if current is None:
        return
    for key, value in _attributes(attributes).items():
        current.set_attribute(key, value)


def set_error(current: _Span | None, error: BaseException) -> None:
    trace = _trace_api()
    if current is None or trace is None:
        return
    current.set_attribute("error.type", type(error).__name__)
    current.set_status(trace.Status(trace.StatusCode.ERROR, type(error).__name__))


def tool_span(name: str, call_id: str | None, status: str, start_ns: int, end_ns: int) -> None:
    """Record a finished tool call as a child span of the current span.

    Tools run on worker threads; the span is made on the loop's thread with the measured
    start and end times so it nests under the run's span without context plumbing."""
    tracer = _tracer()
    trace = _trace_api()
    if tracer is None or trace is None:
        return
    s = tracer.start_span(
        f"execute_tool {name}",
        attributes={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.call.id": call_id or "",
            "genesys_gateway.tool.status": status,
        },
        start_time=start_ns,
    )
    if status != "ok":
        s.set_attribute("error.type", status)
        s.set_status(trace.Status(trace.StatusCode.ERROR, status))
    s.end(end_time=end_ns)
