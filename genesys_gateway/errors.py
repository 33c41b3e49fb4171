"""The exception hierarchy. Every error the SDK raises is a :class:`GatewayError`.

Messages never contain secrets: callers build them from status codes, error codes and
server messages, never from request headers or credentials.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = [
    "GatewayError",
    "ConfigurationError",
    "TransportError",
    "APIError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "ResponseFormatError",
    "ToolDefinitionError",
    "ToolArgumentsError",
    "TokenStoreError",
    "StateError",
    "ConflictError",
    "ConversationStoreError",
    "ToolError",
    "error_for_status",
]


class GatewayError(Exception):
    """Base class of every error raised by genesys_gateway."""


class ConfigurationError(GatewayError, ValueError):
    """A bad option given at construction (region, URL, setting, environment variable).

    Args:
        message: what is wrong and how to fix it.
        option: the client option at fault (``"max_iterations"``), or ``None``.

    Attributes:
        option: the client option at fault (``"max_iterations"``), when there is one, so
            that a settings loader can name its own setting instead.
    """

    def __init__(self, message: str, *, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_configuration_error, (self.__class__, str(self), self.option))


def _rebuild_configuration_error(cls: type[ConfigurationError], message: str,
                                 option: str | None) -> ConfigurationError:
    return cls(message, option=option)


class TransportError(GatewayError):
    """The request did not get a whole HTTP response: it could not connect, timed out, ran
    out of time, or the connection failed mid-way.

    ``kind`` says which (the same on every transport):

    * ``"refused"``: no connection could be made (refused, unreachable, or the proxy refused);
    * ``"dns"``: the host name did not resolve;
    * ``"connect_timeout"``: connecting took longer than the connect timeout;
    * ``"read_timeout"``: no byte arrived within the read timeout (headers or body);
    * ``"deadline"``: the request's total budget ran out (``Timeout(total=...)``, or what is
      left of a run's or call's ``deadline``), however slowly the bytes were arriving;
    * ``"closed"``: the connection was closed or reset before or during the response;
    * ``"tls"``: the TLS handshake or certificate check failed;
    * ``"protocol"``: the answer is not valid HTTP (or cannot be decoded), or the request
      cannot be sent (an invalid header, a closed transport).

    ``retryable`` is true for the first four and ``"closed"``: trying again may work.

    Args:
        message: what happened (never a secret).
        kind: one of the kinds above (default ``"closed"``); any other is a ``ValueError``.

    Attributes:
        kind: which of the kinds above happened.
    """

    KINDS = ("refused", "dns", "connect_timeout", "read_timeout", "deadline", "closed", "tls",
             "protocol")
    RETRYABLE_KINDS = frozenset({"refused", "dns", "connect_timeout", "read_timeout", "closed"})

    def __init__(self, message: str, *, kind: str = "closed") -> None:
        if kind not in self.KINDS:
            raise ValueError(f"TransportError kind must be one of {', '.join(self.KINDS)}, got {kind!r}")
        super().__init__(message)
        self.kind = kind

    @property
    def retryable(self) -> bool:
        """Whether trying again may work: ``kind`` is ``"refused"``, ``"dns"``,
        ``"connect_timeout"``, ``"read_timeout"`` or ``"closed"``."""
        return self.kind in self.RETRYABLE_KINDS

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_transport_error, (self.__class__, str(self), self.kind))


def _rebuild_transport_error(cls: type[TransportError], message: str, kind: str) -> TransportError:
    return cls(message, kind=kind)


class APIError(GatewayError):
    """The server answered with an HTTP error status.

    ``str(error)`` reads ``HTTP <status> [<code>]: <message> (correlation id <id>)``.

    Args:
        status: the HTTP status code.
        message: the error's message, from the body when it has one.
        code: the error code from the body, if any.
        correlation_id: the server's correlation id (Genesys Cloud's
            ``ININ-Correlation-Id``), to quote to support.
        body: the parsed error body (JSON), or ``None``.
        retry_after: seconds the server asked to wait (``Retry-After``), or ``None``.

    Attributes:
        status: the HTTP status code.
        message: the error's message.
        code: the error code from the body, or ``None``.
        correlation_id: the server's correlation id, or ``None``.
        body: the parsed error body, or ``None``.
        retry_after: seconds the server asked to wait (``Retry-After``), or ``None``.
    """

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        correlation_id: str | None = None,
        body: Any = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.message = message
        self.code = code
        self.correlation_id = correlation_id
        self.body = body
        self.retry_after = retry_after
        """Seconds the server asked to wait (``Retry-After``), or ``None``."""
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"HTTP {self.status}"
        if self.code:
            text += f" [{self.code}]"
        text += f": {self.message}"
        if self.correlation_id:
            text += f" (correlation id {self.correlation_id})"
        return text

    def __reduce__(self) -> tuple[Callable[..., APIError], tuple[Any, ...]]:
        # keep pickling (multiprocessing, caches) working
        return (
            _rebuild_api_error,
            (self.__class__, self.status, self.message, self.code, self.correlation_id,
             self.body, self.retry_after),
        )


def _rebuild_api_error(
    cls: type[APIError],
    status: int,
    message: str,
    code: str | None,
    correlation_id: str | None,
    body: Any,
    retry_after: float | None,
) -> APIError:
    return cls(status, message, code, correlation_id, body, retry_after=retry_after)


class BadRequestError(APIError):
    """400 or 422."""


class AuthenticationError(APIError):
    """401, or a token request refused for bad client credentials."""


class PermissionDeniedError(APIError):
    """403."""


class NotFoundError(APIError):
    """404."""


class RateLimitError(APIError):
    """429 (or the token endpoint's 400 "rate limit exceeded").

    ``retry_after`` is the server's requested wait in seconds (float) or ``None``.
    """


class ServerError(APIError):
    """5xx."""


class ResponseFormatError(GatewayError):
    """A 2xx response whose body is not what the endpoint promises (not JSON, no choices...)."""


class ToolDefinitionError(GatewayError, ValueError):
    """A tool registration that cannot work: bad name, schema, handler or duplicate."""


class ToolArgumentsError(GatewayError, ValueError):
    """Arguments for a tool that do not satisfy its schema; the message says what to fix."""


class ToolError(Exception):
    """Raised by a tool handler to tell the model what went wrong: the message is exactly
    what the model sees (``"Error: <message>"``). Any other exception gives the model only
    its type name and a generic text, unless the client has ``expose_tool_errors=True``."""


class TokenStoreError(GatewayError):
    """A token store could not be reached or used. Callers degrade to a direct token fetch."""


class _ConversationError(GatewayError):
    """Base of the conversation-state errors: ``conversation_id`` names the conversation
    (``None`` when it is not known), and the message starts with it."""

    def __init__(self, message: str, *, conversation_id: str | None = None) -> None:
        super().__init__(message)
        self.conversation_id = conversation_id

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_conversation_error, (self.__class__, str(self), self.__dict__.copy()))


def _rebuild_conversation_error(cls: type[_ConversationError], message: str,
                                fields: dict[str, Any]) -> _ConversationError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(fields)
    return error


class StateError(_ConversationError):
    """A conversation state that cannot be used: not JSON, an unknown ``version``, a field
    that fails the state schema, history that cannot be sent, or a stored state that
    belongs to another conversation. The message names the conversation and what is wrong;
    the stored data is left as it was."""


class ConflictError(_ConversationError):
    """Another worker saved the conversation first (or created it, or it is gone): the
    state passed to ``save`` was not stored. Reload the conversation and retry the turn.

    Args:
        message: what happened; it starts with the conversation's id.
        conversation_id: the conversation, or ``None`` when not known.
        expected_version: the version the caller expected (``None``: "must not exist yet").
        stored_version: the version the store holds (``None``: nothing).

    Attributes:
        conversation_id: the conversation, or ``None`` when not known.
        expected_version: what the caller expected (``None``: "must not exist yet").
        stored_version: what the store holds (``None``: nothing).
    """

    def __init__(self, message: str, *, conversation_id: str | None = None,
                 expected_version: int | None = None, stored_version: int | None = None) -> None:
        super().__init__(message, conversation_id=conversation_id)
        self.expected_version = expected_version
        self.stored_version = stored_version


class ConversationStoreError(_ConversationError):
    """A conversation store could not be reached or used (Redis down, a database error, a
    directory that cannot be written). Nothing was saved; distinct from :class:`StateError`,
    which is about the data."""


_STATUS_CLASSES: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: BadRequestError,
    429: RateLimitError,
}


def error_for_status(status: int) -> type[APIError]:
    """The APIError subclass for an HTTP status."""
    if status in _STATUS_CLASSES:
        return _STATUS_CLASSES[status]
    if status >= 500:
        return ServerError
    return APIError
