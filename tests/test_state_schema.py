"""The state format, version 1: its JSON Schema, check_state's messages, the compiled
validator agreeing with a reference implementation, and no input giving anything but a
StateError."""

from __future__ import annotations

import copy
import json
import pickle
import re
import threading

import fastjsonschema
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import genesys_gateway as gg
from genesys_gateway.errors import ConflictError, ConversationStoreError, StateError
from genesys_gateway.state import STATE_SCHEMA, STATE_VERSION, check_state
from genesys_gateway.state import schema as schema_module
from tests.conversation_store_cases import make_state


def _changed(path: str, value):
    """make_state() with the value at ``path`` ("messages.1.role") replaced (or removed
    when ``value`` is DROP)."""
    state = make_state(turns=2)
    *parents, last = path.split(".")
    node = state
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is DROP:
        del node[int(last) if last.isdigit() else last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return state


DROP = object()


def _moved_result():
    """A tool result separated from its call by a user message."""
    state = make_state(turns=1, pending=False)
    messages = state["messages"]
    messages.insert(3, {"role": "user", "content": "interrupting"})
    return state


# (state, what the message must say, whether the JSON Schema alone refuses it)
INVALID = {
    "unknown version": (lambda: _changed("version", 7), r"unsupported state version 7 \(this SDK reads version 1\)", True),
    "version as text": (lambda: _changed("version", "1"), r"unsupported state version '1'", True),
    "version true": (lambda: _changed("version", True), r"unsupported state version True", True),
    "no version": (lambda: _changed("version", DROP), r"invalid state: missing 'version'", True),
    "not an object": (lambda: [make_state()], r"a state must be a JSON object, got list", True),
    "no messages": (lambda: _changed("messages", DROP), r"invalid state: missing 'messages'", True),
    "messages not a list": (lambda: _changed("messages", {}), r"messages: must be array", True),
    "message not an object": (lambda: _changed("messages.1", "hi"), r"messages\[1\]: must be object", True),
    "no role": (lambda: _changed("messages.1.role", DROP), r"messages\[1\]: missing 'role'", True),
    "unknown role": (lambda: _changed("messages.1.role", "robot"), r"messages\[1\]\.role: must be one of", True),
    "content a number": (lambda: _changed("messages.1.content", 5), r"messages\[1\]\.content: must be string, array or null \(got 5\)", True),
    "tool call without id": (lambda: _changed("messages.2.tool_calls.0.id", DROP), r"messages\[2\]\.tool_calls\[0\]\.id: must be a non-empty string \(got None\)", True),
    "tool call name empty": (lambda: _changed("messages.2.tool_calls.0.function.name", ""), r"messages\[2\]\.tool_calls\[0\]\.function\.name: must be a non-empty string \(got ''\)", True),
    "arguments not text": (lambda: _changed("messages.2.tool_calls.0.function.arguments", {}), r"messages\[2\]\.tool_calls\[0\]\.function\.arguments: must be string", True),
    "tool call type": (lambda: _changed("messages.2.tool_calls.0.type", "code"), r"messages\[2\]\.tool_calls\[0\]\.type: must be 'function' \(got 'code'\)", True),
    "empty tool calls": (lambda: _changed("messages.2.tool_calls", []), r"messages\[2\]\.tool_calls: must be a non-empty array \(got \[\]\)", True),
    "pending without arguments": (lambda: _changed("pending.0.arguments", DROP), r"pending\[0\]: missing 'arguments'", True),
    "pending arguments text": (lambda: _changed("pending.0.arguments", "{}"), r"pending\[0\]\.arguments: must be object", True),
    "ran not strings": (lambda: _changed("ran.0", 3), r"ran\[0\]: must be string", True),
    "negative tokens": (lambda: _changed("usage.total_tokens", -1), r"usage\.total_tokens: must be bigger than or equal to 0", True),
    "tokens as float": (lambda: _changed("usage.total_tokens", 1.5), r"usage\.total_tokens: must be integer", True),
    "system a number": (lambda: _changed("system", 3), r"system: must be string or null", True),
    "id too long": (lambda: _changed("id", "x" * 256), r"id: must be shorter than or equal to 255 characters", True),
    "id with a newline": (lambda: _changed("id", "a\nb"), r"id: must not contain control characters", False),
    # the history rules (not expressible in the schema)
    "tool message without call id": (lambda: _changed("messages.3.tool_call_id", DROP), r"messages\[3\]: a tool message needs 'tool_call_id'", False),
    "tool message without content": (lambda: _changed("messages.3.content", None), r"messages\[3\]: a tool message needs 'content'", False),
    "user message without content": (lambda: _changed("messages.1.content", DROP), r"messages\[1\]: a user message needs 'content'", False),
    "result for another call": (lambda: _changed("messages.3.tool_call_id", "call_9"), r"messages\[3\]\.tool_call_id: 'call_9' answers no tool call", False),
    "result after a user message": (_moved_result, r"messages\[4\]\.tool_call_id: 'call_0' answers no tool call of the assistant message before it", False),
    "result twice": (lambda: _changed("messages.4", {"role": "tool", "tool_call_id": "call_0", "content": "again"}), r"messages\[4\]\.tool_call_id: 'call_0' is answered twice", False),
    "tool calls on a user message": (lambda: _changed("messages.1.tool_calls", [{"id": "a", "function": {"name": "f", "arguments": "{}"}}]), r"messages\[1\]: only assistant messages have 'tool_calls'", False),
    "one call id twice": (lambda: _changed("messages.2.tool_calls", [{"id": "a", "function": {"name": "f", "arguments": "{}"}}] * 2), r"messages\[2\]\.tool_calls\[1\]\.id: 'a' is used twice", False),
    "pending twice": (lambda: _changed("pending", [make_state()["pending"][0]] * 2), r"pending\[1\]\.call_id: 'call_refund' is pending twice", False),
    "pending but ran": (lambda: _changed("ran", ["call_0", "call_1", "call_refund"]), r"pending\[0\]\.call_id: 'call_refund' is pending but has already run", False),
}


@pytest.mark.parametrize("kind", sorted(INVALID))
def test_each_problem_is_a_state_error_naming_the_conversation_and_the_field(kind):
    build, problem, _ = INVALID[kind]
    with pytest.raises(StateError, match=problem) as info:
        check_state(build(), conversation_id="conv-1")
    assert str(info.value).startswith("conversation 'conv-1': ")
    assert info.value.conversation_id == "conv-1"


@pytest.mark.parametrize("kind", sorted(INVALID))
def test_the_schema_refuses_what_it_can_say_and_a_reference_validator_agrees(kind):
    build, _, schema_refuses = INVALID[kind]
    state = build()
    reference = jsonschema.Draft7Validator(STATE_SCHEMA)
    assert reference.is_valid(state) is not schema_refuses
    compiled = fastjsonschema.compile(STATE_SCHEMA)
    try:
        compiled(copy.deepcopy(state))
        refused = False
    except fastjsonschema.JsonSchemaValueException:
        refused = True
    assert refused is schema_refuses


def test_the_schema_is_valid_draft_07_and_accepts_states_of_every_shape():
    jsonschema.Draft7Validator.check_schema(STATE_SCHEMA)
    assert STATE_SCHEMA["properties"]["version"] == {"const": STATE_VERSION} and STATE_VERSION == 1
    for state in (make_state(), make_state(turns=0, pending=False), make_state(turns=5),
                  {**make_state(), "signature": "abc", "added_later": [1, 2]},
                  {**make_state(), "system": None}):
        jsonschema.validate(state, STATE_SCHEMA, cls=jsonschema.Draft7Validator)
        assert check_state(state, conversation_id="conv-1") is state


def test_wire_messages_with_extra_fields_and_content_parts_are_accepted():
    state = make_state(pending=False)
    state["messages"] += [
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                      {"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
         "name": "alice"},
        {"role": "assistant", "content": "Seen.", "refusal": None, "annotations": []},
    ]
    assert check_state(state) is state


def test_text_in_str_subclasses_is_text_as_the_schema_says():
    class Text(str):
        pass

    state = make_state(pending=False)
    state["messages"] += [
        {"role": Text("assistant"), "content": None, "tool_calls": [
            {"id": Text("c"), "type": Text("function"),
             "function": {"name": Text("f"), "arguments": Text("{}")}}]},
        {"role": "tool", "tool_call_id": Text("c"), "content": Text("42"), "name": Text("f")},
    ]
    assert REFERENCE.is_valid(state) and check_state(state) is state


def test_a_tool_call_without_its_result_is_left_for_the_conversation_to_repair():
    state = make_state(pending=True)  # ends with an assistant call that has no result yet
    assert state["messages"][-1]["tool_calls"] and check_state(state) is state


def test_errors_name_the_id_inside_when_no_id_is_given_and_refuse_foreign_states():
    with pytest.raises(StateError, match=r"^conversation 'inner': unsupported state version 2"):
        check_state({**make_state("inner"), "version": 2})
    with pytest.raises(StateError, match=r"^conversation None: a state must be"):
        check_state("text")
    with pytest.raises(StateError, match=r"^conversation 'asked': the stored state belongs to conversation 'inner'"):
        check_state(make_state("inner"), conversation_id="asked")


def test_messages_stay_bounded_whatever_the_id_or_value():
    huge = "x" * 10_000
    with pytest.raises(StateError) as info:
        check_state({**make_state(), "system": [huge]}, conversation_id=huge)
    assert len(str(info.value)) < 300


def test_the_validator_is_compiled_once_whatever_the_threads(monkeypatch):
    calls = []
    real = fastjsonschema.compile

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(schema_module, "_validator", None)
    monkeypatch.setattr(fastjsonschema, "compile", counting)
    barrier = threading.Barrier(8)
    errors = []

    def check():
        try:
            barrier.wait(timeout=30)
            check_state(make_state())
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=check) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and len(calls) == 1


