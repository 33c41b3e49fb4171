"""The client's options as one immutable, validated value (change with ``attrs.evolve``).

Every check raises :class:`~genesys_gateway.errors.ConfigurationError` naming the option,
so settings loaders can name their setting instead (see :mod:`genesys_gateway.settings`).
"""

from __future__ import annotations

from typing import Any, Mapping

import attrs

from . import checks
from .constants import (
    DEFAULT_MAX_ITERATIONS,
    DEFAULT_MAX_REPEATED_CALLS,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_TOOL_RESULT_CHARS,
    DEFAULT_MODEL,
    DEFAULT_PATH,
    DEFAULT_TOOL_TIMEOUT,
    DEFAULT_TOOL_WORKERS,
)
from .errors import ConfigurationError
from .http.transport import Timeout
from .params import check_extra

__all__ = ["ClientOptions", "CLIENT_ARGUMENTS", "to_timeout"]


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


def _extra(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    check_extra(attribute.name, value)
    if attribute.name == "extra_headers" and value and any(
            k.lower() in ("authorization", "content-length", "host") for k in value):
        raise ConfigurationError("extra_headers cannot set Authorization, Content-Length or Host "
                                 "(the client sets them)", option=attribute.name)


@attrs.frozen
class ClientOptions:
    """What a :class:`~genesys_gateway.GatewayClient` was configured with (besides its
    endpoint, auth, tools, transport and retry policy, which are objects of their own).

    Attributes:
        model: the model name sent with every request unless a call gives ``model=``.
        path: the chat-completions path on the gateway host.
        timeout: connect, read and total timeouts of one HTTP request.
        max_iterations: model calls allowed in one run.
        tool_timeout: seconds a tool call may take unless its tool sets a timeout.
        tool_workers: threads running tool calls (per client).
        max_tool_result_chars: longer tool results are cut, with a visible marker.
        max_repeated_calls: identical calls (same tool, same arguments) allowed per run.
        allow_insecure_http: allow ``http://`` to hosts other than loopback.
        audit_payloads: include messages, arguments and results in audit events.
        params: model parameters sent with every call (a call's own win).
        extra_body: merged into every request body verbatim (a call's own keys win).
        extra_headers: added to every request (a call's own win).
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
    params: Mapping[str, Any] = attrs.field(factory=dict, converter=dict)
    extra_body: Mapping[str, Any] | None = attrs.field(default=None, validator=_extra)
    extra_headers: Mapping[str, str] | None = attrs.field(default=None, validator=_extra)
    max_response_bytes: int = attrs.field(default=DEFAULT_MAX_RESPONSE_BYTES,
                                          validator=checks.positive_int)


#: Every keyword ``GatewayClient()`` takes besides model parameters.
CLIENT_ARGUMENTS = frozenset(attrs.fields_dict(ClientOptions)) - {"params"} | {
    "region", "base_url", "auth", "tools", "transport", "retry", "clock"}
