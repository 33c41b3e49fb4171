"""What a run is given: :class:`LoopOptions` (the client's side) and :class:`RunOptions`
(one ``run()``/``send()``/``stream()``/``resume()``'s), checked once, and the shape of the
model call (:class:`ModelCall`). :mod:`genesys_gateway.loop` re-exports them."""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Generator, Mapping, Protocol, Sequence

import attrs

from . import checks
from .constants import DEFAULT_OUTPUT_RETRIES
from .errors import ConfigurationError
from .limits import Limits, optional_limits
from .models import ChatResponse
from .output import OutputMode, OutputSpec, output_spec
from .params import check_extra, check_model_params, headers_repr

__all__ = ["StreamingModelCall", "RUN_ARGUMENTS", "ModelCall", "LoopOptions", "RunOptions",
           "new_conversation_id"]

#: The keyword arguments of ``run()``/``send()`` besides model parameters.
RUN_ARGUMENTS = frozenset({"deadline", "max_iterations", "extra_body", "extra_headers", "limits",
                           "output_type", "output_schema", "output_mode", "output_retries"})


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
    output_retries: int = attrs.field(default=DEFAULT_OUTPUT_RETRIES,
                                      validator=checks.non_negative_int)


@attrs.frozen
class RunOptions:
    """What one ``run()``/``send()`` asked for, checked once: a ``deadline`` in seconds,
    a ``max_iterations`` overriding the client's, model parameters, ``extra_body`` and
    ``extra_headers``, and structured output (``output``, from ``output_type`` or
    ``output_schema`` and ``output_mode``) with ``output_retries`` overriding the client's."""

    deadline: float | None = attrs.field(default=None, validator=checks.optional_positive)
    max_iterations: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(checks.positive_int))
    params: Mapping[str, Any] = attrs.field(factory=dict)
    extra_body: Mapping[str, Any] | None = None
    extra_headers: Mapping[str, str] | None = attrs.field(default=None, repr=headers_repr)
    limits: Limits | None = attrs.field(default=None, validator=optional_limits)
    output: OutputSpec | None = None
    output_retries: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(checks.non_negative_int))
    streaming: bool = False
    """A run read as events (``stream()``): its model calls stream when the loop can."""
    quiet: bool = False
    """A run whose events nobody reads (``run()``/``send()``/``resume()``): the loop makes
    only the last, :class:`~genesys_gateway.events.RunFinished`."""

    @classmethod
    def build(cls, where: str, *, deadline: float | None = None, max_iterations: int | None = None,
              extra_body: Mapping[str, Any] | None = None,
              extra_headers: Mapping[str, str] | None = None, limits: Limits | None = None,
              output_type: Any = None, output_schema: Mapping[str, Any] | None = None,
              output_mode: OutputMode = "json_schema", output_retries: int | None = None,
              **params: Any) -> RunOptions:
        """Checked options; an unknown keyword is a ``TypeError`` naming it, a bad
        ``output_*`` a ``ConfigurationError`` naming it."""
        if (not params and deadline is None and max_iterations is None and extra_body is None
                and extra_headers is None and limits is None and output_type is None
                and output_schema is None and output_mode == "json_schema"
                and output_retries is None):  # nothing asked for: nothing to check
            plain = _PLAIN.get(where)
            if plain is None:
                plain = _PLAIN[where] = cls(streaming=where in _STREAMED, quiet=where in _QUIET)
            return plain
        params = check_model_params(params, where=where, also_known=RUN_ARGUMENTS)
        output = output_spec(output_type, output_schema, output_mode)
        if output is not None and "response_format" in params:
            raise ConfigurationError("give response_format or output_type/output_schema, not "
                                     "both", option="response_format")
        return cls(deadline, max_iterations, params, check_extra("extra_body", extra_body),
                   check_extra("extra_headers", extra_headers), limits, output, output_retries,
                   streaming=where in _STREAMED, quiet=where in _QUIET)


def new_conversation_id() -> str:
    """A random (version 4) UUID as text, as ``str(uuid.uuid4())`` (without a UUID object):
    the id of the conversation a ``run()`` opens."""
    data = bytearray(os.urandom(16))
    data[6] = data[6] & 0x0F | 0x40  # version 4
    data[8] = data[8] & 0x3F | 0x80  # the RFC 4122 variant
    h = data.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_STREAMED = frozenset({"stream", "resume_stream"})  # where the events are read
_QUIET = frozenset({"run", "send", "resume"})  # where only the result is
_PLAIN: dict[str, RunOptions] = {}  # the options of a run that asked for nothing, by where
