"""validation.py: compilation, schema checking, the validator cache, error messages."""

import copy
import json
import subprocess
import sys
import threading
from pathlib import Path

import fastjsonschema
import pytest

from genesys_gateway.tools import validation
from genesys_gateway.errors import ToolArgumentsError, ToolDefinitionError
from genesys_gateway.tools.draft07 import DRAFT07_META_SCHEMA
from genesys_gateway.tools.validation import SchemaValidator, check_schema, get_validator

from benchmarks.schemas import WEATHER

ROOT = str(Path(__file__).resolve().parent.parent)


def message(schema, data):
    with pytest.raises(ToolArgumentsError) as info:
        get_validator(schema).validate(data)
    return str(info.value)


def test_cache_is_keyed_by_canonical_content():
    a = get_validator({"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]})
    b = get_validator({"required": ["x"], "properties": {"x": {"type": "string"}}, "type": "object"})
    c = get_validator({"type": "object", "properties": {"x": {"type": "integer"}}})
    assert a is b
    assert a is not c
    assert isinstance(a, SchemaValidator)


def test_cache_is_thread_safe_and_returns_one_validator():
    schema = {"type": "object", "properties": {"thread_safe_probe": {"type": "integer"}}}
    validation.clear_cache()
    barrier = threading.Barrier(8)
    results = []

    def worker():
        barrier.wait(timeout=5)
        results.append(get_validator(dict(schema)))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(results) == 8
    assert all(r is results[0] for r in results)


def test_cache_evicts_oldest_when_full(monkeypatch):
    validation.clear_cache()
    monkeypatch.setattr(validation, "VALIDATOR_CACHE_SIZE", 2)
    first = get_validator({"type": "object", "title": "one"})
    get_validator({"type": "object", "title": "two"})
    third = get_validator({"type": "object", "title": "three"})
    assert get_validator({"type": "object", "title": "three"}) is third  # still cached
    assert get_validator({"type": "object", "title": "one"}) is not first  # evicted


def test_defaults_are_applied_and_input_not_mutated():
    schema = {"type": "object", "properties": {"unit": {"type": "string", "default": "celsius"},
                                               "tags": {"type": "array", "default": []}}}
    data = {}
    out = get_validator(schema).validate(data)
    assert out == {"unit": "celsius", "tags": []}
    assert data == {}
    assert out is not data
    # a mutable default is fresh on every call
    out["tags"].append(1)
    assert get_validator(schema).validate({})["tags"] == []


def test_nested_defaults_do_not_mutate_nested_input():
    schema = {"type": "object", "properties": {"opts": {
        "type": "object", "properties": {"depth": {"type": "integer", "default": 2}}}}}
    nested = {}
    data = {"opts": nested}
    out = get_validator(schema).validate(data)
    assert out == {"opts": {"depth": 2}}
    assert nested == {} and data == {"opts": {}}


@pytest.mark.parametrize("schema, data, expected", [
    ({"type": "object", "properties": {"o": {"type": "object", "properties": {
        "d": {"default": 1}}}}},
     {"o": {}}, {"o": {"d": 1}}),
    ({"type": "object", "properties": {"a": {"type": "array", "items": {
        "type": "object", "properties": {"d": {"default": 1}}}}}},
     {"a": [{}, {"d": 2}]}, {"a": [{"d": 1}, {"d": 2}]}),
    ({"type": "object", "definitions": {"x": {"properties": {"d": {"default": 1}}}},
      "properties": {"r": {"$ref": "#/definitions/x"}}},
     {"r": {}}, {"r": {"d": 1}}),
    ({"type": "object", "properties": {"o": {"allOf": [{"properties": {"d": {"default": 1}}}]}}},
     {"o": {}}, {"o": {"d": 1}}),
])
def test_nested_defaults_never_mutate_the_callers_data(schema, data, expected):
    before = copy.deepcopy(data)
    validator = get_validator(schema)
    assert validator.validate(data) == expected
    assert data == before  # the caller's nested dicts did not receive the defaults
    assert repr(validator) == "<SchemaValidator deep_copy=True>"


@pytest.mark.parametrize("schema", [
    WEATHER,
    {"type": "object", "properties": {"u": {"type": "string", "default": "c"}}},
])
def test_top_level_defaults_only_need_a_shallow_copy(schema):
    validator = get_validator(schema)
    assert repr(validator) == "<SchemaValidator deep_copy=False>"
    data = {"location": "x", "nested": {"k": [1]}}
    assert validator.validate(data) is not data
    assert data == {"location": "x", "nested": {"k": [1]}}


def test_shallow_copy_path_keeps_nested_objects_unmodified():
    nested = {"k": 1}
    data = {"location": "x", "extra": nested}
    out = get_validator(WEATHER).validate(data)
    assert out == data and out is not data


@pytest.mark.parametrize("data, expected", [
    ({}, "missing required property 'location'"),
    ({"location": 1}, "location: must be string (got 1)"),
    ({"location": "x", "unit": "kelvin"},
     "unit: must be one of ['celsius', 'fahrenheit'] (got 'kelvin')"),
    ([], "must be object (got [])"),
])
def test_messages_name_the_field_and_expectation(data, expected):
    assert message(WEATHER, data) == f"invalid arguments: {expected}"


def test_additional_property_message():
    schema = {**WEATHER, "additionalProperties": False}
    assert message(schema, {"location": "x", "zz": 1}).endswith(
        "additional property 'zz' is not allowed")
    assert "additional properties 'a', 'b' are not allowed" in message(
        schema, {"location": "x", "a": 1, "b": 2})


def test_nested_and_array_paths():
    schema = {"type": "object", "properties": {
        "address": {"type": "object", "properties": {"zip": {"type": "string"}},
                    "required": ["zip", "city"]},
        "tags": {"type": "array", "items": {"type": "integer"}}}}
    assert message(schema, {"address": {}}).endswith(
        "address: missing required properties 'zip', 'city'")
    assert message(schema, {"address": {"zip": 1, "city": "x"}}).endswith(
        "address.zip: must be string (got 1)")
    assert message(schema, {"tags": [1, "a"]}).endswith("tags[1]: must be integer (got 'a')")


def test_long_values_are_shortened_in_messages():
    text = message(WEATHER, {"location": "x", "unit": "k" * 500})
    assert len(text) < 200 and text.endswith("…)")


def test_label_is_used_in_messages():
    with pytest.raises(ToolArgumentsError, match=r"^invalid arguments for tool 'w': "):
        get_validator(WEATHER).validate({}, label="arguments for tool 'w'")


@pytest.mark.parametrize("schema, fragment", [
    ({"type": "object", "properties": {"a": {"type": "strin"}}}, "parameters"),
    ({"type": "object", "properties": "x"}, "properties"),
    ({"type": "object", "required": ["a", "a"]}, "required"),
    ({"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}}, "parameters"),
    ({"type": "object", "minProperties": -1}, "minProperties"),
])
def test_bad_schemas_raise_definition_error(schema, fragment):
    with pytest.raises(ToolDefinitionError) as info:
        get_validator(schema, label="tool 'x': parameters")
    assert str(info.value).startswith("tool 'x': parameters")
    assert fragment in str(info.value)


def test_non_dict_and_non_json_schemas_rejected():
    with pytest.raises(ToolDefinitionError, match="must be a JSON schema object"):
        get_validator(["type", "object"])
    with pytest.raises(ToolDefinitionError, match="not JSON-serialisable"):
        get_validator({"type": "object", "enum": [{1, 2}]})


def test_bad_regex_is_named_by_the_meta_check():
    validation.clear_cache()
    with pytest.raises(ToolDefinitionError) as info:
        get_validator({"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}},
                      label="tool 'x': parameters")
    assert str(info.value) == (
        "tool 'x': parameters: at properties/a/pattern: is not a valid regular expression: "
        "missing ), unterminated subpattern at position 0 (got '(')")


def test_fastjsonschema_compile_errors_are_still_definition_errors():
    schema = {"type": "object", "properties": {"a": {"$ref": "#/definitions/missing"}}}
    check_schema(schema)  # valid Draft-07; the reference just does not resolve
    with pytest.raises(ToolDefinitionError, match="^schema: invalid JSON schema: "):
        get_validator(schema)


def test_check_schema_always_runs(monkeypatch):
    # the meta-check needs no optional package: even with `import jsonschema` failing
    # it rejects what only a Draft-07 meta-check rejects
    monkeypatch.setitem(sys.modules, "jsonschema", None)
    validation.clear_cache()
    schema = {"type": "object", "minProperties": -1}
    with pytest.raises(ToolDefinitionError, match="^schema: at minProperties: "):
        check_schema(schema)
    with pytest.raises(ToolDefinitionError, match="^schema: at minProperties: "):
        get_validator(schema)


# ------------------------------------------------------------------ the Draft-07 meta-check

TYPES = "'array', 'boolean', 'integer', 'null', 'number', 'object', 'string'"


def definition_error(schema, label="tool 'x': parameters"):
    validation.clear_cache()
    with pytest.raises(ToolDefinitionError) as info:
        get_validator(schema, label=label)
    return str(info.value)


@pytest.mark.parametrize("schema, expected", [
    ({"type": "object", "properties": {"x": {"type": "strnig"}}},
     f"at properties/x/type: unknown type 'strnig' (did you mean 'string'?); must be one of "
     f"{TYPES}, or a non-empty array of them"),
    ({"type": "object", "properties": {"x": {"type": "int"}}},
     f"at properties/x/type: unknown type 'int' (did you mean 'integer'?); must be one of "
     f"{TYPES}, or a non-empty array of them"),
    ({"type": "object", "properties": {"x": {"type": ["string", "strin"]}}},
     f"at properties/x/type/1: unknown type 'strin' (did you mean 'string'?); must be one of "
     f"{TYPES}"),
    ({"type": "object", "properties": {"x": {"type": ["string", "string"]}}},
     "at properties/x/type: must not repeat 'string' (got ['string', 'string'])"),
    ({"type": "object", "additionalProperties": "no"},
     "at additionalProperties: must be a schema (an object or a boolean) (got 'no')"),
    ({"type": "object", "required": "x"}, "at required: must be an array of strings (got 'x')"),
    ({"type": "object", "required": ["a", 1]}, "at required/1: must be a string (got 1)"),
    ({"type": "object", "required": ["a", "a"]},
     "at required: must not repeat 'a' (got ['a', 'a'])"),
    ({"type": "object", "minProperties": -1},
     "at minProperties: must be a non-negative integer (got -1)"),
    ({"type": "object", "properties": "x"}, "at properties: must be an object (got 'x')"),
    ({"type": "object", "properties": {"a": 5}},
     "at properties/a: must be a schema (an object or a boolean) (got 5)"),
    ({"type": "object", "properties": {"a": {"multipleOf": 0}}},
     "at properties/a/multipleOf: must be greater than 0 (got 0)"),
    ({"type": "object", "properties": {"a": {"anyOf": []}}},
     "at properties/a/anyOf: must not be empty (got [])"),
    ({"type": "object", "properties": {"a": {"items": {"type": "strin"}}}},
     f"at properties/a/items/type: unknown type 'strin' (did you mean 'string'?); must be one "
     f"of {TYPES}, or a non-empty array of them"),
    ({"type": "object", "properties": {"a": {"items": [{}, {"maxLength": 1.5}]}}},
     "at properties/a/items/1/maxLength: must be a non-negative integer (got 1.5)"),
    ({"type": "object", "properties": {"a": {"items": 5}}},
     "at properties/a/items: must be a schema (an object or a boolean) or a non-empty array of "
     "schemas (got 5)"),
    ({"type": "object", "dependencies": {"a": ["b", 1]}},
     "at dependencies/a/1: must be a string (got 1)"),
    ({"type": "object", "dependencies": {"a": {"required": "b"}}},
     "at dependencies/a/required: must be an array of strings (got 'b')"),
    ({"type": "object", "patternProperties": {"(": {}}},
     "at patternProperties: key '(' is not a valid regular expression: missing ), "
     "unterminated subpattern at position 0"),
    ({"type": "object", "definitions": {"d": {"not": {"readOnly": "yes"}}}},
     "at definitions/d/not/readOnly: must be a boolean (got 'yes')"),
])
def test_meta_check_messages_name_the_place_and_the_problem(schema, expected):
    assert definition_error(schema) == f"tool 'x': parameters: {expected}"


@pytest.mark.parametrize("schema", [
    {"type": "object", "additionalProperties": "no"},
    {"type": "object", "minProperties": -1},
    {"type": "object", "properties": {"a": {"type": "string", "maxLength": -1}}},
    {"type": "object", "properties": {"a": {"type": ["string", "string"]}}},
    {"type": "object", "properties": {"a": {"multipleOf": 0}}},
    {"type": "object", "properties": {"a": {"anyOf": []}}},
    {"type": "object", "dependencies": {"a": ["b", 1]}},
])
def test_meta_check_refuses_schemas_fastjsonschema_compiles(schema):
    fastjsonschema.compile(copy.deepcopy(schema))  # no complaint: hence the meta-check
    assert definition_error(schema).startswith("tool 'x': parameters: at ")


@pytest.mark.parametrize("key", ["a.b", "x[0]", "{a}", "", "q\"'\\"])
def test_meta_check_paths_keep_awkward_property_names_whole(key):
    schema = {"type": "object", "properties": {
        "a": {"properties": {"b": {"type": "string"}}}, key: {"minimum": "1"}}}
    assert definition_error(schema, label="s") == (
        f"s: at properties/{key}/minimum: must be a number (got '1')")


def test_meta_check_reports_the_first_bad_entry_in_schema_order():
    # fastjsonschema visits "properties" entries in set order (hash randomised)
    properties = {f"p{i}": {"type": "string"} for i in range(40)}
    properties.update({f"bad{i}": {"type": f"zz{i}"} for i in range(40)})
    properties["p7"] = {"maxLength": -1}
    message = definition_error({"type": "object", "properties": properties}, label="s")
    assert message == "s: at properties/p7/maxLength: must be a non-negative integer (got -1)"


@pytest.mark.parametrize("schema, expected", [
    (5, "schema: at <root>: must be a schema (an object or a boolean) (got 5)"),
    ([], "schema: at <root>: must be a schema (an object or a boolean) (got [])"),
    ({"type": "nope"}, f"schema: at type: unknown type 'nope'; must be one of {TYPES}, or a "
                       f"non-empty array of them"),
])
def test_check_schema_on_its_own(schema, expected):
    with pytest.raises(ToolDefinitionError) as info:
        check_schema(schema)
    assert str(info.value) == expected


@pytest.mark.parametrize("schema", [
    True,
    WEATHER,
    {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
     "properties": {"a": False, "b": True, "c": {"type": ["string", "null"]}}},
    # URI formats are annotations: fastjsonschema resolves this reference itself
    {"type": "object", "definitions": {"my thing": {"type": "string"}},
     "properties": {"a": {"$ref": "#/definitions/my thing"}}},
    {"type": "object", "patternProperties": {"^x-\\d+$": {}},
     "dependencies": {"a": ["b"], "c": {"required": ["d"]}},
     "properties": {"t": {"items": [{"const": 1}, {"enum": [1, "a", None]}]}}},
])
def test_check_schema_accepts_valid_draft_07(schema):
    check_schema(schema)


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {}},
    {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "object"}},
                                      "b": {"type": "string", "minLength": 1}},
     "dependencies": {"a": ["b"]}, "definitions": {"x": {}}},
])
def test_check_schema_never_writes_meta_schema_defaults_into_the_schema(schema):
    # the meta-schema declares defaults ("properties": {}, "readOnly": false, "items": true,
    # "minLength": 0...); checking must not add them to the caller's dict
    before = copy.deepcopy(schema)
    check_schema(schema)
    get_validator(schema)
    assert schema == before
    assert sorted(schema) == sorted(before)
    assert all(sorted(schema["properties"][k]) == sorted(before["properties"][k])
               for k in schema["properties"])


