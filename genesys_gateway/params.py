"""Model parameters: the names a chat-completions request may carry, checked so that a
misspelt keyword is a ``TypeError`` and never a parameter posted to the model.

Anything the list does not know goes through ``extra_body=`` (merged into the request
verbatim) and ``extra_headers=``.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable, Mapping

from .errors import ConfigurationError

__all__ = ["MODEL_PARAMETERS", "check_model_params", "unknown_keyword", "check_extra"]

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


def unknown_keyword(where: str, name: str, known: Iterable[str]) -> TypeError:
    """``TypeError: where() got an unexpected keyword argument 'x' (did you mean 'y'?)``."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else (
        " (model parameters the SDK does not know go in extra_body={...})")
    return TypeError(f"{where}() got an unexpected keyword argument {name!r}{hint}")


def check_model_params(params: Mapping[str, Any], *, where: str,
                       also_known: Iterable[str] = ()) -> dict[str, Any]:
    """``params`` as a dict when every key is a model parameter; else the ``TypeError`` of
    :func:`unknown_keyword`, suggesting from the model parameters and ``also_known`` (the
    caller's own keyword arguments)."""
    unknown = params.keys() - MODEL_PARAMETERS
    if unknown:
        name = sorted(unknown)[0]
        raise unknown_keyword(where, name, MODEL_PARAMETERS | set(also_known))
    return dict(params)


def check_extra(option: str, value: Any) -> dict[str, Any] | None:
    """``extra_body``/``extra_headers``: ``None`` or a mapping with string keys (headers:
    string values too)."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigurationError(f"{option} must be a mapping with string keys, got "
                                 f"{type(value).__name__}", option=option)
    if option == "extra_headers" and not all(isinstance(v, str) for v in value.values()):
        raise ConfigurationError("extra_headers values must be strings", option=option)
    return dict(value)
