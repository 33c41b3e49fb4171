"""Approval of side-effecting tools (``requires_approval=True``), ``resume``, and
idempotency (``ToolContext.idempotency_key``, calls that ran are never run again), end to
end against the strict emulator, in one process and across workers and processes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

import genesys_gateway as gg
from genesys_gateway.testing import reply, tool_call
from genesys_gateway.tools.calls import ToolCallRequest
from tests.approval_helpers import build_registry
from tests.conversation_store_cases import case, stores  # noqa: F401  (fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def calls():
    return []


@pytest.fixture
def registry(calls):
    return build_registry(calls)


def refund_turn(emulator, *, with_lookup=True, ids=("c_refund",)):
    """Script a turn where the model looks an order up and asks for refunds, then answers."""
    made = [tool_call("lookup", {"order": 7}, id="c_lookup")] if with_lookup else []
    made += [tool_call("refund", {"order": 7, "amount": 5}, id=i) for i in ids]
    emulator.script(reply(tool_calls=made), reply(content="Refund done."))


def test_the_run_stops_after_the_other_calls_with_the_pending_call(emulator, make_client,
                                                                    registry, calls):
    refund_turn(emulator)
    conversation = make_client(tools=registry).conversation("Be terse.")
    result = conversation.send("refund order 7")
    assert result.stop_reason == "approval_required" and not result.completed
    assert result.content is None
    assert result.pending == (gg.PendingCall("c_refund", "refund",
                                             {"order": 7, "amount": 5, "reason": "customer request"}),)
    assert conversation.pending == result.pending
    assert [r.name for r in result.tool_runs] == ["lookup"] and calls == []
    assert len(emulator.chat_requests) == 1
    # the history ends with the call and the other call's result; the refund's is missing
    assert result.messages[-2]["tool_calls"][1]["id"] == "c_refund"
    assert result.messages[-1] == {"role": "tool", "tool_call_id": "c_lookup",
                                   "content": '{"order":7,"total":42.5}'}
    assert conversation.to_dict()["pending"] == [
        {"call_id": "c_refund", "name": "refund",
         "arguments": {"order": 7, "amount": 5, "reason": "customer request"}}]


def test_resume_runs_exactly_the_stored_arguments_and_continues(emulator, make_client, registry,
                                                                calls):
    refund_turn(emulator)
    conversation = make_client(tools=registry).conversation()
    conversation.send("refund order 7")
    result = conversation.resume(approve=["c_refund"])
    assert result.stop_reason == "completed" and result.content == "Refund done."
    assert result.pending == () and conversation.pending == ()
    assert [(c["order"], c["amount"], c["reason"], c["call_id"]) for c in calls] == [
        (7, 5.0, "customer request", "c_refund")]
    assert [r.name for r in result.tool_runs] == ["refund"] and result.iterations == 1
    sent = emulator.chat_requests[-1]["messages"]  # accepted by the strict emulator
    assert [m.get("tool_call_id") for m in sent[-2:]] == ["c_lookup", "c_refund"]
    assert conversation.to_dict()["ran"] == ["c_lookup", "c_refund"]


def test_a_denied_call_is_answered_with_the_reason_and_never_run(emulator, make_client, registry,
                                                                 calls):
    refund_turn(emulator)
    conversation = make_client(tools=registry).conversation()
    conversation.send("refund order 7")
    result = conversation.resume(deny={"c_refund": "over the agent's limit"})
    assert result.completed and calls == []
    denied = result.tool_runs[0]
    assert denied.status == "denied" and denied.error == "over the agent's limit"
    answer = [m for m in emulator.chat_requests[-1]["messages"]
              if m.get("tool_call_id") == "c_refund"]
    assert answer == [{"role": "tool", "tool_call_id": "c_refund", "content":
                       "Error: not run: the call was denied: over the agent's limit"}]
    assert "c_refund" not in conversation.to_dict()["ran"]


def test_calls_not_named_stay_pending_and_no_model_call_is_made(emulator, make_client, registry,
                                                                calls):
    refund_turn(emulator, ids=("r1", "r2", "r3"))
    conversation = make_client(tools=registry).conversation()
    assert len(conversation.send("three refunds").pending) == 3
    result = conversation.resume(approve=["r2"])
    assert result.stop_reason == "approval_required" and result.iterations == 0
    assert [p.call_id for p in result.pending] == ["r1", "r3"]
    assert [c["call_id"] for c in calls] == ["r2"] and len(emulator.chat_requests) == 1
    result = conversation.resume(approve=["r3"], deny={"r1": "duplicate"})
    assert result.completed and [c["call_id"] for c in calls] == ["r2", "r3"]
    assert len(emulator.chat_requests) == 2


@pytest.mark.parametrize("approve,deny,needle", [
    (["nope"], None, "'nope' is not pending"),
    ([], {"nope": "x"}, "'nope' is not pending"),
    (["c_lookup"], None, "'c_lookup' has already run"),
    (["c_refund"], {"c_refund": "x"}, "both approved and denied"),
])
def test_naming_a_call_that_is_not_pending_runs_nothing(emulator, make_client, registry, calls,
                                                        approve, deny, needle):
    refund_turn(emulator)
    conversation = make_client(tools=registry).conversation()
    conversation.send("refund order 7")
    before = conversation.to_dict()
    with pytest.raises(ValueError, match=needle):
        conversation.resume(approve=approve, deny=deny)
    with pytest.raises(ValueError, match=needle):
        conversation.resume_stream(approve=approve, deny=deny)
    assert calls == [] and conversation.to_dict() == before and len(emulator.chat_requests) == 1


def test_resume_with_nothing_pending_and_send_while_pending_are_value_errors(
        emulator, make_client, registry):
    conversation = make_client(tools=registry).conversation()
    with pytest.raises(ValueError, match="nothing is pending"):
        conversation.resume(approve=[])
    refund_turn(emulator)
    conversation.send("refund order 7")
    for call in (lambda: conversation.send("and?"), lambda: conversation.stream("and?")):
        with pytest.raises(ValueError, match=r"waiting for approval \(c_refund\): resume\(\)"):
            call()
    with pytest.raises(TypeError, match="list of call ids"):
        conversation.resume(approve="c_refund")
    conversation.resume(approve=["c_refund"])
    with pytest.raises(ValueError, match="'c_refund' has already run"):
        conversation.resume(approve=["c_refund"])


def test_resume_stream_gives_the_events(emulator, make_client, registry, calls):
    refund_turn(emulator, ids=("r1", "r2"))
    conversation = make_client(tools=registry).conversation()
    stream = conversation.stream("two refunds")
    assert stream.until_done().stop_reason == "approval_required"
    with conversation.resume_stream(approve=["r1"], deny={"r2": "no"}) as events:
        seen = [(e.type, getattr(e, "call_id", None) or getattr(getattr(e, "run", None),
                                                                "call_id", None))
                for e in events]
    assert seen == [("tool_call_finished", "r2"), ("tool_call_started", "r1"),
                    ("tool_call_finished", "r1"), ("text_delta", None),
                    ("model_call_finished", None), ("run_finished", None)]
    assert events.result.completed and conversation.pending == ()


def test_a_closed_resume_stream_keeps_the_calls_pending(emulator, make_client, registry, calls):
    refund_turn(emulator)
    conversation = make_client(tools=registry).conversation()
    conversation.send("refund")
    stream = conversation.resume_stream(approve=["c_refund"])
    stream.close()
    assert stream.result.stop_reason == "cancelled" and calls == []
    assert [p.call_id for p in stream.result.pending] == ["c_refund"]
    assert [p.call_id for p in conversation.pending] == ["c_refund"]


def test_run_and_stream_stop_for_approval_too(emulator, make_client, registry, calls):
    client = make_client(tools=registry)
    refund_turn(emulator)
    result = client.run("refund order 7")
    assert result.stop_reason == "approval_required" and [p.name for p in result.pending] == ["refund"]
    emulator.reset()
    refund_turn(emulator)
    with client.stream("refund order 7") as stream:
        kinds = [event.type for event in stream]
    assert kinds[-1] == "run_finished" and stream.result.stop_reason == "approval_required"
    assert calls == []


def test_invalid_arguments_to_an_approval_tool_are_answered_at_once(emulator, make_client,
                                                                    registry, calls):
    emulator.script(reply(tool_calls=[tool_call("refund", {"order": "seven"}, id="bad")]),
                    reply(tool_calls=[tool_call("refund", {"order": 7}, id="good")]))
    result = make_client(tools=registry).conversation().send("refund")
    assert result.stop_reason == "approval_required"
    assert [r.status for r in result.tool_runs] == ["invalid_arguments"]
    assert [p.call_id for p in result.pending] == ["good"] and len(emulator.chat_requests) == 2


def test_register_with_requires_approval_and_a_bad_flag(emulator, make_client, registry, calls):
    assert registry.get("send_mail").requires_approval and not registry.get("lookup").requires_approval
    with pytest.raises(gg.ToolDefinitionError, match="requires_approval must be True or False"):
        registry.register("x", "x", {"type": "object"}, lambda: 1, requires_approval="yes")
    emulator.script(reply(tool_calls=[tool_call("send_mail", {"to": "a@b.c"}, id="m")]), "sent it")
    conversation = make_client(tools=registry).conversation()
    assert conversation.send("mail a@b.c").pending == (gg.PendingCall("m", "send_mail", {"to": "a@b.c"}),)
    assert conversation.resume(approve=["m"]).completed and calls[0]["to"] == "a@b.c"


def test_resume_honours_the_run_limits(emulator, make_client, registry, calls):
    refund_turn(emulator, with_lookup=False, ids=("r1", "r2"))
    conversation = make_client(tools=registry).conversation()
    conversation.send("two refunds")
    result = conversation.resume(approve=["r1", "r2"], limits=gg.Limits(per_tool={"refund": 1}))
    assert result.stop_reason == "usage_limit" and [c["call_id"] for c in calls] == ["r1"]
    assert [r.status for r in result.tool_runs] == ["ok", "rejected"]
    assert conversation.pending == () and len(emulator.chat_requests) == 1


# -- idempotency ---------------------------------------------------------------------------------


def expected_key(conversation_id, call_id):
    return hashlib.sha256(f"{conversation_id}\0{call_id}".encode()).hexdigest()[:32]


def test_the_idempotency_key_is_stable_across_save_load_resume_and_differs_per_call(
        emulator, make_client, registry, calls, tmp_path):
    store = gg.FileConversationStore(tmp_path)
    refund_turn(emulator, ids=("r1", "r2"))
    first = make_client(tools=registry).conversation(id="conv-9", store=store)
    first.send("two refunds")
    second = make_client(tools=registry).conversation(id="conv-9", store=store)
    second.resume(approve=["r1"])
    third = make_client(tools=registry).conversation(id="conv-9", store=store)
    third.resume(approve=["r2"])
    assert [(c["call_id"], c["key"]) for c in calls] == [
        ("r1", expected_key("conv-9", "r1")), ("r2", expected_key("conv-9", "r2"))]
    assert calls[0]["key"] != calls[1]["key"] and len(calls[0]["key"]) == 32


def test_a_tool_run_directly_by_the_executor_has_no_key_unless_given_a_conversation(registry, calls):
    with gg.ToolExecutor() as executor:
        request = ToolCallRequest("m1", "send_mail", '{"to": "x"}')
        executor.run(registry.snapshot(), [request])
        executor.run(registry.snapshot(), [request], conversation_id="c")
    assert [c["key"] for c in calls] == [None, expected_key("c", "m1")]


def test_a_call_id_the_server_reuses_in_a_later_turn_is_renamed(emulator, make_client, registry,
                                                                calls):
    # servers that number calls per response send "call_0" in every turn
    emulator.script(reply(tool_calls=[tool_call("send_mail", {"to": "a"}, id="call_0")]), "ok",
                    reply(tool_calls=[tool_call("send_mail", {"to": "b"}, id="call_0")]), "ok")
    conversation = make_client(tools=registry).conversation(id="c")
    conversation.send("mail a")
    conversation.resume(approve=["call_0"])
    result = conversation.send("mail b")
    assert [p.call_id for p in result.pending] == ["call_0_2"]
    conversation.resume(approve=["call_0_2"])
    assert [c["to"] for c in calls] == ["a", "b"]
    assert calls[0]["key"] != calls[1]["key"]
    assert conversation.to_dict()["ran"] == ["call_0", "call_0_2"]


class FailingSaves:
    """A store whose saves fail (the worker crashed after the tool ran, before saving)."""

    def __init__(self, store):
        self.store = store

    def load(self, conversation_id):
        return self.store.load(conversation_id)

    def save(self, state, expected_version):
        raise gg.ConversationStoreError("the worker died", conversation_id=state["id"])


def test_a_crash_before_the_save_runs_the_call_again_with_the_same_key(
        emulator, make_client, registry, calls, tmp_path):
    """At-least-once: the stored state still has the call pending, so the next resume runs it
    again; the key is the same, which is what lets the tool make its effect exactly-once."""
    store = gg.FileConversationStore(tmp_path)
    refund_turn(emulator, with_lookup=False)
    make_client(tools=registry).conversation(id="c", store=store).send("refund")
    crashed = make_client(tools=registry).conversation(id="c", store=FailingSaves(store))
    with pytest.raises(gg.ConversationStoreError):
        crashed.resume(approve=["c_refund"])
    assert crashed.version == 1  # nothing was saved...
    assert crashed.pending == ()  # ...but this process knows the call ran: never again here
    with pytest.raises(ValueError):
        crashed.resume(approve=["c_refund"])
    emulator.script("Refund done.")
    survivor = make_client(tools=registry).conversation(id="c", store=store)
    assert survivor.resume(approve=["c_refund"]).completed
    assert len(calls) == 2 and calls[0]["key"] == calls[1]["key"] == expected_key("c", "c_refund")
    with pytest.raises(ValueError, match="already run"):
        make_client(tools=registry).conversation(id="c", store=store).resume(approve=["c_refund"])


# -- across workers and processes -------------------------------------------------------------------


@stores("file", "redis", "django")
def test_approve_in_one_worker_resume_in_another(emulator, make_client, calls, case):
    refund_turn(emulator)
    web = make_client(tools=build_registry(calls)).conversation("Be terse.", id="order-7",
                                                                store=case.store())
    assert web.send("refund order 7").stop_reason == "approval_required"
    worker = make_client(tools=build_registry(calls)).conversation("ignored: it exists",
                                                                   id="order-7", store=case.store())
    assert worker.pending == web.pending and worker.messages == web.messages
    assert worker.resume(approve=["c_refund"]).content == "Refund done."
    assert [c["call_id"] for c in calls] == ["c_refund"]
    again = case.store().load("order-7")
    assert again.version == 2 and again.state["pending"] == [] and "c_refund" in again.state["ran"]
    with pytest.raises(gg.ConflictError):  # the first worker's copy is stale
        web.resume(approve=["c_refund"])


def test_resume_in_another_process(emulator, make_client, tmp_path, calls):
    directory = tmp_path / "conversations"
    refund_turn(emulator)
    conversation = make_client(tools=build_registry(calls)).conversation(
        id="proc-1", store=gg.FileConversationStore(directory))
    conversation.send("refund order 7")
    log = tmp_path / "refunds.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "tests.approval_helpers", emulator.url, emulator.issue_token(),
         str(directory), "proc-1", "c_refund"],
        cwd=ROOT, env={**os.environ, "REFUND_LOG": str(log)}, capture_output=True, text=True,
        timeout=120)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["stop_reason"] == "completed" and outcome["version"] == 2
    refunds = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["call_id"], r["key"]) for r in refunds] == [("c_refund",
                                                           expected_key("proc-1", "c_refund"))]
    assert refunds[0]["pid"] != os.getpid() and calls == []
    reloaded = make_client(tools=build_registry(calls)).conversation(
        id="proc-1", store=gg.FileConversationStore(directory))
    assert reloaded.pending == () and reloaded.messages[-1]["content"] == "Refund done."


def test_a_stream_to_a_browser_ends_with_the_pending_calls(emulator, make_client, registry):
    refund_turn(emulator)
    frames = b"".join(gg.sse(make_client(tools=registry).conversation().stream("refund")))
    last = frames.decode().strip().split("\n\n")[-1].split("\n")
    assert last[0] == "event: run_finished"
    data = json.loads(last[1][len("data: "):])
    assert data["stop_reason"] == "approval_required"
    assert data["pending"] == [{"call_id": "c_refund", "name": "refund",
                                "arguments": {"order": 7, "amount": 5,
                                              "reason": "customer request"}}]


def test_resume_takes_the_run_options_of_send_structured_output_too(emulator, make_client,
                                                                    registry, calls):
    refund_turn(emulator, with_lookup=False)
    conversation = make_client(tools=registry).conversation()
    conversation.send("refund")
    emulator.script(reply('{"refunded": 5.0}'))
    result = conversation.resume(
        approve=["c_refund"], output_schema={"type": "object", "properties": {
            "refunded": {"type": "number"}}, "required": ["refunded"]}, temperature=0)
    assert result.completed and result.output == {"refunded": 5.0}
    assert emulator.chat_requests[-1]["temperature"] == 0
    with pytest.raises(TypeError, match="temprature"):
        conversation.resume(approve=[], temprature=0)


def _payments():
    registry = gg.ToolRegistry()
    runs = []

    @registry.tool(requires_approval=True)
    def pay(amount: int) -> str:
        """Pay."""
        runs.append(amount)
        return "paid"

    return registry, runs


def test_an_approved_call_that_ran_in_a_closed_resume_never_runs_again(emulator, make_client):
    """Found by review: closing resume_stream after the tool ran kept the call pending,
    and a second resume ran it again."""
    registry, runs = _payments()
    emulator.script(reply(tool_calls=[tool_call("pay", {"amount": 3}, id="a1")]))
    conversation = make_client(tools=registry).conversation()
    conversation.send("pay")
    emulator.script(reply(content="paid"))
    stream = conversation.resume_stream(approve=["a1"])
    for event in stream:
        if event.type == "tool_call_finished":
            break
    stream.close()
    assert runs == [3]
    assert conversation.pending == ()  # settled: it ran, its result was lost with the turn
    with pytest.raises(ValueError):
        conversation.resume(approve=["a1"])
    assert runs == [3]
    tool_messages = [m for m in conversation.messages if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == ["a1"]
    assert "do not call it again" in tool_messages[0]["content"]
    assert conversation.send("and now?").completed  # the history is valid for the server


def test_an_approved_call_that_ran_before_a_failed_model_call_never_runs_again(
        emulator, make_client):
    registry, runs = _payments()
    emulator.script(reply(tool_calls=[tool_call("pay", {"amount": 5}, id="f1")]))
    conversation = make_client(tools=registry, retry=gg.NoRetry()).conversation()
    conversation.send("pay")
    emulator.fail(400)
    with pytest.raises(gg.BadRequestError):
        conversation.resume(approve=["f1"])
    assert runs == [5]
    with pytest.raises(ValueError):
        conversation.resume(approve=["f1"])
    assert runs == [5]


def test_pending_arguments_must_be_the_models(emulator, make_client):
    registry, runs = _payments()
    emulator.script(reply(tool_calls=[tool_call("pay", {"amount": 7}, id="p1")]))
    client = make_client(tools=registry)
    conversation = client.conversation()
    conversation.send("pay")
    state = conversation.to_dict()
    state["pending"][0]["arguments"]["amount"] = 999999
    with pytest.raises(gg.StateError, match="not the ones the model sent"):
        client.conversation(state=state)
    assert runs == []
