"""The default transport, on urllib3, and the table that maps urllib3's exceptions.

urllib3 is imported when a transport is made (or its table first used), not when
``genesys_gateway`` is imported.
"""

from __future__ import annotations

import functools
import queue
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..at_fork import reinit_in_child
from ..constants import DEFAULT_POOL_MAXSIZE
from ..errors import TransportError
from .transport import FALLBACK_RULES, ErrorRule, ExceptionMap, HTTPRequest, HTTPResponse, Timeout

if TYPE_CHECKING:
    import urllib3
    from urllib3.connectionpool import HTTPConnectionPool

__all__ = ["Urllib3Transport", "error_table", "map_exceptions", "urllib3_rules", "own_pools_in_child"]


@functools.cache
def urllib3_rules() -> tuple[ErrorRule, ...]:
    """The rows for urllib3's exceptions and for the stdlib exceptions urllib3 wraps, most
    specific first. requests wraps the same exceptions: ``RequestsTransport``'s table
    embeds these rows, so both transports classify a failure alike."""
    import http.client
    import socket

    from urllib3 import exceptions as u3

    return (
        ErrorRule(u3.ProxyError, "connect", "proxy error"),  # wraps whatever failed on the way to the proxy
        # NameResolutionError (urllib3 2) subclasses NewConnectionError, which subclasses
        # ConnectTimeoutError: the subclasses come first.
        ErrorRule(getattr(u3, "NameResolutionError", socket.gaierror), "connect", "name resolution failed"),
        ErrorRule(u3.NewConnectionError, "connect", "connection failed"),  # refused, unreachable
        ErrorRule(u3.ConnectTimeoutError, "connect", "connect timeout"),
        ErrorRule(u3.ReadTimeoutError, "timeout", "read timeout"),
        ErrorRule(u3.TimeoutError, "timeout", "timeout"),
        ErrorRule(u3.SSLError, "tls", "TLS error"),
        # urllib3 wraps http.client's and the socket's errors in ProtocolError. RemoteDisconnected
        # (closed before a status line) is a BadStatusLine, so it precedes HTTPException.
        ErrorRule(http.client.RemoteDisconnected, "closed", "connection closed"),
        ErrorRule(http.client.IncompleteRead, "closed", "connection closed mid-response"),
        ErrorRule(http.client.HTTPException, "protocol", "invalid HTTP response"),  # bad status line, ...
        ErrorRule(ConnectionError, "closed", "connection reset"),  # reset, aborted, broken pipe
        ErrorRule(u3.ProtocolError, "closed", "connection closed"),
        ErrorRule(u3.ClosedPoolError, "protocol", "transport is closed"),
        ErrorRule(u3.HTTPError, "protocol", "HTTP error"),
    )


@functools.cache
def error_table() -> tuple[ErrorRule, ...]:
    """Urllib3Transport's exception table: the first row matching the exception (or one it
    wraps) gives the TransportError."""
    return urllib3_rules() + FALLBACK_RULES


#: Entered by ``send``: raises the TransportError :func:`error_table` gives for an
#: exception from the library (its text never quotes a header value).
map_exceptions = ExceptionMap(error_table)


def own_pools_in_child(manager: urllib3.PoolManager) -> None:
    """In a forked child, make ``manager``'s connection pools the child's own: fresh locks,
    and no connection shared with the parent. The pools, their settings (proxy included)
    and the transport's cached routes to them stay valid; new connections open on demand.

    The idle connections inherited from the parent are closed *in this process only*:
    closing a descriptor sends nothing while another process holds the same socket (TCP's
    FIN goes out when the last descriptor closes, and closing an ``ssl`` socket frees its
    TLS state without a ``close_notify``); nothing here calls ``shutdown()`` or
    ``unwrap()``, which would end the parent's connection. Closing them matters: a copy
    left open in a long-lived child would keep the server from seeing the parent close it.

    The locks on the way (the manager's, each pool's queue) may have been held, at the
    moment of the fork, by a parent thread that does not exist here: they are replaced, not
    taken. A connection that such a thread had taken out of its pool is in no pool; the
    child's copy of it stays open until the child exits.
    """
    pools = manager.pools
    pools.lock = threading.RLock()
    for key in pools.keys():
        idle = getattr(pools.get(key), "pool", None)
        if not isinstance(idle, queue.Queue):
            continue
        inherited = list(idle.queue)
        # A fresh queue (its own locks) in place: the pool, and urllib3's finalizer of the
        # pool, keep referring to it. Refilled with the ``None`` slots a new pool starts with.
        queue.Queue.__init__(idle, idle.maxsize)
        for _ in range(idle.maxsize):
            idle.put_nowait(None)
        for conn in inherited:
            if conn is not None:
                conn.close()


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

        kwargs: dict[str, Any] = dict(
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
        self._pool: urllib3.PoolManager
        if proxy_url:
            self._pool = urllib3.ProxyManager(proxy_url, **kwargs)
        else:
            self._pool = urllib3.PoolManager(**kwargs)
        self._proxied = bool(proxy_url)
        self._closed = False
        self._routes: dict[str, tuple[HTTPConnectionPool, str]] = {}
        self._timeouts: dict[Timeout, urllib3.Timeout] = {}
        self._urllib3 = urllib3
        reinit_in_child(self, Urllib3Transport._after_fork)

    def _route(self, url: str) -> tuple[HTTPConnectionPool, str]:
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

    def _timeout(self, timeout: Timeout) -> urllib3.Timeout:
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
        # A proxy manager needs the full URL; otherwise go straight to the host's pool.
        pool: urllib3.PoolManager | HTTPConnectionPool
        pool, target = (self._pool, request.url) if self._proxied else self._route(request.url)
        with map_exceptions:
            resp = pool.urlopen(
                request.method, target, body=request.body, headers=request.headers,
                redirect=False, retries=False, assert_same_host=False,
                timeout=self._timeout(request.timeout), preload_content=True, release_conn=True,
            )
        # urllib3's HTTPHeaderDict is case-insensitive: no copy needed
        return HTTPResponse(resp.status, resp.headers, resp.data or b"")

    def close(self) -> None:
        self._closed = True
        self._routes.clear()
        self._pool.clear()

    def _after_fork(self) -> None:
        """In a forked child: the pools become the child's own (see own_pools_in_child)."""
        own_pools_in_child(self._pool)

    def __repr__(self) -> str:
        return "Urllib3Transport()"