def test_meta_schema_constant_is_not_rewritten_by_compilation():
    check_schema(WEATHER)
    assert DRAFT07_META_SCHEMA["$id"] == "http://json-schema.org/draft-07/schema#"
    assert DRAFT07_META_SCHEMA["definitions"]["schemaArray"]["items"] == {"$ref": "#"}
    assert DRAFT07_META_SCHEMA["properties"]["additionalProperties"] == {"$ref": "#"}


def test_absurdly_deep_schema_is_a_definition_error_in_check_schema():
    schema = {}
    for _ in range(DEEP):
        schema = {"not": schema}
    with pytest.raises(ToolDefinitionError, match="^schema: schema is nested too deeply$"):
        check_schema(schema)


META_PROBE = r"""
import socket, threading, fastjsonschema

def refuse(*args, **kwargs):
    raise AssertionError("network access while compiling")

socket.socket.connect = refuse
socket.create_connection = refuse
compiled = []
real_compile = fastjsonschema.compile

def counting_compile(definition, *args, **kwargs):
    if isinstance(definition, dict) and definition.get("title") == "Core schema meta-schema":
        compiled.append(kwargs.get("use_default"))
        threading.Event().wait(0.05)  # widen the window for a racing second compile
    return real_compile(definition, *args, **kwargs)

fastjsonschema.compile = counting_compile
from genesys_gateway.tools import validation
from genesys_gateway.errors import ToolDefinitionError
assert compiled == [], "compiled at import time"
barrier = threading.Barrier(8)
errors = []

def worker():
    barrier.wait(5)
    try:
        validation.check_schema({"type": "object", "minProperties": -1})
    except ToolDefinitionError as exc:
        errors.append(str(exc))

threads = [threading.Thread(target=worker) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join(10)
validation.get_validator({"type": "object"})
print(compiled, len(errors), errors[0])
"""


