"""MockTransport: a transport whose responses come from a function, for unit tests."""

from __future__ import annotations

import json
import threading
from typing import Any, Callable, Mapping

from ..errors import TransportError
from ..http.transport import HTTPRequest, HTTPResponse

__all__ = ["MockTransport", "json_response"]


def json_response(status: int, data: Any, headers: Mapping[str, str] | None = None) -> HTTPResponse:
    """An HTTPResponse with a JSON body."""
    all_headers = {"content-type": "application/json"}
    all_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    return HTTPResponse(status, all_headers, json.dumps(data).encode())


class MockTransport:
    """Calls ``handler(request) -> HTTPResponse`` for each request and records the requests.

    The handler may raise :class:`~genesys_gateway.errors.TransportError` to simulate a
    connection failure; any other exception it raises is turned into one as well, so a
    buggy handler shows up as a transport failure, not as an escaped exception.
    """

    def __init__(self, handler: Callable[[HTTPRequest], HTTPResponse]) -> None:
        self.handler = handler
        self.requests: list[HTTPRequest] = []
        self._lock = threading.Lock()
        self.closed = False

    def send(self, request: HTTPRequest) -> HTTPResponse:
        with self._lock:
            self.requests.append(request)
        try:
            response = self.handler(request)
        except TransportError:
            raise
        except Exception as e:  # a handler bug: report it as a transport failure
            raise TransportError(f"mock handler raised {type(e).__name__}: {e}", kind="protocol") from e
        if not isinstance(response, HTTPResponse):
            raise TransportError("mock handler must return an HTTPResponse", kind="protocol")
        return response

    def close(self) -> None:
        self.closed = True

    def __repr__(self) -> str:
        return f"MockTransport({len(self.requests)} requests)"
