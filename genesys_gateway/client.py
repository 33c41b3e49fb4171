"""GatewayClient: configuration, ``complete()``, ``run()``, ``conversation()``.

The client composes the other concerns: auth -> retry -> transport for one model call
(:meth:`GatewayClient.complete`, its one public model call), and the tool-calling loop
(:mod:`genesys_gateway.loop`), which it hands that call, the tools and the executor.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Generator, Iterable, Literal, Mapping, Sequence

from .at_fork import fresh_locks, reinit_in_child
from .checks import check_positive
from .chat_call import ChatCall
from .errors import ConfigurationError, GatewayError
from .http.auth import Auth, ClientCredentials, HTTPContext
from .http.rate_limit import RateLimiter
from .http.retry import NoRetry, RetryPolicy
from .http.retry_budget import RetryBudget
from .http.transport import StreamingTransport, Timeout, Transport, check_url
from .models import ChatResponse, Message
from .options import ClientOptions, OptionAttribute, check_transport, retry_options
from .params import check_extra, check_model_params
from .payload import build_payload, wire_messages
from .regions import Region, resolve_region
from .settings import client_kwargs, env_settings, settings_errors
from .tools.registry import ToolRegistry, ToolSet

if TYPE_CHECKING:  # what a plain client does not use is imported on first use
    from .conversation import Conversation
    from .limits import Limits
    from .loop import Loop
    from .output import OutputMode
    from .result import RunResult
    from .state import ConversationStore
    from .stream import RunStream
    from .tools.executor import ToolExecutor

__all__ = ["GatewayClient"]

_COMPLETE_ARGUMENTS = frozenset({"tools", "deadline", "extra_body", "extra_headers"})


class GatewayClient:
    """A synchronous client for the Genesys Cloud LLM Gateway (or any OpenAI-compatible
    chat-completions endpoint). Thread-safe: share one per process. Fork-safe: a client
    made (and used) before ``fork()`` works in every child, on connections of its own.
    Every option below is also a read-only attribute of the same name (``client.model``).

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
        rate_limiter: a ``RateLimiter`` each request waits for (default ``None``: no limit).
        retry_budget: a ``RetryBudget`` for all its threads (default a new one; ``None``: off).
        timeout: seconds, or a ``Timeout(connect, read, total=None)``, for one HTTP request.
        max_response_bytes: a larger (decoded) response body is a ``ResponseFormatError``.
        server_streaming: ``stream()`` asks for server-sent events and yields text as it
            arrives (default ``True``; ``False``: whole responses). ``run()``/``send()``/
            ``complete()`` always read whole responses.
        max_iterations: model calls allowed in one run (default 5; each structured-output
            correction adds one).
        tool_timeout: seconds a tool call may take unless its tool says otherwise.
        tool_workers: threads running tool calls.
        max_tool_result_chars: longer tool results are cut with a visible marker.
        max_repeated_calls: identical tool calls allowed per run before they are refused.
        allow_insecure_http: allow ``http://`` to hosts other than loopback.
        audit_payloads: include messages, arguments and results in audit events.
        expose_tool_errors: send a failed tool's exception text to the model (by default
            only its type; raise ``gg.ToolError("...")`` to tell the model what to fix).
        limits: ``gg.Limits`` for every run (tokens, model calls, tool calls).
        output_retries: corrections a run with structured output may ask for when the
            answer is invalid (default 2); then it stops with ``"invalid_output"``.
        clock: a monotonic clock (injectable for tests).
        extra_body: merged verbatim into every request body.
        extra_headers: added to every request.
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
        rate_limiter: RateLimiter | None = None,
        retry_budget: RetryBudget | None | Literal["default"] = "default",
        timeout: Timeout | float | None = None,
        max_iterations: int = ClientOptions().max_iterations,
        tool_timeout: float = ClientOptions().tool_timeout,
        tool_workers: int = ClientOptions().tool_workers,
        max_tool_result_chars: int = ClientOptions().max_tool_result_chars,
        max_repeated_calls: int = ClientOptions().max_repeated_calls,
        allow_insecure_http: bool = False,
        audit_payloads: bool = False,
        expose_tool_errors: bool = False,
        limits: Limits | None = None,
        output_retries: int = ClientOptions().output_retries,
        clock: Callable[[], float] = time.monotonic,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        max_response_bytes: int = ClientOptions().max_response_bytes,
        server_streaming: bool = True,
        **params: Any,
    ) -> None:
        self.options = ClientOptions(
            model=model, path=path, timeout=timeout, max_iterations=max_iterations,
            tool_timeout=tool_timeout, tool_workers=tool_workers,
            max_tool_result_chars=max_tool_result_chars, max_repeated_calls=max_repeated_calls,
            allow_insecure_http=allow_insecure_http, audit_payloads=audit_payloads,
            expose_tool_errors=expose_tool_errors, limits=limits, output_retries=output_retries,
            params=params, extra_body=extra_body, extra_headers=extra_headers,
            max_response_bytes=max_response_bytes, server_streaming=server_streaming)
        if not callable(clock):
            raise ConfigurationError(f"clock must be callable, got {clock!r}", option="clock")
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
        self._transport: Transport = check_transport(transport) or _default_transport()
        self._owns_transport = transport is None
        self.retry, self.rate_limiter, self.retry_budget = retry_options(retry, rate_limiter,
                                                                         retry_budget)
        self.clock = clock
        # The token request runs inside a model call's attempts, which the client's policy
        # already retries: the auth itself makes one attempt per model-call attempt, so the
        # policy's max_attempts bounds token requests too (no attempts-squared nesting).
        http = HTTPContext(self._transport, NoRetry(), self.options.timeout, clock, None,
                           allow_insecure_http)
        self._call = ChatCall(self.url, self.base_url, self.options, self.auth, self._transport,
                              self.retry, self.rate_limiter, self.retry_budget, http, clock)
        self._engine: tuple[ToolRegistry | None, Loop] | None = None  # made by the first run
        self._executor: ToolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False
        reinit_in_child(self, fresh_locks("_lock"))  # the rest re-create their own parts

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

    # -- options, read-only (see ClientOptions) ------------------------------------------

    model: OptionAttribute[str] = OptionAttribute()
    path: OptionAttribute[str] = OptionAttribute()
    timeout: OptionAttribute[Timeout] = OptionAttribute()
    max_iterations: OptionAttribute[int] = OptionAttribute()
    tool_timeout: OptionAttribute[float] = OptionAttribute()
    tool_workers: OptionAttribute[int] = OptionAttribute()
    max_tool_result_chars: OptionAttribute[int] = OptionAttribute()
    max_repeated_calls: OptionAttribute[int] = OptionAttribute()
    allow_insecure_http: OptionAttribute[bool] = OptionAttribute()
    audit_payloads: OptionAttribute[bool] = OptionAttribute()
    expose_tool_errors: OptionAttribute[bool] = OptionAttribute()
    output_retries: OptionAttribute[int] = OptionAttribute()
    params: OptionAttribute[Mapping[str, Any]] = OptionAttribute()

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
        given = dict(overrides)  # what the caller passed: never blamed on a setting
        if tools is not None:
            given["tools"] = tools
        kwargs = client_kwargs(values, describe=describe, token_store=token_store, overrides=given)
        with settings_errors(describe, set(kwargs)):
            return cls(**kwargs, **given)

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
        return self._call(*self._request(messages, tools, deadline, extra_body, extra_headers, params))

    def _stream_complete(self, messages: Iterable[Mapping[str, Any] | Message], *,
                         tools: Sequence[Mapping[str, Any]] | None = None,
                         deadline: float | None = None,
                         extra_body: Mapping[str, Any] | None = None,
                         extra_headers: Mapping[str, str] | None = None,
                         **params: Any) -> Generator[str, None, ChatResponse]:
        """:meth:`complete` streamed: the text as it arrives, then the response."""
        return self._call.stream(*self._request(messages, tools, deadline, extra_body, extra_headers, params))

    def _request(self, messages: Iterable[Mapping[str, Any] | Message],
                 tools: Sequence[Mapping[str, Any]] | ToolRegistry | ToolSet | None,
                 deadline: float | None, extra_body: Mapping[str, Any] | None,
                 extra_headers: Mapping[str, str] | None, params: dict[str, Any],
                 ) -> tuple[dict[str, Any], float | None, Mapping[str, str] | None]:
        """A model call's checked payload, deadline (on the clock) and extra headers."""
        if params:
            params = check_model_params(params, where="complete", also_known=_COMPLETE_ARGUMENTS)
        deadline_at = None if deadline is None else self.clock() + check_positive("deadline", deadline)
        if isinstance(tools, ToolRegistry):
            tools = tools.snapshot()
        if isinstance(tools, ToolSet):
            tools = tools.definitions
        payload = build_payload(self.options, wire_messages(messages), tools, params,
                                check_extra("extra_body", extra_body))
        if self._closed:
            raise GatewayError("client is closed")
        return payload, deadline_at, check_extra("extra_headers", extra_headers)

    # -- the tool-calling loop ------------------------------------------------------------

    def run(self, prompt: str, *, deadline: float | None = None, max_iterations: int | None = None,
            extra_body: Mapping[str, Any] | None = None,
            extra_headers: Mapping[str, str] | None = None, limits: Limits | None = None,
            output_type: type[Any] | None = None, output_schema: Mapping[str, Any] | None = None,
            output_mode: OutputMode = "json_schema", output_retries: int | None = None,
            **params: Any) -> RunResult:
        """Send ``prompt`` and run tools until the model answers (or a bound is hit).

        ``deadline`` (seconds) bounds the whole run; ``max_iterations`` overrides the
        client's; other keywords are model parameters for this run (a misspelt one is a
        ``TypeError``). Structured output: ``output_type`` (an attrs class, a dataclass or
        a ``TypedDict``) or ``output_schema`` (a JSON Schema) puts the validated answer
        in ``result.output``; ``output_mode`` asks for it with ``response_format``
        (``"json_schema"``) or a ``final_answer`` tool (``"tool"``); ``output_retries``
        overrides the client's number of corrections."""
        if not isinstance(prompt, str):
            raise TypeError(f"the prompt must be a string, got {type(prompt).__name__}")
        return self._loop().prompt(prompt, deadline=deadline, max_iterations=max_iterations,
                                   extra_body=extra_body, extra_headers=extra_headers,
                                   limits=limits, output_type=output_type,
                                   output_schema=output_schema, output_mode=output_mode,
                                   output_retries=output_retries, **params)

    def stream(self, prompt: str, *, deadline: float | None = None,
               max_iterations: int | None = None, extra_body: Mapping[str, Any] | None = None,
               extra_headers: Mapping[str, str] | None = None, limits: Limits | None = None,
               output_type: type[Any] | None = None,
               output_schema: Mapping[str, Any] | None = None,
               output_mode: OutputMode = "json_schema", output_retries: int | None = None,
               **params: Any) -> RunStream:
        """:meth:`run` as a :class:`RunStream` of events (text, tool calls starting and
        finishing, model calls, and ``RunFinished`` last, whose result carries the
        structured ``output``); close it to stop the run."""
        return self.conversation().stream(prompt, deadline=deadline, max_iterations=max_iterations,
                                          extra_body=extra_body, extra_headers=extra_headers,
                                          limits=limits, output_type=output_type,
                                          output_schema=output_schema, output_mode=output_mode,
                                          output_retries=output_retries, **params)

    def conversation(self, system: str | None = None, *, state: Mapping[str, Any] | None = None,
                     key: bytes | None = None, id: str | None = None,
                     store: ConversationStore | None = None,
                     max_history_tokens: int | None = None) -> Conversation:
        """A multi-turn conversation that keeps its history (including tool rounds).

        ``state``: restore one from ``conversation.to_dict()`` (checked; ``StateError``
        when it cannot be used); ``key``: verify (and, with a store, sign) its HMAC
        signature. ``id`` + ``store``: load the stored conversation now if it exists (else
        start it with that id and ``system``) and save it after every turn. ``id`` alone
        names a new conversation. ``max_history_tokens``: drop the oldest whole turns
        before each model call to stay under an estimate of that many tokens."""
        from .conversation import Conversation

        return Conversation(self._loop(), system, state=state, key=key, id=id, store=store,
                            max_history_tokens=max_history_tokens)

    def _loop(self) -> Loop:
        """The loop engine, made once (again if ``tools`` was replaced)."""
        registry, engine = self._engine or (None, None)
        if engine is None or registry is not self.tools:
            from .loop import Loop, LoopOptions
            registry, o = self.tools, self.options
            streams = o.server_streaming and isinstance(self._transport, StreamingTransport)
            options = LoopOptions(o.model, o.max_iterations, o.max_repeated_calls,
                                  o.audit_payloads, self.clock, limits=o.limits,
                                  output_retries=o.output_retries)
            engine = Loop(self.complete, registry.snapshot if registry is not None else _no_tools,
                          self.executor, options, self._stream_complete if streams else None)
            self._engine = (registry, engine)
        return engine

    def executor(self) -> ToolExecutor:
        """The client's tool executor (created on first use)."""
        if self._executor is None:
            with self._lock:
                if self._closed:
                    raise GatewayError("client is closed")
                if self._executor is None:
                    from .tools.executor import ToolExecutor
                    self._executor = ToolExecutor(
                        max_workers=self.options.tool_workers,
                        default_timeout=self.options.tool_timeout,
                        max_result_chars=self.options.max_tool_result_chars,
                        clock=self.clock,
                        expose_errors=self.options.expose_tool_errors,
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


def _default_transport() -> Transport:
    """``Urllib3Transport()``, imported with urllib3 when the first client needs it."""
    from .http.urllib3_transport import Urllib3Transport

    return Urllib3Transport()