def test_meta_schema_is_compiled_lazily_once_and_offline():
    out = subprocess.run([sys.executable, "-c", META_PROBE], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        "[False] 8 schema: at minProperties: must be a non-negative integer (got -1)")


def test_remote_refs_are_refused_without_network():
    schema = {"type": "object", "properties": {"a": {"$ref": "http://127.0.0.1:9/x.json"}}}
    with pytest.raises(ToolDefinitionError, match="remote \\$ref"):
        get_validator(schema)


def test_local_refs_work_and_schema_is_not_rewritten():
    schema = {"type": "object", "definitions": {"unit": {"enum": ["c", "f"]}},
              "properties": {"u": {"$ref": "#/definitions/unit"}}}
    before = repr(schema)
    v = get_validator(schema)
    assert v.validate({"u": "c"}) == {"u": "c"}
    assert "u: must be one of" in message(schema, {"u": "x"})
    assert repr(schema) == before


def test_compiled_as_draft_07():
    # dependentRequired is a 2019-09 keyword: a Draft-07 validator ignores it
    schema = {"type": "object", "dependentRequired": {"a": ["b"]}}
    assert get_validator(schema).validate({"a": 1}) == {"a": 1}


def test_an_explicit_schema_dialect_is_respected():
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
              "properties": {"n": {"type": "integer", "exclusiveMinimum": 0}}}
    assert "n: must be bigger than 0" in message(schema, {"n": 0})


