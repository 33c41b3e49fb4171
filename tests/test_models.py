import json

import pytest

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
