"""The default transport, on urllib3, and the table that maps urllib3's exceptions.

urllib3 is imported when a transport is made (or its table first used), not when
``genesys_gateway`` is imported.
"""

from __future__ import annotations

import functools
import queue
import threading
from typing import TYPE_CHECKING, Any, TypeVar, Union
from urllib.parse import urlsplit

from ..at_fork import reinit_in_child
from ..checks import check_bool, check_positive_int
from ..constants import DEFAULT_POOL_MAXSIZE
from ..errors import TransportError
from .bounded import (
    Deadline,
    RequestDeadlineExceeded,
    bounded_connection,
    deadline_passed,
    read_body,
    set_deadline,
)
from .direct import DirectHost
from .direct_stream import open_stream
from .proxies import no_proxy_matches, proxy_for, proxy_manager, socks_module
from .streaming import stream_response
from .transport import (
    FALLBACK_RULES,
    ErrorRule,
    ExceptionMap,
    HTTPRequest,
    HTTPResponse,
    StreamResponse,
    Timeout,
    check_proxy,
)
from .wire import encode_head

if TYPE_CHECKING:
    import urllib3
    from urllib3.connectionpool import HTTPConnectionPool

    #: What a request is sent through: a host's pool, or a proxy's manager.
    Opener = Union[HTTPConnectionPool, urllib3.PoolManager]

__all__ = ["Urllib3Transport", "bind_manager", "error_table", "map_exceptions", "no_proxy_matches",
           "urllib3_rules", "own_pools_in_child"]

M = TypeVar("M")

#: Methods the direct path sends (any other goes through urllib3).
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


