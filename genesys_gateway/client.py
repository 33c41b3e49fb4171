"""GatewayClient: configuration, ``complete()``, ``run()``, ``conversation()``.

The client composes the other concerns: auth -> retry -> transport for one model call,
and the tool-calling loop (``conversation.py``) on top of it.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections import abc
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import attrs

from . import telemetry
from .http.auth import Auth, ClientCredentials, HTTPContext
from .constants import (
    DEFAULT_MAX_ITERATIONS,
    DEFAULT_MAX_REPEATED_CALLS,
    DEFAULT_MAX_TOOL_RESULT_CHARS,
    DEFAULT_MODEL,
    DEFAULT_PATH,
    DEFAULT_TOOL_TIMEOUT,
    DEFAULT_TOOL_WORKERS,
    USER_AGENT,
)
from .errors import ConfigurationError, GatewayError
from .models import ChatResponse, Message, message_to_dict, parse_chat_response
from .regions import Region, resolve_region
from .http.error_responses import api_error
from .http.retry import ExponentialBackoff, NoRetry, RetryPolicy, call_with_retry
from .http.transport import HTTPRequest, Timeout, Transport, check_url
from .http.urllib3_transport import Urllib3Transport

if TYPE_CHECKING:
    from .conversation import Conversation, RunResult
    from .tools.executor import ToolExecutor
    from .tools.registry import ToolRegistry

__all__ = ["GatewayClient"]


class GatewayClient:
    """A synchronous client for the Genesys Cloud LLM Gateway (or any OpenAI-compatible
    chat-completions endpoint). Thread-safe: share one per process.

    Give ``region`` (``"us-east-1"``, ``"mypurecloud.com"`` or an API URL) or ``base_url``.
    Extra keyword arguments (``temperature=0.2``, ``max_tokens=...``) are model parameters
    sent with every call unless a call overrides them.
    """

    def __init__(
        self,
        *,
        region: str | None = None,
        base_url: str | None = None,
        auth: Auth | None = None,
        tools: "ToolRegistry | None" = None,
        model: str = DEFAULT_MODEL,
        path: str = DEFAULT_PATH,
        transport: Transport | None = None,
        retry: RetryPolicy | None = None,
        timeout: Timeout | float | None = None,
        max_iterations: int = DEFAULT_MAX_ITERATIONS,
        tool_timeout: float = DEFAULT_TOOL_TIMEOUT,
        tool_workers: int = DEFAULT_TOOL_WORKERS,
        max_tool_result_chars: int = DEFAULT_MAX_TOOL_RESULT_CHARS,
        max_repeated_calls: int = DEFAULT_MAX_REPEATED_CALLS,
        allow_insecure_http: bool = False,
        audit_payloads: bool = False,
        clock: Callable[[], float] = time.monotonic,
        **params: Any,
    ) -> None:
        self.region: Region | None = resolve_region(region) if region is not None else None
        if base_url is None:
            if self.region is None:
                raise ConfigurationError("GatewayClient needs region= or base_url=")
            base_url = self.region.api_url
        self.base_url = check_url(base_url, allow_insecure_http=allow_insecure_http, what="base_url")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ConfigurationError(f"path must start with '/', got {path!r}")
        self.path = path
        self.url = self.base_url + path
        if not isinstance(model, str) or not model:
            raise ConfigurationError(f"model must be a non-empty string, got {model!r}")
        self.model = model
        self.auth = self._bind_auth(auth)
        if tools is not None and not callable(getattr(tools, "snapshot", None)):
            raise ConfigurationError(f"tools must be a ToolRegistry, got {type(tools).__name__}")
        self.tools = tools
        if transport is not None and not isinstance(transport, Transport):
            raise ConfigurationError(
                f"transport must have send() and close(), got {type(transport).__name__}")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ConfigurationError(
                f"retry must be a RetryPolicy such as ExponentialBackoff(), got {type(retry).__name__}")
        self.timeout: Timeout = _timeout(timeout)
        self._transport = transport if transport is not None else Urllib3Transport()
        self._owns_transport = transport is None
        self.retry: RetryPolicy = retry if retry is not None else ExponentialBackoff()
        _positive("max_iterations", max_iterations, int)
        _positive("tool_timeout", tool_timeout, (int, float))
        _positive("tool_workers", tool_workers, int)
        _positive("max_tool_result_chars", max_tool_result_chars, int)
        _positive("max_repeated_calls", max_repeated_calls, int)
        self.max_iterations = max_iterations
        self.tool_timeout = float(tool_timeout)
        self.tool_workers = tool_workers
        self.max_tool_result_chars = max_tool_result_chars
        self.max_repeated_calls = max_repeated_calls
        self.allow_insecure_http = allow_insecure_http
        self.audit_payloads = audit_payloads
        self.clock = clock
        self.params = dict(params)
        # The token request runs inside a model call's attempts, which the client's policy
        # already retries: the auth itself makes one attempt per model-call attempt, so the
        # policy's max_attempts bounds token requests too (no attempts-squared nesting).
        self._http = HTTPContext(self._transport, NoRetry(), self.timeout, clock,
                                 None, allow_insecure_http)
        self._executor: ToolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def _bind_auth(self, auth: Auth | None) -> Auth | None:
        if isinstance(auth, ClientCredentials) and auth.token_url is None:
            if self.region is not None:
                return auth.with_token_url(self.region.token_url)
            try:
                return auth.with_token_url(resolve_region(self.base_url).token_url)
            except ConfigurationError:
                return auth.with_token_url(self.base_url + "/oauth/token")
        if auth is not None and not isinstance(auth, Auth):
            raise ConfigurationError(
                f"auth must be ClientCredentials, BearerToken or an Auth, got {type(auth).__name__}"
            )
        return auth

    # -- construction helpers -------------------------------------------------------------

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "GatewayClient":
        """A client configured from ``GENESYSCLOUD_*`` / ``GENESYS_GATEWAY_*`` variables."""
        from .settings import client_from_env

        return client_from_env(environ, **overrides)

    # -- one model call -------------------------------------------------------------------

    def complete(self, messages: Iterable[Mapping[str, Any] | Message], **params: Any) -> ChatResponse:
        """One chat-completions call, no tool execution."""
        payload = self._payload(_wire_messages(messages), None, params)
        return self._chat(payload)

    def _payload(self, messages: list, tool_definitions: list | None, params: Mapping[str, Any]) -> dict:
        payload: dict[str, Any] = {"model": self.model, "messages": messages}
        if tool_definitions:
            payload["tools"] = tool_definitions
        if self.params:
            payload.update(self.params)
        if params:
            payload.update(params)
        if not payload.get("tools"):
            payload.pop("tools", None)
            payload.pop("tool_choice", None)
            payload.pop("parallel_tool_calls", None)
        return payload

    def _chat(self, payload: Mapping[str, Any], *, deadline_at: float | None = None) -> ChatResponse:
        if self._closed:
            raise GatewayError("client is closed")
        body = _json_body(payload)
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": os.urandom(16).hex(),
        }
        http = self._http if deadline_at is None else attrs.evolve(self._http, deadline_at=deadline_at)
        attempts = 0

        def attempt(_n: int) -> ChatResponse:
            nonlocal attempts
            attempts += 1
            return self._send_once(body, headers, http)

        model = payload.get("model", self.model)
        started = self.clock()
        with telemetry.chat_span(model, self.base_url) as current:
            try:
                response = call_with_retry(self.retry, attempt, clock=self.clock, deadline_at=deadline_at)
            except GatewayError as error:
                telemetry.set_error(current, error)
                telemetry.audit(
                    "model_call", model=model, status="error", error=type(error).__name__,
                    http_status=getattr(error, "status", None), attempts=attempts,
                    latency_ms=round((self.clock() - started) * 1000, 3),
                    correlation_id=getattr(error, "correlation_id", None),
                )
                raise
            if current is not None:
                telemetry.record_response(current, response)
        if telemetry.audit_enabled():
            event = dict(
                model=model, status="ok", attempts=attempts,
                latency_ms=round((self.clock() - started) * 1000, 3),
                finish_reason=response.finish_reason,
                usage=attrs.asdict(response.usage),
                tool_calls=len(response.message.tool_calls or ()),
            )
            if self.audit_payloads:
                event["response"] = message_to_dict(response.message)
            telemetry.audit("model_call", **event)
        return response

    def _send_once(self, body: bytes, headers: dict, http: HTTPContext) -> ChatResponse:
        replayed = False
        while True:
            request_headers = dict(headers)
            authorization = None
            if self.auth is not None:
                authorization = self.auth.authorization(http)
                request_headers["Authorization"] = authorization
            remaining = None if http.deadline_at is None else http.deadline_at - self.clock()
            request = HTTPRequest("POST", self.url, request_headers, body, self.timeout.clip(remaining))
            response = self._transport.send(request)
            if response.status < 300:
                return parse_chat_response(response.body)
            if (response.status == 401 and not replayed and authorization is not None
                    and self.auth.invalidate(authorization)):
                replayed = True  # a fresh token, one replay
                continue
            raise api_error(response)

    # -- the tool-calling loop ------------------------------------------------------------

    def run(self, prompt: str, *, deadline: float | None = None, **params: Any) -> "RunResult":
        """Send ``prompt`` and run tools until the model answers (or a bound is hit)."""
        return self.conversation().send(prompt, deadline=deadline, **params)

    def conversation(self, system: str | None = None) -> "Conversation":
        """A multi-turn conversation that keeps its history (including tool rounds)."""
        from .conversation import Conversation

        return Conversation(self, system=system)

    def executor(self) -> "ToolExecutor":
        """The client's tool executor (created on first use)."""
        if self._executor is None:
            from .tools.executor import ToolExecutor

            with self._lock:
                if self._closed:
                    raise GatewayError("client is closed")
                if self._executor is None:
                    self._executor = ToolExecutor(
                        max_workers=self.tool_workers,
                        default_timeout=self.tool_timeout,
                        max_result_chars=self.max_tool_result_chars,
                        clock=self.clock,
                    )
        return self._executor

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Release pooled connections and worker threads. Never blocks on a hung tool."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.close()
        if self._owns_transport:
            self._transport.close()

    def __enter__(self) -> "GatewayClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"GatewayClient(url={self.url!r}, model={self.model!r}, auth={self.auth!r}, "
                f"transport={self._transport!r})")


