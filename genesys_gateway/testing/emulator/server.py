"""``GatewayEmulator``: a real loopback HTTP/1.1 server that behaves like a Genesys Cloud LLM
Gateway (OpenAI-compatible chat completions) plus its OAuth client-credentials token endpoint.

Use it as a context manager::

    from genesys_gateway.testing import GatewayEmulator, reply, tool_call

    with GatewayEmulator(client_id="id", client_secret="secret") as em:
        em.script(reply(tool_calls=[tool_call("get_weather", {"location": "London"})]),
                  reply("It is sunny."))
        em.fail(503)                      # the next chat request gets a 503
        ...  # point a client at em.url / em.token_url
        assert em.chat_requests[-1]["messages"][-1]["role"] == "tool"

Every chat request goes through, in order: injected faults (infrastructure), body size (413),
bearer-token check (401), the rate limit per token (429, see ``limit_rate``), strict request
validation (400), then the reply: the next scripted item, else ``responder(body)``, else
an echo of the last user message.
"""

from __future__ import annotations

import collections
import functools
import json
import logging
import os
import threading
import time
import uuid
from typing import Any, Callable, Iterable, Mapping, Optional, Union

from ...constants import DEFAULT_MODEL, DEFAULT_PATH, MAX_REQUEST_BODY_BYTES
from .auth import TokenBook, token_response
from .controls import ENDPOINTS, FaultControls
from .faults import (
    STREAM_FAULTS,
    Fault,
    RecordedRequest,
    default_fault_body,
    echo_body,
    encode_body,
    genesys_error,
    merge_headers,
    write_stream_fault,
)
from .http_server import EmulatorServer, Incoming, Outgoing
from .rate_limit import RequestRateLimit
from .replies import (
    Responder,
    ScriptItem,
    coerce_reply,
    echo_reply,
    load_script,
    render_completion,
)
from .streaming import StreamHooks, completion_frames, write_frames
from .validation import RequestInvalid, parse_json_object, validate_chat_request

__all__ = ["GatewayEmulator"]

logger = logging.getLogger("genesys_gateway.testing")

