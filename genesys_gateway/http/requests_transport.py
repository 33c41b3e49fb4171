"""A transport on ``requests``, and the table that maps requests' exceptions.

requests is imported when a transport is made (or its table first used), not when
``genesys_gateway`` is imported.
"""

from __future__ import annotations

import functools
import threading
import weakref
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import urlsplit

from ..at_fork import reinit_in_child
from ..checks import check_bool, check_positive_int
from ..constants import DEFAULT_POOL_MAXSIZE
from ..errors import TransportError
from .bounded import CHUNK, Deadline, RawResponse, deadline_passed, read_body, set_deadline
from .streaming import stream_response
from .transport import (
    FALLBACK_RULES,
    INVALID_HEADER,
    ErrorRule,
    ExceptionMap,
    HTTPRequest,
    HTTPResponse,
    StreamResponse,
    check_proxy,
)
from .urllib3_transport import bind_manager, own_pools_in_child, urllib3_rules

if TYPE_CHECKING:
    import requests
    from requests.adapters import BaseAdapter, HTTPAdapter

__all__ = ["RequestsTransport", "error_table", "map_exceptions"]


@functools.cache
def error_table() -> tuple[ErrorRule, ...]:
    """RequestsTransport's exception table: the first row matching the exception (or one it
    wraps) gives the TransportError.

    requests wraps urllib3's exception (``ConnectionError`` alone stands for a refused
    connection, a reset, a bad status line...), so urllib3's rows come before requests'
    own classes and decide whenever there is a urllib3 cause, exactly as in
    ``Urllib3Transport``. requests' rows cover what it raises on its own (or a custom
    adapter raises without a cause); its exceptions are ``OSError``s, so they precede the
    fallbacks.
    """
    from requests import exceptions as rq

    return (
        ErrorRule(rq.InvalidHeader, "protocol", INVALID_HEADER, quote=False),  # its text quotes the value
        *urllib3_rules(),
        ErrorRule(rq.ConnectTimeout, "connect_timeout", "connect timeout"),  # a ConnectionError: first
        ErrorRule(rq.ReadTimeout, "read_timeout", "read timeout"),
        ErrorRule(rq.SSLError, "tls", "TLS error"),
        ErrorRule(rq.ProxyError, "refused", "proxy error"),
        ErrorRule(rq.ChunkedEncodingError, "closed", "connection closed mid-response"),
        ErrorRule(rq.ConnectionError, "closed", "connection error"),
        ErrorRule(rq.RequestException, "protocol", "HTTP error"),  # invalid URL, ...
        *FALLBACK_RULES,
    )


#: Entered by ``send``: raises the TransportError :func:`error_table` gives for an
#: exception from the library (its text never quotes a header value).
map_exceptions = ExceptionMap(error_table)


