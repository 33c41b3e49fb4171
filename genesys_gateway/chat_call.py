"""One chat-completions call: headers, auth (with one replay after a 401), the rate
limiter's turn, retries within the retry budget, the typed error for a failure (with
echoed credentials redacted), telemetry and the audit event.

The client builds one :class:`ChatCall` from its parts and calls it for every model call.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Generator, Mapping, cast

import attrs

from . import telemetry
from .constants import USER_AGENT
from .errors import GatewayError
from .http.auth import Auth, HTTPContext
from .http.error_responses import api_error, credential_forms
from .http.rate_limit import RateLimiter, paused_by, wait_for_turn
from .http.retry import RetryPolicy, call_with_retry
from .http.retry_budget import RetryBudget
from .http.transport import HTTPRequest, HTTPResponse, StreamingTransport, StreamResponse, Transport
from .models import ChatResponse, message_to_dict, parse_chat_response
from .options import ClientOptions
from .payload import json_body

__all__ = ["ChatCall"]


@attrs.frozen
class ChatCall:
    """Everything one model call needs, fixed when the client is built."""

    url: str
    base_url: str
    options: ClientOptions
    auth: Auth | None
    transport: Transport
    retry: RetryPolicy
    rate_limiter: RateLimiter | None
    retry_budget: RetryBudget | None
    http: HTTPContext
    clock: Callable[[], float]

    def __call__(self, payload: Mapping[str, Any], deadline_at: float | None,
              extra_headers: Mapping[str, str] | None) -> ChatResponse:
        body = json_body(payload)
        headers = self.headers("application/json", extra_headers)
        http = self.http if deadline_at is None else attrs.evolve(self.http, deadline_at=deadline_at)
        attempts = 0

        def attempt(_n: int) -> ChatResponse:
            nonlocal attempts
            attempts += 1
            return self._send_once(body, headers, http)

        model = str(payload.get("model", self.options.model))
        started = self.clock()
        with telemetry.chat_span(model, self.base_url) as current:
            try:
                response = call_with_retry(self.retry, attempt, clock=self.clock,
                                           deadline_at=deadline_at, budget=self.retry_budget)
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

    def headers(self, accept: str, extra_headers: Mapping[str, str] | None) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": accept,
            "User-Agent": USER_AGENT,
            "Idempotency-Key": os.urandom(16).hex(),
        }
        for extra in (self.options.extra_headers, extra_headers):
            if extra:
                headers.update(extra)
        return headers

    def stream(self, payload: Mapping[str, Any], deadline_at: float | None,
               extra_headers: Mapping[str, str] | None) -> Generator[str, None, ChatResponse]:
        """One model call streamed (``"stream": true``): yields the answer's text as it
        arrives and returns the whole :class:`ChatResponse`. Retried (as :meth:`__call__`)
        only until the response's head arrived, before any text. Closing the generator
        early closes the response (its connection is discarded)."""
        from .streamed import read_stream  # the SSE machinery loads with the first stream

        body = json_body({**payload, "stream": True, "stream_options": {"include_usage": True}})
        headers = self.headers("text/event-stream", extra_headers)
        http = self.http if deadline_at is None else attrs.evolve(self.http, deadline_at=deadline_at)
        started = self.clock()
        response = call_with_retry(
            self.retry, lambda _n: self.exchange(body, headers, http, stream=True),
            clock=self.clock, deadline_at=deadline_at, budget=self.retry_budget)
        assert isinstance(response, StreamResponse)
        try:
            result = yield from read_stream(response)
        finally:
            response.close()
        if telemetry.audit_enabled():
            telemetry.audit("model_call", model=str(payload.get("model", self.options.model)),
                            status="ok", streamed=True, finish_reason=result.finish_reason,
                            latency_ms=round((self.clock() - started) * 1000, 3),
                            usage=attrs.asdict(result.usage))
        return result

    def _send_once(self, body: bytes, headers: Mapping[str, str], http: HTTPContext) -> ChatResponse:
        """One attempt: a 401 refreshes the token and replays once."""
        response = self.exchange(body, headers, http, stream=False)
        assert isinstance(response, HTTPResponse)
        return parse_chat_response(response.body)

    def exchange(self, body: bytes, headers: Mapping[str, str], http: HTTPContext, *,
                 stream: bool) -> HTTPResponse | StreamResponse:
        """One attempt's successful response (with *stream*, its body still to read): a 401
        refreshes the token and replays once; another error status raises its error."""
        replayed = False
        sent: list[str] = []  # Authorization values sent: redacted from any error's echo
        while True:
            request_headers = dict(headers)
            authorization = None
            if self.auth is not None:
                authorization = self.auth.authorization(http)
                request_headers["Authorization"] = authorization
                sent.append(authorization)
            remaining = wait_for_turn(self.rate_limiter, http.deadline_at, self.clock)
            request = HTTPRequest("POST", self.url, request_headers, body,
                                  self.options.timeout.clip(remaining),
                                  self.options.max_response_bytes)
            response: HTTPResponse
            if stream:
                opened = cast(StreamingTransport, self.transport).send_stream(request)
                if opened.status < 300:
                    return opened
                response = HTTPResponse(opened.status, opened.headers, opened.read())
            else:
                response = self.transport.send(request)
                if response.status < 300:
                    return response
            if (response.status == 401 and not replayed and self.auth is not None
                    and authorization is not None and self.auth.invalidate(authorization)):
                replayed = True  # a fresh token, one replay
                continue
            # a 429 pauses the limiter
            secrets = [form for value in sent for form in credential_forms(value)]
            raise paused_by(self.rate_limiter, api_error(response, secrets=secrets))
