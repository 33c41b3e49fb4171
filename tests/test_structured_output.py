"""Structured output against the real emulator: ``output_type`` (attrs, dataclass,
TypedDict) and ``output_schema``, corrections with their own budget, ``"invalid_output"``,
the ``final_answer`` tool mode, tools before the answer, and ``stream()``."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
from typing import Optional

import attrs
import pytest
from typing_extensions import TypedDict

import genesys_gateway as gg
from genesys_gateway.testing import reply, tool_call


class Priority(enum.Enum):
    LOW = "low"
    HIGH = "high"


@attrs.frozen
class Address:
    city: str
    postcode: Optional[str] = None
    country: str = "GB"


@attrs.frozen
class Ticket:
    title: str
    priority: Priority
    estimate_hours: int
    address: Address
    tags: list[str] = attrs.Factory(list)
    notes: str = "none"


@dataclasses.dataclass
class Point:
    x: int
    y: int
    label: str = "origin"


class WeatherBase(TypedDict):
    city: str
    celsius: float


class Weather(WeatherBase, total=False):  # NotRequired[...] needs evaluated annotations:
    wind: str                             # this module has ``from __future__ import annotations``


@attrs.frozen
class Meeting:
    title: str
    when: datetime.datetime  # the schema code cannot express it


TICKET = {"title": "Printer on fire", "priority": "high", "estimate_hours": 2,
          "address": {"city": "Leeds", "postcode": None, "country": None},
          "tags": ["hardware"], "notes": None}
EXPECTED = Ticket("Printer on fire", Priority.HIGH, 2, Address("Leeds", None, "GB"),
                  ["hardware"], "none")
USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def response_format(request):
    return request["response_format"]["json_schema"]


# ------------------------------------------------------------------ output_type, output_schema


def test_an_attrs_answer_is_validated_and_structured(emulator, make_client):
    emulator.script(reply(content=json.dumps(TICKET)))
    result = make_client().run("file a ticket", output_type=Ticket)
    assert result.completed and result.output == EXPECTED
    assert json.loads(result.content) == TICKET
    sent = emulator.chat_requests[0]["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["name"] == "Ticket" and sent["json_schema"]["strict"] is True
    schema = sent["json_schema"]["schema"]
    assert schema["required"] == list(schema["properties"])  # optional fields: required...
    assert schema["properties"]["notes"]["type"] == ["string", "null"]  # ...and nullable
    assert schema["properties"]["priority"] == {"type": "string", "enum": ["low", "high"]}
    assert list(schema["properties"]["address"]["properties"]) == ["city", "postcode", "country"]


def test_a_dataclass_answer(emulator, make_client):
    emulator.script(reply(content='{"x": 3, "y": 4.0, "label": null}'))
    result = make_client().run("a point", output_type=Point)
    assert result.output == Point(3, 4, "origin") and type(result.output.y) is int


def test_a_typeddict_answer(emulator, make_client):
    emulator.script(reply(content='{"city": "Oslo", "celsius": -3.5, "wind": null}'))
    result = make_client().run("weather", output_type=Weather)
    assert result.output == {"city": "Oslo", "celsius": -3.5}  # a null for NotRequired: absent


def test_an_output_schema_answer_is_the_parsed_json(emulator, make_client):
    schema = {"title": "Sum", "type": "object",
              "properties": {"total": {"type": "number"},
                             "currency": {"type": "string", "default": "EUR"}},
              "required": ["total"]}
    emulator.script(reply(content='{"total": 12.5}'))
    result = make_client().run("add it up", output_schema=schema)
    assert result.output == {"total": 12.5, "currency": "EUR"}  # the schema's default
    sent = response_format(emulator.chat_requests[0])
    assert sent["name"] == "Sum" and sent["strict"] is False  # no additionalProperties: false
    assert sent["schema"] == schema  # as given, in its order


def test_a_strict_output_schema_keeps_its_property_order(emulator, make_client):
    schema = {"type": "object", "additionalProperties": False, "required": ["b", "a"],
              "properties": {"reasoning": {"type": "string"}, "b": {"type": "integer"},
                             "a": {"type": "integer"}}}
    emulator.script(reply(content='{"reasoning": "r", "b": 1, "a": 2, "extra": 1}'),
                    reply(content='{"reasoning": "r", "b": 1, "a": 2}'))
    result = make_client().run("go", output_schema=schema)
    sent = response_format(emulator.chat_requests[0])
    assert sent["strict"] is True and sent["name"] == "output"
    assert list(sent["schema"]["properties"]) == ["reasoning", "b", "a"]
    assert result.output == {"reasoning": "r", "b": 1, "a": 2}
    assert "'extra' is not allowed" in result.messages[-2]["content"]


def test_a_fenced_json_answer_is_read(emulator, make_client):
    emulator.script(reply(content='```json\n{"x": 1, "y": 2, "label": "p"}\n```'))
    assert make_client().run("a point", output_type=Point).output == Point(1, 2, "p")


# ------------------------------------------------------------------ corrections


def test_invalid_then_valid_gives_the_output_with_usage_summed(emulator, make_client):
    emulator.script(reply(content="{bad", usage=USAGE),
                    reply(content=json.dumps(TICKET), usage={"prompt_tokens": 30,
                                                             "completion_tokens": 7,
                                                             "total_tokens": 37}))
    result = make_client().run("file a ticket", output_type=Ticket)
    assert result.completed and result.output == EXPECTED
    assert (result.usage.prompt_tokens, result.usage.completion_tokens,
            result.usage.total_tokens) == (40, 12, 52)
    assert result.iterations == 2
    roles = [m["role"] for m in result.messages]
    assert roles == ["user", "assistant", "user", "assistant"]
    assert result.messages[1]["content"] == "{bad"  # the invalid answer stays in the history
    correction = result.messages[2]["content"]
    assert "not valid JSON" in correction
    assert emulator.chat_requests[1]["messages"][2]["content"] == correction


def test_the_correction_names_what_failed_validation(emulator, make_client):
    wrong = dict(TICKET, estimate_hours="two", priority="urgent")
    emulator.script(reply(content=json.dumps(wrong)), reply(content=json.dumps(TICKET)))
    result = make_client().run("file a ticket", output_type=Ticket)
    correction = result.messages[2]["content"]
    assert correction.startswith("Your answer was not accepted: the answer does not match "
                                 "the schema: ")
    assert "priority" in correction or "estimate_hours" in correction
    assert result.output == EXPECTED


def test_invalid_every_time_stops_after_one_plus_output_retries_attempts(emulator, make_client):
    emulator.script(*[reply(content='{"x": "no"}', usage=USAGE) for _ in range(5)])
    result = make_client().run("a point", output_type=Point)
    assert result.stop_reason == "invalid_output" and not result.completed
    assert result.output is None and result.content == '{"x": "no"}'
    assert len(emulator.chat_requests) == 3  # 1 + output_retries (2)
    assert result.usage.total_tokens == 3 * 15
    assert result.messages[-1]["role"] == "assistant"  # no correction asked after the last


@pytest.mark.parametrize("client_retries, run_retries, attempts",
                         [(1, None, 2), (2, 0, 1), (0, 3, 4)])
def test_output_retries_per_client_and_per_run(emulator, make_client, client_retries,
                                               run_retries, attempts):
    emulator.script(*[reply(content="nope") for _ in range(6)])
    client = make_client(output_retries=client_retries)
    assert client.output_retries == client_retries
    result = client.run("a point", output_type=Point, output_retries=run_retries)
    assert result.stop_reason == "invalid_output"
    assert len(emulator.chat_requests) == attempts


def test_corrections_do_not_count_against_max_iterations(emulator, make_client):
    emulator.script(reply(content="{bad"), reply(content='{"x": 1, "y": 2, "label": "p"}'))
    result = make_client().run("a point", output_type=Point, max_iterations=1)
    assert result.completed and result.output == Point(1, 2, "p") and result.iterations == 2


def test_a_cut_answer_is_not_corrected(emulator, make_client):
    emulator.script(reply(content='{"x": 1', finish_reason="length"))
    result = make_client().run("a point", output_type=Point)
    assert result.stop_reason == "length" and result.output is None
    assert len(emulator.chat_requests) == 1


# ------------------------------------------------------------------ with tools, tool mode


@pytest.fixture
def registry():
    reg = gg.ToolRegistry()

    @reg.tool
    def lookup_city(postcode: str) -> str:
        """The city of a postcode."""
        return "Leeds"

    return reg


def test_tools_first_then_the_structured_answer(emulator, make_client, registry):
    emulator.script(reply(tool_calls=[tool_call("lookup_city", {"postcode": "LS1"})]),
                    reply(content=json.dumps(TICKET)))
    result = make_client(tools=registry).run("file a ticket", output_type=Ticket)
    assert result.output == EXPECTED
    assert [r.name for r in result.tool_runs] == ["lookup_city"]
    assert all("response_format" in r for r in emulator.chat_requests)


def test_tool_mode_takes_the_final_answer_calls_arguments(emulator, make_client):
    emulator.script(reply(tool_calls=[tool_call("final_answer", TICKET, id="fa")]))
    conversation = make_client().conversation()
    result = conversation.send("file a ticket", output_type=Ticket, output_mode="tool")
    assert result.completed and result.output == EXPECTED
    assert json.loads(result.content) == TICKET and result.tool_runs == ()
    request = emulator.chat_requests[0]
    assert "response_format" not in request and "tool_choice" not in request
    [tool] = request["tools"]
    assert tool["function"]["name"] == "final_answer" and tool["function"]["strict"] is True
    assert result.messages[-1] == {"role": "tool", "tool_call_id": "fa",
                                   "content": "Answer received."}
    emulator.script(reply(content="anything else?"))
    assert conversation.send("thanks").content == "anything else?"  # the history is valid


def test_tool_mode_corrections_answer_the_call(emulator, make_client, registry):
    emulator.script(reply(tool_calls=[tool_call("final_answer", {"x": 1}, id="a")]),
                    reply(tool_calls=[tool_call("final_answer", "{oops", id="b")]),
                    reply(tool_calls=[tool_call("final_answer", {"x": 1, "y": 2, "label": "p"},
                                                id="c")]))
    result = make_client(tools=registry).run("a point", output_type=Point, output_mode="tool")
    assert result.output == Point(1, 2, "p") and result.iterations == 3
    tool_messages = [m for m in result.messages if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == ["a", "b", "c"]
    assert "missing required propert" in tool_messages[0]["content"]
    assert "not valid JSON" in tool_messages[1]["content"]
    assert "Call final_answer again" in tool_messages[1]["content"]
    names = [t["function"]["name"] for t in emulator.chat_requests[0]["tools"]]
    assert names == ["lookup_city", "final_answer"]


def test_tool_mode_final_answer_beside_other_calls_is_not_taken(emulator, make_client, registry):
    emulator.script(reply(tool_calls=[tool_call("lookup_city", {"postcode": "LS1"}, id="l"),
                                      tool_call("final_answer", TICKET, id="f1")]),
                    reply(tool_calls=[tool_call("final_answer", TICKET, id="f2")]))
    result = make_client(tools=registry).run("go", output_type=Ticket, output_mode="tool")
    assert result.output == EXPECTED and [r.name for r in result.tool_runs] == ["lookup_city"]
    answers = {m["tool_call_id"]: m["content"] for m in result.messages if m["role"] == "tool"}
    assert answers["l"] == "Leeds" and "on its own" in answers["f1"]


def test_tool_mode_accepts_a_valid_text_answer_and_corrects_an_invalid_one(emulator, make_client):
    emulator.script(reply(content="It is (1, 2)"), reply(content='{"x": 1, "y": 2}'))
    result = make_client().run("a point", output_type=Point, output_mode="tool")
    assert result.output == Point(1, 2)
    assert "call the final_answer tool" in result.messages[2]["content"]


def test_tool_mode_invalid_every_time_keeps_the_history_paired(emulator, make_client):
    emulator.script(*[reply(tool_calls=[tool_call("final_answer", {"x": "?"}, id=f"c{i}")])
                      for i in range(3)])
    result = make_client().run("a point", output_type=Point, output_mode="tool",
                               output_retries=2)
    assert result.stop_reason == "invalid_output" and result.output is None
    assert result.messages[-1]["role"] == "tool" and result.messages[-1]["tool_call_id"] == "c2"
    assert "again" not in result.messages[-1]["content"]


def test_a_registered_final_answer_tool_conflicts_with_tool_mode(emulator, make_client):
    reg = gg.ToolRegistry()

    @reg.tool
    def final_answer(text: str) -> str:
        """Mine."""
        return text

    with pytest.raises(gg.ConfigurationError, match="final_answer"):
        make_client(tools=reg).run("go", output_type=Point, output_mode="tool")
    assert emulator.chat_requests == []


# ------------------------------------------------------------------ streams, conversations


def test_stream_ends_with_the_structured_output(emulator, make_client, registry):
    emulator.script(reply(tool_calls=[tool_call("lookup_city", {"postcode": "LS1"})]),
                    reply(content="{bad"), reply(content=json.dumps(TICKET)))
    with make_client(tools=registry).stream("file a ticket", output_type=Ticket) as stream:
        events = list(stream)
    finished = events[-1]
    assert isinstance(finished, gg.RunFinished) and finished.result.output == EXPECTED
    assert stream.result is finished.result
    texts = [e.text for e in events if isinstance(e, gg.TextDelta)]
    assert "".join(texts).endswith(json.dumps(TICKET))


def test_conversation_stream_and_send_take_output_options(emulator, make_client):
    conversation = make_client().conversation(system="be precise")
    emulator.script(reply(content='{"x": 1, "y": 2}'), reply(content='{"total": 3}'))
    stream = conversation.stream("a point", output_type=Point)
    assert stream.until_done().output == Point(1, 2)
    result = conversation.send("sum", output_schema={"type": "object", "properties": {
        "total": {"type": "integer"}}})
    assert result.output == {"total": 3} and len(conversation.messages) == 5


# ------------------------------------------------------------------ bad input


def test_an_output_type_the_schema_code_cannot_express_names_the_field(emulator, make_client):
    client = make_client()
    with pytest.raises(gg.ConfigurationError, match="output_type Meeting field 'when'") as info:
        client.run("book it", output_type=Meeting)
    assert info.value.option == "output_type"
    with pytest.raises(gg.ConfigurationError, match="field 'when'"):
        client.stream("book it", output_type=Meeting)
    assert emulator.chat_requests == []


@pytest.mark.parametrize("kwargs, option", [
    (dict(output_type=Point, output_schema={"type": "object"}), "output_schema"),
    (dict(output_type=int), "output_type"),
    (dict(output_type=list[Point]), "output_type"),
    (dict(output_type=["unhashable"]), "output_type"),
    (dict(output_type=Point(1, 2)), "output_type"),
    (dict(output_type=Point, output_mode="json"), "output_mode"),
    (dict(output_schema=["not", "a", "schema"]), "output_schema"),
    (dict(output_schema={"type": "nope"}), "output_schema"),
    (dict(output_schema={"type": "array"}, output_mode="tool"), "output_schema"),
    (dict(output_type=Point, response_format={"type": "json_object"}), "response_format"),
    (dict(output_type=Point, output_retries=-1), "output_retries"),
])
def test_bad_output_options_are_configuration_errors_at_the_call(emulator, make_client,
                                                                  kwargs, option):
    client = make_client()
    with pytest.raises(gg.ConfigurationError) as info:
        client.run("go", **kwargs)
    assert info.value.option == option
    with pytest.raises(gg.ConfigurationError):
        client.conversation().send("go", **kwargs)
    assert emulator.chat_requests == []


def test_a_misspelt_output_keyword_is_a_type_error_with_a_suggestion(make_client):
    with pytest.raises(TypeError, match="did you mean 'output_type'"):
        make_client().run("go", output_typ=Point)


def test_a_bad_client_output_retries_is_refused(make_client):
    with pytest.raises(gg.ConfigurationError, match="output_retries"):
        make_client(output_retries=-1)
    with pytest.raises(gg.ConfigurationError, match="output_retries"):
        make_client(output_retries=True)


def test_a_run_without_structured_output_has_no_output(emulator, make_client):
    emulator.script(reply(content='{"x": 1}'))
    result = make_client().run("go")
    assert result.output is None and "response_format" not in emulator.chat_requests[0]
