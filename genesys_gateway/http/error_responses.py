"""HTTP error responses -> typed :class:`APIError`.

Understands Genesys Cloud's ``ErrorBody`` (``message``, ``code``, ``status``, ``contextId``),
OpenAI-style ``{"error": {"message", "type", "code"}}``, OAuth ``{"error",
"error_description"}``, and bodies that are not JSON at all.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

from ..errors import APIError, RateLimitError, error_for_status
from .retry import parse_retry_after
from .transport import HTTPResponse

__all__ = ["api_error", "decode_body"]

_MAX_MESSAGE = 500


def decode_body(body: bytes) -> Any:
    """The JSON value of ``body``, or its text if it is not JSON (``None`` when empty)."""
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return body.decode("utf-8", "replace")


def _message_and_code(status: int, body: Any) -> tuple[str, str | None, str | None]:
    """(message, code, contextId) from any of the known error body shapes."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):  # OpenAI style
            message = err.get("message") or err.get("type") or ""
            code = err.get("code") or err.get("type")
            return str(message), str(code) if code else None, None
        if isinstance(err, str):  # OAuth style
            message = body.get("error_description") or body.get("description") or err
            return str(message), err, body.get("contextId")
        message = body.get("message") or body.get("messageWithParams") or ""
        code = body.get("code")
        context = body.get("contextId")
        return str(message), str(code) if code else None, str(context) if context else None
    if isinstance(body, str) and body.strip():
        text = body.strip()
        return text, None, None
    return "", None, None


def api_error(
    response: HTTPResponse,
    *,
    token_endpoint: bool = False,
    now: Callable[[], float] = time.time,
) -> APIError:
    """The typed error for an HTTP error response.

    On the token endpoint, Genesys Cloud signals rate limiting as ``400 invalid_request``
    with "rate limit exceeded" in the text: that becomes a :class:`RateLimitError`.
    """
    status = response.status
    body = decode_body(response.body)
    message, code, context_id = _message_and_code(status, body)
    message = message[:_MAX_MESSAGE] or _default_message(status)
    correlation_id = response.header("inin-correlation-id") or context_id
    retry_after = parse_retry_after(response.header("retry-after"), now)
    cls = error_for_status(status)
    if token_endpoint and status == 400 and "rate limit exceeded" in _text(body).lower():
        cls = RateLimitError
    return cls(status, message, code, correlation_id, body, retry_after=retry_after)


def _text(body: Any) -> str:
    if isinstance(body, str):
        return body
    try:
        return json.dumps(body)
    except (TypeError, ValueError):
        return str(body)


def _default_message(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "HTTP error"
