"""Streamed responses on the urllib3 transport's direct path (:mod:`.direct`): the request
written as ``send`` writes it, the response's head read by :mod:`.wire`, and its body
handed over as it arrives (:meth:`~.wire.BodyReader.read1`: what one receive gives, never
held back to fill a buffer or finish an HTTP chunk), with the bounds of urllib3's path
(:mod:`.streaming`: the total deadline, the read timeout, the decoded size cap,
gzip/deflate).

The connection goes back to the host's idle list only once the body was read to its
framed end on a connection that stays open, in the process that opened it (a stream
carried across a fork is the parent's connection too); a stream closed half-read, or
failed, closes its connection.
"""

from __future__ import annotations

from typing import Any

from ..errors import TransportError
from .bounded import Deadline, deadline_passed
from .direct import DirectHost
from .streaming import iter_pieces, stream_pieces
from .transport import HTTPRequest, StreamResponse
from .wire import reusable

__all__ = ["open_stream"]


def open_stream(host: DirectHost, target: str, head: bytes, request: HTTPRequest,
                mapper: Any) -> StreamResponse:
    """Send *request* (its encoded *head* given) to *host* and return once the response's
    head arrived. Failures raise the TransportError *mapper* (the transport's
    ``ExceptionMap``) gives, ``"deadline"`` once the request's budget is spent."""
    timeout = request.timeout
    deadline = None if timeout.total is None else Deadline(timeout.total, timeout.read)
    method = request.method
    try:
        with mapper:
            link, version, status, headers, framed = host.request(method, target, head, request.body,
                                                                  timeout, deadline)
    except TransportError as error:
        raise deadline_passed(error, deadline) from None
    generation = host.generation

    def read(n: int) -> bytes:
        try:
            return framed.read1(n)
        except BaseException as error:
            raise host.converted(error, target, timeout)

    def release() -> None:
        host.release(link, framed.whole and reusable(version, headers) and host.generation == generation)

    pieces = iter_pieces(headers, read, request.max_response_bytes, deadline)
    return stream_pieces(status, headers, pieces, deadline, mapper, release, link.close)