class RequestsTransport:
    """A transport on ``requests``, for users who need its ecosystem (custom adapters).
    One ``Session`` per thread (``Session`` is not documented as thread-safe); all are
    closed on ``close()``. A thread that ends drops its session (only weak references are
    kept here), so servers that start a thread per request do not accumulate sessions.
    requests' own retries and ``~/.netrc`` authentication are disabled.

    Every request holds its ``Timeout.total`` and its ``max_response_bytes``; adapters
    given in ``mount`` hold the size cap, and the total only between the pieces of the
    body they return.

    Args:
        pool_maxsize: connections kept per host in each session (default 64).
        trust_env: without ``proxy``, let requests honour the environment's
            ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` and ``NO_PROXY``.
        proxy: ``"http://host:port"`` sends every request through that proxy.
        mount: transport adapters by URL prefix (``{"https://": MyAdapter()}``), mounted
            on every session.
    """

    def __init__(self, *, pool_maxsize: int = DEFAULT_POOL_MAXSIZE, trust_env: bool = True,
                 proxy: str | None = None, mount: Mapping[str, BaseAdapter] | None = None) -> None:
        import requests
        import requests.adapters

        import urllib3.response

        self._requests = requests
        self._raw_type = urllib3.response.HTTPResponse
        self._pool_maxsize = check_positive_int("pool_maxsize", pool_maxsize)
        self._trust_env = check_bool("trust_env", trust_env)
        self._proxy = None if proxy is None else check_proxy(proxy)
        # per request (a session's proxies lose to the environment's in requests)
        self._proxies = None if proxy is None else {"http": proxy, "https": proxy}
        self._mount = dict(mount or {})
        self._local = threading.local()
        self._sessions: weakref.WeakSet[requests.Session] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._closed = False
        reinit_in_child(self, RequestsTransport._after_fork)

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            requests = self._requests
            session = requests.Session()
            session.trust_env = self._trust_env
            session.auth = _NoAuth()  # stops requests from reading ~/.netrc
            session.headers["Accept-Encoding"] = "gzip, deflate"  # what read_body decodes
            adapter = bounded_adapter()(
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
        """The whole response (see :meth:`Transport.send`)."""
        resp, _raw, _deadline, body = self._open(request, stream=False)
        # requests' CaseInsensitiveDict: no copy needed
        return HTTPResponse(resp.status_code, resp.headers, body)

    def send_stream(self, request: HTTPRequest) -> StreamResponse:
        """The response once its head arrived; its body read as it arrives (bounded as
        :meth:`send`'s)."""
        resp, raw, deadline, _body = self._open(request, stream=True)
        return stream_response(resp.status_code, resp.headers, raw, request.max_response_bytes,
                               deadline, map_exceptions)

    def _open(self, request: HTTPRequest, *,
              stream: bool) -> tuple[requests.Response, RawResponse, Deadline | None, bytes]:
        if self._closed:
            raise TransportError("transport is closed", kind="protocol")
        session = self._session()
        timeout, deadline = request.timeout, None
        connect, read = timeout.connect, timeout.read
        if timeout.total is not None:
            deadline = Deadline(timeout.total, read)
            connect, read = min(connect, timeout.total), min(read, timeout.total)
        if deadline is not None:
            set_deadline(deadline)
        try:
            with map_exceptions:
                resp = session.request(
                    request.method,
                    request.url,
                    data=request.body,
                    headers=dict(request.headers),
                    timeout=(connect, read),
                    allow_redirects=False,
                    verify=True,
                    stream=True,
                    proxies=self._proxies,
                )
                raw: RawResponse = resp.raw if isinstance(resp.raw, self._raw_type) else _Chunks(resp)
                body = b"" if stream else read_body(raw, request.max_response_bytes, deadline)
        except TransportError as error:
            raise deadline_passed(error, deadline) from None
        finally:
            if deadline is not None:
                set_deadline(None)
        return resp, raw, deadline, body

    def close(self) -> None:
        """Close every thread's session; later requests fail. Idempotent."""
        with self._lock:
            self._closed = True
            sessions = list(self._sessions)
            self._sessions.clear()
        for session in sessions:
            session.close()

    def _after_fork(self) -> None:
        """In a forked child: no session of the parent's threads is used again (their
        threads do not exist here; the forking thread's gets a new one too). Their pools are
        first made the child's own (see ``own_pools_in_child``): that closes this process's
        copies of the parent's connections without ending them, and readies the adapters
        given with ``mount=``, which the child's sessions share."""
        inherited = list(self._sessions)
        self._local = threading.local()
        self._sessions = weakref.WeakSet()
        self._lock = threading.Lock()
        managers = {id(m): m for session in inherited for adapter in session.adapters.values()
                    for m in (getattr(adapter, "poolmanager", None),
                              *getattr(adapter, "proxy_manager", {}).values()) if m is not None}
        for manager in managers.values():
            own_pools_in_child(manager)

    def __repr__(self) -> str:
        if self._proxy is None:
            return "RequestsTransport()"
        parts = urlsplit(self._proxy)
        return f"RequestsTransport(proxy='{parts.scheme}://{parts.hostname}:{parts.port}')"


@functools.cache
def bounded_adapter() -> type[HTTPAdapter]:
    """requests' ``HTTPAdapter``, its pool managers (direct and per proxy) made to hold the
    request deadline (:func:`~genesys_gateway.http.urllib3_transport.bind_manager`)."""
    from requests.adapters import HTTPAdapter

    class BoundedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            bind_manager(self.poolmanager)

        def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
            fresh = proxy not in self.proxy_manager
            manager = super().proxy_manager_for(proxy, **proxy_kwargs)
            if fresh:
                bind_manager(manager)
            return manager

    return BoundedAdapter


class _Chunks:
    """A response whose ``raw`` is not urllib3's (from an adapter given in ``mount``), read
    through requests' ``iter_content`` (which decodes it) in pieces, for :func:`read_body`."""

    headers: Mapping[str, str] = {}  # no length, no coding: read in pieces, as is

    def __init__(self, response: requests.Response) -> None:
        self._response = response
        self._chunks = response.iter_content(CHUNK)

    def read(self, amt: int | None = None, decode_content: bool | None = None) -> bytes:
        return next(self._chunks, b"")

    def close(self) -> None:
        self._response.close()

    def release_conn(self) -> None:
        pass


class _NoAuth:
    """An auth object that leaves the request alone (and so disables netrc lookup)."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r
