"""History trimming (``max_history_tokens``): whole oldest turns are dropped before each
model call; never the system message, never a tool call without its results, never the
turn the run works on. Unit tests, a property test over random histories (checked by the
strict emulator's validation), and runs end to end."""

from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st

from genesys_gateway.testing import reply, tool_call
from genesys_gateway.testing.emulator.validation import validate_chat_request
from genesys_gateway.trimming import Measured, estimate, message_tokens, trim_history
from tests.approval_helpers import build_registry


def user(text="hi"):
    return {"role": "user", "content": text}


def assistant(text="ok"):
    return {"role": "assistant", "content": text}


def calls(*ids, text="x"):
    return [{"role": "assistant", "content": None, "tool_calls": [
        {"id": i, "type": "function", "function": {"name": "lookup", "arguments": text}}
        for i in ids]}] + [{"role": "tool", "tool_call_id": i, "content": text} for i in ids]


SYSTEM = {"role": "system", "content": "Be terse."}


def test_nothing_is_dropped_under_the_limit():
    history = [SYSTEM, user(), assistant(), user()]
    assert trim_history(history, 1000, protect_from=3) == (0, None)
    assert len(history) == 4


def test_whole_oldest_turns_go_first_and_the_system_message_stays():
    turns = [[user("a" * 400), *calls("c1", text="y" * 400), assistant("b" * 400)],
             [user("c" * 400), assistant("d" * 400)],
             [user("e" * 40), assistant("f")]]
    history = [SYSTEM] + [m for turn in turns for m in turn] + [user("now")]
    removed, _ = trim_history(history, 200, protect_from=len(history) - 1)
    assert removed == 6 and history == [SYSTEM, *turns[2], user("now")]


def test_system_messages_inside_dropped_turns_are_kept_in_place():
    history = [SYSTEM, user("a" * 800), {"role": "system", "content": "note"},
               assistant("b" * 800), user("now")]
    trim_history(history, 50, protect_from=4)
    assert history == [SYSTEM, {"role": "system", "content": "note"}, user("now")]


def test_the_current_turn_is_kept_even_over_the_limit():
    history = [SYSTEM, user("old"), assistant(), user("x" * 4000), *calls("c1")]
    removed, _ = trim_history(history, 10, protect_from=3)
    assert removed == 2 and history[1] == user("x" * 4000) and len(history) == 4


def test_the_estimate_starts_from_the_measured_prompt_tokens():
    history = [SYSTEM, user("a"), assistant("b"), user("c")]
    # the server counted 5000 tokens for the first three messages (tool definitions...)
    assert estimate(history, Measured(5000, 3)) == 5000 + message_tokens(user("c"))
    removed, measured = trim_history(history, 4990, protect_from=3, measured=Measured(5000, 3))
    assert removed == 2 and history == [SYSTEM, user("c")]
    dropped = message_tokens(user("a")) + message_tokens(assistant("b"))
    assert measured == Measured(5000 - dropped, 1)


def test_a_measure_that_does_not_fit_the_history_is_ignored():
    history = [user("a"), assistant("b")]
    assert estimate(history, Measured(9999, 5)) == estimate(history, None)
    assert estimate(history, None) == message_tokens(history[0]) + message_tokens(history[1])


# -- property: random histories ---------------------------------------------------------------

TEXT = st.text(alphabet="abc xyz", max_size=300)


@st.composite
def histories(draw):
    """A valid history (system, maybe a greeting, turns with tool rounds and system notes)
    and the index of the last user message."""
    history = []
    if draw(st.booleans()):
        history.append({"role": "system", "content": draw(TEXT)})
    if draw(st.booleans()):
        history.append(assistant(draw(TEXT)))
    counter = 0
    for _ in range(draw(st.integers(1, 8))):
        history.append(user(draw(TEXT)))
        for step in draw(st.lists(st.sampled_from(["text", "calls", "system"]), max_size=4)):
            if step == "text":
                history.append(assistant(draw(TEXT)))
            elif step == "system":
                history.append({"role": "system", "content": draw(TEXT)})
            else:
                ids = [f"call_{counter + i}" for i in range(draw(st.integers(1, 3)))]
                counter += len(ids)
                history += calls(*ids, text=draw(TEXT))
    last_user = max(i for i, m in enumerate(history) if m["role"] == "user")
    return history, last_user


def estimate_without(original, measured, first, cut):
    """The estimate of ``original`` with the non-system messages of ``[first, cut)`` dropped
    (what is left of the measured part counts at least 0)."""
    dropped = [i for i in range(first, cut) if original[i]["role"] != "system"]
    if measured is None:
        return sum(message_tokens(m) for i, m in enumerate(original) if i not in dropped)
    gone = sum(message_tokens(original[i]) for i in dropped if i < measured.messages)
    return max(0, measured.prompt_tokens - gone) + sum(
        message_tokens(m) for i, m in enumerate(original)
        if i >= measured.messages and i not in dropped)


