"""Merging streamed chat-completion chunks: every quirk pinned in DESIGN.md, the error
contract (ResponseFormatError and nothing else), and the recorded server transcripts."""

from __future__ import annotations

import json
import pathlib

import pytest

import genesys_gateway as gg
from genesys_gateway.deltas import ChunkMerger, merge_chunks
from genesys_gateway.errors import ResponseFormatError
from genesys_gateway.http.sse import iter_events
from genesys_gateway.models import ChatResponse, FunctionCall, ToolCall, Usage, parse_chat_response

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures" / "sse"


def chunk(delta=None, finish=None, index=0, **extra):
    choice = {"index": index, "delta": {} if delta is None else delta, "finish_reason": finish}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 7, "model": "m",
            "choices": [choice], **extra}


def calls_chunk(*items, finish=None):
    return chunk({"tool_calls": list(items)}, finish)


def call(index=None, id=None, name=None, arguments=None, **extra):
    item = dict(extra)
    if index is not None:
        item["index"] = index
    if id is not None:
        item.update(id=id, type="function")
    fn = {}
    if name is not None:
        fn["name"] = name
    if arguments is not None:
        fn["arguments"] = arguments
    if fn:
        item["function"] = fn
    return item


def calls_of(response: ChatResponse) -> list[tuple[str | None, str | None, str | None]]:
    return [(c.id, c.name, c.arguments) for c in response.message.tool_calls or ()]


# -- text -----------------------------------------------------------------------------------

def test_text_deltas_come_back_as_fed_and_the_response_is_a_chat_response():
    merger = ChunkMerger()
    fed = [merger.feed(chunk({"role": "assistant", "content": ""})),
           merger.feed(chunk({"content": "Hel"})), merger.feed(chunk({"content": "lo"})),
           merger.feed(chunk({}, "stop"))]
    assert fed == ["", "Hel", "lo", ""]
    assert merger.text == "Hello" and merger.finish_reason == "stop" and merger.ended
    response = merger.response()
    assert isinstance(response, ChatResponse)
    assert (response.id, response.model, response.created) == ("chatcmpl-1", "m", 7)
    assert response.message == gg.Message("assistant", "Hello")
    assert response.finish_reason == "stop" and response.usage == Usage()
    assert merger.usage is None


def test_a_stream_without_content_has_none_like_a_whole_answer():
    response = merge_chunks([chunk({"role": "assistant"}), calls_chunk(call(0, "c", "f", "{}")),
                             chunk({}, "tool_calls")])
    assert response.message.content is None


def test_surrogate_pair_split_across_chunks_is_joined_in_deltas_and_content():
    merger = ChunkMerger()
    out = [merger.feed_data(json.dumps(chunk({"content": piece})))
           for piece in ["a \ud83c", "\udf0d b", "\ud83d"]]
    assert out == ["a ", "\U0001F30D b", ""]
    merger.feed(chunk({"content": "x\udc00"}, "stop"))  # a lone low surrogate
    assert merger.response().message.content == "a \U0001F30D b\ufffdx\ufffd"
    merger.response().message.content.encode("utf-8")


def test_a_high_surrogate_left_at_the_end_becomes_a_replacement_character():
    response = merge_chunks([chunk({"content": "ok \ud83d"}, "stop")])
    assert response.message.content == "ok \ufffd"


# -- tool-call quirks pinned in DESIGN.md ----------------------------------------------------

def test_id_and_name_only_in_the_first_chunk():
    response = merge_chunks([
        calls_chunk(call(0, "call_1", "get_weather", "")),
        calls_chunk(call(0, arguments='{"loc')), calls_chunk(call(0, arguments='ation": "Oslo"}')),
        chunk({}, "tool_calls")])
    assert calls_of(response) == [("call_1", "get_weather", '{"location": "Oslo"}')]
    assert response.message.tool_calls[0].type == "function"


def test_a_repeated_index_in_the_first_chunk_is_one_call():
    response = merge_chunks([
        calls_chunk(call(0, "call_1", "f"), call(0, arguments='{"a": ')),
        calls_chunk(call(0, arguments="1}"), finish="tool_calls")])
    assert calls_of(response) == [("call_1", "f", '{"a": 1}')]


def test_an_empty_name_on_argument_chunks_is_ignored():
    response = merge_chunks([calls_chunk(call(0, "call_1", "f")),
                             calls_chunk(call(0, name="", arguments="{}", id=""))])
    assert calls_of(response) == [("call_1", "f", "{}")]


