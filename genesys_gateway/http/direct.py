"""The urllib3 transport's direct path: a request to a host reached without a proxy is
written in one ``sendall`` (its head encoded by :func:`~.wire.encode_head`) on a kept-alive
connection of urllib3's own making, and its response read by :mod:`.wire`, instead of going
through ``urlopen`` and urllib3's response object.

urllib3 still makes every connection (``pool._new_conn()`` and ``connect()``: its TLS
settings, certificate checks, socket options and connect errors), and the transport's
exception table still classifies every failure. What this path does itself is cheaper
than what it replaces, and holds the same bounds: the request's total deadline on connect,
send and every receive (:class:`~.bounded.DeadlineReader`), the read timeout, the decoded
size cap (:func:`~.bounded.capped_body`, gzip/deflate included). Idle connections wait in
a plain list per host (``list.append``/``pop`` need no lock), checked for a close by the
server before reuse as urllib3 checks its own; a connection with anything unread on it,
or whose response said ``Connection: close``, is closed, never reused.
"""

from __future__ import annotations

import errno
import io
import select
from typing import Any

from .bounded import Deadline, DeadlineReader, RequestDeadlineExceeded, capped_body
from .transport import HTTPResponse, Timeout
from .wire import BodyReader, read_head, reusable

__all__ = ["DirectHost", "Link"]

#: Request bodies up to this size go out with the head in one ``sendall``.
_JOINED = 64 * 1024
#: Send errors after which the response is still read (urllib3's ``_make_request``).
_ANSWERED = frozenset({errno.EPIPE, errno.ECONNRESET, errno.EPROTOTYPE})


class _KeptReader(DeadlineReader):
    """A connection's reader, shared by the buffered readers of its successive responses:
    their closing leaves it open; :meth:`release` closes it."""

    def close(self) -> None:
        pass

    def release(self) -> None:
        super().close()


def _readable(sock: Any) -> bool:
    """Whether *sock* has something to read (or was closed by its peer) right now."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    from urllib3.util.wait import wait_for_read

    return wait_for_read(sock, timeout=0.0)


class Link:
    """One connection: urllib3's connection object, its socket and its reader."""

    __slots__ = ("conn", "sock", "reader")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.sock = conn.sock
        self.reader = _KeptReader(self.sock, None)

    def close(self) -> None:
        self.reader.release()
        self.conn.close()


class DirectHost:
    """The direct path to one host: its urllib3 pool (which makes the connections), the
    ``Host`` header, and the idle connections (at most *maxsize*)."""

    __slots__ = ("pool", "host", "maxsize", "idle", "closed", "generation", "_read_timeout_error")

    def __init__(self, pool: Any, host: str, maxsize: int) -> None:
        from urllib3.exceptions import ReadTimeoutError

        self.pool = pool
        self.host = host
        self.maxsize = maxsize
        self.idle: list[Link] = []
        self.closed = False
        #: Counts the forks this process descends from (a connection opened before one
        #: is the parent's too: see :meth:`forget_in_child`).
        self.generation = 0
        self._read_timeout_error = ReadTimeoutError

    def exchange(self, method: str, target: str, head: bytes, body: bytes | None, timeout: Timeout,
                 deadline: Deadline | None, limit: int) -> HTTPResponse:
        """Send the request whose encoded *head* is given and read its response (at most
        *limit* body bytes) within *timeout* and *deadline*. Raises the libraries'
        exceptions (the caller maps them)."""
        link, version, status, headers, framed = self.request(method, target, head, body, timeout, deadline)
        try:
            data = capped_body(headers, limit, deadline, framed.read)
        except BaseException as error:
            raise self.failed(link, error, target, timeout)
        self.release(link, framed.whole and reusable(version, headers))
        return HTTPResponse(status, headers, data)

    def request(self, method: str, target: str, head: bytes, body: bytes | None, timeout: Timeout,
                deadline: Deadline | None) -> tuple[Link, int, int, dict[str, str], BodyReader]:
        """Send the request whose encoded *head* is given and read the response's head
        within *timeout* and *deadline*: the connection (the caller gives it back with
        :meth:`release`, or closes it), the HTTP version, the status, the headers and the
        body's reader. Raises the libraries' exceptions, the connection closed."""
        link = self._checkout()
        try:
            if link is None:
                link = self._connect(timeout, deadline)
            sock = link.sock
            read = timeout.read
            sock.settimeout(read if deadline is None else min(read, deadline.left()))
            try:
                if body is not None and len(body) <= _JOINED:
                    sock.sendall(head + body)
                else:
                    sock.sendall(head)
                    if body:
                        sock.sendall(body)
            except OSError as error:
                # as urllib3: a server may answer (413, 401) and close before reading the
                # whole body; the answer is read, not the failed send's error
                if not isinstance(error, BrokenPipeError) and error.errno not in _ANSWERED:
                    raise
            reader = link.reader
            reader.start(deadline)
            fp = io.BufferedReader(reader)
            version, status, headers = read_head(fp)
            return link, version, status, headers, BodyReader(fp, method, status, headers)
        except BaseException as error:
            if link is None:
                raise
            raise self.failed(link, error, target, timeout)

    def failed(self, link: Link, error: BaseException, target: str, timeout: Timeout) -> BaseException:
        """*link* closed; the exception to raise for *error* (a socket's read timeout as
        urllib3's ``ReadTimeoutError``, which the exception table classifies)."""
        link.close()
        return self.converted(error, target, timeout)

    def converted(self, error: BaseException, target: str, timeout: Timeout) -> BaseException:
        """The exception to raise for *error*: a socket's read timeout becomes urllib3's
        ``ReadTimeoutError`` (as urllib3's path raises it); any other is itself."""
        if isinstance(error, TimeoutError) and not isinstance(error, RequestDeadlineExceeded):
            timed_out = self._read_timeout_error(self.pool, target, f"Read timed out. (read timeout={timeout.read})")
            timed_out.__cause__ = error
            return timed_out
        return error

    def release(self, link: Link, reuse: bool) -> None:
        """Give back *link*, its response read: kept for the next request if *reuse*
        (its body read whole on a connection that stays open), else closed."""
        if reuse:
            self._checkin(link)
        else:
            link.close()

    def _connect(self, timeout: Timeout, deadline: Deadline | None) -> Link:
        conn = self.pool._new_conn()
        conn.timeout = timeout.connect if deadline is None else min(timeout.connect, deadline.left())
        try:
            conn.connect()
        except BaseException:
            conn.close()
            raise
        return Link(conn)

    def _checkout(self) -> Link | None:
        """An idle connection the server has not closed, or ``None``."""
        idle = self.idle
        while idle:
            try:
                link = idle.pop()
            except IndexError:  # another thread took the last one
                return None
            if _readable(link.sock):  # closed by the server (or unasked-for bytes): discarded
                link.close()
                continue
            return link
        return None

    def _checkin(self, link: Link) -> None:
        if self.closed or len(self.idle) >= self.maxsize:
            link.close()
            return
        self.idle.append(link)
        if self.closed:  # close() ran meanwhile: it may have missed this one
            self.drain()

    def close(self) -> None:
        """Close the idle connections, and any connection given back from now on."""
        self.closed = True
        self.drain()

    def drain(self) -> None:
        """Close the idle connections."""
        idle = self.idle
        while idle:
            try:
                link = idle.pop()
            except IndexError:
                return
            link.close()

    def forget_in_child(self) -> None:
        """In a forked child: the parent's idle connections closed in this process only
        (closing a descriptor sends nothing while the parent holds the socket)."""
        self.generation += 1
        inherited, self.idle = self.idle, []
        for link in inherited:
            link.close()
