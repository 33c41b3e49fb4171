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

from ..constants import DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_READ_TIMEOUT
from ..errors import ConfigurationError, TransportError

__all__ = [
    "Timeout",
    "HTTPRequest",
    "HTTPResponse",
    "Transport",
    "StreamResponse",
    "StreamingTransport",
    "check_url",
    "check_proxy",
    "ErrorRule",
    "ExceptionMap",
    "FALLBACK_RULES",
    "INVALID_HEADER",
    "to_transport_error",
]


@attrs.frozen
class Timeout:
    """Timeouts of one HTTP request, in seconds.

    ``connect`` bounds connecting; ``read`` bounds each wait for the next bytes (a server
    that trickles a byte now and then never trips it); ``total`` (``None``: no bound)
    bounds the whole request, connect + send + headers + the whole body, however slowly
    the bytes arrive: when it runs out the request fails with a ``TransportError`` of kind
    ``"deadline"``. A run's or call's ``deadline`` becomes each request's ``total``
    (:meth:`clip`).

    Attributes:
        connect: seconds to connect (default 10).
        read: seconds to wait for the next bytes (default 60).
        total: seconds for the whole request, or ``None`` (default: no bound).
    """

    connect: float = DEFAULT_CONNECT_TIMEOUT
    read: float = DEFAULT_READ_TIMEOUT
    total: float | None = None

    def clip(self, remaining: float | None) -> "Timeout":
        """This timeout, shortened so that no part exceeds ``remaining`` seconds (the
        time left before a deadline; ``None``: no deadline, unchanged)."""
        if remaining is None:
            return self
        remaining = max(remaining, 0.001)
        total = self.total
        return Timeout(min(self.connect, remaining), min(self.read, remaining),
                       remaining if total is None or total > remaining else total)


@attrs.frozen(repr=False)
class HTTPRequest:
    """One request, as the client hands it to a :class:`Transport`. Its ``repr`` never
    shows the headers (they hold credentials).

    Attributes:
        method: the HTTP method (``"POST"``).
        url: the absolute URL.
        headers: the request headers.
        body: the request body, or ``None``.
        timeout: the request's timeouts.
        max_response_bytes: caps the response body's decoded size: a transport refuses a
            larger body with a ``ResponseFormatError`` before reading it whole.
    """

    method: str
    url: str
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes | None = None
    timeout: Timeout = Timeout()
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    def __repr__(self) -> str:  # headers hold credentials: never shown
        return f"HTTPRequest({self.method} {self.url}, {len(self.body or b'')} bytes)"


@attrs.frozen(repr=False)
class HTTPResponse:
    """A whole response, as a :class:`Transport` returns it.

    Attributes:
        status: the HTTP status code.
        headers: the response headers, looked up by lower-case name.
        body: the decoded response body.
    """

    status: int
    headers: Mapping[str, str]
    """Looked up by lower-case name (a plain dict with lower-case keys, or a
    case-insensitive mapping such as the transports' own header objects)."""
    body: bytes = b""

    def header(self, name: str, default: str | None = None) -> str | None:
        """The header ``name`` (any case), or ``default``."""
        return self.headers.get(name.lower(), default)

    def __repr__(self) -> str:
        return f"HTTPResponse({self.status}, {len(self.body)} bytes)"


@runtime_checkable
class Transport(Protocol):
    """What sends the client's HTTP requests: :class:`Urllib3Transport` (the default),
    :class:`RequestsTransport`, a test's ``MockTransport``, or your own."""

    def send(self, request: HTTPRequest) -> HTTPResponse:
        """Send ``request`` and return the whole response, whatever its status. A request
        that gets no whole response raises ``TransportError`` (its ``kind`` says why); a
        body over ``request.max_response_bytes`` raises ``ResponseFormatError``."""
        ...

    def close(self) -> None:
        """Release pooled connections. Idempotent."""
        ...


class StreamResponse:
    """A response whose body is read as it arrives: ``status``, ``headers`` (looked up by
    lower-case name), ``chunks`` (an iterator of the decoded body's pieces, each as soon as
    it is received; it raises ``TransportError``/``ResponseFormatError`` as ``send`` does)
    and :meth:`close`, which releases the connection once the body was read to its end and
    discards it otherwise (a response left half-read is never reused). Closing twice is
    harmless; iterating to the end does not close.
    """

    __slots__ = ("status", "headers", "chunks", "_close")

    def __init__(self, status: int, headers: Mapping[str, str], chunks: Iterator[bytes],
                 close: Callable[[], None] | None = None) -> None:
        self.status = status
        self.headers = headers
        self.chunks = chunks
        self._close = close

    def header(self, name: str, default: str | None = None) -> str | None:
        """The header ``name`` (any case), or ``default``."""
        return self.headers.get(name.lower(), default)

    def read(self) -> bytes:
        """The rest of the body, whole (bounded as the chunks are); then closed."""
        try:
            return b"".join(self.chunks)
        finally:
            self.close()

    def close(self) -> None:
        """Release the connection (read to the end) or discard it (half-read)."""
        close, self._close = self._close, None
        if close is not None:
            close()

    def __repr__(self) -> str:
        return f"StreamResponse({self.status})"