@pytest.mark.parametrize("raw, expected", [
    (None, ({}, None)),
    ("", ({}, None)),
    ("  \n", ({}, None)),
    ('{"a": 1}', ({"a": 1}, None)),
    (b'{"a": 1}', ({"a": 1}, None)),
    ({"a": 1}, ({"a": 1}, None)),
    ('{"a": 1,}', (None, "arguments are not valid JSON: " + (  # json's own words, per version
        "Illegal trailing comma before end of object at char 7" if sys.version_info >= (3, 13)
        else "Expecting property name enclosed in double quotes at char 8"))),
    ("null", (None, "arguments must be a JSON object, got null")),
    ("3", (None, "arguments must be a JSON object, got number")),
    ("true", (None, "arguments must be a JSON object, got boolean")),
    ('{"x": Infinity}', (None, "arguments are not valid JSON: Infinity is not valid JSON")),
    (42, (None, "arguments must be a JSON object, got int")),
    ('\ufeff{"a": 1}', (None, "arguments are not valid JSON: Unexpected UTF-8 BOM (decode "
                        "using utf-8-sig) at char 0")),  # json.loads's words, kept
])
def test_parse_arguments(raw, expected):
    assert validation.parse_arguments(raw) == expected


def test_canonical_json_is_json_dumps_with_sorted_keys():
    value = {"b": [1, 2.5, None, True], "a": {"z": "é", "y": "\u2028"}}
    assert validation.canonical_json(value) == json.dumps(value, sort_keys=True, allow_nan=False)
    with pytest.raises(ValueError):
        validation.canonical_json({"x": float("nan")})
    with pytest.raises(TypeError):
        validation.canonical_json({"x": object()})


