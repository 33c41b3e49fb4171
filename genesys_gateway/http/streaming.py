"""Response bodies read as they arrive, for both transports' ``send_stream``: the same
bounds as a whole body (:mod:`genesys_gateway.http.bounded`: the request's total deadline,
the decoded size cap, gzip/deflate decoded incrementally) on a body handed over piece by
piece, and a :class:`~genesys_gateway.http.transport.StreamResponse` whose ``close()``
discards a connection left half-read.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from ..errors import TransportError
from .bounded import CHUNK, Deadline, Decoder, RawResponse, content_encodings, deadline_passed, too_large
from .transport import StreamResponse

__all__ = ["iter_body", "stream_response"]


def iter_body(raw: RawResponse, limit: int, deadline: Deadline | None) -> Iterator[bytes]:
    """The decoded body of *raw* in pieces as they arrive (``read1``: what one receive
    gives, not a full buffer), at most *limit* bytes in all (else ``ResponseFormatError``),
    with the request's *deadline*. The caller closes *raw* on failure or early exit."""
    headers = raw.headers
    encodings = content_encodings(headers["content-encoding"]) if "content-encoding" in headers else None
    decoder = Decoder(encodings) if encodings else None
    read = getattr(raw, "read1", None) or raw.read
    size = received = 0
    parts: list[bytes] = []
    while True:
        if deadline is not None:
            deadline.left()
        data = read(CHUNK, decode_content=False)
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


def stream_response(status: int, headers: Mapping[str, str], raw: RawResponse, limit: int,
                    deadline: Deadline | None, mapper: Any) -> StreamResponse:
    """A :class:`~genesys_gateway.http.transport.StreamResponse` over *raw*: its chunks
    come from :func:`iter_body`, a library exception raised while reading becomes the
    TransportError *mapper* (a transport's ``ExceptionMap``) gives (``"deadline"`` when the
    budget ran out), and any failure discards the connection."""
    state = {"done": False}

    def chunks() -> Iterator[bytes]:
        pieces = iter_body(raw, limit, deadline)
        while True:
            try:
                with mapper:
                    piece = next(pieces, None)
            except TransportError as error:
                discard()
                raise deadline_passed(error, deadline) from None
            except BaseException:
                discard()
                raise
            if piece is None:
                state["done"] = True
                return
            yield piece

    def discard() -> None:
        state["done"] = False
        raw.close()
        raw.release_conn()

    def close() -> None:
        if state["done"]:
            raw.release_conn()
        else:
            discard()

    return StreamResponse(status, headers, chunks(), close)