@runtime_checkable
class StreamingTransport(Transport, Protocol):
    """A transport that can also hand a response over before its body is read."""

    def send_stream(self, request: HTTPRequest) -> StreamResponse:
        """Send ``request`` and return as soon as the headers arrived; the body is read
        from the response's ``chunks``."""
        ...


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


PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")


def check_proxy(url: object, *, what: str = "proxy") -> str:
    """Validate a proxy URL (``http://host:port``; https and socks schemes too)."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in PROXY_SCHEMES or not parts.hostname:
        shown = f"{parts.scheme}://{parts.hostname}" if parts is not None and parts.hostname else repr(url)[:40]
        raise ConfigurationError(f"{what} must be an http://, https:// or socks URL with a host, got {shown}",
                                 option="proxy")
    try:
        parts.port
    except ValueError:
        raise ConfigurationError(f"{what} has an invalid port", option="proxy") from None
    return url  # type: ignore[return-value]


# --- exception tables -------------------------------------------------------------------

class ErrorRule:
    """One row of a transport's exception table: an exception class and the
    :class:`~genesys_gateway.errors.TransportError` (*kind*, message *prefix*) it becomes.

    With ``quote=False`` the library's own message is not appended (only the exception's
    type name is): for exceptions whose text may quote a request header value, a credential.
    A ``kind`` of ``None`` marks a wrapper (a proxy error): the kind and words are those of
    the exception it wraps, by the rest of the table, after *prefix*; ``"refused"`` if none.
    """

    __slots__ = ("exc_type", "kind", "prefix", "quote")

    def __init__(self, exc_type: type[BaseException], kind: str | None, prefix: str, *,
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
    ErrorRule(OSError, "closed", "connection error"),
)


def to_transport_error(error: BaseException, rules: Sequence[ErrorRule]) -> TransportError | None:
    """The TransportError for *error* by the first of *rules* whose class matches *error* or
    an exception it wraps (HTTP libraries wrap the socket's or http.client's exception, and
    requests wraps urllib3's: the most telling one may be inside). ``None`` if no row
    matches. Row order is priority: more specific classes first."""
    chain = _wrapped_chain(error)
    for i, rule in enumerate(rules):
        for exc in chain:
            if isinstance(exc, rule.exc_type):
                if rule.kind is None:  # a wrapper: classified by what it wraps
                    inner = _wrapped_error(exc, [r for r in rules[i + 1:] if r not in FALLBACK_RULES])
                    if inner is not None:
                        return TransportError(f"{rule.prefix}: {inner}", kind=inner.kind)
                    words = ": ".join(_describe(a) if isinstance(a, BaseException) else str(a)
                                      for a in exc.args)
                    return TransportError(f"{rule.prefix}: {words}", kind="refused")
                if not rule.quote:
                    return TransportError(f"{rule.prefix} ({type(exc).__name__})", kind=rule.kind)
                return TransportError(f"{rule.prefix}: {_describe(exc)}", kind=rule.kind)
    return None


def _wrapped_error(exc: BaseException, rules: Sequence[ErrorRule]) -> TransportError | None:
    """The TransportError for the first exception *exc* wraps that *rules* classify."""
    for link in _links(exc):
        if isinstance(link, BaseException) and link is not exc:
            error = to_transport_error(link, rules)
            if error is not None:
                return error
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
    (``raise ... from``). Not ``__context__`` (an exception being handled is not a cause),
    except for urllib3's own exceptions raised without ``from``: urllib3 1.26 wraps that way
    (``NewConnectionError`` over the ``gaierror`` of a name that did not resolve)."""
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
    if exc.__cause__ is None and not exc.__suppress_context__ \
            and type(exc).__module__.startswith("urllib3."):
        yield exc.__context__


def _describe(exc: BaseException) -> str:
    """The library's own words for *exc*."""
    import http.client

    if isinstance(exc, http.client.HTTPException):  # its text is raw wire data, or empty
        return repr(exc)
    args = exc.args
    if len(args) > 1 and not isinstance(exc, OSError) and isinstance(args[-1], str):
        return args[-1]  # urllib3's (connection, text) form: the connection's repr is noise
    return str(exc) or type(exc).__name__
