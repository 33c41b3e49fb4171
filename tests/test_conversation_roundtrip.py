"""Property: any state produced by any sequence of runs, approvals and failures reloads to
an equal conversation, whose next request the strict emulator accepts."""

from __future__ import annotations

import collections
import json

import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

import genesys_gateway as gg
from genesys_gateway.testing import reply, tool_call
from genesys_gateway.testing.emulator.validation import validate_chat_request
from tests.approval_helpers import build_registry

KEY = b"round-trip key"
CALL_IDS = st.sampled_from(["call_0", "call_1", "call_2", ""])  # servers reuse ids per turn
CALLS = st.sampled_from([
    ("lookup", {"order": 7}),            # runs
    ("lookup", {"order": "seven"}),      # invalid arguments
    ("nowhere", {}),                     # unknown tool
    ("boom", {}),                        # the handler raises
    ("refund", {"order": 7}),            # needs approval
    ("send_mail", {"to": "a@b.c"}),      # needs approval (registered with a schema)
    ("refund", {"order": []}),           # needs approval, invalid: answered at once
])
SEND = st.tuples(st.just("send"), st.lists(st.tuples(*[CALLS, CALL_IDS]), max_size=3),
                 st.sampled_from([None, "limit", "one_iteration"]))
RESUME = st.tuples(st.just("resume"), st.lists(st.sampled_from(["approve", "deny", "leave"]),
                                               min_size=3, max_size=3), st.none())
FAIL = st.tuples(st.sampled_from(["fail", "cancel"]), st.none(), st.none())
ACTIONS = st.lists(st.one_of(SEND, SEND, RESUME, RESUME, FAIL), min_size=1, max_size=8)


def registry():
    reg = build_registry([])

    @reg.tool
    def boom() -> str:
        """Fails."""
        raise RuntimeError("boom")

    return reg


def next_request(conversation, definitions):
    """The body of the conversation's next request: a new user message, or (with calls
    pending) the pending calls answered."""
    messages = list(conversation.messages)
    if conversation.pending:
        messages += [{"role": "tool", "tool_call_id": p.call_id, "content": "approved"}
                     for p in conversation.pending]
    else:
        messages.append({"role": "user", "content": "next"})
    return {"model": "gpt-4o", "messages": messages, "tools": definitions}


def check_round_trip(client, conversation, definitions):
    state = json.loads(json.dumps(conversation.to_dict()))
    restored = client.conversation(state=state)
    assert restored.to_dict() == conversation.to_dict()
    assert restored.pending == conversation.pending and restored.usage == conversation.usage
    signed = json.loads(json.dumps(conversation.to_dict(key=KEY)))
    assert client.conversation(state=signed, key=KEY).to_dict(key=KEY) == signed
    validate_chat_request(next_request(restored, definitions))
    return restored


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(actions=ACTIONS)
def test_any_state_reloads_equal_and_its_next_request_is_accepted(emulator, make_client, actions):
    emulator.reset()
    planned: collections.deque = collections.deque()
    emulator.responder = lambda body: planned.popleft() if planned else reply("ok")
    tools = registry()
    client = make_client(tools=tools, retry=gg.NoRetry(), retry_budget=None)
    definitions = tools.definitions()
    conversation = client.conversation("Be terse.", id="conv-prop")
    for kind, what, how in actions:
        event(kind)
        before = conversation.to_dict()
        if kind == "send":
            if conversation.pending:
                with pytest.raises(ValueError):
                    conversation.send("hi")
                continue
            if what:
                planned.append(reply(tool_calls=[tool_call(name, args, id=call_id)
                                                 for (name, args), call_id in what]))
            options = {"limit": {"limits": gg.Limits(max_tool_calls=1)},
                       "one_iteration": {"max_iterations": 1}}.get(how, {})
            event(f"send: {conversation.send('please', **options).stop_reason}")
        elif kind == "resume":
            if not conversation.pending:
                with pytest.raises(ValueError):
                    conversation.resume()
                continue
            choice = dict(zip([p.call_id for p in conversation.pending], what))
            result = conversation.resume(
                approve=[c for c, d in choice.items() if d == "approve"],
                deny={c: "no" for c, d in choice.items() if d == "deny"})
            event(f"resume: {result.stop_reason}")
        elif kind == "fail" and not conversation.pending:
            emulator.fail(500)
            with pytest.raises(gg.ServerError):
                conversation.send("this turn fails")
            assert conversation.to_dict() == before
        elif kind == "cancel" and not conversation.pending:
            conversation.stream("closed at once").close()
            assert conversation.to_dict() == before
        planned.clear()
        conversation = check_round_trip(client, conversation, definitions)
    # the last restored conversation still runs against the strict emulator
    if conversation.pending:
        result = conversation.resume(deny={p.call_id: "end" for p in conversation.pending})
    else:
        result = conversation.send("last")
    assert result.stop_reason in ("completed", "usage_limit", "max_iterations")
    ran = conversation.to_dict()["ran"]
    assert len(ran) == len(set(ran))
