"""``parse_chat_response`` (structured by hand since the cattrs converter left the hot
path) against hostile JSON: the same result or the same public error as the converter
gave, and never an ``AttributeError``/``KeyError``/``TypeError`` of its own."""

from __future__ import annotations

import json
from typing import Any

import cattrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genesys_gateway.errors import ResponseFormatError
from genesys_gateway.models import ChatResponse, get_converter, parse_chat_response


def reference(body: bytes) -> Any:
    """What parse_chat_response gave when it used the converter: the ChatResponse, or
    ``ResponseFormatError``."""
    data = json.loads(body)
    if not isinstance(data, dict) or "choices" not in data:
        return ResponseFormatError
    try:
        return get_converter().structure(data, ChatResponse)
    except (ResponseFormatError, cattrs.BaseValidationError, KeyError, TypeError, ValueError,
            AttributeError):
        return ResponseFormatError


def parsed(body: bytes) -> Any:
    try:
        return parse_chat_response(body)
    except ResponseFormatError:
        return ResponseFormatError


ATOMS = st.sampled_from([None, True, False, 0, 1, -1, 10**30, 1.5, "", "s", "assistant", [], {},
                         [1], {"a": 1}, [{}]])
HOSTILE = st.recursive(ATOMS, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(
    st.sampled_from(["name", "arguments", "id", "type", "function", "role", "content"]), inner,
    max_size=3), max_leaves=6)


def sometimes(good: Any) -> st.SearchStrategy[Any]:
    """Mostly the well-formed value, else anything."""
    return st.one_of(st.just(good), st.just(good), st.just(good), HOSTILE)


def fields(**good: Any) -> st.SearchStrategy[dict[str, Any]]:
    """An object with some of the fields, each mostly well formed."""
    return st.fixed_dictionaries({}, optional={k: v if isinstance(v, st.SearchStrategy) else sometimes(v)
                                               for k, v in good.items()})


ARGUMENTS = st.sampled_from(['{"a": 1}', {"a": 1}, [1, "x"], 5, 2.5, True, None])
CALL = fields(id="call_1", type="function",
              function=st.one_of(fields(name="f", arguments=ARGUMENTS), HOSTILE))
MESSAGE = fields(role="assistant", content=st.sampled_from(["hi", None, [{"type": "text"}], 3, {}]),
                 tool_calls=st.one_of(st.lists(st.one_of(CALL, HOSTILE), max_size=2), HOSTILE),
                 tool_call_id="t", name="n")
CHOICE = fields(message=st.one_of(MESSAGE, HOSTILE), index=0, finish_reason="stop")
USAGE = fields(prompt_tokens=1, completion_tokens=2, total_tokens=3)
RESPONSE = st.builds(lambda top, choices: {**top, "choices": choices},
                     fields(id="x", model="m", created=1, object="chat.completion",
                            usage=st.one_of(USAGE, HOSTILE)),
                     st.one_of(st.lists(st.one_of(CHOICE, HOSTILE), min_size=1, max_size=2), HOSTILE))


@settings(max_examples=400, deadline=None)
@given(RESPONSE)
def test_hand_parser_agrees_with_the_converter_on_hostile_shapes(data):
    body = json.dumps(data).encode()
    assert parsed(body) == reference(body)


@pytest.mark.parametrize("body", [
    b'{"choices": [{"message": {"role": "assistant"}, "index": 1e400}]}',
    b'{"choices": [{"message": {"role": "assistant"}, "index": true}]}',
    b'{"choices": [{"message": {"role": null}}]}',
    b'{"choices": [{"message": {}}]}',
    b'{"choices": [{}]}',
    b'{"choices": [null]}',
    b'{"choices": {"0": {"message": {"role": "assistant"}}}}',
    b'{"choices": []}',
    b'{"choices": [{"message": {"role": "assistant", "tool_calls": {"id": "x"}}}]}',
    b'{"choices": [{"message": {"role": "assistant", "tool_calls": ["call"]}}]}',
    b'{"choices": [{"message": {"role": "assistant", "content": 5}}]}',
    b'{"choices": [{"message": "hi"}]}',
    b'{"choices": [{"message": {"role": "assistant"}}], "id": 5}',
    b'{"choices": [{"message": {"role": "assistant"}}], "created": 1' + b"0" * 5000 + b"}",
    b'{"choices": ' + b"[" * 100000 + b"]" * 100000 + b"}",
    b'[{"choices": []}]',
    b'{"choices": [{"message": {"role": "assistant"}}]',
    b"\xff\xfe{}",
])
def test_hostile_bodies_raise_the_public_error(body):
    with pytest.raises(ResponseFormatError):
        parse_chat_response(body)


def test_lenient_fields_stay_lenient():
    """What the converter tolerated still is: extra fields, wrong-typed usage counts and
    ``created``, tool calls without id or name, arguments that are not a string."""
    response = parse_chat_response(json.dumps({
        "choices": [{"message": {"role": "assistant", "extra": 1, "tool_calls": [
            {"function": {"arguments": {"a": [1, "é"]}}}, {"id": "", "function": {"name": 3, "arguments": 7}}]},
            "logprobs": None}],
        "usage": {"prompt_tokens": "3", "completion_tokens": True, "total_tokens": 2**70},
        "created": "yesterday", "system_fingerprint": "fp"}).encode())
    first, second = response.message.tool_calls or ()
    assert (first.id, first.name, first.arguments) == (None, None, '{"a": [1, "é"]}')
    assert (second.id, second.name, second.arguments) == (None, None, "7")
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (0, 0)
    assert response.usage.total_tokens == 2**70 and response.created is None
    big = parse_chat_response(b'{"choices": [{"message": {"role": "assistant"}, "index": 1' + b"0" * 30 + b"}]}")
    assert big.choices[0].index == 10**30