def _wire_messages(messages: Iterable[Mapping[str, Any] | Message]) -> list:
    if isinstance(messages, (str, bytes, abc.Mapping)):
        raise TypeError("messages must be a list of message dicts (or Message objects)")
    out = []
    for m in messages:
        if isinstance(m, Message):
            out.append(message_to_dict(m))
        elif isinstance(m, abc.Mapping):  # collections.abc: typing's alias is slow to check
            out.append(dict(m))
        else:
            raise TypeError(f"each message must be a dict or a Message, got {type(m).__name__}")
    return out


def _timeout(value: Timeout | float | None) -> Timeout:
    if value is None:
        return Timeout()
    if isinstance(value, Timeout):
        parts = (value.connect, value.read)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        parts = (float(value), float(value))
    else:
        raise ConfigurationError(f"timeout must be seconds or a Timeout, got {value!r}")
    for part in parts:
        _positive("timeout", part, (int, float))
    return Timeout(*parts)


def _json_body(payload: Mapping[str, Any]) -> bytes:
    """The request body: compact UTF-8 JSON. Text that cannot be UTF-8 (a lone surrogate
    from a model, a tool or a terminal) is replaced rather than failing the request."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _positive(name: str, value: Any, kind: Any) -> None:
    if (isinstance(value, bool) or not isinstance(value, kind) or not value > 0
            or not math.isfinite(value)):
        raise ConfigurationError(f"{name} must be a positive number, got {value!r}")