def test_a_name_repeated_on_every_chunk_is_kept_once_and_a_name_in_pieces_is_joined():
    repeated = merge_chunks([calls_chunk(call(0, "c1", "read_file", "{")),
                             calls_chunk(call(0, name="read_file", arguments="}")),
                             calls_chunk(call(0, name="read_file"))])
    assert calls_of(repeated) == [("c1", "read_file", "{}")]
    pieces = merge_chunks([calls_chunk(call(0, "c1", "edit_ex")),
                           calls_chunk(call(0, name="isting_file", arguments="{}"))])
    assert calls_of(pieces) == [("c1", "edit_existing_file", "{}")]


def test_arguments_only_in_the_final_chunk():
    response = merge_chunks([calls_chunk(call(0, "call_1", "f")), chunk({}),
                             calls_chunk(call(0, arguments='{"x": [1, 2]}'), finish="tool_calls")])
    assert calls_of(response) == [("call_1", "f", '{"x": [1, 2]}')]
    assert response.finish_reason == "tool_calls"


def test_a_call_without_arguments_has_none_as_in_a_whole_answer():
    assert calls_of(merge_chunks([calls_chunk(call(0, "c", "f"))])) == [("c", "f", None)]


def test_usage_only_last_chunk():
    merger = ChunkMerger()
    merger.feed(chunk({"content": "hi"}, usage=None))
    merger.feed(chunk({}, "stop", usage=None))
    merger.feed({"id": "chatcmpl-1", "choices": [],
                 "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}})
    assert merger.usage == Usage(5, 2, 7) and merger.response().usage == Usage(5, 2, 7)


def test_running_usage_on_every_chunk_keeps_the_last():
    merger = ChunkMerger()
    for n in range(1, 4):
        merger.feed(chunk({"content": "x"}, usage={"prompt_tokens": 3, "completion_tokens": n,
                                                    "total_tokens": 3 + n}))
    assert merger.response().usage == Usage(3, 3, 6)


def test_done_missing_ends_cleanly_only_with_a_finish_reason():
    merger = ChunkMerger()
    merger.feed(chunk({"content": "partial"}))
    assert not merger.ended and not merger.done
    assert merger.response().message.content == "partial"  # still mergeable: the caller decides
    merger.feed(chunk({}, "length"))
    assert merger.ended and not merger.done and merger.finish_reason == "length"


def test_done_without_a_finish_reason_ends_the_stream():
    merger = ChunkMerger()
    merger.feed_data(json.dumps(chunk({"content": "a"})))
    assert merger.feed_data("[DONE]") == ""
    assert merger.done and merger.ended and merger.finish_reason is None
    assert merger.feed_data(json.dumps(chunk({"content": "after"}))) == ""  # ignored
    assert merger.response().message.content == "a"


def test_a_missing_index_takes_the_position_in_the_list():
    one_call = merge_chunks([calls_chunk(call(None, "c1", "f", '{"a"')),
                             calls_chunk(call(None, arguments=": 1}"))])
    assert calls_of(one_call) == [("c1", "f", '{"a": 1}')]
    two_in_one_chunk = merge_chunks([calls_chunk(call(None, "c1", "f", "{}"),
                                                 call(None, "c2", "g", "[]"))])
    assert calls_of(two_in_one_chunk) == [("c1", "f", "{}"), ("c2", "g", "[]")]
    null_and_bad_indexes = merge_chunks([calls_chunk({"index": None, **call(id="c1", name="f")},
                                                     {"index": "1", **call(id="c2", name="g")}),
                                         calls_chunk({"index": True, **call(arguments="{}")},
                                                     {"index": 1.0, **call(arguments="[]")})])
    assert calls_of(null_and_bad_indexes) == [("c1", "f", "{}"), ("c2", "g", "[]")]


def test_parallel_calls_each_in_its_own_chunk_at_the_same_index_stay_apart():
    for index in (None, 0):  # Ollama sends no index, some gateways always 0
        response = merge_chunks([
            calls_chunk(call(index, "c1", "f", '{"q": ')), calls_chunk(call(index, arguments='1}')),
            calls_chunk(call(index, "c2", "g", '{"q": 2}')), chunk({}, "stop")])
        assert calls_of(response) == [("c1", "f", '{"q": 1}'), ("c2", "g", '{"q": 2}')]


def test_an_id_repeated_on_argument_chunks_does_not_start_a_new_call():
    response = merge_chunks([calls_chunk(call(0, "c1", "f", "{")),
                             calls_chunk(call(0, "c1", "f", "}")),
                             calls_chunk(call(0, "c-other", arguments=" "))])  # no name: a piece
    assert calls_of(response) == [("c1", "f", "{} ")]


def test_interleaved_parallel_calls_are_merged_by_index():
    response = merge_chunks([
        calls_chunk(call(0, "c1", "f", "{\"a\":"), call(1, "c2", "g", "{\"b\":")),
        calls_chunk(call(1, arguments="2}")), calls_chunk(call(0, arguments="1}")),
        chunk({}, "tool_calls")])
    assert calls_of(response) == [("c1", "f", '{"a":1}'), ("c2", "g", '{"b":2}')]


def test_arguments_sent_as_an_object_are_serialised():
    response = merge_chunks([calls_chunk(call(0, "c1", "f", {"city": "Zürich", "n": [1]}))])
    assert json.loads(calls_of(response)[0][2]) == {"city": "Zürich", "n": [1]}


def test_arguments_split_inside_an_escape_or_a_surrogate_pair_are_rebuilt():
    original = '{"text": "line\\nnext \\"q\\" \U0001F600 é"}'
    units = original.encode("utf-16-le")
    for cut in range(0, len(units) + 1, 2):
        pieces = [units[:cut].decode("utf-16-le", "surrogatepass"),
                  units[cut:].decode("utf-16-le", "surrogatepass")]
        merger = ChunkMerger()
        merger.feed_data(json.dumps(calls_chunk(call(0, "c", "f", pieces[0]))))
        merger.feed_data(json.dumps(calls_chunk(call(0, arguments=pieces[1]))))
        assert calls_of(merger.response())[0][2] == original, cut


def test_arguments_that_never_form_json_are_passed_on_as_they_are():
    response = merge_chunks([calls_chunk(call(0, "c", "f", '{"a": ')), chunk({}, "tool_calls")])
    assert response.message.tool_calls == (ToolCall("c", "function", FunctionCall("f", '{"a": ')),)


def test_several_choices_are_merged_apart_and_text_comes_from_the_first():
    merger = ChunkMerger()
    assert merger.feed({"choices": [{"index": 0, "delta": {"content": "a"}},
                                    {"index": 1, "delta": {"content": "b"}}]}) == "a"
    assert merger.feed({"choices": [{"index": 1, "delta": {"content": "B"}, "finish_reason": "stop"}]}) == ""
    assert not merger.ended  # choice 0 has not finished
    merger.feed({"choices": [{"index": 0, "delta": {"content": "A"}, "finish_reason": "length"}]})
    response = merger.response()
    assert merger.ended
    assert [(c.index, c.message.content, c.finish_reason) for c in response.choices] == [
        (0, "aA", "length"), (1, "bB", "stop")]


def test_keep_alive_data_and_a_role_only_chunk_add_nothing():
    merger = ChunkMerger()
    assert merger.feed_data("") == "" and merger.feed_data("  ") == ""
    assert merger.feed(chunk({"role": "assistant"})) == ""
    assert merger.response().message.role == "assistant"


def test_azure_style_empty_metadata_is_not_taken():
    merger = ChunkMerger()
    merger.feed({"choices": [], "id": "", "model": "", "created": 0, "prompt_filter_results": []})
    merger.feed(chunk({"content": "x"}, "stop"))
    assert (merger.response().id, merger.response().model) == ("chatcmpl-1", "m")


# -- the error contract ----------------------------------------------------------------------

@pytest.mark.parametrize("data", ["{", "nope", '{"a": 1', "[1, 2]", '"text"', "3", "null",
                                  "[DONE", "{" * 100_000])
def test_data_that_is_not_a_json_object_is_a_response_format_error(data):
    with pytest.raises(ResponseFormatError, match="stream chunk"):
        ChunkMerger().feed_data(data)


@pytest.mark.parametrize("bad", [
    {"choices": {}}, {"choices": "x"}, {"choices": 3}, {"choices": [1]}, {"choices": [None]},
    {"choices": [{"delta": "x"}]}, {"choices": [{"delta": []}]}, {"choices": [{"delta": 0}]},
    {"choices": [{"delta": {"content": 5}}]}, {"choices": [{"delta": {"content": ["a"]}}]},
    {"choices": [{"delta": {}, "finish_reason": 1}]},
    {"choices": [{"delta": {"tool_calls": {}}}]}, {"choices": [{"delta": {"tool_calls": [3]}}]},
])
def test_chunks_of_the_wrong_shape_are_a_response_format_error(bad):
    with pytest.raises(ResponseFormatError):
        ChunkMerger().feed(bad)


def test_an_error_object_mid_stream_is_a_response_format_error_naming_it():
    merger = ChunkMerger()
    merger.feed(chunk({"content": "a"}))
    with pytest.raises(ResponseFormatError, match="mid-stream: model overloaded"):
        merger.feed({"error": {"message": "model overloaded", "type": "server_error", "code": 503}})


def test_a_stream_with_no_choice_cannot_be_a_response():
    merger = ChunkMerger()
    merger.feed({"choices": [], "usage": {"prompt_tokens": 1}})
    merger.feed_data("[DONE]")
    with pytest.raises(ResponseFormatError, match="no choices"):
        merger.response()


# -- recorded transcripts --------------------------------------------------------------------

EXPECTED = {
    "openai_text.txt": dict(content="It is 18°C in London \U0001F326.", finish="stop", calls=[],
                            usage=Usage(21, 9, 30), done=True),
    "openai_parallel_tool_calls.txt": dict(
        content=None, finish="tool_calls", done=True, usage=Usage(85, 46, 131),
        calls=[("call_Lw2pTXeMQ4Kq", "get_weather", '{"location": "Paris"}'),
               ("call_9sCkXr0bYd3N", "get_time", '{"tz": "Europe/Paris"}')]),
    "vllm_tool_call.txt": dict(
        content="", finish="tool_calls", done=True, usage=Usage(312, 29, 341),
        calls=[("chatcmpl-tool-8c51e2a0f3d94b0c", "get_weather",
                '{"location": "San Francisco, CA", "unit": "fahrenheit"}')]),
    "ollama_text.txt": dict(content="Bonjour à tous!", finish="stop", calls=[], done=True,
                            usage=Usage(26, 5, 31)),
    "ollama_tool_calls_no_index.txt": dict(
        content="", finish="stop", done=False, usage=Usage(),
        calls=[("call_k3c0rzxa", "get_current_weather", '{"format":"celsius","location":"Paris, FR"}'),
               ("call_p1v9q2mw", "get_current_weather", '{"format":"celsius","location":"Toronto, CA"}')]),
    "azure_content_filter.txt": dict(content="Hello there", finish="content_filter", calls=[],
                                     done=True, usage=Usage()),
    "gateway_quirks_no_done.txt": dict(
        content=None, finish="tool_calls", done=False, usage=Usage(40, 22, 62),
        calls=[("call_a1", "search_docs", '{"query": "résumé tips"}'),
               ("call_b2", "get_time", '{"tz": "UTC"}')]),
}


def merge_stream(chunks):
    merger, text = ChunkMerger(), []
    for event in iter_events(chunks):
        text.append(merger.feed_data(event.data))
    return merger, "".join(text)


def test_every_fixture_has_an_expectation():
    assert sorted(p.name for p in FIXTURES.glob("*.txt")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recorded_transcripts_merge_to_the_answer(name):
    body = (FIXTURES / name).read_bytes()
    expected = EXPECTED[name]
    merger, text = merge_stream([body])
    response = merger.response()
    assert response.message.content == expected["content"]
    assert text == (expected["content"] or "")
    assert calls_of(response) == expected["calls"]
    assert response.finish_reason == expected["finish"]
    assert response.usage == expected["usage"]
    assert merger.ended and merger.done == expected["done"]
    # the same answer with CRLF line ends, and at every split of the bytes
    assert merge_stream([body.replace(b"\n", b"\r\n")])[0].response() == response
    for cut in range(0, len(body) + 1, 7):
        assert merge_stream([body[:cut], body[cut:]])[0].response() == response


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_streamed_answer_is_the_whole_answer_it_stands_for(name):
    response = merge_stream([(FIXTURES / name).read_bytes()])[0].response()
    whole = {"id": response.id, "model": response.model, "created": response.created,
             "object": "chat.completion",
             "choices": [{"index": 0, "finish_reason": response.finish_reason,
                          "message": response.message.to_dict()}],
             "usage": {"prompt_tokens": response.usage.prompt_tokens,
                       "completion_tokens": response.usage.completion_tokens,
                       "total_tokens": response.usage.total_tokens}}
    assert parse_chat_response(json.dumps(whole).encode()) == response
