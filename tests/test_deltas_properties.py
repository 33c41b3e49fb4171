"""Property tests of streaming: a whole answer streamed in any shape real servers use, at
any byte split, merges back to exactly the whole answer; and no sequence of chunks, however
broken, raises anything but ResponseFormatError."""

from __future__ import annotations

import json
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genesys_gateway.deltas import ChunkMerger
from genesys_gateway.errors import ResponseFormatError
from genesys_gateway.http.sse import SSEParser
from genesys_gateway.models import parse_chat_response

TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30)  # astral chars included
NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
USAGE = st.fixed_dictionaries({"prompt_tokens": st.integers(0, 10**6),
                               "completion_tokens": st.integers(0, 10**6),
                               "total_tokens": st.integers(0, 10**6)})
HEAD = {"id": "chatcmpl-p", "object": "chat.completion.chunk", "created": 11, "model": "m"}


def pieces(draw, text: str, code_units: bool) -> list[str]:
    """``text`` cut anywhere: between UTF-16 code units (a surrogate pair may be cut, as a
    server splitting UTF-16 would) or between characters. At least one piece."""
    if code_units:
        units = text.encode("utf-16-le")
        cuts = sorted(set(draw(st.lists(st.integers(0, len(units) // 2), max_size=6))))
        bounds = [0] + [2 * c for c in cuts] + [len(units)]
        return [units[a:b].decode("utf-16-le", "surrogatepass") for a, b in zip(bounds, bounds[1:])]
    cuts = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=6))))
    bounds = [0] + cuts + [len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:])]


@st.composite
def whole_and_stream(draw):
    """(the whole chat completion, the SSE bytes of the same answer streamed)."""
    content = draw(st.none() | TEXT)
    calls = [{"id": f"call_{i}_{draw(st.text(string.ascii_letters, min_size=1, max_size=5))}",
              "type": "function", "function": {"name": draw(NAME), "arguments": draw(TEXT)}}
             for i in range(draw(st.integers(0, 3)))]
    usage = draw(st.none() | USAGE)
    finish = draw(st.sampled_from(["stop", "tool_calls", "length", "content_filter"]))
    message = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
    whole = {**HEAD, "object": "chat.completion",
             "choices": [{"index": 0, "message": message, "finish_reason": finish}]}
    if usage:
        whole["usage"] = usage

    escaped = draw(st.booleans())  # ensure_ascii: surrogate pairs may be cut between chunks
    with_index = draw(st.booleans())  # without: Ollama's and Gemini's streams
    deltas: list[dict] = [{"role": "assistant"}]
    if content is not None:
        deltas += [{"content": p} for p in pieces(draw, content, escaped)]
    elif draw(st.booleans()):
        deltas[0]["content"] = None
    per_call = []
    for c in calls:
        fn, name = c["function"], c["function"]["name"]
        args = pieces(draw, fn["arguments"], escaped)
        first = {"id": c["id"], "type": "function", "function": {"name": name}}
        if draw(st.booleans()):
            first["function"]["arguments"] = args.pop(0)
        name_mode = draw(st.sampled_from(["first only", "repeated", "empty"]))
        items = [first]
        for p in args:
            item: dict = {"function": {"arguments": p}}
            if name_mode == "repeated":
                item.update(id=c["id"], function={"name": name, "arguments": p})
            elif name_mode == "empty":
                item["function"]["name"] = ""
            items.append(item)
        if with_index:
            for item in items:
                item["index"] = calls.index(c)
        per_call.append(items)
    # interleave parallel calls (only an index can tell them apart), or one after another
    order = [i for i, items in enumerate(per_call) for _ in items]
    if with_index:
        order = draw(st.permutations(order))
    cursor = [0] * len(per_call)
    for i in order:
        item = per_call[i][cursor[i]]
        cursor[i] += 1
        last = deltas[-1]
        if with_index and "tool_calls" in last and draw(st.booleans()):
            last["tool_calls"].append(item)  # several pieces in one chunk, even of one index
        else:
            deltas.append({"tool_calls": [item]})
    chunks = [{**HEAD, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    if draw(st.booleans()):
        chunks[-1]["choices"][0]["finish_reason"] = finish  # the last piece comes with the end
    else:
        chunks.append({**HEAD, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    if usage:
        chunks.append({**HEAD, "choices": [], "usage": usage})
    frames = [b"data: " + json.dumps(c, ensure_ascii=escaped).encode() + b"\n\n" for c in chunks]
    if draw(st.booleans()):
        frames.append(b"data: [DONE]\n\n")
    if draw(st.booleans()):
        frames.insert(0, b": keep-alive\r\n\r\n")
    body = b"".join(frames)
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=8)))
    split = [body[a:b] for a, b in zip([0] + cuts, cuts + [len(body)])]
    return whole, split


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(whole_and_stream())
def test_a_streamed_answer_merges_to_exactly_the_whole_answer(case):
    whole, chunks = case
    parser, merger, text = SSEParser(), ChunkMerger(), []
    for piece in chunks:
        for event in parser.feed(piece):
            text.append(merger.feed_data(event.data))
    parser.close()
    assert not parser.truncated and merger.ended
    expected = parse_chat_response(json.dumps(whole).encode())
    assert merger.response() == expected
    assert "".join(text) == (expected.message.content or "")


@settings(max_examples=300, deadline=None)
@given(TEXT.filter(bool), st.data())
def test_arguments_split_anywhere_are_rebuilt_exactly(arguments, data):
    merger = ChunkMerger()
    parts = pieces(data.draw, arguments, code_units=True)
    for i, part in enumerate(parts):
        item = {"index": 0, "function": {"arguments": part}}
        if i == 0:
            item.update(id="c", type="function", function={"name": "f", "arguments": part})
        merger.feed_data(json.dumps({"choices": [{"index": 0, "delta": {"tool_calls": [item]}}]}))
    assert merger.response().message.tool_calls[0].arguments == arguments


SCALARS = (st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False)
           | st.text(max_size=6))  # text includes lone surrogates
