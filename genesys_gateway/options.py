"""The client's options as one immutable, validated value (change with ``attrs.evolve``).

Every check raises :class:`~genesys_gateway.errors.ConfigurationError` naming the option,
so settings loaders can name their setting instead (see :mod:`genesys_gateway.settings`).
"""

from __future__ import annotations

from typing import Any, Generic, Mapping, TypeVar, cast

import attrs

from . import checks
from .constants import (
    DEFAULT_MAX_ITERATIONS,
    DEFAULT_MAX_REPEATED_CALLS,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_TOOL_RESULT_CHARS,
    DEFAULT_MODEL,
    DEFAULT_OUTPUT_RETRIES,
    DEFAULT_PATH,
    DEFAULT_TOOL_TIMEOUT,
    DEFAULT_TOOL_WORKERS,
)
from .errors import ConfigurationError
from .http.rate_limit import RateLimiter
from .http.retry import ExponentialBackoff, RetryPolicy
from .http.retry_budget import RetryBudget
from .http.transport import Timeout, Transport
from .limits import Limits, optional_limits
from .params import check_extra, check_model_params, headers_repr

__all__ = ["ClientOptions", "CLIENT_ARGUMENTS", "OptionAttribute", "to_timeout", "retry_options"]

T = TypeVar("T")


