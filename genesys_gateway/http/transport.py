"""Transports: one ``send(request) -> response`` method plus ``close()``.

This module holds what every transport shares: the :class:`Transport` protocol, the value
types (:class:`Timeout`, :class:`HTTPRequest`, :class:`HTTPResponse`), :func:`check_url`,
and the machinery of the exception tables (:class:`ErrorRule`, :func:`to_transport_error`).
The implementations live next to it, each with the library it imports (lazily):
``urllib3_transport`` (:class:`Urllib3Transport`, the default) and ``requests_transport``
(:class:`RequestsTransport`).

A transport moves bytes. It does not retry, authenticate or parse JSON: those are the
retry policy's, the auth's and the client's concerns. Third-party exceptions are mapped to
:class:`~genesys_gateway.errors.TransportError` at the edge that imports them, by one
ordered table per implementation.
"""

from __future__ import annotations

import ipaddress
from types import TracebackType
from typing import Callable, Iterator, Mapping, Protocol, Sequence, runtime_checkable
from urllib.parse import urlsplit

import attrs

from ..constants import DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT
from ..errors import ConfigurationError, TransportError

__all__ = [
    "Timeout",
    "HTTPRequest",
    "HTTPResponse",
    "Transport",
    "check_url",
    "ErrorRule",
    "ExceptionMap",
    "FALLBACK_RULES",
    "INVALID_HEADER",
    "to_transport_error",
]


@attrs.frozen
class Timeout:
    """Connect and read timeouts in seconds (both finite)."""

    connect: float = DEFAULT_CONNECT_TIMEOUT
    read: float = DEFAULT_READ_TIMEOUT

    def clip(self, remaining: float | None) -> "Timeout":
        """This timeout, shortened so that neither part exceeds ``remaining`` seconds."""
        if remaining is None:
            return self
        remaining = max(remaining, 0.001)
        return Timeout(min(self.connect, remaining), min(self.read, remaining))


@attrs.frozen(repr=False)
class HTTPRequest:
    method: str
    url: str
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes | None = None
    timeout: Timeout = Timeout()

    def __repr__(self) -> str:  # headers hold credentials: never shown
        return f"HTTPRequest({self.method} {self.url}, {len(self.body or b'')} bytes)"


@attrs.frozen(repr=False)
class HTTPResponse:
    status: int
    headers: Mapping[str, str]
    """Looked up by lower-case name (a plain dict with lower-case keys, or a
    case-insensitive mapping such as the transports' own header objects)."""
    body: bytes = b""

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def __repr__(self) -> str:
        return f"HTTPResponse({self.status}, {len(self.body)} bytes)"


@runtime_checkable
class Transport(Protocol):
    def send(self, request: HTTPRequest) -> HTTPResponse: ...

    def close(self) -> None: ...


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, allow_insecure_http: bool = False, what: str = "URL") -> str:
    """Validate an endpoint URL: https, or http to a loopback host unless explicitly allowed."""
    if not isinstance(url, str) or not url:
        raise ConfigurationError(f"{what} must be a non-empty string, got {url!r}")
    parts = urlsplit(url)
    if parts.username or parts.password:  # first: the messages below quote the URL
        raise ConfigurationError(f"{what} must not contain credentials")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{what} {url!r} is not an http(s) URL with a host")
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
        raise ConfigurationError(
            f"{what} {url!r} uses plain http:// to a non-loopback host; use https:// "
            "or pass allow_insecure_http=True"
        )
    return url.rstrip("/")


# --- exception tables -------------------------------------------------------------------

class ErrorRule:
    """One row of a transport's exception table: an exception class and the
    :class:`~genesys_gateway.errors.TransportError` (*kind*, message *prefix*) it becomes.

    With ``quote=False`` the library's own message is not appended (only the exception's
    type name is): for exceptions whose text may quote a request header value, a credential.
    """

    __slots__ = ("exc_type", "kind", "prefix", "quote")

    def __init__(self, exc_type: type[BaseException], kind: str, prefix: str, *,
                 quote: bool = True) -> None:
        self.exc_type = exc_type
        self.kind = kind
        self.prefix = prefix
        self.quote = quote

    def __repr__(self) -> str:
        quote = "" if self.quote else ", quote=False"
        return f"ErrorRule({self.exc_type.__qualname__}, {self.kind!r}, {self.prefix!r}{quote})"


#: The library's refusal to send a header (http.client and requests raise ``ValueError``
#: subclasses whose text quotes the offending value).
INVALID_HEADER = "invalid request: a header name or value cannot be sent"

#: The last rows of every table, after the library's own classes (which may subclass them).
FALLBACK_RULES: tuple[ErrorRule, ...] = (
    ErrorRule(ValueError, "protocol", INVALID_HEADER, quote=False),
    ErrorRule(OSError, "connect", "connection error"),
)


def to_transport_error(error: BaseException, rules: Sequence[ErrorRule]) -> TransportError | None:
    """The TransportError for *error* by the first of *rules* whose class matches *error* or
    an exception it wraps (HTTP libraries wrap the socket's or http.client's exception, and
    requests wraps urllib3's: the most telling one may be inside). ``None`` if no row
    matches. Row order is priority: more specific classes first."""
    chain = _wrapped_chain(error)
    for rule in rules:
        for exc in chain:
            if isinstance(exc, rule.exc_type):
                if not rule.quote:
                    return TransportError(f"{rule.prefix} ({type(exc).__name__})", kind=rule.kind)
                return TransportError(f"{rule.prefix}: {_describe(exc)}", kind=rule.kind)
    return None


class ExceptionMap:
    """A context manager that raises, for an exception from its block, the TransportError
    its table gives (:func:`to_transport_error`); an exception no row matches propagates
    as is. *table* is only called when something failed (it imports the library).

    Stateless and reentrant: a transport module makes one, ``map_exceptions``, and every
    ``send`` enters it (cheaper than a generator context manager on the hot path).
    """

    __slots__ = ("_table",)

    def __init__(self, table: Callable[[], Sequence[ErrorRule]]) -> None:
        self._table = table

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if not isinstance(exc, Exception):  # no exception, or KeyboardInterrupt & co
            return
        error = to_transport_error(exc, self._table())
        if error is not None:
            raise error from None  # not shown chained: the library's exception holds the request


def _wrapped_chain(error: BaseException) -> list[BaseException]:
    """*error* and the exceptions it wraps: in its ``args`` (requests, urllib3's
    ``ProtocolError``), its ``reason`` (urllib3's ``MaxRetryError``) and its ``__cause__``
    (``raise ... from``). Not ``__context__``: an exception being handled is not a cause."""
    chain: list[BaseException] = []
    pending = [error]
    while pending:
        exc = pending.pop(0)
        if any(exc is seen for seen in chain):
            continue
        chain.append(exc)
        pending.extend(arg for arg in _links(exc) if isinstance(arg, BaseException))
    return chain


def _links(exc: BaseException) -> Iterator[object]:
    yield from exc.args
    yield getattr(exc, "reason", None)
    yield exc.__cause__


def _describe(exc: BaseException) -> str:
    """The library's own words for *exc*."""
    import http.client

    if isinstance(exc, http.client.HTTPException):  # its text is raw wire data, or empty
        return repr(exc)
    args = exc.args
    if len(args) > 1 and not isinstance(exc, OSError) and isinstance(args[-1], str):
        return args[-1]  # urllib3's (connection, text) form: the connection's repr is noise
    return str(exc) or type(exc).__name__