@pytest.mark.parametrize("error", [
    StateError("conversation 'a': bad", conversation_id="a"),
    ConflictError("conversation 'a': lost", conversation_id="a", expected_version=1, stored_version=2),
    ConversationStoreError("conversation 'a': down", conversation_id="a"),
])
def test_state_errors_are_gateway_errors_that_survive_pickling(error):
    assert isinstance(error, gg.GatewayError)
    copy_ = pickle.loads(pickle.dumps(error))
    assert type(copy_) is type(error) and str(copy_) == str(error)
    assert copy_.__dict__ == error.__dict__


# -- any input: a state, or a StateError ------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)
KEYS = ["version", "id", "messages", "pending", "ran", "usage", "system", "role", "content",
        "tool_calls", "tool_call_id", "function", "name", "arguments", "call_id"]


def _mutations(state):
    """Strategy: ``state`` with one value somewhere replaced by arbitrary JSON."""
    paths = []

    def walk(node, path):
        paths.append(path)
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, path + [key])
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, path + [index])

    walk(state, [])

    def apply(args):
        path, value = args
        mutated = copy.deepcopy(state)
        if not path:
            return value
        node = mutated
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
        return mutated

    return st.tuples(st.sampled_from(paths[1:]), JSON | st.sampled_from(KEYS)).map(apply)


