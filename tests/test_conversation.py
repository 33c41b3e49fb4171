"""The tool-calling loop end to end against the emulator (scripted tool calls)."""

import json
import threading
import time
from typing import Literal

import pytest

import genesys_gateway as gg
from genesys_gateway import demo
from genesys_gateway.testing import reply, tool_call


@pytest.fixture
def registry():
    reg = gg.ToolRegistry()

    @reg.tool
    def get_weather(location: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict:
        """Retrieve current weather conditions for a specified location."""
        return {"location": location, "temperature": 22, "unit": unit}

    @reg.tool(timeout=0.2)
    def boom(reason: str) -> str:
        """Always fails."""
        raise RuntimeError(reason)

    return reg


def tool_messages(result):
    return [m for m in result.messages if m["role"] == "tool"]


def assert_paired(messages):
    """Every assistant tool call is answered by exactly one tool message, in order."""
    for i, m in enumerate(messages):
        if m["role"] == "assistant" and m.get("tool_calls"):
            ids = [c["id"] for c in m["tool_calls"]]
            answers = [t["tool_call_id"] for t in messages[i + 1:i + 1 + len(ids)]]
            assert answers == ids
            assert len(set(ids)) == len(ids)


def test_tutorial_scenario_end_to_end(emulator, make_client):
    emulator.responder = demo.responder
    client = make_client(tools=demo.build_registry(latency=0.01))
    result = client.run(demo.PROMPT)
    assert result.stop_reason == "completed"
    assert "22°C" in result.content and "145 units" in result.content
    assert [r.name for r in result.tool_runs] == ["get_weather", "check_inventory"]
    assert all(r.status == "ok" for r in result.tool_runs)
    assert result.iterations == 2
    assert result.usage.total_tokens > 0
    assert_paired(result.messages)
    sent = emulator.chat_requests[0]
    assert {t["function"]["name"] for t in sent["tools"]} == {"get_weather", "check_inventory"}


def test_usage_is_summed_over_model_calls(emulator, make_client, registry):
    emulator.script(
        reply(tool_calls=[tool_call("get_weather", {"location": "Paris"})], usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}),
        reply(content="sunny", usage={"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27}),
    )
    result = make_client(tools=registry).run("weather?")
    assert result.usage == gg.Usage(30, 12, 42)
    assert result.content == "sunny"
    run = result.tool_runs[0]
    assert run.arguments == {"location": "Paris", "unit": "celsius"}  # schema default applied
    assert json.loads(run.content) == {"location": "Paris", "temperature": 22, "unit": "celsius"}


@pytest.mark.parametrize("arguments,status,needle", [
    ("{not json", "invalid_arguments", "JSON"),
    ("[1, 2]", "invalid_arguments", "object"),
    ({"unit": "kelvin", "location": "x"}, "invalid_arguments", "unit"),
    ({}, "invalid_arguments", "location"),
])
def test_bad_arguments_become_tool_messages(emulator, make_client, registry, arguments, status, needle):
    emulator.script(reply(tool_calls=[tool_call("get_weather", arguments)]), reply(content="ok"))
    result = make_client(tools=registry).run("go")
    run = result.tool_runs[0]
    assert run.status == status and needle in run.content
    assert tool_messages(result)[0]["content"] == run.content
    assert result.stop_reason == "completed"


def test_unknown_tool_and_handler_error(emulator, make_client, registry):
    emulator.script(reply(tool_calls=[tool_call("nope", {}), tool_call("boom", {"reason": "kaput"})]),
                    reply(content="ok"))
    result = make_client(tools=registry).run("go")
    unknown, failed = result.tool_runs
    assert unknown.status == "unknown_tool" and "get_weather" in unknown.content
    assert failed.status == "error" and failed.content == "Error: the tool failed (RuntimeError)"
    assert failed.error == "RuntimeError: kaput"
    assert_paired(result.messages)


def test_expose_tool_errors_is_a_client_option(emulator, make_client, registry):
    emulator.script(reply(tool_calls=[tool_call("boom", {"reason": "kaput"})]), reply(content="ok"))
    [failed] = make_client(tools=registry, expose_tool_errors=True).run("go").tool_runs
    assert failed.content == "Error: RuntimeError: kaput"
    with pytest.raises(gg.ConfigurationError, match="expose_tool_errors"):
        make_client(expose_tool_errors="no")


@pytest.mark.parametrize("finish_reason, stop_reason", [
    ("length", "length"), ("content_filter", "content_filter"), ("stop", "completed"),
    (None, "completed")])
def test_a_cut_or_filtered_answer_is_not_completed(emulator, make_client, finish_reason, stop_reason):
    emulator.script({"choices": [{"message": {"role": "assistant", "content": "The answer is 4"},
                                  "finish_reason": finish_reason}]})
    result = make_client().run("2+2, explained at length")
    assert result.stop_reason == stop_reason
    assert result.completed is (stop_reason == "completed")
    assert result.content == "The answer is 4"  # the partial text is kept
    assert result.finish_reason == finish_reason
    assert result.messages[-1] == {"role": "assistant", "content": "The answer is 4"}


def test_finish_reason_is_the_last_model_calls(emulator, make_client, registry):
    emulator.script(reply(tool_calls=[tool_call("get_weather", {"location": "A"})]),
                    reply(content="done"))
    result = make_client(tools=registry).run("go")
    assert result.iterations == 2 and result.finish_reason == "stop"


def test_missing_and_duplicate_ids_stay_paired(emulator, make_client, registry):
    calls = [tool_call("get_weather", {"location": "A"}, id="same"),
             tool_call("get_weather", {"location": "B"}, id="same")]
    missing = {"type": "function", "function": {"name": "get_weather", "arguments": "{\"location\": \"C\"}"}}
    emulator.script({"choices": [{"message": {"role": "assistant", "content": None,
                                              "tool_calls": calls + [missing]}, "finish_reason": "tool_calls"}]},
                    reply(content="ok"))
    result = make_client(tools=registry).run("go")
    statuses = [r.status for r in result.tool_runs]
    assert statuses == ["ok", "error", "error"]
    assert "duplicate" in result.tool_runs[1].content and "no id" in result.tool_runs[2].content
    assert_paired(result.messages)
    assert result.stop_reason == "completed"  # the emulator (strict) accepted the repaired history


def test_empty_tool_calls_list_is_an_answer(emulator, make_client, registry):
    emulator.script({"choices": [{"message": {"role": "assistant", "content": "fine", "tool_calls": []}}]})
    result = make_client(tools=registry).run("go")
    assert result.content == "fine" and result.stop_reason == "completed"
    assert "tool_calls" not in result.messages[-1]


def test_max_iterations_is_a_stop_reason_not_an_answer(emulator, make_client, registry):
    emulator.responder = lambda req: reply(tool_calls=[tool_call("get_weather", {"location": str(len(req["messages"]))})])
    result = make_client(tools=registry, max_iterations=3).run("loop forever")
    assert result.stop_reason == "max_iterations" and result.content is None
    assert result.iterations == 3 and len(result.tool_runs) == 3
    assert_paired(result.messages)


def test_repeated_identical_calls_are_not_run(emulator, make_client):
    count = []
    reg = gg.ToolRegistry()

    @reg.tool
    def ping(x: int) -> int:
        """Ping."""
        count.append(x)
        return x

    emulator.responder = lambda req: reply(tool_calls=[tool_call("ping", {"x": 1})])
    result = make_client(tools=reg, max_iterations=5, max_repeated_calls=3).run("go")
    assert len(count) == 3
    assert [r.status for r in result.tool_runs][3:] == ["repeated", "repeated"]
    assert "repeated" in result.tool_runs[-1].content


def test_tools_run_in_parallel(emulator, make_client):
    barrier = threading.Barrier(4, timeout=5)
    reg = gg.ToolRegistry()

    @reg.tool
    def meet(i: int) -> int:
        """Wait for the others."""
        barrier.wait()
        return i

    emulator.script(reply(tool_calls=[tool_call("meet", {"i": i}) for i in range(4)]), reply(content="met"))
    result = make_client(tools=reg).run("go")
    assert [r.status for r in result.tool_runs] == ["ok"] * 4
    assert [m["content"] for m in tool_messages(result)] == ["0", "1", "2", "3"]


def test_deadline_stops_the_run_and_clips_tools(emulator, make_client):
    release = threading.Event()
    reg = gg.ToolRegistry()

    @reg.tool(timeout=30)
    def hang() -> str:
        """Hangs until released."""
        release.wait(10)
        return "late"

    emulator.responder = lambda req: reply(tool_calls=[tool_call("hang", {})])
    client = make_client(tools=reg)
    try:
        t0 = time.monotonic()
        result = client.run("go", deadline=0.3)
        elapsed = time.monotonic() - t0
    finally:
        release.set()
    assert result.stop_reason == "deadline" and result.content is None
    assert result.tool_runs[0].status == "timeout"
    assert elapsed < 5
    assert_paired(result.messages)


def test_deadline_during_slow_model_call(emulator, make_client):
    emulator.delay(2.0)
    result = make_client(retry=gg.NoRetry()).run("go", deadline=0.2)
    assert result.stop_reason == "deadline"


def test_parameters_pass_through_and_no_empty_tools(emulator, make_client):
    client = make_client(temperature=0.1)
    client.run("hi", tool_choice="auto", parallel_tool_calls=False, max_tokens=9)
    body = emulator.chat_requests[-1]
    assert "tools" not in body and "tool_choice" not in body
    assert body["temperature"] == 0.1 and body["max_tokens"] == 9


def test_tool_choice_passes_with_tools(emulator, make_client, registry):
    make_client(tools=registry).run("hi", tool_choice="required", parallel_tool_calls=True)
    body = emulator.chat_requests[-1]
    assert body["tool_choice"] == "required" and body["parallel_tool_calls"] is True


def test_conversation_keeps_history_across_turns(emulator, make_client, registry):
    emulator.script(reply(tool_calls=[tool_call("get_weather", {"location": "Oslo"})]), reply(content="cold"))
    conv = make_client(tools=registry).conversation(system="be brief")
    first = conv.send("weather in Oslo?")
    second = conv.send("and tomorrow?")
    assert first.content == "cold" and second.content == "Echo: and tomorrow?"
    roles = [m["role"] for m in emulator.chat_requests[-1]["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert first.conversation_id == second.conversation_id == conv.id


def test_failed_send_leaves_history_untouched(emulator, make_client):
    conv = make_client(retry=gg.NoRetry()).conversation()
    conv.send("one")
    before = list(conv.messages)
    emulator.fail(500)
    with pytest.raises(gg.ServerError):
        conv.send("two")
    assert conv.messages == before


def test_registry_changes_mid_run_are_consistent(emulator, make_client, registry):
    def respond(req):
        registry.unregister("boom") if "boom" in registry else None
        if req["messages"][-1]["role"] == "tool":
            return reply(content="done")
        return reply(tool_calls=[tool_call("get_weather", {"location": "Rome"})])

    emulator.responder = respond
    result = make_client(tools=registry).run("go")
    names = [[t["function"]["name"] for t in body["tools"]] for body in emulator.chat_requests]
    assert names[0] == ["get_weather", "boom"] and names[1] == ["get_weather"]
    assert result.stop_reason == "completed"


def test_bad_run_input():
    client = gg.GatewayClient(base_url="http://127.0.0.1:9", auth=gg.BearerToken("t"))
    with pytest.raises(TypeError):
        client.run(None)
    with pytest.raises(gg.ConfigurationError):
        client.run("x", deadline=-1)
    client.close()


@pytest.mark.parametrize("call,status", [
    ({"id": "a", "type": "function", "function": {"name": "get_weather"}}, "invalid_arguments"),
    ({"id": "a", "type": "function", "function": {"arguments": "{}"}}, "unknown_tool"),
    ({"id": "a", "type": "function", "function": {"name": 7, "arguments": "{}"}}, "unknown_tool"),
    ({"id": "a", "type": "function"}, "invalid_arguments"),
    ({"id": "a", "type": "weird", "function": {"name": "get_weather", "arguments": "{\"location\": \"X\"}"}}, "ok"),
])
def test_malformed_tool_calls_are_answered_and_echoed_validly(emulator, make_client, registry, call, status):
    emulator.script({"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [call]}}]},
                    reply(content="recovered"))
    result = make_client(tools=registry).run("go")
    assert result.stop_reason == "completed" and result.content == "recovered"  # the strict server took it
    assert result.tool_runs[0].status == status
    echoed = emulator.chat_requests[1]["messages"][1]["tool_calls"][0]
    assert echoed["type"] == "function" and isinstance(echoed["function"]["name"], str)
    assert isinstance(echoed["function"]["arguments"], str)
    assert_paired(result.messages)


def test_a_call_without_arguments_never_reaches_the_handler(emulator, make_client):
    ran = []
    reg = gg.ToolRegistry()

    @reg.tool
    def charge_card(amount: int = 5) -> str:
        """Has a side effect."""
        ran.append(amount)
        return "charged"

    emulator.script({"choices": [{"message": {"role": "assistant", "tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "charge_card"}}]}}]}, reply(content="ok"))
    result = make_client(tools=reg).run("pay")
    assert ran == [] and result.tool_runs[0].status == "invalid_arguments"


@pytest.mark.parametrize("where", ["prompt", "model", "tool"])
def test_lone_surrogates_do_not_break_the_run(emulator, make_client, where):
    reg = gg.ToolRegistry()

    @reg.tool
    def echo(text: str) -> str:
        """Echo."""
        return "bad \udc80 result" if where == "tool" else text

    prompt = "user \udcff input" if where == "prompt" else "hi"
    if where == "model":
        emulator.garbage(b'{"choices": [{"message": {"role": "assistant", "content": "bad \\udc80 text"}}]}')
    emulator.script(reply(tool_calls=[tool_call("echo", {"text": "x"})]), reply(content="fine"))
    conv = make_client(tools=reg).conversation()
    conv.send(prompt)
    assert conv.send("again").stop_reason == "completed"


def test_repaired_ids_are_unique_against_every_id_in_the_turn(emulator, make_client, registry):
    """A model id that looks like a repaired one (call_missing_id_1) next to an id-less call
    at index 1: the repair must not reuse it, or the strict server refuses the next request."""
    calls = [tool_call("get_weather", {"location": "A"}, id="call_missing_id_1"),
             {"type": "function", "function": {"name": "get_weather", "arguments": "{\"location\": \"B\"}"}},
             tool_call("get_weather", {"location": "C"}, id="x"),
             tool_call("get_weather", {"location": "D"}, id="x"),
             tool_call("get_weather", {"location": "E"}, id="x_2")]
    emulator.script({"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": calls},
                                  "finish_reason": "tool_calls"}]},
                    reply(content="ok"))
    result = make_client(tools=registry).run("go")
    ids = [r.call_id for r in result.tool_runs]
    assert len(set(ids)) == 5 and ids[0] == "call_missing_id_1" and ids[2] == "x" and ids[4] == "x_2"
    assert ids[1] not in ("call_missing_id_1",) and ids[3] not in ("x", "x_2")
    assert [r.status for r in result.tool_runs] == ["ok", "error", "ok", "error", "ok"]
    assert_paired(result.messages)
    assert result.stop_reason == "completed"  # the strict emulator accepted the history


def test_max_iterations_per_run_overrides_the_client(emulator, make_client, registry):
    emulator.responder = lambda req: reply(tool_calls=[tool_call("get_weather", {"location": str(len(req["messages"]))})])
    client = make_client(tools=registry, max_iterations=5)
    assert client.run("loop", max_iterations=2).iterations == 2
    assert client.conversation().send("loop", max_iterations=1).iterations == 1
    assert client.run("loop").iterations == 5


@pytest.mark.parametrize("call", [
    lambda c: c.run("x", max_iteration=1),
    lambda c: c.run("x", tempreature=0.1),
    lambda c: c.conversation().send("x", max_tokns=5),
    lambda c: c.complete([{"role": "user", "content": "x"}], tempreature=0.1),
], ids=["run-option", "run-param", "send-param", "complete-param"])
def test_misspelt_keywords_are_type_errors_and_never_posted(emulator, make_client, call):
    client = make_client()
    with pytest.raises(TypeError) as info:
        call(client)
    message = str(info.value)
    assert "unexpected keyword argument" in message and "did you mean" in message
    assert emulator.chat_requests == []  # nothing was sent


def test_misspelt_client_option_names_the_closest_option():
    with pytest.raises(TypeError, match=r"'max_iteration'.*did you mean 'max_iterations'"):
        gg.GatewayClient(base_url="http://127.0.0.1:9", max_iteration=2)
    with pytest.raises(TypeError, match=r"'temprature'.*did you mean 'temperature'"):
        gg.GatewayClient(base_url="http://127.0.0.1:9", temprature=0.2)
    with pytest.raises(TypeError, match=r"'flux_capacitor'.*extra_body"):
        gg.GatewayClient(base_url="http://127.0.0.1:9", flux_capacitor=1)


def test_extra_body_and_extra_headers_reach_the_server(emulator, make_client):
    client = make_client(extra_body={"vendor_flag": True}, extra_headers={"X-Team": "a"},
                         temperature=0.5)
    client.run("hi", extra_body={"other": [1, 2]}, extra_headers={"X-Run": "r1"}, top_p=0.9)
    body = emulator.chat_requests[-1]
    assert body["vendor_flag"] is True and body["other"] == [1, 2]
    assert body["temperature"] == 0.5 and body["top_p"] == 0.9
    headers = {k.lower(): v for k, v in emulator.requests[-1].headers.items()}
    assert headers["x-team"] == "a" and headers["x-run"] == "r1"
    with pytest.raises(gg.ConfigurationError, match="extra_headers"):
        make_client(extra_headers={"Authorization": "Bearer mine"})
    with pytest.raises(gg.ConfigurationError, match="extra_body"):
        client.run("hi", extra_body=["not", "a", "mapping"])
