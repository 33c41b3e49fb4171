"""Structured output's schemas, without a server: strict vs non-strict detection, the strict
form (optional fields required-but-nullable, nulls mapped back), the spec cache, the
emulator's reading of OpenAI's strict rules, and dataclasses in the tools wing."""

import dataclasses
import enum
import json
from typing import Optional, Union

import attrs
import pytest

import genesys_gateway as gg
from genesys_gateway.output import OutputInvalid, output_spec
from genesys_gateway.strict_schema import meets_strict_rules, strict_form
from genesys_gateway.testing.emulator.validation import RequestInvalid, validate_chat_request
from genesys_gateway.tools.schema import annotation_schema, function_schema


def obj(properties, required=None, **extra):
    return {"type": "object", "properties": properties,
            "required": list(properties) if required is None else required,
            "additionalProperties": False, **extra}


STRING = {"type": "string"}


# ------------------------------------------------------------------ strict detection


@pytest.mark.parametrize("schema", [
    obj({}),
    obj({"a": STRING, "b": {"type": ["integer", "null"]}}),
    obj({"a": obj({"b": {"type": "array", "items": obj({"c": {"enum": ["x"], "type": "string"}})}})}),
    obj({"a": {"anyOf": [obj({"x": STRING}), {"type": "null"}]}}),
    obj({"a": {"$ref": "#/$defs/A"}}, **{"$defs": {"A": obj({"x": STRING})}}),
    obj({"a": {"type": "string", "pattern": "^a", "description": "d", "title": "t"}}),
])
def test_schemas_meeting_the_strict_rules(schema):
    assert meets_strict_rules(schema)


@pytest.mark.parametrize("schema, why", [
    ({"type": "object", "properties": {"a": STRING}, "required": ["a"]}, "no additionalProperties"),
    (obj({"a": STRING}, required=[]), "a property not required"),
    (obj({"a": {"type": "object", "additionalProperties": {"type": "integer"}}}), "a map"),
    (obj({"a": {"type": "object", "properties": {"b": STRING}, "required": ["b"]}}),
     "a nested object without additionalProperties: false"),
    (obj({"a": {"type": "string", "minLength": 1}}), "an unsupported keyword"),
    (obj({"a": {"type": "array", "items": STRING, "uniqueItems": True}}), "uniqueItems"),
    (obj({"a": {"type": "string", "default": "x"}}), "a default"),
    (obj({"a": {"type": "array", "items": [STRING, STRING]}}), "tuple items"),
    (obj({"a": {}}), "a schema without a type"),
    ({"anyOf": [obj({})]}, "a root that is not an object"),
    ({"type": "array", "items": STRING}, "an array root"),
    (obj({"a": obj({"a": obj({"a": obj({"a": obj({"a": obj({"a": obj({"a": obj({"a": obj({
        "a": obj({"a": obj({})})})})})})})})})})}), "11 levels of objects"),
    (obj({f"p{i}": STRING for i in range(5001)}), "more than 5,000 properties"),
])
def test_schemas_breaking_the_strict_rules(schema, why):
    assert not meets_strict_rules(schema), why


def test_a_type_with_a_map_or_tuple_is_sent_as_it_is_with_strict_false():
    @attrs.frozen
    class Scores:
        by_name: dict[str, int]
        pair: tuple[int, int] = (0, 0)

    spec = output_spec(Scores)
    assert spec.strict is False
    assert spec.schema == annotation_schema(Scores, "x")  # defaults and required as they were
    assert spec.request_params()["response_format"]["json_schema"]["strict"] is False
    assert spec.parse('{"by_name": {"a": 1}}') == Scores({"a": 1}, (0, 0))


# ------------------------------------------------------------------ the strict form


