"""Run limits (``gg.Limits``): checked before each model call and each tool call; a run
that would exceed one stops with ``"usage_limit"`` and keeps what was done."""

from __future__ import annotations

import pytest

import genesys_gateway as gg
from genesys_gateway.testing import reply, tool_call


@pytest.fixture
def registry():
    reg = gg.ToolRegistry()
    ran: list[str] = []

    @reg.tool
    def lookup(key: str) -> str:
        """Look up."""
        ran.append(f"lookup {key}")
        return key.upper()

    @reg.tool
    def send_mail(to: str) -> str:
        """Send mail."""
        ran.append(f"mail {to}")
        return "sent"

    reg.ran = ran  # type: ignore[attr-defined]
    return reg


def loop_forever(emulator):
    emulator.responder = lambda req: reply(
        tool_calls=[tool_call("lookup", {"key": str(len(req["messages"]))})],
        usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})


def test_max_requests_stops_before_the_next_model_call(emulator, make_client, registry):
    loop_forever(emulator)
    result = make_client(tools=registry, max_iterations=10).run(
        "go", limits=gg.Limits(max_requests=2))
    assert result.stop_reason == "usage_limit" and not result.completed
    assert result.iterations == 2 and len(emulator.chat_requests) == 2
    assert len(result.tool_runs) == 2 and result.usage.total_tokens == 30


def test_max_total_tokens_per_client(emulator, make_client, registry):
    loop_forever(emulator)
    result = make_client(tools=registry, max_iterations=10,
                         limits=gg.Limits(max_total_tokens=40)).run("go")
    assert result.stop_reason == "usage_limit" and result.usage.total_tokens == 45
    assert result.iterations == 3  # 0, 15, 30 were under 40; 45 is not


def test_a_tool_call_over_the_limit_is_answered_not_run_and_the_history_stays_paired(
        emulator, make_client, registry):
    emulator.script(reply(tool_calls=[tool_call("lookup", {"key": "a"}, id="1"),
                                      tool_call("send_mail", {"to": "x"}, id="2"),
                                      tool_call("send_mail", {"to": "y"}, id="3")]),
                    reply(content="never asked"))
    client = make_client(tools=registry)
    conversation = client.conversation()
    result = conversation.send("go", limits=gg.Limits(per_tool={"send_mail": 1}))
    assert result.stop_reason == "usage_limit"
    assert registry.ran == ["lookup a", "mail x"]
    statuses = [r.status for r in result.tool_runs]
    assert statuses == ["ok", "ok", "rejected"]
    assert "limit" in result.tool_runs[2].content
    assert [m["tool_call_id"] for m in result.messages if m["role"] == "tool"] == ["1", "2", "3"]
    assert len(emulator.chat_requests) == 1
    # the kept history is valid: the next turn is accepted by the strict emulator
    assert conversation.send("and now?").content == "never asked"


def test_max_tool_calls_counts_every_tool(emulator, make_client, registry):
    loop_forever(emulator)
    result = make_client(tools=registry, max_iterations=10).run(
        "go", limits=gg.Limits(max_tool_calls=3))
    assert result.stop_reason == "usage_limit"
    assert [r.status for r in result.tool_runs] == ["ok", "ok", "ok", "rejected"]


def test_limits_work_for_streams(emulator, make_client, registry):
    loop_forever(emulator)
    stream = make_client(tools=registry).stream("go", limits=gg.Limits(max_requests=1))
    assert stream.until_done().stop_reason == "usage_limit"


@pytest.mark.parametrize("kwargs, problem", [
    ({"max_requests": 0}, "max_requests"), ({"max_total_tokens": -5}, "max_total_tokens"),
    ({"max_tool_calls": 1.5}, "max_tool_calls"), ({"per_tool": {"x": 0}}, "per_tool"),
    ({"per_tool": ["x"]}, "per_tool")])
def test_bad_limits_are_configuration_errors(kwargs, problem):
    with pytest.raises(gg.ConfigurationError, match=problem):
        gg.Limits(**kwargs)


def test_limits_must_be_limits(make_client):
    with pytest.raises(gg.ConfigurationError, match="limits"):
        make_client(limits={"max_requests": 1})
    with pytest.raises(gg.ConfigurationError, match="limits"):
        make_client().run("x", limits={"max_requests": 1})
