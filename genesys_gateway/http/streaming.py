"""Response bodies read as they arrive, for both transports' ``send_stream``: the same
bounds as a whole body (:mod:`genesys_gateway.http.bounded`: the request's total deadline,
the decoded size cap, gzip/deflate decoded incrementally) on a body handed over piece by
piece, and a :class:`~genesys_gateway.http.transport.StreamResponse` whose ``close()``
discards a connection left half-read.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping

from ..errors import TransportError
from .bounded import CHUNK, Deadline, Decoder, RawResponse, content_encodings, deadline_passed, too_large
from .transport import StreamResponse

__all__ = ["iter_body", "iter_pieces", "stream_pieces", "stream_response"]


def iter_pieces(headers: Mapping[str, str], read: Callable[[int], bytes], limit: int,
                deadline: Deadline | None) -> Iterator[bytes]:
    """The decoded body of a response with *headers*, in pieces as ``read(n)`` gives them
    (what one receive gives, up to *n* raw bytes; ``b""`` at the end), at most *limit*
    bytes in all (else ``ResponseFormatError``), with the request's *deadline*."""
    encodings = content_encodings(headers["content-encoding"]) if "content-encoding" in headers else None
    decoder = Decoder(encodings) if encodings else None
    size = received = 0
    parts: list[bytes] = []
    while True:
        if deadline is not None:
            deadline.left()
        data = read(CHUNK)
        received += len(data)
        if decoder is not None:
            size += decoder.decode(data, limit - size + 1, parts)
        else:
            size += len(data)
            if data:
                parts.append(data)
        if size > limit or received > limit:
            raise too_large(limit)
        yield from parts
        parts.clear()
        if not data:
            return


def iter_body(raw: RawResponse, limit: int, deadline: Deadline | None) -> Iterator[bytes]:
    """:func:`iter_pieces` of a library's response *raw* (its ``read1``: what one receive
    gives, not a full buffer). The caller closes *raw* on failure or early exit."""
    read = getattr(raw, "read1", None) or raw.read
    return iter_pieces(raw.headers, lambda n: read(n, decode_content=False), limit, deadline)


def stream_pieces(status: int, headers: Mapping[str, str], pieces: Iterator[bytes],
                  deadline: Deadline | None, mapper: Any, release: Callable[[], None],
                  discard: Callable[[], None]) -> StreamResponse:
    """A :class:`~genesys_gateway.http.transport.StreamResponse` over *pieces*: a library
    exception raised while reading becomes the TransportError *mapper* (a transport's
    ``ExceptionMap``) gives (``"deadline"`` when the budget ran out), and any failure
    calls *discard* (the connection is dropped). ``close()`` calls *release* once the
    pieces ran out, *discard* otherwise; each is called at most once."""
    state = {"done": False, "open": True}

    def chunks() -> Iterator[bytes]:
        while True:
            try:
                with mapper:
                    piece = next(pieces, None)
            except TransportError as error:
                drop()
                raise deadline_passed(error, deadline) from None
            except BaseException:
                drop()
                raise
            if piece is None:
                state["done"] = True
                return
            yield piece

    def drop() -> None:
        state["done"] = False
        if state["open"]:
            state["open"] = False
            discard()

    def close() -> None:
        if not state["done"]:
            drop()
        elif state["open"]:
            state["open"] = False
            release()

    return StreamResponse(status, headers, chunks(), close)


def stream_response(status: int, headers: Mapping[str, str], raw: RawResponse, limit: int,
                    deadline: Deadline | None, mapper: Any) -> StreamResponse:
    """A :class:`~genesys_gateway.http.transport.StreamResponse` over a library's response
    *raw*: its chunks come from :func:`iter_body` (see :func:`stream_pieces`)."""

    def discard() -> None:
        raw.close()
        raw.release_conn()

    return stream_pieces(status, headers, iter_body(raw, limit, deadline), deadline, mapper,
                         raw.release_conn, discard)