def test_optional_properties_become_required_and_nullable_and_nulls_map_back():
    schema = obj({"a": STRING, "b": {"type": "integer", "default": 3}, "c": STRING,
                  "d": {"type": ["string", "null"], "default": None}}, required=["a"])
    strict, lenient, fix = strict_form(schema)
    assert strict == obj({"a": STRING, "b": {"type": ["integer", "null"]},
                          "c": {"type": ["string", "null"]}, "d": {"type": ["string", "null"]}})
    assert lenient["required"] == ["a"] and lenient["properties"]["b"]["default"] == 3
    value = {"a": "x", "b": None, "c": None, "d": None}
    fix(value)
    assert value == {"a": "x", "b": 3, "d": None}  # default set, key dropped, null kept


def test_a_strict_schema_needs_no_fix():
    schema = obj({"a": STRING})
    assert strict_form(schema) == (schema, schema, None)


def test_nulls_map_back_inside_lists_and_unions():
    @attrs.frozen
    class Cat:
        name: str
        lives: int = 9

    @attrs.frozen
    class Dog:
        name: str
        good: bool
        toy: Optional[str] = "ball"

    @attrs.frozen
    class Home:
        pets: list[Union[Cat, Dog]]
        owner: Optional[Cat] = None

    spec = output_spec(Home)
    assert spec.strict is True
    answer = {"pets": [{"name": "Tom", "lives": None}, {"name": "Rex", "good": True, "toy": None}],
              "owner": None}
    assert spec.parse(json.dumps(answer)) == Home([Cat("Tom", 9), Dog("Rex", True, None)])
    # a branch's defaults never leak into a value another branch matches
    assert spec.parse('{"pets": [{"name": "Rex", "good": false}, {"name": "Tom"}]}') == Home(
        [Dog("Rex", False, "ball"), Cat("Tom", 9)])
    union_schema = output_spec(output_schema=obj({"pet": {"anyOf": [
        obj({"default": STRING, "n": {"type": "integer", "default": 1}}, required=["default"]),
        obj({"m": STRING})]}}))
    assert union_schema.parse('{"pet": {"m": "x"}}') == {"pet": {"m": "x"}}
    assert union_schema.parse('{"pet": {"default": "d", "n": null}}') == {
        "pet": {"default": "d", "n": 1}}


def test_enums_and_nested_types():
    class Size(enum.Enum):
        S = "s"
        L = "l"

    @dataclasses.dataclass
    class Item:
        sku: str
        size: Size = Size.S

    @attrs.frozen
    class Order:
        items: list[Item]
        express: Optional[bool] = None

    spec = output_spec(Order)
    item = spec.schema["properties"]["items"]["items"]
    assert item["properties"]["size"] == {"type": ["string", "null"], "enum": ["s", "l", None]}
    assert spec.parse('{"items": [{"sku": "a", "size": null}, {"sku": "b", "size": "l"}], '
                      '"express": true}') == Order([Item("a"), Item("b", Size.L)], True)
    with pytest.raises(OutputInvalid, match=r"size: must be one of"):
        spec.parse('{"items": [{"sku": "a", "size": "xl"}], "express": null}')


def test_an_answer_leaving_optional_fields_out_is_accepted():
    @attrs.frozen
    class Note:
        text: str
        pinned: bool = False

    assert output_spec(Note).parse('{"text": "t"}') == Note("t")


@pytest.mark.parametrize("raw, problem", [
    ("", "not valid JSON"),
    ("[1, 2]", "must be object"),
    ('{"text": NaN}', "not valid JSON"),
    ('{"text": 1}', "text: must be string"),
    ('{"text": "t", "x": 1}', "'x' is not allowed"),
])
def test_what_an_invalid_answer_is_told(raw, problem):
    @attrs.frozen
    class Note:
        text: str

    with pytest.raises(OutputInvalid, match=problem):
        output_spec(Note).parse(raw)


def test_a_spec_is_built_once_per_type_and_per_schema():
    @attrs.frozen
    class Once:
        a: int

    assert output_spec(Once) is output_spec(Once)
    assert output_spec(Once).validator is output_spec(output_schema=obj({"a": {"type": "integer"}})
                                                      ).validator  # one compiled validator
    assert output_spec(output_schema={"type": "object"}) is output_spec(
        output_schema={"type": "object"})
    assert output_spec(Once, output_mode="tool").tool_definition()["function"]["name"] == \
        "final_answer"