WILD = SCALARS | st.lists(SCALARS, max_size=2) | st.dictionaries(st.text(max_size=3), SCALARS, max_size=2)


def either(good, odds=3):
    """The right shape most of the time, anything else now and then."""
    return st.integers(0, odds).flatmap(lambda pick: WILD if pick == 0 else good)


FUNCTION = st.fixed_dictionaries({}, optional={
    "name": either(st.sampled_from(["f", "g", ""])), "arguments": either(st.text(max_size=5))})
TOOL_ITEM = either(st.fixed_dictionaries({}, optional={
    "index": either(st.integers(-1, 2)), "id": either(st.sampled_from(["a", "b", ""])),
    "type": either(st.just("function")), "function": either(FUNCTION)}))
DELTA = either(st.fixed_dictionaries({}, optional={
    "role": either(st.just("assistant")), "content": either(st.text(max_size=6)),
    "tool_calls": either(st.lists(TOOL_ITEM, max_size=3))}))
CHOICE = either(st.fixed_dictionaries({}, optional={
    "index": either(st.integers(0, 2)), "delta": DELTA,
    "finish_reason": either(st.sampled_from(["stop", "tool_calls"]))}))
CHUNK = either(st.fixed_dictionaries({}, optional={
    "choices": either(st.lists(CHOICE, max_size=2), 8), "usage": either(USAGE),
    "error": either(st.none(), 6), "id": WILD, "model": WILD, "created": WILD}), 12)


@settings(max_examples=250, deadline=None)
@given(st.lists(CHUNK, max_size=8))
def test_any_chunks_raise_nothing_but_response_format_error(chunks):
    merger = ChunkMerger()
    try:
        for item in chunks:
            merger.feed(item)
        response = merger.response()
    except ResponseFormatError:
        return
    for choice in response.choices:  # what is returned can always be sent back as UTF-8
        assert choice.message.content is None or isinstance(choice.message.content, str)
        (choice.message.content or "").encode("utf-8")
        for tool_call in choice.message.tool_calls or ():
            (tool_call.arguments or "").encode("utf-8")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=40) | CHUNK.map(json.dumps), max_size=6))
def test_any_event_data_raises_nothing_but_response_format_error(datas):
    merger = ChunkMerger()
    try:
        for data in datas:
            merger.feed_data(data)
        merger.response()
    except ResponseFormatError:
        pass
