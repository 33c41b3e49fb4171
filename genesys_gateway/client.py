"""GatewayClient: configuration, ``complete()``, ``run()``, ``conversation()``.

The client composes the other concerns: auth -> retry -> transport for one model call
(:meth:`GatewayClient.complete`, its one public model call), and the tool-calling loop
(:mod:`genesys_gateway.loop`), which it hands that call, the tools and the executor.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Any, Callable, Iterable, Mapping, Sequence

import attrs

from . import telemetry
from .checks import check_positive
from .constants import USER_AGENT
from .conversation import Conversation
from .errors import ConfigurationError, GatewayError
from .http.auth import Auth, ClientCredentials, HTTPContext
from .http.error_responses import api_error
from .http.retry import ExponentialBackoff, NoRetry, RetryPolicy, call_with_retry
from .http.transport import HTTPRequest, Timeout, Transport, check_url
from .http.urllib3_transport import Urllib3Transport
from .loop import Loop, LoopOptions, RunOptions, RunResult
from .models import ChatResponse, Message, message_to_dict, parse_chat_response
from .options import CLIENT_ARGUMENTS, ClientOptions
from .params import check_extra, check_model_params
from .payload import build_payload, json_body, wire_messages
from .regions import Region, resolve_region
from .settings import client_kwargs, env_settings, settings_errors
from .tools.executor import ToolExecutor
from .tools.registry import ToolRegistry, ToolSet

__all__ = ["GatewayClient"]

_COMPLETE_ARGUMENTS = frozenset({"tools", "deadline", "extra_body", "extra_headers"})


class GatewayClient:
    """A synchronous client for the Genesys Cloud LLM Gateway (or any OpenAI-compatible
    chat-completions endpoint). Thread-safe: share one per process.

    Args:
        region: a Genesys Cloud region (``"us-east-1"``, ``"mypurecloud.com"`` or an API
            URL); gives the API host and the OAuth token URL.
        base_url: the API host, overriding the region's (any OpenAI-compatible server).
        auth: ``ClientCredentials``, ``BearerToken``, any ``Auth``, or ``None`` (no
            ``Authorization`` header, for local servers).
        tools: the ``ToolRegistry`` whose tools runs may call.
        model: the model name (default ``gpt-4o``).
        path: the chat-completions path (default the LLM Gateway's).
        transport: ``Urllib3Transport()`` (default), ``RequestsTransport()`` or any
            ``Transport``.
        retry: ``ExponentialBackoff()`` (default) or ``NoRetry()``.
        timeout: seconds, or a ``Timeout(connect, read, total=None)``, for one HTTP request.
        max_iterations: model calls allowed in one run (default 5).
        tool_timeout: seconds a tool call may take unless its tool says otherwise.
        tool_workers: threads running tool calls.
        max_tool_result_chars: longer tool results are cut with a visible marker.
        max_repeated_calls: identical tool calls allowed per run before they are refused.
        allow_insecure_http: allow ``http://`` to hosts other than loopback.
        audit_payloads: include messages, arguments and results in audit events.
        clock: a monotonic clock (injectable for tests).
        extra_body: merged verbatim into every request body.
        extra_headers: added to every request.
        max_response_bytes: a larger (decoded) response body is a ``ResponseFormatError``.
        **params: model parameters sent with every call (``temperature=0.2``...); only
            names of the chat-completions request are accepted, a misspelt one is a
            ``TypeError`` naming it.
    """

    def __init__(
        self,
        *,
        region: str | None = None,
        base_url: str | None = None,
        auth: Auth | None = None,
        tools: ToolRegistry | None = None,
        model: str = ClientOptions().model,
        path: str = ClientOptions().path,
        transport: Transport | None = None,
        retry: RetryPolicy | None = None,
        timeout: Timeout | float | None = None,
        max_iterations: int = ClientOptions().max_iterations,
        tool_timeout: float = ClientOptions().tool_timeout,
        tool_workers: int = ClientOptions().tool_workers,
        max_tool_result_chars: int = ClientOptions().max_tool_result_chars,
        max_repeated_calls: int = ClientOptions().max_repeated_calls,
        allow_insecure_http: bool = False,
        audit_payloads: bool = False,
        clock: Callable[[], float] = time.monotonic,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        max_response_bytes: int = ClientOptions().max_response_bytes,
        **params: Any,
    ) -> None:
        params = check_model_params(params, where="GatewayClient", also_known=CLIENT_ARGUMENTS)
        self.options = ClientOptions(
            model=model, path=path, timeout=timeout, max_iterations=max_iterations,
            tool_timeout=tool_timeout, tool_workers=tool_workers,
            max_tool_result_chars=max_tool_result_chars, max_repeated_calls=max_repeated_calls,
            allow_insecure_http=allow_insecure_http, audit_payloads=audit_payloads,
            params=params, extra_body=extra_body, extra_headers=extra_headers,
            max_response_bytes=max_response_bytes)
        try:
            self.region: Region | None = resolve_region(region) if region is not None else None
        except ConfigurationError as e:
            raise ConfigurationError(str(e), option="region") from None
        if base_url is None:
            if self.region is None:
                raise ConfigurationError("GatewayClient needs region= or base_url=", option="region")
            base_url = self.region.api_url
        try:
            self.base_url = check_url(base_url, allow_insecure_http=allow_insecure_http,
                                      what="base_url")
        except ConfigurationError as e:
            raise ConfigurationError(str(e), option="base_url") from None
        self.url = self.base_url + path
        self.auth = self._bind_auth(auth)
        if tools is not None and not isinstance(tools, ToolRegistry):
            raise ConfigurationError(f"tools must be a ToolRegistry, got {type(tools).__name__}",
                                     option="tools")
        self.tools = tools
        if transport is not None and not isinstance(transport, Transport):
            raise ConfigurationError(
                f"transport must have send() and close(), got {type(transport).__name__}",
                option="transport")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ConfigurationError(
                f"retry must be a RetryPolicy such as ExponentialBackoff(), got {type(retry).__name__}",
                option="retry")
        self._transport: Transport = transport if transport is not None else Urllib3Transport()
        self._owns_transport = transport is None
        self.retry: RetryPolicy = retry if retry is not None else ExponentialBackoff()
        self.clock = clock
        # The token request runs inside a model call's attempts, which the client's policy
        # already retries: the auth itself makes one attempt per model-call attempt, so the
        # policy's max_attempts bounds token requests too (no attempts-squared nesting).
        self._http = HTTPContext(self._transport, NoRetry(), self.options.timeout, clock,
                                 None, allow_insecure_http)
        self._loop_options = LoopOptions(model, max_iterations, max_repeated_calls,
                                         audit_payloads, clock)
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
                f"auth must be ClientCredentials, BearerToken or an Auth, got {type(auth).__name__}",
                option="auth")
        return auth

    # -- options, read-only ---------------------------------------------------------------

    @property
    def model(self) -> str:
        return self.options.model

    @property
    def path(self) -> str:
        return self.options.path

    @property
    def timeout(self) -> Timeout:
        return self.options.timeout

    @property
    def max_iterations(self) -> int:
        return self.options.max_iterations

    @property
    def tool_timeout(self) -> float:
        return self.options.tool_timeout

    @property
    def tool_workers(self) -> int:
        return self.options.tool_workers

    @property
    def max_tool_result_chars(self) -> int:
        return self.options.max_tool_result_chars

    @property
    def max_repeated_calls(self) -> int:
        return self.options.max_repeated_calls

    @property
    def allow_insecure_http(self) -> bool:
        return self.options.allow_insecure_http

    @property
    def audit_payloads(self) -> bool:
        return self.options.audit_payloads

    @property
    def params(self) -> Mapping[str, Any]:
        """Model parameters sent with every call."""
        return self.options.params

    # -- construction helpers -------------------------------------------------------------

    @classmethod
    def from_settings(cls, values: Mapping[str, Any], *,
                      describe: Callable[[str], str] = lambda key: key,
                      token_store: Any = None, tools: ToolRegistry | None = None,
                      **overrides: Any) -> GatewayClient:
        """A client from upper-case settings keys (``REGION``/``BASE_URL``, ``CLIENT_ID``,
        ``CLIENT_SECRET`` or ``ACCESS_TOKEN``, ``TOKEN_URL``, ``MODEL``, ``PATH``,
        ``PARAMS``, and client options such as ``MAX_ITERATIONS``); errors name the setting
        through ``describe(key)``. See :mod:`genesys_gateway.settings`."""
        kwargs = client_kwargs(values, describe=describe, token_store=token_store, tools=tools)
        from_settings = set(kwargs)
        kwargs.update(overrides)
        with settings_errors(describe, from_settings - set(overrides)):
            return cls(**kwargs)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> GatewayClient:
        """A client configured from ``GENESYSCLOUD_*`` / ``GENESYS_GATEWAY_*`` variables
        (``environ`` defaults to ``os.environ``); keywords override them."""
        values, describe = env_settings(os.environ if environ is None else environ)
        return cls.from_settings(values, describe=describe, **overrides)

    # -- one model call -------------------------------------------------------------------

    def complete(self, messages: Iterable[Mapping[str, Any] | Message], *,
                 tools: Sequence[Mapping[str, Any]] | ToolRegistry | ToolSet | None = None,
                 deadline: float | None = None,
                 extra_body: Mapping[str, Any] | None = None,
                 extra_headers: Mapping[str, str] | None = None,
                 **params: Any) -> ChatResponse:
        """One chat-completions call, no tool execution.

        ``messages`` are OpenAI-format dicts (or ``Message`` objects); ``tools`` are tool
        definitions (or a registry, or a snapshot of one) offered to the model;
        ``deadline`` (seconds) bounds the call with its retries; other keywords are model
        parameters (a misspelt one is a ``TypeError``).
        """
        if params:
            params = check_model_params(params, where="complete", also_known=_COMPLETE_ARGUMENTS)
        deadline_at = None if deadline is None else self.clock() + check_positive("deadline", deadline)
        if isinstance(tools, ToolRegistry):
            tools = tools.snapshot()
        if isinstance(tools, ToolSet):
            tools = tools.definitions
        payload = build_payload(self.options, wire_messages(messages), tools, params,
                                check_extra("extra_body", extra_body))
        return self._chat(payload, deadline_at, check_extra("extra_headers", extra_headers))

    def _chat(self, payload: Mapping[str, Any], deadline_at: float | None,
              extra_headers: Mapping[str, str] | None) -> ChatResponse:
        if self._closed:
            raise GatewayError("client is closed")
        body = json_body(payload)
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": os.urandom(16).hex(),
        }
        for extra in (self.options.extra_headers, extra_headers):
            if extra:
                headers.update(extra)
        http = self._http if deadline_at is None else attrs.evolve(self._http, deadline_at=deadline_at)
        attempts = 0

        def attempt(_n: int) -> ChatResponse:
            nonlocal attempts
            attempts += 1
            return self._send_once(body, headers, http)

        model = str(payload.get("model", self.options.model))
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
            event: dict[str, Any] = dict(
                model=model, status="ok", attempts=attempts,
                latency_ms=round((self.clock() - started) * 1000, 3),
                finish_reason=response.finish_reason,
                usage=attrs.asdict(response.usage),
                tool_calls=len(response.message.tool_calls or ()),
            )
            if self.options.audit_payloads:
                event["response"] = message_to_dict(response.message)
            telemetry.audit("model_call", **event)
        return response

    def _send_once(self, body: bytes, headers: Mapping[str, str], http: HTTPContext) -> ChatResponse:
        replayed = False
        while True:
            request_headers = dict(headers)
            authorization = None
            if self.auth is not None:
                authorization = self.auth.authorization(http)
                request_headers["Authorization"] = authorization
            remaining = None if http.deadline_at is None else http.deadline_at - self.clock()
            request = HTTPRequest("POST", self.url, request_headers, body,
                                  self.options.timeout.clip(remaining), self.options.max_response_bytes)
            response = self._transport.send(request)
            if response.status < 300:
                return parse_chat_response(response.body)
            if (response.status == 401 and not replayed and self.auth is not None
                    and authorization is not None and self.auth.invalidate(authorization)):
                replayed = True  # a fresh token, one replay
                continue
            raise api_error(response)

    # -- the tool-calling loop ------------------------------------------------------------

    def run(self, prompt: str, *, deadline: float | None = None, max_iterations: int | None = None,
            extra_body: Mapping[str, Any] | None = None,
            extra_headers: Mapping[str, str] | None = None, **params: Any) -> RunResult:
        """Send ``prompt`` and run tools until the model answers (or a bound is hit).

        ``deadline`` (seconds) bounds the whole run; ``max_iterations`` overrides the
        client's; other keywords are model parameters for this run (a misspelt one is a
        ``TypeError``)."""
        if not isinstance(prompt, str):
            raise TypeError(f"the prompt must be a string, got {type(prompt).__name__}")
        run = RunOptions.build("run", deadline=deadline, max_iterations=max_iterations,
                               extra_body=extra_body, extra_headers=extra_headers, **params)
        return self._loop().run(str(uuid.uuid4()), [{"role": "user", "content": prompt}], run)

    def conversation(self, system: str | None = None) -> Conversation:
        """A multi-turn conversation that keeps its history (including tool rounds)."""
        return Conversation(self._loop(), system=system)

    def _loop(self) -> Loop:
        registry = self.tools
        return Loop(self.complete, registry.snapshot if registry is not None else _no_tools,
                    self.executor, self._loop_options)

    def executor(self) -> ToolExecutor:
        """The client's tool executor (created on first use)."""
        if self._executor is None:
            with self._lock:
                if self._closed:
                    raise GatewayError("client is closed")
                if self._executor is None:
                    self._executor = ToolExecutor(
                        max_workers=self.options.tool_workers,
                        default_timeout=self.options.tool_timeout,
                        max_result_chars=self.options.max_tool_result_chars,
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

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"GatewayClient(url={self.url!r}, model={self.model!r}, auth={self.auth!r}, "
                f"transport={self._transport!r})")


def _no_tools() -> None:
    return None
