"""MockTransport: a transport whose responses come from a function, for unit tests."""

from __future__ import annotations

import json
import threading
from typing import Any, Callable, Iterable, Iterator, Mapping, Union

from ..errors import TransportError
from ..http.transport import HTTPRequest, HTTPResponse, StreamResponse

__all__ = ["MockTransport", "json_response", "sse_response"]

#: What a handler returns: a whole response, or (for ``send_stream``) a status, headers
#: and the body's pieces as an iterable (each piece delivered as one chunk).
Answer = Union[HTTPResponse, "tuple[int, Mapping[str, str], Iterable[bytes]]"]


def sse_response(frames: Iterable[bytes], status: int = 200) -> tuple[int, Mapping[str, str], Iterable[bytes]]:
    """A streamed answer for a handler: ``text/event-stream`` with *frames* as its chunks."""
    return status, {"content-type": "text/event-stream"}, frames


def json_response(status: int, data: Any, headers: Mapping[str, str] | None = None) -> HTTPResponse:
    """An HTTPResponse with a JSON body."""
    all_headers = {"content-type": "application/json"}
    all_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    return HTTPResponse(status, all_headers, json.dumps(data).encode())


class MockTransport:
    """Calls ``handler(request) -> HTTPResponse`` for each request and records the requests.

    ``send_stream`` hands over a whole ``HTTPResponse``'s body as one chunk, or the pieces
    of a ``(status, headers, iterable of bytes)`` answer (:func:`sse_response`) one by one,
    capped at the request's ``max_response_bytes``; ``closed_streams`` counts the streamed
    responses closed before their end.

    The handler may raise :class:`~genesys_gateway.errors.TransportError` to simulate a
    connection failure; any other exception it raises is turned into one as well, so a
    buggy handler shows up as a transport failure, not as an escaped exception.

    Args:
        handler: called with each :class:`~genesys_gateway.HTTPRequest`; returns an
            :class:`~genesys_gateway.HTTPResponse` (:func:`json_response` makes one) or,
            for ``send_stream``, a ``(status, headers, pieces)`` answer.

    Attributes:
        handler: the handler.
        requests: every request received, in order.
        closed: whether :meth:`close` was called.
        closed_streams: streamed responses closed before their end.
    """

    def __init__(self, handler: Callable[[HTTPRequest], Answer]) -> None:
        self.handler = handler
        self.requests: list[HTTPRequest] = []
        self._lock = threading.Lock()
        self.closed = False

    closed_streams = 0

    def send(self, request: HTTPRequest) -> HTTPResponse:
        """Record ``request`` and return the handler's response (which must be a whole
        ``HTTPResponse``)."""
        response = self._answer(request)
        if not isinstance(response, HTTPResponse):
            raise TransportError("mock handler must return an HTTPResponse", kind="protocol")
        return response

    def send_stream(self, request: HTTPRequest) -> StreamResponse:
        """Record ``request`` and stream the handler's answer, piece by piece."""
        answer = self._answer(request)
        if isinstance(answer, HTTPResponse):
            status, headers, pieces = answer.status, answer.headers, [answer.body]
        else:
            status, headers, pieces = answer
        state = {"done": False}
        limit = request.max_response_bytes

        def chunks() -> Iterator[bytes]:
            size = 0
            for piece in pieces:
                size += len(piece)
                if size > limit:
                    from ..http.bounded import too_large

                    raise too_large(limit)
                yield piece
            state["done"] = True

        def close() -> None:
            if not state["done"]:
                with self._lock:
                    self.closed_streams += 1

        return StreamResponse(status, headers, chunks(), close)

    def _answer(self, request: HTTPRequest) -> Any:
        with self._lock:
            self.requests.append(request)
        try:
            response = self.handler(request)
        except TransportError:
            raise
        except Exception as e:  # a handler bug: report it as a transport failure
            raise TransportError(f"mock handler raised {type(e).__name__}: {e}", kind="protocol") from e
        return response

    def close(self) -> None:
        """Mark the transport closed (requests are still answered)."""
        self.closed = True

    def __repr__(self) -> str:
        return f"MockTransport({len(self.requests)} requests)"