_JSON = "application/json"


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class GatewayEmulator(FaultControls):
    """A test double of the Genesys Cloud LLM Gateway and its token endpoint.

    Args:
        client_id: the client id the token endpoint accepts; ``None`` accepts any.
        client_secret: the client secret the token endpoint accepts; ``None`` accepts any.
        token_ttl: ``expires_in`` of issued tokens, in seconds (also settable later).
        path: the chat-completions path.
        token_path: the token endpoint's path.
        host: the address to listen on (default loopback).
        port: the port to listen on; 0 picks a free port.
        model: the model the emulator advertises (replies report the request's model).
        responder: ``f(request_body) -> reply spec | raw completion | str`` used when no
            scripted reply is queued (default: echo the last user message).
        clock: monotonic clock for token expiry (inject one in tests).
        max_body_bytes: larger request bodies get 413 (Genesys documents 512,000 bytes).
        stream_chunk_chars: a request with ``"stream": true`` is answered with server-sent
            ``chat.completion.chunk`` events, text and tool-call arguments cut into pieces
            of this many characters (default 4096: a short answer is one text delta; ``stream_hooks`` holds, cuts or corrupts the stream).
    """

    def __init__(
        self,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_ttl: float = 3600,
        path: str = DEFAULT_PATH,
        token_path: str = "/oauth/token",
        host: str = "127.0.0.1",
        port: int = 0,
        model: str = DEFAULT_MODEL,
        responder: Responder | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_body_bytes: int = MAX_REQUEST_BODY_BYTES,
        stream_chunk_chars: int = 4096,
    ) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.token_ttl = token_ttl
        self.path = path
        self.token_path = token_path
        self.host = host
        self.port = port
        self.model = model
        self.responder = responder
        self.max_body_bytes = max_body_bytes
        self.stream_chunk_chars = stream_chunk_chars
        self.stream_hooks = StreamHooks()
        self._lock = threading.Lock()
        self._tokens = TokenBook(clock)
        self._rate = RequestRateLimit(clock)
        self._script: collections.deque[Union[dict[str, Any], Responder]] = collections.deque()
        self._faults: dict[str, collections.deque[Fault]] = {e: collections.deque() for e in ENDPOINTS}
        self._requests: list[RecordedRequest] = []
        self._chat_requests: list[dict[str, Any]] = []
        self._token_requests = 0
        self._conn_base = 0
        self._server: EmulatorServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> "GatewayEmulator":
        """Bind and serve in a background daemon thread (no-op when already running)."""
        if self._thread is not None:
            return self
        self._stopping.clear()
        server = EmulatorServer((self.host, self.port), self._dispatch)
        self.port = server.server_address[1]
        self._server, self._conn_base = server, 0
        self._thread = threading.Thread(target=server.serve, name=f"GatewayEmulator-{self.port}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, close the listening socket and every open connection, join threads."""
        thread, server = self._thread, self._server
        if thread is None or server is None:
            return
        self._stopping.set()  # interrupts delay faults
        server.stop()
        thread.join()
        server.server_close()
        alive = server.close_connections()
        self._thread = None
        if alive:
            logger.warning("GatewayEmulator: %d connection threads did not stop", len(alive))

    def __enter__(self) -> "GatewayEmulator":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = self.url if self._thread is not None else "stopped"
        return f"<GatewayEmulator {state}>"

    @classmethod
    def from_script_file(cls, path: str | os.PathLike[str], **kwargs: Any) -> "GatewayEmulator":
        """An emulator whose script is loaded from a JSON file (see :func:`load_script`)."""
        em = cls(**kwargs)
        em.script(*load_script(path))
        return em

    # -- addresses -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:PORT`` (what a client takes as ``base_url``)."""
        if self._server is None:
            raise RuntimeError("GatewayEmulator is not started; call start() or use `with`")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def token_url(self) -> str:
        """The token endpoint's URL (what ``ClientCredentials`` takes as ``token_url``)."""
        return self.url + self.token_path

    @property
    def chat_url(self) -> str:
        """The chat-completions endpoint's URL."""
        return self.url + self.path

    # -- scripting and faults ------------------------------------------------------------

    def script(self, *items: ScriptItem) -> "GatewayEmulator":
        """Queue replies, consumed one per valid chat request (FIFO).

        An item is a reply spec (see :func:`reply`), a raw chat completion (a dict with
        ``"choices"``, sent as is), a string (the content) or ``f(request_body)`` returning one.
        """
        prepared = [item if callable(item) else coerce_reply(item) for item in items]
        with self._lock:
            self._script.extend(prepared)
        return self

    @property
    def pending_replies(self) -> int:
        """How many scripted replies are not yet consumed."""
        return len(self._script)

    # -- tokens --------------------------------------------------------------------------

    def issue_token(self, ttl: float | None = None) -> str:
        """Mint a valid access token directly (for clients configured with a fixed token)."""
        return self._tokens.issue(self.token_ttl if ttl is None else ttl)

    def revoke_tokens(self) -> None:
        """Invalidate every issued token: the next chat request with one gets 401."""
        self._tokens.revoke_all()

    # -- request log ---------------------------------------------------------------------

    def reset(self) -> None:
        """Clear scripted replies, faults, the request log and the counters (tokens stay valid)."""
        with self._lock:
            self._script.clear()
            for queue in self._faults.values():
                queue.clear()
            self._requests = []
            self._chat_requests = []
            self._token_requests = 0
            self._rate.refused = 0
            self._conn_base = self._server.connections_opened if self._server else 0

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received since start (or the last reset), oldest first."""
        return list(self._requests)

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """Parsed bodies of the chat requests that passed auth and validation."""
        return list(self._chat_requests)

    @property
    def token_requests(self) -> int:
        """How many requests reached the token endpoint (including refused ones)."""
        return self._token_requests

    @property
    def connections_opened(self) -> int:
        """How many TCP connections were accepted since start (or the last reset)."""
        return (self._server.connections_opened if self._server else 0) - self._conn_base

    # -- request handling (server threads) -----------------------------------------------

    def _dispatch(self, inc: Incoming) -> Outgoing:
        ctx = str(uuid.uuid4())
        route = inc.path.split("?", 1)[0]
        endpoint = "chat" if route == self.path else "token" if route == self.token_path else "other"
        parsed: Optional[dict[str, Any]] = None
        fault: Optional[Fault] = None
        if endpoint == "other":
            out = self._error(404, f"Resource not found: {inc.method} {route}", ctx)
        elif inc.method != "POST":
            out = self._error(405, f"Method {inc.method} is not allowed; use POST", ctx,
                              headers=[("Allow", "POST")])
        else:
            if endpoint == "token":
                with self._lock:
                    self._token_requests += 1
            queue = self._faults[endpoint]
            with self._lock:
                fault = queue.popleft() if queue else None
            faulted = self._apply_fault(fault, endpoint, ctx, inc) if fault else None
            if faulted is not None:
                out = faulted
            elif endpoint == "chat":
                out, parsed = self._chat(inc, ctx)
            else:
                out = self._token(inc, ctx)
        if parsed is None and endpoint != "token" and inc.body[:1] == b"{":
            try:
                parsed = json.loads(inc.body)
            except ValueError:
                parsed = None
        record = RecordedRequest(
            method=inc.method, path=inc.path, headers=inc.headers, body=inc.body, json=parsed,
            endpoint=endpoint, status=None if out.drop else out.status,
            connection_id=inc.connection_id, correlation_id=ctx,
            fault=fault.kind if fault else None,
        )
        with self._lock:
            self._requests.append(record)
        return out

    def _respond(self, status: int, body: bytes, ctx: str, content_type: str = _JSON,
                 headers: Iterable[tuple[str, Optional[str]]] = ()) -> Outgoing:
        base = [("Content-Type", content_type), ("ININ-Correlation-Id", ctx)]
        return Outgoing(status, body, tuple(merge_headers(base, tuple(headers))))

    def _error(self, status: int, message: str, ctx: str,
               headers: Iterable[tuple[str, Optional[str]]] = ()) -> Outgoing:
        return self._respond(status, _dumps(genesys_error(status, message, ctx)), ctx, headers=headers)

    def _apply_fault(self, fault: Fault, endpoint: str, ctx: str, inc: Incoming) -> Optional[Outgoing]:
        if fault.kind == "echo":
            body = echo_body(fault.status, endpoint, ctx, inc.headers.get("authorization", ""), fault.content_type)
            return self._respond(fault.status, encode_body(body), ctx, fault.content_type)
        if fault.kind == "drop":
            return Outgoing(drop=True)
        if fault.kind in STREAM_FAULTS:
            return Outgoing(fault.status or 200, writer=functools.partial(
                write_stream_fault, fault, self._stopping))
        if fault.kind == "delay":
            self._stopping.wait(fault.seconds)
            return None  # then answer normally
        if fault.kind == "garbage":
            return self._respond(fault.status, encode_body(fault.body), ctx, fault.content_type)
        defaults = [("Retry-After", "1")] if fault.status == 429 else []
        body = fault.body if fault.body is not None else default_fault_body(fault.status, endpoint, ctx)
        return self._respond(fault.status, encode_body(body), ctx,
                             headers=merge_headers(defaults, fault.headers))

    def _chat(self, inc: Incoming, ctx: str) -> tuple[Outgoing, Optional[dict[str, Any]]]:
        if inc.body_too_large or len(inc.body) > self.max_body_bytes:
            return self._error(413, f"The request body exceeds {self.max_body_bytes} bytes", ctx), None
        auth = inc.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return self._error(401, "No authentication bearer token specified in authorization header.", ctx), None
        if not self._tokens.is_valid(token.strip()):
            return self._error(401, "Invalid login credentials: the token is unknown or expired.", ctx), None
        wait = self._rate.check(token.strip())
        if wait is not None:
            return self._error(429, f"Rate limit exceeded the maximum. Retry the request in [{wait}] seconds",
                               ctx, headers=[("Retry-After", str(wait))]), None
        ctype = inc.headers.get("content-type", _JSON).split(";", 1)[0].strip().lower()
        if ctype != _JSON and not ctype.endswith("+json"):
            return self._error(415, f"Content-Type {ctype!r} is not supported; send application/json", ctx), None
        body: Optional[dict[str, Any]] = None
        try:
            body = parse_json_object(inc.body)
            validate_chat_request(body)
        except RequestInvalid as exc:
            return self._error(400, f"Invalid request: {exc}", ctx), body
        with self._lock:
            self._chat_requests.append(body)
            item = self._script.popleft() if self._script else None
        result: Union[Mapping[str, Any], str]
        try:
            if item is None:
                result = self.responder(body) if self.responder is not None else echo_reply(body)
            else:
                result = item(body) if callable(item) else item
            completion = render_completion(coerce_reply(result), body)
            if body.get("stream") is True:
                return self._stream(completion, body, ctx), body
            payload = _dumps(completion)
        except Exception as exc:  # a test's responder failed: make it visible, keep serving
            logger.debug("GatewayEmulator responder failed", exc_info=True)
            return self._error(500, f"Emulator responder raised {type(exc).__name__}: {exc}", ctx), body
        return self._respond(200, payload, ctx), body

    def _stream(self, completion: dict[str, Any], body: dict[str, Any], ctx: str) -> Outgoing:
        options = body.get("stream_options") or {}
        frames = completion_frames(completion, self.stream_chunk_chars,
                                   options.get("include_usage") is True, self.stream_hooks.quirks)
        head = ("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                f"ININ-Correlation-Id: {ctx}\r\nTransfer-Encoding: chunked\r\n")
        return Outgoing(200, writer=functools.partial(write_frames, head.encode("latin-1"), frames,
                                                      self.stream_hooks, self._stopping))

    def _token(self, inc: Incoming, ctx: str) -> Outgoing:
        status, body, headers = token_response(inc, self.client_id, self._client_secret,
                                               self.max_body_bytes, self.token_ttl, self.issue_token)
        return self._respond(status, _dumps(body), ctx, headers=headers)