# ------------------------------------------------------------------ the emulator's rules


def request(response_format=None, tools=None):
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    if response_format is not None:
        body["response_format"] = response_format
    if tools is not None:
        body["tools"] = tools
    return body


@pytest.mark.parametrize("response_format", [
    {"type": "text"}, {"type": "json_object"},
    {"type": "json_schema", "json_schema": {"name": "a-b_1", "schema": {"type": "object"}}},
    {"type": "json_schema", "json_schema": {"name": "x", "strict": True, "schema": obj({"a": STRING})}},
    {"type": "json_schema", "json_schema": {"name": "x", "strict": False,
                                            "schema": {"type": "object", "properties": {"a": {}}}}},
])
def test_the_emulator_accepts_what_openai_accepts(response_format):
    validate_chat_request(request(response_format))


@pytest.mark.parametrize("response_format, message", [
    ({"type": "xml"}, "must be one of"),
    ({"type": "json_schema"}, "Missing required parameter"),
    ({"type": "json_schema", "json_schema": {"name": "a b"}}, "does not match pattern"),
    ({"type": "json_schema", "json_schema": {"name": "x", "strict": "yes"}}, "boolean"),
    ({"type": "json_schema", "json_schema": {"name": "x", "strict": True, "schema": {
        "type": "object", "properties": {"a": STRING}, "required": ["a"]}}}, "additionalProperties"),
    ({"type": "json_schema", "json_schema": {"name": "x", "strict": True,
                                             "schema": obj({"a": STRING}, required=[])}},
     "Missing 'a'"),
])
def test_the_emulator_refuses_what_openai_refuses(response_format, message):
    with pytest.raises(RequestInvalid, match=message):
        validate_chat_request(request(response_format))


def test_the_emulator_checks_strict_tool_schemas():
    tool = {"type": "function", "function": {"name": "f", "strict": True,
                                             "parameters": obj({"a": STRING}, required=[])}}
    with pytest.raises(RequestInvalid, match="Missing 'a'"):
        validate_chat_request(request(tools=[tool]))


def test_what_the_sdk_sends_passes_the_emulators_strict_rules():
    @attrs.frozen
    class Deep:
        a: Optional[int] = None
        b: list[dict[str, int]] = attrs.Factory(list)

    for spec in (output_spec(Deep), output_spec(Deep, output_mode="tool")):
        validate_chat_request(dict(request(spec.request_params().get("response_format"),
                                           [spec.tool_definition()])))


# ------------------------------------------------------------------ the tools wing


def test_a_dataclass_tool_parameter_gets_a_schema_and_is_structured():
    @dataclasses.dataclass
    class Box:
        width: int
        label: str = dataclasses.field(default="box", metadata={"description": "shown"})
        tags: list[str] = dataclasses.field(default_factory=list)

    def pack(box: Box) -> str:
        return box.label

    derived = function_schema(pack, tool_name="pack", localns={"Box": Box})
    schema = derived.parameters["properties"]["box"]
    assert schema["required"] == ["width"]
    assert schema["properties"]["label"] == {"type": "string", "default": "box",
                                             "description": "shown"}
    assert derived.converter({"box": {"width": 2.0}})["box"] == Box(2)


def test_a_dataclass_tool_runs_through_the_registry():
    @dataclasses.dataclass
    class Size:
        w: int
        h: int

    registry = gg.ToolRegistry()

    @registry.tool
    def area(size: Size) -> int:
        """Area."""
        return size.w * size.h

    assert registry.get("area").handler(Size(2, 3)) == 6
    assert registry.validate_arguments("area", {"size": {"w": 2, "h": 3}}) == {
        "size": {"w": 2, "h": 3}}


# ------------------------------------------------------------------ the benchmark


def test_the_structured_output_benchmark_runs_and_reports_ratios():
    import pathlib
    import sys

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
    from benchmarks import structured_output as bench

    rows = bench.bench_structured(repeats=1, number=5)
    assert len(rows) == 4 and all(row[2].endswith("x") for row in rows)