@functools.cache
def urllib3_rules() -> tuple[ErrorRule, ...]:
    """The rows for urllib3's exceptions and for the stdlib exceptions urllib3 wraps, most
    specific first. requests wraps the same exceptions: ``RequestsTransport``'s table
    embeds these rows, so both transports classify a failure alike."""
    import http.client
    import socket
    import ssl

    from urllib3 import exceptions as u3

    return (
        # the request's total budget ran out (urllib3 wraps it as a read timeout)
        ErrorRule(RequestDeadlineExceeded, "deadline", "request deadline exceeded"),
        # wraps whatever failed on the way to the proxy: classified by that (kind None)
        ErrorRule(u3.ProxyError, None, "proxy error"),
        # NameResolutionError (urllib3 2) subclasses NewConnectionError, which subclasses
        # ConnectTimeoutError: the subclasses come first. (urllib3 1.26 raises a plain
        # NewConnectionError over the gaierror.)
        *([ErrorRule(u3.NameResolutionError, "dns", "name resolution failed")]
          if hasattr(u3, "NameResolutionError") else []),
        ErrorRule(socket.gaierror, "dns", "name resolution failed"),
        ErrorRule(u3.NewConnectionError, "refused", "connection failed"),  # refused, unreachable
        ErrorRule(u3.ConnectTimeoutError, "connect_timeout", "connect timeout"),
        ErrorRule(u3.ReadTimeoutError, "read_timeout", "read timeout"),
        ErrorRule(u3.TimeoutError, "read_timeout", "timeout"),
        ErrorRule(u3.SSLError, "tls", "TLS error"),
        ErrorRule(ssl.SSLError, "tls", "TLS error"),
        # urllib3 wraps http.client's and the socket's errors in ProtocolError. RemoteDisconnected
        # (closed before a status line) is a BadStatusLine, so it precedes HTTPException.
        ErrorRule(http.client.RemoteDisconnected, "closed", "connection closed"),
        ErrorRule(http.client.IncompleteRead, "closed", "connection closed mid-response"),
        ErrorRule(http.client.HTTPException, "protocol", "invalid HTTP response"),  # bad status line, ...
        ErrorRule(ConnectionRefusedError, "refused", "connection refused"),
        ErrorRule(ConnectionError, "closed", "connection reset"),  # reset, aborted, broken pipe
        ErrorRule(TimeoutError, "read_timeout", "timeout"),  # a send that timed out
        ErrorRule(u3.ProtocolError, "closed", "connection closed"),
        ErrorRule(u3.ClosedPoolError, "protocol", "transport is closed"),
        ErrorRule(u3.DecodeError, "protocol", "invalid content encoding"),
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
    """The default transport: one thread-safe urllib3 ``PoolManager``. Connections are kept
    alive and reused across threads; redirects are never followed; TLS certificates are
    verified. Every request holds its ``Timeout.total`` and its ``max_response_bytes``.

    Args:
        pool_maxsize: connections kept per host (default 64; give at least the number of
            threads that share the client, or urllib3 opens and discards extra ones).
        ca_certs: a CA bundle file to verify against instead of certifi's or the system's.
        proxy: ``"http://host:port"`` sends every request through that proxy (``https://``
            targets through a ``CONNECT`` tunnel; credentials in the URL are sent as
            ``Proxy-Authorization``).
        trust_env: without ``proxy``, honour the environment's ``HTTPS_PROXY``/
            ``HTTP_PROXY``/``ALL_PROXY`` and ``NO_PROXY`` (either case, read once per URL).
    """

    def __init__(
        self,
        *,
        pool_maxsize: int = DEFAULT_POOL_MAXSIZE,
        ca_certs: str | None = None,
        proxy: str | None = None,
        trust_env: bool = True,
    ) -> None:
        import urllib3

        self._kwargs: dict[str, Any] = dict(
            num_pools=8,
            maxsize=check_positive_int("pool_maxsize", pool_maxsize),
            block=False,
            retries=False,
            cert_reqs="CERT_REQUIRED",
        )
        if ca_certs:
            self._kwargs["ca_certs"] = ca_certs
        else:
            try:
                import certifi  # noqa: F401  (used by urllib3 when present)

                self._kwargs["ca_certs"] = certifi.where()
            except ImportError:
                pass
        self._proxy = None if proxy is None else check_proxy(proxy)
        if self._proxy is not None and self._proxy.startswith("socks"):
            socks_module()  # PySocks is needed: say so now
        self._trust_env = check_bool("trust_env", trust_env)
        self._pool = bind_manager(urllib3.PoolManager(**self._kwargs))
        self._proxies: dict[str, urllib3.PoolManager] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._routes: dict[str, tuple[Opener, str, DirectHost | None]] = {}
        self._direct: dict[tuple[str, str], DirectHost] = {}
        self._timeouts: dict[Timeout, urllib3.Timeout] = {}
        self._urllib3 = urllib3
        self._user_agent = f"python-urllib3/{getattr(urllib3, '__version__', '2')}"  # urllib3's own
        reinit_in_child(self, Urllib3Transport._after_fork)

    def _route(self, url: str) -> tuple[Opener, str, DirectHost | None]:
        """Where to send a request for ``url`` and its target, decided once per URL: the
        host's connection pool with the path (urllib3 re-parses and re-encodes a full URL
        on every request otherwise) and the host's direct path (:mod:`.direct`) when the
        request needs nothing of urllib3's, or a proxy's manager with the full URL."""
        route = self._routes.get(url)
        if route is None:
            proxy = proxy_for(url, self._proxy, self._trust_env)
            if proxy is not None:
                route = (self._proxy_manager(proxy), url, None)
            else:
                parts = urlsplit(url)
                target = parts.path or "/"
                if parts.query:
                    target += "?" + parts.query
                pool = self._pool.connection_from_url(url)
                route = (pool, target, self._direct_host(pool, parts.scheme, parts.hostname or "",
                                                         parts.port, target))
            if len(self._routes) >= 64:
                self._routes.clear()
            self._routes[url] = route
        return route

    def _direct_host(self, pool: Any, scheme: str, hostname: str, port: int | None,
                     target: str) -> DirectHost | None:
        """The direct path to the host, shared by its URLs; ``None`` for a target or host
        name that urllib3 would have to encode."""
        if not (target.isascii() and target.isprintable() and " " not in target and hostname.isascii()):
            return None
        host = f"[{hostname}]" if ":" in hostname else hostname
        if port is not None and port != (443 if scheme == "https" else 80):
            host = f"{host}:{port}"
        with self._lock:
            direct = self._direct.get((scheme, host))
            if direct is None:
                if self._closed:
                    raise TransportError("transport is closed", kind="protocol")
                direct = self._direct[(scheme, host)] = DirectHost(pool, host, self._kwargs["maxsize"])
            return direct

    def _proxy_manager(self, proxy: str) -> urllib3.PoolManager:
        with self._lock:
            manager = self._proxies.get(proxy)
            if manager is None:
                if self._closed:
                    raise TransportError("transport is closed", kind="protocol")
                manager = self._proxies[proxy] = bind_manager(proxy_manager(proxy, self._kwargs))
            return manager

    def _timeout(self, timeout: Timeout) -> urllib3.Timeout:
        converted = self._timeouts.get(timeout)
        if converted is None:
            converted = self._urllib3.Timeout(connect=timeout.connect, read=timeout.read)
            if len(self._timeouts) >= 64:
                self._timeouts.clear()
            self._timeouts[timeout] = converted
        return converted

    def send(self, request: HTTPRequest) -> HTTPResponse:
        """The whole response (see :meth:`Transport.send`)."""
        if self._closed:
            raise TransportError("transport is closed", kind="protocol")
        opener, target, direct = self._route(request.url)
        method = request.method
        if direct is not None and method in _METHODS:
            head = encode_head(method, target, direct.host, request.headers, request.body, self._user_agent)
            if head is not None:
                timeout = request.timeout
                deadline = None if timeout.total is None else Deadline(timeout.total, timeout.read)
                try:
                    with map_exceptions:
                        return direct.exchange(method, target, head, request.body, timeout, deadline,
                                               request.max_response_bytes)
                except TransportError as error:
                    raise deadline_passed(error, deadline) from None
        resp, _deadline, body = self._open(request, opener, target, stream=False)
        # urllib3's HTTPHeaderDict is case-insensitive: no copy needed
        return HTTPResponse(resp.status, resp.headers, body)

    def send_stream(self, request: HTTPRequest) -> StreamResponse:
        """The response once its head arrived; its body read as it arrives (bounded as
        :meth:`send`'s)."""
        if self._closed:
            raise TransportError("transport is closed", kind="protocol")
        opener, target, direct = self._route(request.url)
        if direct is not None and request.method in _METHODS:
            head = encode_head(request.method, target, direct.host, request.headers, request.body,
                               self._user_agent)
            if head is not None:
                return open_stream(direct, target, head, request, map_exceptions)
        resp, deadline, _body = self._open(request, opener, target, stream=True)
        return stream_response(resp.status, resp.headers, resp, request.max_response_bytes,
                               deadline, map_exceptions)

    def _open(self, request: HTTPRequest, opener: Opener, target: str, *,
              stream: bool) -> tuple[Any, Deadline | None, bytes]:
        """Send *request* through urllib3: its response, the request's deadline and the
        body read whole (``b""``, left unread, with *stream*)."""
        timeout, deadline = request.timeout, None
        if timeout.total is None:
            u3_timeout = self._timeout(timeout)
        else:
            total = timeout.total
            deadline = Deadline(total, timeout.read)
            u3_timeout = self._urllib3.Timeout(connect=min(timeout.connect, total),
                                               read=min(timeout.read, total))
        if deadline is not None:
            set_deadline(deadline)
        try:
            with map_exceptions:
                resp = opener.urlopen(
                    request.method, target, body=request.body, headers=request.headers,
                    redirect=False, retries=False, assert_same_host=False, timeout=u3_timeout,
                    preload_content=False, decode_content=False, release_conn=False,
                )
                body = b"" if stream else read_body(resp, request.max_response_bytes, deadline)
        except TransportError as error:
            raise deadline_passed(error, deadline) from None
        finally:
            if deadline is not None:
                set_deadline(None)
        return resp, deadline, body

    def close(self) -> None:
        """Close every pooled connection; later requests fail. Idempotent."""
        with self._lock:
            self._closed = True
            proxies = list(self._proxies.values())
            self._proxies.clear()
            direct = list(self._direct.values())
        self._routes.clear()
        for host in direct:
            host.close()
        self._pool.clear()
        for manager in proxies:
            manager.clear()

    def _after_fork(self) -> None:
        """In a forked child: the pools and the direct paths' idle connections become the
        child's own (see own_pools_in_child); the lock, maybe held at the fork, is new."""
        self._lock = threading.Lock()
        own_pools_in_child(self._pool)
        for host in list(self._direct.values()):
            host.forget_in_child()

    def __repr__(self) -> str:
        if self._proxy is None:
            return "Urllib3Transport()"
        parts = urlsplit(self._proxy)
        return f"Urllib3Transport(proxy='{parts.scheme}://{parts.hostname}:{parts.port}')"


def bind_manager(manager: M) -> M:
    """*manager* (a urllib3 ``PoolManager``, ``ProxyManager`` or ``SOCKSProxyManager``)
    made to build pools whose connections hold the thread's request deadline
    (:func:`~genesys_gateway.http.bounded.bounded_connection`)."""
    manager.pool_classes_by_scheme = {  # type: ignore[attr-defined]
        scheme: _bounded_pool(pool_class)
        for scheme, pool_class in manager.pool_classes_by_scheme.items()}  # type: ignore[attr-defined]
    return manager


@functools.cache
def _bounded_pool(pool_class: type) -> type:
    connection_class = bounded_connection(pool_class.ConnectionCls)  # type: ignore[attr-defined]
    return type(pool_class.__name__, (pool_class,), {"ConnectionCls": connection_class})
