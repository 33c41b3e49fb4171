"""HTTP error responses -> typed :class:`APIError`.

Understands Genesys Cloud's ``ErrorBody`` (``message``, ``code``, ``status``, ``contextId``),
OpenAI-style ``{"error": {"message", "type", "code"}}``, OAuth ``{"error",
"error_description"}``, and bodies that are not JSON at all.

It is also the one place where credentials a server echoes are removed: every error built
from a response by :func:`api_error` with the ``secrets`` the request carried (see
:func:`credential_forms`) has them replaced by ``<redacted>`` in its message, code,
correlation id and body (nested JSON keys and values, text), hence in its ``str``,
``repr``, ``args`` and pickle. :func:`redact` does the same to an existing error.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any, Callable, Iterable, TypeVar
from urllib.parse import quote

from ..errors import APIError, RateLimitError, error_for_status
from .retry import parse_retry_after
from .transport import HTTPResponse

__all__ = ["api_error", "decode_body", "credential_forms", "redact", "REDACTED"]

_MAX_MESSAGE = 500

#: What replaces an echoed credential.
REDACTED = "<redacted>"

E = TypeVar("E", bound=APIError)


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
    secrets: Iterable[str] = (),
) -> APIError:
    """The typed error for an HTTP error response, with ``secrets`` (the credentials the
    request carried, see :func:`credential_forms`) redacted wherever the server echoed them.

    On the token endpoint, Genesys Cloud signals rate limiting as ``400 invalid_request``
    with "rate limit exceeded" in the text: that becomes a :class:`RateLimitError`.
    """
    forms = _forms(secrets)
    status = response.status
    body = _scrub(decode_body(response.body), forms)  # before the message is cut from it
    message, code, context_id = _message_and_code(status, body)
    message = message[:_MAX_MESSAGE] or _default_message(status)
    correlation_id = _scrub(response.header("inin-correlation-id"), forms) or context_id
    retry_after = parse_retry_after(response.header("retry-after"), now)
    cls = error_for_status(status)
    if token_endpoint and status == 400 and "rate limit exceeded" in _text(body).lower():
        cls = RateLimitError
    return cls(status, message, code, correlation_id, body, retry_after=retry_after)


def credential_forms(authorization: str) -> tuple[str, ...]:
    """The forms in which a server could echo the credential sent as the ``Authorization``
    header value ``authorization``: the value itself, the credential without its scheme
    and, for ``Basic``, the decoded ``id:secret`` and the secret alone."""
    value = authorization.strip()
    if not value:
        return ()
    forms = [value]
    scheme, space, credential = value.partition(" ")
    credential = credential.strip()
    if space and credential:
        forms.append(credential)
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credential, validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                decoded = ""
            _, colon, secret = decoded.partition(":")
            forms += [decoded, secret] if colon and secret else []
    return tuple(dict.fromkeys(forms))


def redact(error: E, secrets: Iterable[str]) -> E:
    """``error`` with every one of ``secrets`` replaced by ``<redacted>`` in its message,
    code, correlation id and body, and ``args`` rebuilt from them (changed in place and
    returned; unchanged without secrets)."""
    forms = _forms(secrets)
    if not forms:
        return error
    error.message = _scrub(error.message, forms)
    error.code = _scrub(error.code, forms)
    error.correlation_id = _scrub(error.correlation_id, forms)
    error.body = _scrub(error.body, forms)
    error.args = (str(error),)
    return error


def _forms(secrets: Iterable[str]) -> tuple[str, ...]:
    """Each secret, its percent-encoding and its JSON escapes (a secret quoted inside
    JSON that is itself in a text body), longest first (so that a whole header value is
    replaced before the credential inside it)."""
    forms = {form for secret in secrets if secret
             for form in (secret, quote(secret, safe=""), json.dumps(secret)[1:-1],
                          json.dumps(secret, ensure_ascii=False)[1:-1])}
    return tuple(sorted(forms, key=len, reverse=True))


def _scrub(value: Any, forms: tuple[str, ...]) -> Any:
    """A copy of ``value`` (JSON-like) with ``forms`` redacted from every string, dict key
    and number; iterative, so that no nesting depth can exhaust the stack."""
    if not forms:
        return value
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while stack:
        source, target, slot = stack.pop()
        if isinstance(source, dict):
            copy: dict[Any, Any] = {}
            target[slot] = copy
            for key, item in source.items():
                clean_key = _scrub_leaf(key, forms)
                copy[clean_key] = None
                stack.append((item, copy, clean_key))
        elif isinstance(source, (list, tuple)):
            items: list[Any] = [None] * len(source)
            target[slot] = items
            stack.extend((item, items, index) for index, item in enumerate(source))
        else:
            target[slot] = _scrub_leaf(source, forms)
    return root[0]


def _scrub_leaf(value: Any, forms: tuple[str, ...]) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        for form in forms:
            if form in value:
                value = value.replace(form, REDACTED)
        return value
    try:
        text = str(value) if isinstance(value, (int, float)) else repr(value)
    except ValueError:  # an int too long to print (sys.set_int_max_str_digits)
        return value
    return REDACTED if any(form in text for form in forms) else value


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