def test_parse_arguments_copies_mappings():
    source = {"a": 1}
    parsed, _ = validation.parse_arguments(source)
    assert parsed == source and parsed is not source


# ------------------------------------------------------------------ absurd nesting


def nested(depth):
    """A list nested ``depth`` levels deep, built without recursion."""
    value = []
    for _ in range(depth):
        value = [value]
    return value


DEEP = 10 * sys.getrecursionlimit()  # too deep to copy or validate recursively


@pytest.mark.parametrize("raw", ["[" * 100_000, '{"a": ' * 100_000, b"[" * 100_000])
def test_parse_arguments_refuses_absurd_nesting(raw):
    assert validation.parse_arguments(raw) == (
        None, "arguments are not valid JSON: nested too deeply")


def test_deep_data_with_nested_defaults_is_refused_not_a_recursion_error():
    # a nested default makes the validator deep-copy its input
    schema = {"type": "object", "properties": {
        "x": {}, "opt": {"type": "object", "properties": {"n": {"type": "integer", "default": 1}}}}}
    validator = get_validator(schema)
    assert repr(validator) == "<SchemaValidator deep_copy=True>"
    with pytest.raises(ToolArgumentsError) as info:
        validator.validate({"x": nested(DEEP)}, label="arguments for tool 't'")
    assert str(info.value) == "invalid arguments for tool 't': nested too deeply"
    assert validator.validate({"x": nested(3)}) == {"x": nested(3)}  # still works


