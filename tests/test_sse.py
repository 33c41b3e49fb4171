"""The SSE parser against the WHATWG event-stream rules (the standard's own examples first),
at every chunk boundary, and against bad input: every refusal is a ResponseFormatError."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genesys_gateway.errors import ResponseFormatError
from genesys_gateway.http.sse import Event, SSEParser, iter_events


def parse(*chunks: bytes, **limits: int) -> list[Event]:
    return list(iter_events(chunks, **limits))


def data_of(*chunks: bytes) -> list[str]:
    return [e.data for e in parse(*chunks)]


# -- the standard's examples (html.spec.whatwg.org, "Server-sent events", 9.2.5/9.2.6) --------

def test_spec_multiline_data_is_joined_with_newlines():
    assert parse(b"data: YHOO\ndata: +2\ndata: 10\n\n") == [Event("message", "YHOO\n+2\n10")]


def test_spec_comment_ids_and_a_kept_second_space():
    stream = (b": test stream\n\ndata: first event\nid: 1\n\n"
              b"data:second event\nid\n\ndata:  third event\n\n")
    assert parse(stream) == [
        Event("message", "first event", "1"),
        Event("message", "second event", ""),  # "id" with no colon resets the last event id
        Event("message", " third event", ""),  # only one space after the colon is dropped
    ]


def test_spec_empty_data_newline_data_and_a_discarded_last_block():
    parser = SSEParser()
    events = parser.feed(b"data\n\ndata\ndata\n\ndata:")
    parser.close()
    assert events == [Event("message", ""), Event("message", "\n")]
    assert parser.truncated  # "data:" with no blank line after it was discarded


def test_spec_the_space_after_the_colon_is_optional():
    assert data_of(b"data:test\n\ndata: test\n\n") == ["test", "test"]


def test_spec_event_types():
    events = parse(b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\n"
                   b"event: add\ndata: 113411\n\n")
    assert [(e.event, e.data) for e in events] == [("add", "73857293"), ("remove", "2153"),
                                                    ("add", "113411")]


# -- line endings -------------------------------------------------------------------------

@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending_gives_the_same_events(end):
    stream = end.join([b"event: a", b"data: 1", b"data: 2", b"", b": c", b"data: 3", b"", b""])
    assert [(e.event, e.data) for e in parse(stream)] == [("a", "1\n2"), ("message", "3")]


def test_mixed_line_endings():
    assert data_of(b"data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\r") == ["a\nb\nc", "d"]


def test_cr_lf_split_across_two_chunks_is_one_line_end():
    # Were "\r" | "\n" two ends, the blank line would dispatch "a" alone.
    assert data_of(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == ["a\nb"]


def test_cr_at_a_chunk_end_followed_by_an_empty_chunk_then_lf():
    assert data_of(b"data: a\r", b"", b"\n", b"\n") == ["a"]


def test_cr_cr_is_two_line_ends():
    assert data_of(b"data: a\r", b"\rdata: b\r\r") == ["a", "b"]


# -- fields -------------------------------------------------------------------------------

def test_byte_order_mark_at_the_start_is_dropped_even_when_split():
    assert data_of(b"\xef", b"\xbb", b"\xbfdata: x\n\n") == ["x"]


def test_only_one_byte_order_mark_is_dropped():
    # The second BOM is part of the field name "\ufeffdata", which is unknown: no event.
    assert parse(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n") == []


def test_a_byte_order_mark_later_in_the_stream_is_data():
    assert data_of(b"data: a\n\n\xef\xbb\xbfdata: b\n\ndata: \xef\xbb\xbfc\n\n") == ["a", "\ufeffc"]


def test_field_without_colon_has_an_empty_value():
    assert parse(b"data\nevent\n\n") == [Event("message", "")]


def test_only_one_space_is_stripped_and_no_other_whitespace():
    assert data_of(b"data:  two\n\ndata:\tTab\n\ndata: a:b: c\n\n") == [" two", "\tTab", "a:b: c"]


def test_unknown_and_wrongly_cased_fields_are_ignored():
    assert parse(b"Data: x\nfoo: bar\nEVENT: y\n\n") == []
    assert parse(b"foo: bar\ndata: x\n\n") == [Event("message", "x")]


def test_comments_are_ignored_anywhere():
    assert data_of(b":\n: ping\ndata: a\n:comment inside\ndata: b\n\n:\n\n") == ["a\nb"]


def test_event_type_resets_after_each_dispatch_and_after_a_dataless_block():
    events = parse(b"event: foo\n\ndata: x\n\nevent: bar\ndata: y\n\ndata: z\n\n")
    assert [(e.event, e.data) for e in events] == [("message", "x"), ("bar", "y"), ("message", "z")]


def test_empty_event_field_means_message():
    assert parse(b"event:\ndata: x\n\n") == [Event("message", "x")]


def test_last_event_id_persists_and_can_be_set_by_a_dataless_block():
    parser = SSEParser()
    events = parser.feed(b"id: 5\n\ndata: x\n\nid: 6\ndata: y\n\ndata: z\n\nid\n\ndata: w\n\n")
    assert [(e.data, e.id) for e in events] == [("x", "5"), ("y", "6"), ("z", "6"), ("w", "")]
    assert parser.last_event_id == ""


def test_an_id_takes_effect_for_reconnection_only_at_a_blank_line():
    parser = SSEParser()
    parser.feed(b"id: 1\ndata: a\n\nid: 2\ndata: b\n")
    assert parser.last_event_id == "1"  # the event with id 2 never ended
    parser.feed(b"\n")
    assert parser.last_event_id == "2"


def test_an_id_containing_nul_is_ignored():
    events = parse(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n")
    assert [e.id for e in events] == ["1", "1"]


def test_nul_in_data_is_data():
    assert data_of(b"data: a\x00b\n\n") == ["a\x00b"]


@pytest.mark.parametrize("value, expected", [
    (b"3000", 3000), (b"0", 0), (b"3s", None), (b"-1", None), (b"", None), (b" 5", 5), (b"  5", None), (b"5 ", None),
    ("\u0663".encode(), None),  # an Arabic-Indic digit: a digit, not an ASCII digit
    (b"1.5", None), (b"99999999999999999999", 99999999999999999999),
])
def test_retry_is_kept_only_when_all_ascii_digits(value, expected):
    parser = SSEParser()
    events = parser.feed(b"retry:" + value + b"\ndata: x\n\n")
    assert events[0].retry == expected and parser.retry == expected


def test_retry_lasts_until_changed():
    events = parse(b"retry: 10\n\ndata: a\n\nretry: 20\ndata: b\n\nretry: x\ndata: c\n\n")
    assert [e.retry for e in events] == [10, 20, 20]


# -- end of stream ------------------------------------------------------------------------

@pytest.mark.parametrize("tail", [b"data: x", b"data: x\n", b"data: x\r\n", b"data: x\ndata: y\n",
                                  b"event: e\ndata: x\n", b"data: \xe2\x82"])
def test_an_event_not_ended_by_a_blank_line_is_never_dispatched(tail):
    parser = SSEParser()
    events = parser.feed(b"data: first\n\n" + tail)
    parser.close()
    assert events == [Event("message", "first")]
    assert parser.truncated


def test_a_clean_end_is_not_truncated_and_close_is_idempotent():
    parser = SSEParser()
    assert parser.feed(b"data: a\n\n: bye\n") == [Event("message", "a")]
    parser.close()
    parser.close()
    assert not parser.truncated
    with pytest.raises(ValueError):
        parser.feed(b"data: b\n\n")


def test_empty_chunks_and_an_empty_stream():
    parser = SSEParser()
    assert parser.feed(b"") == []
    parser.close()
    assert not parser.truncated


# -- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    b"\xff", b"data: \xc0\xaf\n\n",  # invalid start byte; an overlong "/"
    b"data: \xed\xa0\x80\n\n",  # an encoded surrogate
    b"data: \xe2\x28\xa1\n\n",  # a broken continuation
    b"data: \xf4\x90\x80\x80\n\n",  # beyond U+10FFFF
])
def test_bytes_that_are_not_utf8_are_a_response_format_error(bad):
    with pytest.raises(ResponseFormatError, match="UTF-8"):
        parse(bad)


def test_bad_utf8_split_across_chunks_is_still_refused():
    parser = SSEParser()
    assert parser.feed(b"data: \xe2") == []
    with pytest.raises(ResponseFormatError, match="UTF-8"):
        parser.feed(b"\x28\n\n")


def test_a_line_at_the_limit_passes_and_one_longer_is_refused():
    assert parse(b"data: " + b"x" * 94 + b"\n\n", max_line_length=100) == [Event("message", "x" * 94)]
    with pytest.raises(ResponseFormatError, match="longer than 100"):
        parse(b"data: " + b"x" * 95 + b"\n\n", max_line_length=100)


@pytest.mark.parametrize("line", [b"data: ", b": comment ", b"unknown"])
def test_a_long_line_fed_in_small_pieces_is_refused_as_soon_as_it_passes_the_limit(line):
    parser = SSEParser(max_line_length=1000)
    parser.feed(line)
    fed = len(line)
    with pytest.raises(ResponseFormatError, match="longer than 1000"):
        while True:
            parser.feed(b"y" * 7)
            fed += 7
            assert fed <= 1007  # memory stays bounded: refused at the piece that crossed


def test_a_long_line_ended_in_the_same_chunk_as_short_ones_is_refused():
    with pytest.raises(ResponseFormatError, match="longer than 50"):
        parse(b"data: a\n\n" + b"data: " + b"z" * 60 + b"\n\ndata: b\n\n", max_line_length=50)
    with pytest.raises(ResponseFormatError, match="longer than 50"):
        parse(b"data: a\n\n" + b"data: " + b"z" * 60, max_line_length=50)


def test_an_event_that_never_ends_is_refused_past_its_size_limit():
    parser = SSEParser(max_event_size=1000)
    with pytest.raises(ResponseFormatError, match="more than 1000 characters"):
        for _ in range(1000):
            parser.feed(b"data: 0123456789\n")
    # and dispatching resets the count
    parser = SSEParser(max_event_size=1000)
    for _ in range(500):
        assert parser.feed(b"data: 0123456789\ndata: abc\n\n") == [Event("message", "0123456789\nabc")]


@pytest.mark.parametrize("kwargs", [{"max_line_length": 0}, {"max_event_size": -1},
                                    {"max_line_length": 1.5}, {"max_event_size": True}])
def test_limits_must_be_positive_integers(kwargs):
    with pytest.raises(ValueError):
        SSEParser(**kwargs)


# -- chunk boundaries ---------------------------------------------------------------------

REALISTIC = (
    "\ufeff: keep-alive\r\n\r\n"
    'data: {"id":"chatcmpl-1","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\r\n\r\n'
    'data: {"choices":[{"index":0,"delta":{"content":"Grüße, 世界 🌍"}}]}\n\n'
    "event: progress\rid: 42\rretry: 1500\rdata: line one\rdata: line two\r\r"
    'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"a\\":"}}]}}]}\n\n'
    ": comment with ünïcödé\n"
    "data:[DONE]\n\n"
).encode()


def test_realistic_stream_whole():
    events = parse(REALISTIC)
    assert len(events) == 5
    assert events[1].data.endswith('"Grüße, 世界 🌍"}}]}')
    assert events[2] == Event("progress", "line one\nline two", "42", 1500)
    assert events[4] == Event("message", "[DONE]", "42", 1500)


def test_every_two_way_split_of_a_realistic_stream_gives_the_same_events():
    whole = parse(REALISTIC)
    for i in range(len(REALISTIC) + 1):
        assert parse(REALISTIC[:i], REALISTIC[i:]) == whole, i


def test_byte_by_byte_gives_the_same_events():
    assert parse(*(REALISTIC[i:i + 1] for i in range(len(REALISTIC)))) == parse(REALISTIC)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, len(REALISTIC)), max_size=30))
def test_any_split_of_a_realistic_stream_gives_the_same_events(cuts):
    cuts = sorted(cuts)
    chunks = [REALISTIC[a:b] for a, b in zip([0] + cuts, cuts + [len(REALISTIC)])]
    assert parse(*chunks) == parse(REALISTIC)


def reference(stream: bytes) -> list[Event]:
    """The standard's algorithm, written as plainly as possible on the whole stream."""
    text = stream.decode("utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = re.split("\r\n|\r|\n", text)
    lines.pop()  # what follows the last line end is a partial line: discarded
    events, data, kind, last_id, retry = [], "", "", "", None
    for line in lines:
        if line == "":
            if data:
                events.append(Event(kind or "message", data[:-1] if data.endswith("\n") else data,
                                    last_id, retry))
            data, kind = "", ""
            continue
        if line.startswith(":"):
            continue
        name, value = (line.split(":", 1) + [""])[:2] if ":" in line else (line, "")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data += value + "\n"
        elif name == "event":
            kind = value
        elif name == "id" and "\0" not in value:
            last_id = value
        elif name == "retry" and value and all(c in "0123456789" for c in value):
            retry = int(value)
    return events


LINE = st.one_of(
    st.just(""), st.just(""), st.just("data"), st.just("data:"), st.just(":"), st.just("id"),
    st.builds("{}{}".format, st.sampled_from(["data:", "data: ", "data:  ", "event:", "event: ",
                                              "id: ", "retry:", "retry: ", ": ", "x: ", "Data: "]),
              st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]),
                      max_size=12)),
)
ENDING = st.sampled_from(["\n", "\r\n", "\r"])


@settings(max_examples=250, deadline=None)
@given(st.lists(st.tuples(LINE, ENDING), max_size=25), st.booleans(), st.data())
def test_any_stream_at_any_split_matches_the_standards_algorithm(lines, bom, data):
    text = ("\ufeff" if bom else "") + "".join(line + end for line, end in lines)
    stream = text.encode("utf-8")
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    chunks = [stream[a:b] for a, b in zip([0] + cuts, cuts + [len(stream)])]
    assert parse(*chunks) == reference(stream)


def test_the_benchmark_runs_and_reports_ratios():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks import sse as bench

    rows = bench.bench_stream(50, repeats=1, number=1)
    assert rows[0][0].startswith("bare loop") and all(r[2].endswith("x") for r in rows)