REFERENCE = jsonschema.Draft7Validator(STATE_SCHEMA)


#: What check_state refuses beyond the JSON Schema: the history rules and the id's characters.
BEYOND_THE_SCHEMA = re.compile(
    r"needs 'content'|needs 'tool_call_id'|answers no tool call|is answered twice"
    r"|only assistant messages have 'tool_calls'|is used twice in one message"
    r"|is pending twice|is pending but has already run|id: must not contain control"
    r"|lone surrogate|belongs to conversation")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(JSON, _mutations(make_state(turns=2)), _mutations(make_state(turns=1)["messages"][2])
                 .map(lambda message: {**make_state(turns=1, pending=False),
                                       "messages": [{"role": "user", "content": "q"}, message]})))
def test_any_input_is_a_valid_state_or_a_state_error_as_the_schema_says(data):
    """check_state and the JSON Schema (the jsonschema package as reference) give the same
    answer, except for the rules no schema can say; and nothing else is ever raised."""
    try:
        result = check_state(data, conversation_id="conv-1")
    except StateError as error:
        assert str(error).startswith("conversation 'conv-1': ")
        if REFERENCE.is_valid(data):
            assert BEYOND_THE_SCHEMA.search(str(error)), str(error)
    else:
        assert result is data
        json.dumps(result)  # a state that passes is JSON data
        assert REFERENCE.is_valid(result)
