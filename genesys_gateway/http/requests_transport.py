"""A transport on ``requests``, and the table that maps requests' exceptions.

requests is imported when a transport is made (or its table first used), not when
``genesys_gateway`` is imported.
"""

from __future__ import annotations

import functools
import threading
import weakref
from typing import TYPE_CHECKING, Mapping

from ..at_fork import reinit_in_child
from ..constants import DEFAULT_POOL_MAXSIZE
from ..errors import TransportError
from .transport import FALLBACK_RULES, INVALID_HEADER, ErrorRule, ExceptionMap, HTTPRequest, HTTPResponse
from .urllib3_transport import own_pools_in_child, urllib3_rules

if TYPE_CHECKING:
    import requests
    from requests.adapters import BaseAdapter

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
        ErrorRule(rq.ConnectTimeout, "connect", "connect timeout"),  # a ConnectionError: first
        ErrorRule(rq.ReadTimeout, "timeout", "read timeout"),
        ErrorRule(rq.SSLError, "tls", "TLS error"),
        ErrorRule(rq.ProxyError, "connect", "proxy error"),
        ErrorRule(rq.ConnectionError, "connect", "connection error"),
        ErrorRule(rq.RequestException, "protocol", "HTTP error"),  # invalid URL, ...
        *FALLBACK_RULES,
    )


#: Entered by ``send``: raises the TransportError :func:`error_table` gives for an
#: exception from the library (its text never quotes a header value).
map_exceptions = ExceptionMap(error_table)


class RequestsTransport:
    """A transport on ``requests``, for users who need its ecosystem (environment proxies,
    custom adapters). One ``Session`` per thread (``Session`` is not documented as
    thread-safe); all are closed on ``close()``. A thread that ends drops its session (only
    weak references are kept here), so servers that start a thread per request do not
    accumulate sessions. requests' own retries and ``~/.netrc`` authentication are disabled.
    """

    def __init__(self, *, pool_maxsize: int = DEFAULT_POOL_MAXSIZE, trust_env: bool = True,
                 mount: Mapping[str, BaseAdapter] | None = None) -> None:
        import requests
        import requests.adapters

        self._requests = requests
        self._pool_maxsize = pool_maxsize
        self._trust_env = trust_env
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
        session = self._session()
        with map_exceptions:
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
        # requests' CaseInsensitiveDict: no copy needed
        return HTTPResponse(resp.status_code, resp.headers, body or b"")

    def close(self) -> None:
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
        return "RequestsTransport()"


class _NoAuth:
    """An auth object that leaves the request alone (and so disables netrc lookup)."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r
