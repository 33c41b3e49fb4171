"""Transports: one ``send(request) -> response`` method plus ``close()``.

The transport moves bytes. It does not retry, authenticate or parse JSON: those are the
retry policy's, the auth's and the client's concerns. Third-party exceptions are mapped to
:class:`~genesys_gateway.errors.TransportError` here, at the edge that imports them.
"""

from __future__ import annotations

import ipaddress
import threading
import weakref
from typing import Mapping, Protocol, runtime_checkable
from urllib.parse import urlsplit

import attrs

from ..constants import DEFAULT_CONNECT_TIMEOUT, DEFAULT_POOL_MAXSIZE, DEFAULT_READ_TIMEOUT
from ..errors import ConfigurationError, TransportError

__all__ = [
    "Timeout",
    "HTTPRequest",
    "HTTPResponse",
    "Transport",
    "Urllib3Transport",
    "RequestsTransport",
    "check_url",
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
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{what} {url!r} is not an http(s) URL with a host")
    if parts.username or parts.password:
        raise ConfigurationError(f"{what} must not contain credentials")
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
        raise ConfigurationError(
            f"{what} {url!r} uses plain http:// to a non-loopback host; use https:// "
            "or pass allow_insecure_http=True"
        )
    return url.rstrip("/")


class Urllib3Transport:
    """The default transport: one thread-safe urllib3 ``PoolManager``.

    Connections are kept alive and reused across threads; redirects are never followed;
    TLS certificates are verified.
    """

    def __init__(
        self,
        *,
        pool_maxsize: int = DEFAULT_POOL_MAXSIZE,
        ca_certs: str | None = None,
        proxy_url: str | None = None,
    ) -> None:
        import urllib3

        kwargs = dict(
            num_pools=8,
            maxsize=pool_maxsize,
            block=False,
            retries=False,
            cert_reqs="CERT_REQUIRED",
        )
        if ca_certs:
            kwargs["ca_certs"] = ca_certs
        else:
            try:
                import certifi  # noqa: F401  (used by urllib3 when present)

                kwargs["ca_certs"] = certifi.where()
            except ImportError:
                pass
        if proxy_url:
            self._pool = urllib3.ProxyManager(proxy_url, **kwargs)
        else:
            self._pool = urllib3.PoolManager(**kwargs)
        self._proxied = bool(proxy_url)
        self._closed = False
        self._routes: dict = {}
        self._timeouts: dict = {}
        self._urllib3 = urllib3

    def _route(self, url: str):
        """The connection pool and request target for ``url``, parsed once per URL
        (urllib3 re-parses and re-encodes a full URL on every request otherwise)."""
        route = self._routes.get(url)
        if route is None:
            parts = urlsplit(url)
            target = parts.path or "/"
            if parts.query:
                target += "?" + parts.query
            pool = self._pool.connection_from_url(url)
            route = (pool, target)
            if len(self._routes) >= 64:
                self._routes.clear()
            self._routes[url] = route
        return route

    def _timeout(self, timeout: Timeout):
        converted = self._timeouts.get(timeout)
        if converted is None:
            converted = self._urllib3.Timeout(connect=timeout.connect, read=timeout.read)
            if len(self._timeouts) >= 64:
                self._timeouts.clear()
            self._timeouts[timeout] = converted
        return converted

    def send(self, request: HTTPRequest) -> HTTPResponse:
        if self._closed:
            raise TransportError("transport is closed", kind="protocol")
        urllib3 = self._urllib3
        # A proxy manager needs the full URL; otherwise go straight to the host's pool.
        pool, target = (self._pool, request.url) if self._proxied else self._route(request.url)
        try:
            resp = pool.urlopen(
                request.method, target, body=request.body, headers=request.headers,
                redirect=False, retries=False, assert_same_host=False,
                timeout=self._timeout(request.timeout), preload_content=True, release_conn=True,
            )
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise _map_urllib3_error(urllib3, e) from None
        except ValueError as e:  # http.client refusing a header: its text would echo the value
            raise _invalid_request(e) from None
        # urllib3's HTTPHeaderDict is case-insensitive: no copy needed
        return HTTPResponse(resp.status, resp.headers, resp.data or b"")

    def close(self) -> None:
        self._closed = True
        self._routes.clear()
        self._pool.clear()

    def __repr__(self) -> str:
        return "Urllib3Transport()"


def _map_urllib3_error(urllib3, e: BaseException) -> TransportError:
    """The TransportError for a urllib3 (or socket) exception."""
    exc = urllib3.exceptions
    if isinstance(e, exc.ConnectTimeoutError):
        return TransportError(f"connect timeout: {e}", kind="connect")
    if isinstance(e, (exc.ReadTimeoutError, exc.TimeoutError)):
        return TransportError(f"read timeout: {e}", kind="timeout")
    if isinstance(e, exc.SSLError):
        return TransportError(f"TLS error: {e}", kind="tls")
    if isinstance(e, exc.NewConnectionError):
        return TransportError(f"connection failed: {_reason(e)}", kind="connect")
    if isinstance(e, exc.ProtocolError):
        return TransportError(f"connection closed: {_reason(e)}", kind="closed")
    if isinstance(e, exc.ProxyError):
        return TransportError(f"proxy error: {_reason(e)}", kind="connect")
    if isinstance(e, exc.HTTPError):
        return TransportError(f"HTTP error: {e}", kind="protocol")
    return TransportError(f"connection error: {e}", kind="connect")


def _invalid_request(e: BaseException) -> TransportError:
    """A request the HTTP library refused to send (an invalid header name or value). The
    library's message quotes the header, which may be a credential, so it is not kept."""
    return TransportError(f"invalid request: a header name or value cannot be sent ({type(e).__name__})",
                          kind="protocol")


def _reason(e: BaseException) -> str:
    return str(getattr(e, "reason", None) or e)


class RequestsTransport:
    """A transport on ``requests``, for users who need its ecosystem (environment proxies,
    custom adapters). One ``Session`` per thread (``Session`` is not documented as
    thread-safe); all are closed on ``close()``. A thread that ends drops its session (only
    weak references are kept here), so servers that start a thread per request do not
    accumulate sessions. requests' own retries and ``~/.netrc`` authentication are disabled.
    """

    def __init__(self, *, pool_maxsize: int = DEFAULT_POOL_MAXSIZE, trust_env: bool = True,
                 mount: Mapping[str, object] | None = None) -> None:
        import requests

        self._requests = requests
        self._pool_maxsize = pool_maxsize
        self._trust_env = trust_env
        self._mount = dict(mount or {})
        self._local = threading.local()
        self._sessions: weakref.WeakSet = weakref.WeakSet()
        self._lock = threading.Lock()
        self._closed = False

    def _session(self):
        session = getattr(self._local, "session", None)
        if session is None:
            requests = self._requests
            session = requests.Session()
            session.trust_env = self._trust_env
            session.auth = _NoAuth()  # stops requests from reading ~/.netrc
            adapter = requests.adapters.HTTPAdapter(
                pool_connections=4, pool_maxsize=self._pool_maxsize, max_retries=0
            )
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            for prefix, custom in self._mount.items():
                session.mount(prefix, custom)
            with self._lock:
                if self._closed:
                    raise TransportError("transport is closed", kind="protocol")
                self._sessions.add(session)
            self._local.session = session
        return session

    def send(self, request: HTTPRequest) -> HTTPResponse:
        if self._closed:
            raise TransportError("transport is closed", kind="protocol")
        requests = self._requests
        session = self._session()
        try:
            resp = session.request(
                request.method,
                request.url,
                data=request.body,
                headers=dict(request.headers),
                timeout=(request.timeout.connect, request.timeout.read),
                allow_redirects=False,
                verify=True,
            )
            body = resp.content
        except requests.exceptions.ConnectTimeout as e:
            raise TransportError(f"connect timeout: {e}", kind="connect") from None
        except requests.exceptions.ReadTimeout as e:
            raise TransportError(f"read timeout: {e}", kind="timeout") from None
        except requests.exceptions.SSLError as e:
            raise TransportError(f"TLS error: {e}", kind="tls") from None
        except requests.exceptions.InvalidHeader as e:
            raise _invalid_request(e) from None
        except requests.exceptions.ConnectionError as e:
            kind = "closed" if _is_protocol_error(e) else "connect"
            raise TransportError(f"connection error: {e}", kind=kind) from None
        except requests.exceptions.RequestException as e:
            raise TransportError(f"HTTP error: {e}", kind="protocol") from None
        except ValueError as e:
            raise _invalid_request(e) from None
        # requests' CaseInsensitiveDict: no copy needed
        return HTTPResponse(resp.status_code, resp.headers, body or b"")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sessions = list(self._sessions)
            self._sessions.clear()
        for session in sessions:
            session.close()

    def __repr__(self) -> str:
        return "RequestsTransport()"


def _is_protocol_error(e: BaseException) -> bool:
    import urllib3

    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, urllib3.exceptions.ProtocolError):
            return True
        if isinstance(e, urllib3.exceptions.MaxRetryError):
            e = e.reason
            continue
        e = (e.args[0] if e.args and isinstance(e.args[0], BaseException) else None) or e.__cause__ or e.__context__
    return False


class _NoAuth:
    """An auth object that leaves the request alone (and so disables netrc lookup)."""

    def __call__(self, r):
        return r