@settings(max_examples=300, deadline=None)
@given(case=histories(), limit=st.integers(1, 2000), measured_at=st.integers(0, 60),
       prompt_tokens=st.integers(0, 3000))
def test_random_histories_keep_their_invariants_and_stay_sendable(case, limit, measured_at,
                                                                  prompt_tokens):
    history, protect = case
    original = json.loads(json.dumps(history))
    measured = Measured(prompt_tokens, measured_at) if measured_at <= len(history) else None
    before = estimate(history, measured)
    removed, after = trim_history(history, limit, protect_from=protect, measured=measured)
    first = next(i for i, m in enumerate(original) if m["role"] == "user")
    tail = original[protect:]
    # untouched: what precedes the first turn, and the turn the run works on
    assert history[:first] == original[:first] and history[len(history) - len(tail):] == tail
    # in between: the system messages of the dropped turns, then whole turns from a turn start
    starts = [i for i in range(first, protect + 1) if original[i]["role"] == "user"]
    middle = history[first:len(history) - len(tail)]
    cuts = [c for c in starts if middle == [m for m in original[first:c] if m["role"] == "system"]
            + original[c:protect]]
    assert cuts, "the result is not a whole-turn trim of the history"
    cut = cuts[0]
    assert removed == len(original) - len(history) == (
        cut - first - sum(m["role"] == "system" for m in original[first:cut]))
    assert [m for m in history if m["role"] == "system"] == [
        m for m in original if m["role"] == "system"]
    # the estimate follows what was dropped, and no more was dropped than needed
    now = estimate(history, after)
    assert before == estimate_without(original, measured, first, first)
    assert now == estimate_without(original, measured, first, cut)
    if cut > first:
        previous = max(c for c in starts if c < cut)
        assert estimate_without(original, measured, first, previous) > limit
    if now > limit:
        assert cut == protect  # every turn but the run's own was dropped
    # what the loop sends next is accepted by the strict emulator
    validate_chat_request({"model": "m", "messages": history})


# -- end to end --------------------------------------------------------------------------------


def test_a_long_conversation_stays_under_the_limit_and_every_request_is_accepted(
        emulator, make_client):
    emulator.responder = lambda body: reply("y" * 200)
    client = make_client(tools=build_registry([]))
    conversation = client.conversation("Be terse.", max_history_tokens=400)
    for turn in range(12):
        if turn % 3 == 1:
            emulator.script(reply(tool_calls=[tool_call("lookup", {"order": turn},
                                                        id=f"c{turn}")]))
        assert conversation.send(f"turn {turn} " + "x" * 300).completed
    for body in emulator.chat_requests:
        assert body["messages"][0] == {"role": "system", "content": "Be terse."}
    last = emulator.chat_requests[-1]["messages"]
    assert last[1]["role"] == "user" and len(last) < 12
    assert conversation.messages[0]["role"] == "system" and len(conversation.messages) < 12


def test_the_server_measure_drives_trimming_and_survives_a_reload(emulator, make_client):
    client = make_client()
    conversation = client.conversation("Be terse.", max_history_tokens=1000)
    emulator.script(reply("a", usage={"prompt_tokens": 990, "completion_tokens": 1,
                                      "total_tokens": 991}))
    conversation.send("first")
    state = conversation.to_dict()
    assert state["last_request"] == {"prompt_tokens": 990, "messages": 2}
    restored = client.conversation(state=state, max_history_tokens=1000)
    restored.send("second " + "z" * 100)  # 990 + the new messages > 1000: "first" goes
    assert [m["content"] for m in emulator.chat_requests[-1]["messages"]] == [
        "Be terse.", "second " + "z" * 100]


def test_a_run_never_trims_its_own_turn(emulator, make_client):
    emulator.script(*[reply(tool_calls=[tool_call("lookup", {"order": i}, id=f"c{i}")],
                            usage={"prompt_tokens": 5000, "completion_tokens": 1,
                                   "total_tokens": 5001}) for i in range(3)], "done")
    conversation = make_client(tools=build_registry([]), max_iterations=5).conversation(
        "Be terse.", max_history_tokens=100)
    assert conversation.send("look three orders up").completed
    sent = emulator.chat_requests[-1]["messages"]
    assert sent[1] == user("look three orders up") and len(sent) == 8


def test_the_trimming_benchmark_runs():
    from benchmarks import trimming as bench

    rows = bench.measure(3)
    assert [name for name, _, _ in rows] == ["cold", "measured", "under"]
    assert rows[0][2] > 0 and rows[2][2] == 0
