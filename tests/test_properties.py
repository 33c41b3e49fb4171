"""Property tests of model output: whatever tool calls a model (or a broken server) sends,
the loop never crashes, never leaks a non-GatewayError, answers every call id with exactly
one tool message in order, runs no call twice, and its next request passes the strict
emulator's validation."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import genesys_gateway as gg
from genesys_gateway.testing import GatewayEmulator, MockTransport, json_response
from genesys_gateway.testing.emulator.validation import validate_chat_request

NAMES = ["echo", "add", "slow_fail", "needs_ctx"]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children,
                                                                      max_size=3),
    max_leaves=8)
TEXT = st.text(max_size=12)  # includes lone surrogates, NUL, RTL marks...
ARGUMENTS = st.one_of(
    st.none(), TEXT, st.just(""), st.just("{}"), st.just('{"a": 1'), st.just("[1, 2]"),
    st.just('{"x": NaN}'), JSON_VALUES.map(json.dumps),
    st.fixed_dictionaries({"a": st.integers(), "b": st.integers()}).map(json.dumps),
    st.fixed_dictionaries({"text": TEXT}).map(json.dumps),
    st.dictionaries(st.text(max_size=4), JSON_VALUES, max_size=3),  # an object, not a string
    st.integers(), st.lists(st.integers(), max_size=2))
IDS = st.one_of(st.none(), st.just(""), TEXT, st.sampled_from(["a", "a", "a_2", "call_missing_id_0",
                                                               "call_missing_id_1"]),
                st.integers(), st.lists(st.integers(), max_size=1))
CALL = st.fixed_dictionaries(
    {},
    optional={
        "id": IDS,
        "type": st.one_of(st.just("function"), TEXT, st.none(), st.integers()),
        "function": st.one_of(
            st.fixed_dictionaries({}, optional={
                "name": st.one_of(st.sampled_from(NAMES), TEXT, st.none(), st.integers()),
                "arguments": ARGUMENTS}),
            st.none(), TEXT, st.lists(st.integers(), max_size=2)),
    })
TURN = st.lists(CALL, min_size=1, max_size=6)


def make_registry(calls: Counter[str]) -> gg.ToolRegistry:
    registry = gg.ToolRegistry()

    @registry.tool
    def echo(text: str, ctx: gg.ToolContext) -> str:
        """Echo."""
        calls[ctx.call_id] += 1
        return text

    @registry.tool
    def add(a: int, b: int, ctx: gg.ToolContext) -> int:
        """Add."""
        calls[ctx.call_id] += 1
        return a + b

    @registry.tool
    def slow_fail(ctx: gg.ToolContext) -> None:
        """Fail."""
        calls[ctx.call_id] += 1
        raise gg.ToolError("no")

    @registry.tool
    def needs_ctx(ctx: gg.ToolContext) -> dict[str, Any]:
        """Context."""
        calls[ctx.call_id] += 1
        return {"id": ctx.call_id}

    return registry


def check_history(messages: list[dict[str, Any]]) -> None:
    """Every assistant tool call is answered by exactly one tool message, in order."""
    for i, message in enumerate(messages):
        if message["role"] == "assistant" and message.get("tool_calls"):
            ids = [c["id"] for c in message["tool_calls"]]
            assert len(set(ids)) == len(ids)
            answers = messages[i + 1:i + 1 + len(ids)]
            assert [m["role"] for m in answers] == ["tool"] * len(ids)
            assert [m["tool_call_id"] for m in answers] == ids


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(turn=TURN, content=st.one_of(st.none(), TEXT))
def test_any_tool_calls_keep_the_history_paired_and_valid(turn, content):
    calls: Counter[str] = Counter()
    replies = iter([
        {"choices": [{"message": {"role": "assistant", "content": content, "tool_calls": turn},
                      "finish_reason": "tool_calls"}]},
        {"choices": [{"message": {"role": "assistant", "content": "done"}, "finish_reason": "stop"}]},
    ])
    bodies: list[dict[str, Any]] = []

    def handler(request: gg.HTTPRequest) -> gg.HTTPResponse:
        body = json.loads(request.body or b"{}")
        bodies.append(body)
        validate_chat_request(body)  # the strict emulator's checks: raises on a bad request
        return json_response(200, next(replies))

    with gg.GatewayClient(base_url="http://127.0.0.1:9", tools=make_registry(calls),
                          transport=MockTransport(handler), retry=gg.NoRetry()) as client:
        try:
            result = client.run("go")
        except gg.GatewayError as error:
            event(f"typed error: {type(error).__name__}")
            return  # a typed error is allowed (the server's turn may be unusable)...
    event("completed")
    # ...but an answerable turn always completes: the repaired history was accepted
    assert result.stop_reason == "completed" and len(bodies) == 2
    check_history(result.messages)
    assert [r.call_id for r in result.tool_runs] == [
        c["id"] for c in result.messages[1]["tool_calls"]]
    assert all(n == 1 for n in calls.values())  # no call ran twice
    assert set(calls) <= {r.call_id for r in result.tool_runs if r.status in ("ok", "error")}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(turn=TURN)
def test_the_real_strict_emulator_accepts_the_repaired_history(turn):
    """The same property over real HTTP, with JSON the emulator can send (no lone
    surrogates: a server cannot put them in UTF-8 either)."""
    try:
        json.dumps(turn, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return
    calls: Counter[str] = Counter()
    with GatewayEmulator() as emulator:
        emulator.script({"choices": [{"message": {"role": "assistant", "content": None,
                                                  "tool_calls": turn},
                                      "finish_reason": "tool_calls"}]})
        with gg.GatewayClient(base_url=emulator.url, tools=make_registry(calls),
                              retry=gg.NoRetry()) as client:
            try:
                result = client.run("go")
            except gg.GatewayError:
                return
    assert result.stop_reason == "completed"  # the echo answer came: history accepted
    check_history(result.messages)
    assert all(n == 1 for n in calls.values())
