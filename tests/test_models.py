import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import genesys_gateway as gg
from genesys_gateway.models import message_to_dict, parse_chat_response


def body(**data):
    return json.dumps(data).encode()


def test_full_completion_parses():
    r = parse_chat_response(body(id="c1", model="m", object="chat.completion", created=1, choices=[
        {"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None, "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}}]}}],
        usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}))
    assert r.id == "c1" and r.message.tool_calls[0].name == "f"
    assert r.message.tool_calls[0].arguments == '{"x": 1}'
    assert r.usage == gg.Usage(3, 4, 7) and r.finish_reason == "tool_calls"


def test_lenient_tool_calls_and_object_arguments():
    r = parse_chat_response(body(choices=[{"message": {"role": "assistant", "tool_calls": [
        {"function": {"name": "f", "arguments": {"x": 1}}}, {"id": 5, "function": "junk"}]}}]))
    first, second = r.message.tool_calls
    assert first.id is None and json.loads(first.arguments) == {"x": 1}
    assert second.id is None and second.name is None


def test_usage_sums():
    assert gg.Usage(1, 2, 3) + gg.Usage(10, 20, 30) == gg.Usage(11, 22, 33)


def test_message_to_dict_omits_empty_fields():
    assert message_to_dict(gg.Message(role="assistant", content="x", tool_calls=())) == {
        "role": "assistant", "content": "x"}


@pytest.mark.parametrize("raw", [b"", b"nul", b"123", b'"str"', b"{}", b'{"choices": {}}',
                                 b'{"choices": [{"message": {"role": null}}]}',
                                 b'{"choices": [{"message": {"role": "assistant", "tool_calls": {}}}]}',
                                 b'{"choices": [{"message": {"role": "assistant", "tool_calls": [1]}}]}',
                                 b'{"choices": [{"index": true, "message": {"role": "assistant"}}]}'])
def test_invalid_bodies(raw):
    with pytest.raises(gg.ResponseFormatError):
        parse_chat_response(raw)


# --- the hand-written structuring agrees with the cattrs converter -------------------------

def via_converter(data):
    """What parse_chat_response gave when it structured with the converter."""
    import cattrs

    from genesys_gateway.models import ChatResponse, get_converter

    try:
        return get_converter().structure(data, ChatResponse)
    except gg.ResponseFormatError as e:
        return ("error", str(e))
    except (cattrs.BaseValidationError, KeyError, TypeError, ValueError, AttributeError) as e:
        return ("error", f"response is not a valid chat completion: {e!r}"[:300])


def via_parser(data):
    try:
        return parse_chat_response(json.dumps(data).encode())
    except gg.ResponseFormatError as e:
        return ("error", str(e))


ODD = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.floats(allow_nan=False, allow_infinity=False),
                st.text(max_size=3), st.lists(st.integers(0, 1), max_size=2),
                st.dictionaries(st.sampled_from(["x", "name"]), st.integers(0, 1), max_size=1))


def maybe(values):
    """*values*, or an odd value in their place, or the key left out (``...``)."""
    return st.one_of(values, ODD, st.just(...))


def obj(**fields):
    return st.fixed_dictionaries({k: maybe(v) for k, v in fields.items()}).map(
        lambda d: {k: v for k, v in d.items() if v is not ...})


FUNCTION = obj(name=st.text(max_size=3), arguments=st.one_of(st.text(max_size=3), st.dictionaries(
    st.text(max_size=2), st.integers(), max_size=2)))
TOOL_CALL = obj(id=st.text(max_size=3), type=st.just("function"), function=FUNCTION)
MESSAGE = obj(role=st.sampled_from(["assistant", "user"]),
              content=st.one_of(st.text(max_size=3), st.lists(st.dictionaries(st.just("type"), st.just("text")))),
              tool_calls=st.lists(st.one_of(TOOL_CALL, ODD), max_size=2), tool_call_id=st.text(max_size=2),
              name=st.text(max_size=2))
CHOICE = obj(message=MESSAGE, index=st.integers(0, 3), finish_reason=st.sampled_from(["stop", "tool_calls"]))
USAGE = obj(prompt_tokens=st.integers(0, 9), completion_tokens=st.integers(0, 9), total_tokens=st.integers(0, 9))
COMPLETION = obj(choices=st.lists(st.one_of(CHOICE, ODD), max_size=2), id=st.text(max_size=3),
                 model=st.text(max_size=3), created=st.integers(0, 9), object=st.just("chat.completion"),
                 usage=USAGE)


@settings(max_examples=600, deadline=None)
@given(COMPLETION)
def test_parsing_agrees_with_the_converter_on_any_body(data):
    if "choices" not in data:
        data["choices"] = []
    assert via_parser(data) == via_converter(data)
