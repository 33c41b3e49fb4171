"""A streamed chat completion read off the wire: server-sent events parsed
(:class:`~genesys_gateway.http.sse.SSEParser`) and their chunks merged
(:class:`~genesys_gateway.deltas.ChunkMerger`) as they arrive."""

from __future__ import annotations

from typing import Generator

from .deltas import ChunkMerger
from .errors import TransportError
from .http.sse import SSEParser
from .http.transport import StreamResponse
from .models import ChatResponse, parse_chat_response

__all__ = ["read_stream"]


def read_stream(response: StreamResponse) -> Generator[str, None, ChatResponse]:
    """Yield the first choice's text of *response* as it arrives; return the merged
    response. A stream that stops before ``data: [DONE]`` or a finish reason is a
    ``TransportError`` of kind ``"closed"``; a malformed event a ``ResponseFormatError``.
    A server that ignored ``"stream": true`` (a JSON body) is read whole, its text yielded
    once."""
    content_type = (response.header("content-type") or "").lower()
    if not content_type.startswith("text/event-stream"):
        whole = parse_chat_response(response.read())
        if isinstance(whole.message.content, str) and whole.message.content:
            yield whole.message.content
        return whole
    parser = SSEParser()
    merger = ChunkMerger()
    feed = merger.feed_data
    for chunk in response.chunks:
        for event in parser.feed(chunk):
            text = feed(event.data)
            if text:
                yield text
    parser.close()
    if not merger.ended:
        raise TransportError("the stream ended before [DONE] or a finish reason", kind="closed")
    return merger.response()