def test_deep_data_in_a_recursive_schema_is_refused_not_a_recursion_error():
    schema = {"type": "object", "properties": {"tree": {"$ref": "#/definitions/node"}},
              "definitions": {"node": {"type": "array", "items": {"$ref": "#/definitions/node"}}}}
    validator = get_validator(schema)
    assert repr(validator) == "<SchemaValidator deep_copy=False>"  # fastjsonschema recurses
    with pytest.raises(ToolArgumentsError, match=r"^invalid arguments: nested too deeply$"):
        validator.validate({"tree": nested(DEEP)})
    assert validator.validate({"tree": nested(3)}) == {"tree": nested(3)}


def test_registry_validate_arguments_refuses_deep_arguments():
    from genesys_gateway.tools import ToolRegistry

    reg = ToolRegistry()
    reg.register("t", "", {"type": "object", "properties": {
        "x": {"type": "array", "items": {"type": "object", "properties": {
            "y": {"default": 0}}}}}}, lambda **kw: kw)
    with pytest.raises(ToolArgumentsError, match="^invalid arguments for tool 't': nested too "
                                                 "deeply$"):
        reg.validate_arguments("t", {"x": [{"z": nested(DEEP)}]})


def test_absurdly_deep_schema_is_a_definition_error():
    schema = {"type": "object", "properties": {"x": nested(DEEP)}}
    with pytest.raises(ToolDefinitionError, match="nested too deeply"):
        get_validator(schema, label="tool 't': parameters")
