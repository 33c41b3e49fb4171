"""Model parameters: the names a chat-completions request may carry, checked so that a
misspelt keyword is a ``TypeError`` and never a parameter posted to the model.

Anything the list does not know goes through ``extra_body=`` (merged into the request
verbatim) and ``extra_headers=``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, Mapping

from .errors import ConfigurationError

__all__ = ["MODEL_PARAMETERS", "RESERVED_HEADERS", "RESERVED_BODY", "check_model_params",
           "unknown_keyword", "check_extra", "headers_repr"]

#: The OpenAI chat-completions request fields a caller may set per client or per call.
#: ``messages`` and ``tools`` are the SDK's own arguments; ``stream`` and
#: ``stream_options`` are decided by the SDK.
MODEL_PARAMETERS = frozenset({
    "model", "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed",
    "n", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
    "user", "tool_choice", "parallel_tool_calls", "response_format", "reasoning_effort",
    "metadata", "store", "service_tier", "modalities", "audio", "prediction", "verbosity",
    "web_search_options", "prompt_cache_key", "safety_identifier", "functions",
    "function_call",
})


#: Keywords people reach for that belong elsewhere, with where they belong.
_ELSEWHERE = {
    "tools": "tools belong to the client: GatewayClient(tools=registry)",
    "token_store": "a token store goes in ClientCredentials(..., store=...)",
    "stream": "the SDK decides streaming",
    "stream_options": "the SDK decides streaming",
    "messages": "messages are the first argument of complete()",
}
#: Request headers the SDK sets itself; extra_headers may not replace them.
RESERVED_HEADERS = frozenset({"authorization", "host", "content-length", "transfer-encoding",
                              "connection", "content-type", "idempotency-key"})
#: Request body fields the SDK sets itself; extra_body may not replace them.
RESERVED_BODY = frozenset({"messages", "tools", "stream", "stream_options"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an HTTP header name (RFC 9110 token)
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")  # no CR, LF, NUL or other controls


def headers_repr(headers: Mapping[str, str] | None) -> str:
    """A repr that names extra headers but never shows their values (they may be keys)."""
    return "None" if headers is None else "{" + ", ".join(f"{k!r}: ..." for k in headers) + "}"


def unknown_keyword(where: str, name: str, known: Iterable[str]) -> TypeError:
    """``TypeError: where() got an unexpected keyword argument 'x' (did you mean 'y'?)``."""
    if name in _ELSEWHERE:
        hint = f" ({_ELSEWHERE[name]})"
    else:
        import difflib  # only to suggest a name in an error message

        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else (
            " (model parameters the SDK does not know go in extra_body={...})")
    return TypeError(f"{where}() got an unexpected keyword argument {name!r}{hint}")


def _check_json(what: str, key: str, value: Any, option: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        raise ConfigurationError(f"{what} {key!r} must be JSON data (no NaN or infinity): "
                                 f"{type(e).__name__}: {e}"[:300], option=option) from None


def check_model_params(params: Mapping[str, Any], *, where: str,
                       also_known: Iterable[str] = ()) -> dict[str, Any]:
    """``params`` as a dict when every key is a model parameter whose value is JSON data;
    else the ``TypeError`` of :func:`unknown_keyword`, suggesting from the model
    parameters and ``also_known`` (the caller's own keyword arguments), or a
    :class:`ConfigurationError` naming the parameter."""
    unknown = params.keys() - MODEL_PARAMETERS
    if unknown:
        name = sorted(unknown)[0]
        raise unknown_keyword(where, name, MODEL_PARAMETERS | set(also_known))
    for key, value in params.items():
        _check_json("model parameter", key, value, key)
    return dict(params)


def check_extra(option: str, value: Any) -> dict[str, Any] | None:
    """``extra_body``/``extra_headers``: ``None``, or a copy of a mapping with string keys.

    ``extra_body`` values must be JSON data and may not replace the fields the SDK sets
    (``messages``, ``tools``, ``stream``, ``stream_options``). ``extra_headers`` names must
    be HTTP tokens and values strings without CR, LF or other control characters, and may
    not replace the headers the SDK sets (``Authorization``, ``Host``, ``Content-Length``,
    ``Content-Type``, ``Transfer-Encoding``, ``Connection``, ``Idempotency-Key``)."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigurationError(f"{option} must be a mapping with string keys, got "
                                 f"{type(value).__name__}", option=option)
    copy = dict(value)
    if option == "extra_headers":
        for name, text in copy.items():
            if not _TOKEN.fullmatch(name):
                raise ConfigurationError(f"extra_headers: {name!r} is not a valid header name",
                                         option=option)
            if name.lower() in RESERVED_HEADERS:
                raise ConfigurationError(f"extra_headers cannot set {name} (the client sets it)",
                                         option=option)
            if not isinstance(text, str) or not _FIELD_VALUE.fullmatch(text):
                raise ConfigurationError(f"extra_headers: the value of {name} must be a string "
                                         "without CR, LF or other control characters",
                                         option=option)
    else:
        for key, item in copy.items():
            if key in RESERVED_BODY:
                raise ConfigurationError(f"extra_body cannot set {key!r} (the client sets it)",
                                         option=option)
            _check_json("extra_body", key, item, option)
    return copy
