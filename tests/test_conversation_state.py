"""A conversation's state: ``to_dict()`` and ``client.conversation(state=...)`` (checked,
repaired, HMAC-signed), and conversations kept in a store (loaded at creation, saved after
every turn, optimistic concurrency between workers)."""

from __future__ import annotations

import copy
import json
import logging
import threading

import pytest

import genesys_gateway as gg
from genesys_gateway.testing import reply, tool_call
from tests.approval_helpers import build_registry
from tests.conversation_store_cases import ALL, PATIENCE, case, make_state, stores  # noqa: F401

KEY = b"k" * 32


@pytest.fixture
def client(make_client):
    return make_client(tools=build_registry([]))


def two_turns(emulator, conversation):
    emulator.script(reply(tool_calls=[tool_call("lookup", {"order": 7}, id="c1")],
                          usage={"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}),
                    reply("It is 42.5.", usage={"prompt_tokens": 20, "completion_tokens": 3,
                                                "total_tokens": 23}),
                    reply("Bye.", usage={"prompt_tokens": 30, "completion_tokens": 1,
                                         "total_tokens": 31}))
    conversation.send("total of order 7?")
    conversation.send("thanks")


def test_to_dict_is_the_versioned_json_ready_state(emulator, client):
    conversation = client.conversation("Be terse.", id="conv-1")
    two_turns(emulator, conversation)
    state = conversation.to_dict()
    assert json.loads(json.dumps(state)) == state
    assert {k: state[k] for k in ("version", "id", "pending", "ran", "usage", "system")} == {
        "version": 1, "id": "conv-1", "pending": [], "ran": ["c1"],
        "usage": {"prompt_tokens": 60, "completion_tokens": 6, "total_tokens": 66},
        "system": "Be terse."}
    assert state["messages"] == conversation.messages and len(state["messages"]) == 7
    assert state["last_request"] == {"prompt_tokens": 30, "messages": 6}
    assert conversation.usage == gg.Usage(60, 6, 66)
    state["messages"][0]["content"] = "changed"  # a copy
    assert conversation.messages[0]["content"] == "Be terse."
    gg.state.check_state(conversation.to_dict())


def test_a_restored_conversation_is_equal_and_goes_on(emulator, client):
    conversation = client.conversation("Be terse.")
    two_turns(emulator, conversation)
    state = json.loads(json.dumps(conversation.to_dict()))
    restored = client.conversation(state=state)
    assert restored.to_dict() == conversation.to_dict() and restored.id == conversation.id
    assert restored.usage == conversation.usage
    state["messages"].append({"role": "user", "content": "mutating the input changes nothing"})
    assert len(restored.messages) == 7
    assert restored.send("again").content == "Echo: again"
    assert emulator.chat_requests[-1]["messages"][:7] == conversation.messages


def test_a_call_without_its_result_is_repaired_and_logged(emulator, client, caplog):
    state = make_state("conv-r", turns=2, pending=False)
    del state["messages"][3]  # call_0's result
    state["ran"].remove("call_0")
    with caplog.at_level(logging.WARNING, logger="genesys_gateway.conversation"):
        conversation = client.conversation(state=state)
    assert conversation.messages[3] == {"role": "tool", "tool_call_id": "call_0",
                                        "content": "Error: the tool result was lost"}
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "conversation 'conv-r'" in caplog.text and "call_0" in caplog.text
    assert conversation.send("go on").completed  # the strict emulator accepts the history


def test_a_pending_call_stays_pending_and_its_siblings_are_repaired(client):
    state = make_state("conv-p", pending=True)
    state["messages"][-1]["tool_calls"].append(
        {"id": "lost", "type": "function", "function": {"name": "lookup", "arguments": "{}"}})
    conversation = client.conversation(state=state)
    assert [p.call_id for p in conversation.pending] == ["call_refund"]
    assert conversation.messages[-1]["tool_call_id"] == "lost"


def _with(change):
    state = make_state("conv-x", pending=True)
    change(state)
    return state


@pytest.mark.parametrize("state,needle", [
    (_with(lambda s: s.update(version=2)), "unsupported state version 2"),
    (_with(lambda s: s.pop("messages")), "missing 'messages'"),
    (_with(lambda s: s["messages"].append({"role": "robot"})), r"messages\[\d+\]\.role"),
    (_with(lambda s: s["pending"][0].update(call_id="elsewhere")),
     "'elsewhere' is not a call of the last assistant message"),
    (_with(lambda s: s["pending"][0].update(name="lookup")), "is a call of 'refund', not 'lookup'"),
    (_with(lambda s: s["messages"].append({"role": "tool", "tool_call_id": "call_refund",
                                           "content": "done"})), "is pending but has a result"),
    (_with(lambda s: s["messages"].append({"role": "user", "content": "hi"})),
     "the history does not end with tool calls"),
    (_with(lambda s: s["ran"].append("call_refund")), "is pending but has already run"),
    (_with(lambda s: s.update(last_request={"prompt_tokens": -1, "messages": 0})),
     r"last_request\.prompt_tokens"),
    ("not a state", "must be a JSON object"),
])
def test_a_state_that_cannot_be_used_is_a_state_error(client, state, needle):
    kept = copy.deepcopy(state)
    with pytest.raises(gg.StateError, match=needle) as raised:
        client.conversation(state=state)
    assert state == kept
    if isinstance(state, dict):
        assert raised.value.conversation_id == "conv-x" and "conversation 'conv-x'" in str(raised.value)


def test_signed_states_verify_and_altered_or_unsigned_ones_do_not(emulator, client):
    conversation = client.conversation("Be terse.")
    two_turns(emulator, conversation)
    signed = json.loads(json.dumps(conversation.to_dict(key=KEY)))
    assert len(signed["signature"]) == 64
    assert client.conversation(state=signed, key=KEY).to_dict(key=KEY) == signed
    assert client.conversation(state=signed).to_dict() == conversation.to_dict()  # no key: not checked
    altered = copy.deepcopy(signed)
    altered["messages"][1]["content"] = "refund everything"
    with pytest.raises(gg.StateError, match="signature does not match: it was altered"):
        client.conversation(state=altered, key=KEY)
    with pytest.raises(gg.StateError, match="signature does not match"):
        client.conversation(state=signed, key=b"another key")
    with pytest.raises(gg.StateError, match="not signed, but a key was given"):
        client.conversation(state=conversation.to_dict(), key=KEY)
    forged = {**signed, "signature": "é"}
    with pytest.raises(gg.StateError, match="signature does not match"):
        client.conversation(state=forged, key=KEY)
    with pytest.raises(TypeError, match="key must be bytes"):
        conversation.to_dict(key="text")
    with pytest.raises(ValueError, match="must not be empty"):
        client.conversation(key=b"")


def test_arguments_that_contradict_each_other(client):
    state = make_state("conv-a", pending=False)
    with pytest.raises(gg.StateError, match="belongs to conversation 'conv-a'"):
        client.conversation(state=state, id="other")
    with pytest.raises(ValueError, match="not both"):
        client.conversation(state=state, store=gg.MemoryConversationStore())
    with pytest.raises(ValueError, match="not both"):
        client.conversation("system", state=state)
    with pytest.raises(TypeError, match="must be a ConversationStore"):
        client.conversation(id="x", store=object())
    with pytest.raises(ValueError, match="id must have 1 to 255"):
        client.conversation(id="")
    with pytest.raises(gg.ConfigurationError, match="max_history_tokens"):
        client.conversation(max_history_tokens=0)


# -- stores ------------------------------------------------------------------------------------


@stores(*ALL)
def test_loaded_at_creation_and_saved_after_every_turn(emulator, make_client, case):
    store = case.store()
    first = make_client().conversation("Be terse.", id="conv-s", store=store)
    assert first.version is None and case.store().load("conv-s") is None
    first.send("one")
    assert first.version == 1
    with first.stream("two") as stream:
        list(stream)
    assert first.version == 2
    loaded = case.store().load("conv-s")
    assert loaded.version == 2 and loaded.state == first.to_dict()
    other = make_client().conversation("not used: the conversation exists", id="conv-s",
                                       store=case.store())
    assert other.messages == first.messages and other.version == 2
    assert other.send("three").content == "Echo: three" and other.version == 3


@stores("memory", "file")
def test_a_cancelled_stream_or_a_failed_turn_saves_nothing(emulator, make_client, case):
    conversation = make_client(retry=gg.NoRetry()).conversation(id="conv-c", store=case.store())
    conversation.send("one")
    stream = conversation.stream("two")
    stream.close()
    emulator.fail(500)
    with pytest.raises(gg.GatewayError):
        conversation.send("three")
    assert case.store().load("conv-c").version == 1 and conversation.version == 1
    assert len(conversation.messages) == 2


class SplitStore:
    """Loads from one store, saves to another (one that cannot be reached)."""

    def __init__(self, loads, saves):
        self.load, self.save = loads.load, saves.save


@stores("file", "redis")
def test_a_store_that_cannot_be_reached_is_its_typed_error_and_nothing_is_kept(
        emulator, make_client, case):
    with pytest.raises(gg.ConversationStoreError):
        make_client().conversation(id="conv-f", store=case.broken())
    conversation = make_client().conversation(id="conv-f", store=SplitStore(case.store(),
                                                                            case.broken()))
    with pytest.raises(gg.ConversationStoreError):
        conversation.send("one")
    assert conversation.messages == [] and conversation.version is None
    assert case.store().load("conv-f") is None


@stores(*ALL)
def test_two_workers_sending_at_once_exactly_one_wins(emulator, make_client, case):
    settings = {"base_url": emulator.url, "model": "gpt-4o"}
    make_client(**settings).conversation(id="conv-race", store=case.store()).send("hello")
    barrier = threading.Barrier(2, timeout=PATIENCE)

    def both_in_flight(body):
        barrier.wait()  # each reply waits for the other request: both turns overlap
        return reply("Echo: " + body["messages"][-1]["content"])

    emulator.script(both_in_flight, both_in_flight)
    workers = [make_client(**settings).conversation(id="conv-race", store=case.store())
               for _ in range(2)]
    outcomes: list[object] = [None, None]

    def send(index):
        try:
            outcomes[index] = workers[index].send(f"from worker {index}")
        except gg.ConflictError as error:
            outcomes[index] = error

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PATIENCE)
    winners = [i for i in range(2) if isinstance(outcomes[i], gg.RunResult)]
    losers = [i for i in range(2) if isinstance(outcomes[i], gg.ConflictError)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    loser = workers[losers[0]]
    assert len(loser.messages) == 2 and loser.version == 1  # rolled back
    stored = case.store().load("conv-race")
    assert stored.version == 2
    assert stored.state["messages"][-2]["content"] == f"from worker {winners[0]}"


@stores("memory", "redis")
def test_a_signed_store_state_is_verified_when_loaded(emulator, make_client, case):
    make_client().conversation(id="conv-k", store=case.store(), key=KEY).send("hi")
    assert len(case.store().load("conv-k").state["signature"]) == 64
    assert make_client().conversation(id="conv-k", store=case.store(), key=KEY).version == 1
    with pytest.raises(gg.StateError, match="signature does not match"):
        make_client().conversation(id="conv-k", store=case.store(), key=b"other")


@pytest.mark.parametrize("message", [
    {"role": "user", "content": [{}]},
    {"role": "user", "content": [{"type": "text", "text": 5}]},
    {"role": "assistant"},
], ids=["part-without-type", "text-not-a-string", "assistant-with-nothing"])
def test_histories_a_server_would_refuse_are_state_errors(make_client, message):
    """Found by review: these passed the checks and were refused by the server (400)."""
    client = make_client()
    state = client.conversation().to_dict()
    state["messages"] = [{"role": "user", "content": "hi"}, message] \
        if message["role"] == "assistant" else [message]
    with pytest.raises(gg.StateError):
        client.conversation(state=state)


def test_a_state_nested_too_deeply_is_a_state_error(make_client):
    client = make_client()
    state = client.conversation().to_dict()
    deep: list = []
    node = deep
    for _ in range(5000):
        node.append([])
        node = node[0]
    state["messages"] = [{"role": "user", "content": "hi", "extra": deep}]
    with pytest.raises(gg.StateError):
        client.conversation(state=state)