class OptionAttribute(Generic[T]):
    """A read-only attribute of the client that reads the option of the same name from
    its ``options``."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, client: Any, owner: type | None = None) -> T:
        value: T = getattr(client.options, self.name)
        return value

    def __set__(self, client: Any, value: T) -> None:
        raise AttributeError(f"{self.name} is read-only: make a new client with the option")


def to_timeout(value: Timeout | float | None) -> Timeout:
    """A :class:`Timeout` from ``None`` (the defaults), seconds for connect and read, or a
    ``Timeout`` whose parts are positive numbers (``total`` may be ``None``)."""
    if value is None:
        return Timeout()
    if isinstance(value, Timeout):
        parts: tuple[Any, Any] = (value.connect, value.read)
        total = checks.check_optional_positive("timeout", value.total)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        parts, total = (value, value), None
    else:
        raise ConfigurationError(f"timeout must be seconds or a Timeout, got {value!r}",
                                 option="timeout")
    connect, read = (checks.check_positive("timeout", part) for part in parts)
    return Timeout(connect, read, total)


def _path(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ConfigurationError(f"path must start with '/', got {value!r}", option=attribute.name)


def _extra_body(value: Any) -> dict[str, Any] | None:
    return check_extra("extra_body", value)


def _extra_headers(value: Any) -> dict[str, Any] | None:
    return check_extra("extra_headers", value)


def _params(value: Mapping[str, Any]) -> dict[str, Any]:
    return check_model_params(value, where="GatewayClient", also_known=CLIENT_ARGUMENTS)


@attrs.frozen
class ClientOptions:
    """What a :class:`~genesys_gateway.GatewayClient` was configured with (besides its
    endpoint, auth, tools, transport and retry policy, which are objects of their own).

    Attributes:
        model: the model name sent with every request unless a call gives ``model=``.
        path: the chat-completions path on the gateway host.
        timeout: connect, read and total timeouts of one HTTP request.
        max_iterations: model calls allowed in one run (each structured-output correction
            adds one).
        tool_timeout: seconds a tool call may take unless its tool sets a timeout.
        tool_workers: threads running tool calls (per client).
        max_tool_result_chars: longer tool results are cut, with a visible marker.
        max_repeated_calls: identical calls (same tool, same arguments) allowed per run.
        allow_insecure_http: allow ``http://`` to hosts other than loopback.
        audit_payloads: include messages, arguments and results in audit events.
        expose_tool_errors: send the text of a tool's exception to the model (by default
            only its type; a ``ToolError``'s message is always sent).
        limits: the :class:`~genesys_gateway.Limits` of every run (a run's own replace them).
        output_retries: corrections a run may ask for when its structured answer is
            invalid (``output_type``/``output_schema``), before it stops with
            ``"invalid_output"``.
        params: model parameters sent with every call (a call's own win).
        extra_body: merged into every request body verbatim (a call's own keys win).
        extra_headers: added to every request (a call's own win).
        server_streaming: a ``stream()`` asks the server for server-sent events and yields
            text as it arrives (``False``: whole responses, one text event per answer).
        max_response_bytes: a larger response body (decoded) is a ``ResponseFormatError``,
            refused without reading it whole.
    """

    model: str = attrs.field(default=DEFAULT_MODEL, validator=checks.non_empty_str)
    path: str = attrs.field(default=DEFAULT_PATH, validator=_path)
    timeout: Timeout = attrs.field(default=None, converter=to_timeout)
    max_iterations: int = attrs.field(default=DEFAULT_MAX_ITERATIONS, validator=checks.positive_int)
    tool_timeout: float = attrs.field(default=DEFAULT_TOOL_TIMEOUT, validator=checks.positive)
    tool_workers: int = attrs.field(default=DEFAULT_TOOL_WORKERS, validator=checks.positive_int)
    max_tool_result_chars: int = attrs.field(default=DEFAULT_MAX_TOOL_RESULT_CHARS,
                                             validator=checks.positive_int)
    max_repeated_calls: int = attrs.field(default=DEFAULT_MAX_REPEATED_CALLS,
                                          validator=checks.positive_int)
    allow_insecure_http: bool = attrs.field(default=False, validator=checks.boolean)
    audit_payloads: bool = attrs.field(default=False, validator=checks.boolean)
    expose_tool_errors: bool = attrs.field(default=False, validator=checks.boolean)
    limits: Limits | None = attrs.field(default=None, validator=optional_limits)
    output_retries: int = attrs.field(default=DEFAULT_OUTPUT_RETRIES,
                                      validator=checks.non_negative_int)
    params: Mapping[str, Any] = attrs.field(factory=dict, converter=_params)
    extra_body: Mapping[str, Any] | None = attrs.field(default=None, converter=_extra_body)
    extra_headers: Mapping[str, str] | None = attrs.field(default=None, converter=_extra_headers,
                                                          repr=headers_repr)
    max_response_bytes: int = attrs.field(default=DEFAULT_MAX_RESPONSE_BYTES,
                                          validator=checks.positive_int)
    server_streaming: bool = attrs.field(default=True, validator=checks.boolean)


#: Every keyword ``GatewayClient()`` takes besides model parameters.
CLIENT_ARGUMENTS = frozenset(attrs.fields_dict(ClientOptions)) - {"params"} | {
    "region", "base_url", "auth", "tools", "transport", "retry", "clock",
    "rate_limiter", "retry_budget"}


def _what(value: object) -> str:
    """How an error names a wrong value: its type, or a class given where an instance is due."""
    if isinstance(value, type):
        return f"the class {value.__name__} (pass an instance: {value.__name__}())"
    return type(value).__name__


def _instance_of(option: str, value: Any, kind: Any, wanted: str) -> None:
    if value is not None and (isinstance(value, type) or not isinstance(value, kind)):
        raise ConfigurationError(f"{option} must be {wanted}, got {_what(value)}", option=option)


def check_transport(transport: Any) -> Transport | None:
    """``transport`` when it is ``None`` or a :class:`Transport` instance."""
    _instance_of("transport", transport, Transport, "a Transport with send() and close()")
    return cast("Transport | None", transport)


def retry_options(retry: Any, rate_limiter: Any, retry_budget: Any,
                  ) -> tuple[RetryPolicy, RateLimiter | None, RetryBudget | None]:
    """The client's retry policy (``None``: ``ExponentialBackoff()``), rate limiter and
    retry budget (``"default"``: a new ``RetryBudget()`` for this client), checked."""
    _instance_of("retry", retry, RetryPolicy, "a RetryPolicy such as ExponentialBackoff()")
    _instance_of("rate_limiter", rate_limiter, RateLimiter, "a RateLimiter such as TokenBucket()")
    budget: RetryBudget | None
    if isinstance(retry_budget, str) and retry_budget == "default":
        budget = RetryBudget()
    else:
        _instance_of("retry_budget", retry_budget, RetryBudget, "a RetryBudget or None")
        budget = cast("RetryBudget | None", retry_budget)
    policy: RetryPolicy = retry if retry is not None else ExponentialBackoff()
    return policy, cast("RateLimiter | None", rate_limiter), budget
