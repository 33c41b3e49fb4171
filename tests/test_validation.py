"""validation.py: compilation, schema checking, the validator cache, error messages."""

import sys
import threading

import pytest

from genesys_gateway.tools import validation
from genesys_gateway.errors import ToolArgumentsError, ToolDefinitionError
from genesys_gateway.tools.validation import SchemaValidator, check_schema, get_validator

WEATHER = {
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "City or region name"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"],
                 "description": "Temperature unit"},
    },
    "required": ["location"],
}


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
    get_validator({"type": "object", "title": "three"})
    assert len(validation._cache) == 2
    assert get_validator({"type": "object", "title": "one"}) is not first


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


def test_deep_copy_only_when_nested_defaults_exist():
    assert not validation._needs_deep_copy(WEATHER)
    assert not validation._needs_deep_copy(
        {"type": "object", "properties": {"u": {"type": "string", "default": "c"}}})
    assert validation._needs_deep_copy(
        {"type": "object", "properties": {"o": {"type": "object", "properties": {
            "d": {"default": 1}}}}})
    assert validation._needs_deep_copy(
        {"type": "object", "properties": {"a": {"type": "array", "items": {
            "type": "object", "properties": {"d": {"default": 1}}}}}})
    assert validation._needs_deep_copy(
        {"type": "object", "definitions": {"x": {"properties": {"d": {"default": 1}}}}})


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


def test_bad_regex_is_caught_even_without_jsonschema(monkeypatch):
    monkeypatch.setitem(sys.modules, "jsonschema", None)  # makes `import jsonschema` fail
    validation.clear_cache()
    with pytest.raises(ToolDefinitionError, match="invalid JSON schema"):
        get_validator({"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}})


def test_jsonschema_is_optional(monkeypatch):
    schema = {"type": "object", "minProperties": -1}  # only jsonschema's meta-check rejects this
    with pytest.raises(ToolDefinitionError):
        check_schema(schema)
    monkeypatch.setitem(sys.modules, "jsonschema", None)
    validation.clear_cache()
    check_schema(schema)  # skipped silently
    assert get_validator(schema).validate({}) == {}


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
    ('{"a": 1,}', (None, "arguments are not valid JSON: Expecting property name enclosed in "
                         "double quotes at char 8")),
    ("null", (None, "arguments must be a JSON object, got null")),
    ("3", (None, "arguments must be a JSON object, got number")),
    ("true", (None, "arguments must be a JSON object, got boolean")),
    ('{"x": Infinity}', (None, "arguments are not valid JSON: Infinity is not valid JSON")),
    (42, (None, "arguments must be a JSON object, got int")),
])
def test_parse_arguments(raw, expected):
    assert validation.parse_arguments(raw) == expected


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
