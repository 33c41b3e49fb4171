"""The ConversationStore contract, tested once for every store on its real backend.

Stores (see tests/conversation_store_cases.py): ``memory``, ``file``, ``redis`` (a real
redis-server), ``django`` (Django's SQLite test database, migrated) and ``postgres`` (the
Django store on a real PostgreSQL server). Each test names the stores it runs on.

The contract: a round trip gives back an equal state and its version; a missing id loads
as ``None``; creating twice, or saving a stale version, is a ``ConflictError`` and saves
nothing; of concurrent savers (threads, and processes where the backend is shared)
exactly one wins; stored data that is corrupt, truncated, foreign or of an unknown version
is a ``StateError`` naming the conversation, left as it was; a store that cannot be
reached is a ``ConversationStoreError``.

No test sleeps to wait for something: concurrent savers meet at a barrier.
"""

from __future__ import annotations

import json
import os
import threading

import pytest

import genesys_gateway as gg
from genesys_gateway.errors import ConflictError, ConversationStoreError, StateError
from tests.conversation_store_cases import (  # noqa: F401  (fixtures)
    ALL,
    PATIENCE,
    PLANTABLE,
    SHARED,
    case,
    make_state,
    stores,
)
from tests.store_helpers import MP, run_processes

# -- round trips and versions ---------------------------------------------------------------


@stores(*ALL)
def test_round_trip_gives_back_an_equal_state_and_its_version(case):
    store = case.store()
    assert isinstance(store, gg.ConversationStore)
    state = make_state(turns=3)
    assert store.save(state, None) == 1
    loaded = case.store().load("conv-1")  # another worker's handle on the same backend
    assert loaded == (state, 1)
    assert (loaded.state, loaded.version) == (state, 1)
    assert loaded.state is not state
    following = make_state(turns=4, pending=False)
    assert store.save(following, 1) == 2
    assert case.store().load("conv-1") == (following, 2)
    assert store.save(make_state(turns=5), 2) == 3


@stores(*ALL)
def test_a_state_changed_after_save_or_load_does_not_change_what_is_stored(case):
    store = case.store()
    state = make_state()
    store.save(state, None)
    state["messages"].append({"role": "user", "content": "not saved"})
    loaded = store.load("conv-1")
    assert loaded.state == make_state()
    loaded.state["messages"].clear()
    assert store.load("conv-1").state == make_state()


@stores(*ALL)
def test_a_missing_conversation_loads_as_none(case):
    store = case.store()
    assert store.load("nobody") is None
    store.save(make_state("somebody"), None)
    assert store.load("nobody") is None


@stores(*ALL)
def test_ids_are_arbitrary_strings_kept_apart(case):
    ids = ["../../etc/passwd", "a/b\\c", ".", "..", "ünï 🎉", "x" * 255, "k:with:colons",
           "  spaced  ", "CaSe", "case", "NUL-free\u200b"]
    store = case.store()
    for index, conversation_id in enumerate(ids):
        store.save(make_state(conversation_id, turns=index % 3, text=f"#{index}"), None)
    for index, conversation_id in enumerate(ids):
        assert store.load(conversation_id) == (
            make_state(conversation_id, turns=index % 3, text=f"#{index}"), 1)


@pytest.mark.parametrize("bad, error", [
    (5, TypeError), (None, TypeError), ("", ValueError), ("x" * 256, ValueError),
    ("a\nb", ValueError), ("tab\there", ValueError), ("\x00", ValueError),
    ("lone \ud800 surrogate", ValueError),
])
@stores(*ALL)
def test_unusable_ids_are_refused(case, bad, error):
    store = case.store()
    with pytest.raises(error, match="conversation_id"):
        store.load(bad)
    with pytest.raises(StateError, match="cannot save a state whose id"):
        store.save({**make_state(), "id": bad}, None)


@stores(*ALL)
def test_creating_twice_is_a_conflict_and_saves_nothing(case):
    case.store().save(make_state(), None)
    with pytest.raises(ConflictError, match=r"conversation 'conv-1' already exists") as info:
        case.store().save(make_state(text="second creator"), None)
    error = info.value
    assert isinstance(error, gg.GatewayError)
    assert (error.conversation_id, error.expected_version, error.stored_version) == ("conv-1", None, 1)
    assert "nothing was saved" in str(error)
    assert case.store().load("conv-1") == (make_state(), 1)


@stores(*ALL)
def test_a_stale_version_is_a_conflict_and_saves_nothing(case):
    mine, theirs = case.store(), case.store()
    mine.save(make_state(), None)
    winner = make_state(turns=2, text="the winner")
    assert theirs.save(winner, 1) == 2
    with pytest.raises(ConflictError, match=r"is at version 2, not 1: another worker") as info:
        mine.save(make_state(turns=2, text="the loser"), 1)
    assert (info.value.expected_version, info.value.stored_version) == (1, 2)
    with pytest.raises(ConflictError):
        mine.save(make_state(text="from the future"), 3)
    assert case.store().load("conv-1") == (winner, 2)


@stores(*ALL)
def test_saving_a_version_of_a_missing_conversation_is_a_conflict(case):
    with pytest.raises(ConflictError, match=r"does not exist \(version 4 was expected\)") as info:
        case.store().save(make_state(), 4)
    assert info.value.stored_version is None
    assert case.store().load("conv-1") is None


@pytest.mark.parametrize("bad, error", [(True, TypeError), ("1", TypeError), (1.0, TypeError),
                                        (0, ValueError), (-1, ValueError)])
@stores(*ALL)
def test_expected_version_must_be_none_or_a_positive_int(case, bad, error):
    store = case.store()
    with pytest.raises(error, match="expected_version"):
        store.save(make_state(), bad)
    assert store.load("conv-1") is None


def _deep(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


UNSAVABLE = {
    "not a mapping": (lambda: [make_state()], "must be a mapping"),
    "another version": (lambda: {**make_state(), "version": 2}, "cannot save state version 2"),
    "a set": (lambda: {**make_state(), "extra": {1, 2}}, "not JSON data"),
    "NaN": (lambda: {**make_state(), "usage": {"prompt_tokens": float("nan")}}, "not JSON data"),
    "nested too deeply": (lambda: {**make_state(), "extra": _deep(100_000)}, "nested too deeply"),
}


@pytest.mark.parametrize("kind", sorted(UNSAVABLE))
@stores(*ALL)
def test_a_state_that_is_not_json_data_is_not_saved(case, kind):
    build, problem = UNSAVABLE[kind]
    store = case.store()
    with pytest.raises(StateError, match=problem):
        store.save(build(), None)
    assert store.load("conv-1") is None


# -- concurrent savers ------------------------------------------------------------------------


def _race(case, n: int, expected: int | None) -> list[tuple]:
    """n threads, each with its own store, save at once expecting ``expected``."""
    barrier = threading.Barrier(n)
    results: list[tuple] = []

    def worker(index: int) -> None:
        store = case.store()
        try:
            barrier.wait(timeout=PATIENCE)
            results.append(("won", store.save(make_state(text=f"worker {index}"), expected), index))
        except ConflictError as error:
            results.append(("lost", error.stored_version, index))
        except Exception as error:  # reported, not hidden in a thread
            results.append(("error", repr(error), index))
        finally:
            case.thread_done()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PATIENCE)
    assert not any(thread.is_alive() for thread in threads), "a saver hung"
    return results


def _exactly_one_won(case, results: list[tuple], n: int, version: int) -> None:
    assert len(results) == n
    assert [r for r in results if r[0] == "error"] == []
    won = [r for r in results if r[0] == "won"]
    assert len(won) == 1, results
    assert won[0][1] == version
    assert all(r == ("lost", version, r[2]) for r in results if r[0] == "lost")
    assert case.store().load("conv-1") == (make_state(text=f"worker {won[0][2]}"), version)


@stores(*ALL)
def test_concurrent_savers_in_threads_exactly_one_wins(case):
    case.store().save(make_state(), None)
    _exactly_one_won(case, _race(case, 8, expected=1), 8, version=2)


@stores(*ALL)
def test_concurrent_creators_in_threads_exactly_one_wins(case):
    _exactly_one_won(case, _race(case, 8, expected=None), 8, version=1)


def _save_in_child(case, expected, barrier, results) -> None:
    """A worker process: its own store, then a save at the same moment as the others."""
    index = os.getpid()
    try:
        store = case.store()
        barrier.wait(timeout=PATIENCE)
        results.put(("won", store.save(make_state(text=f"worker {index}"), expected), index))
    except ConflictError as error:
        results.put(("lost", error.stored_version, index))
    except Exception as error:
        results.put(("error", repr(error), index))
    finally:
        case.thread_done()


@pytest.mark.parametrize("expected", [1, None], ids=["update", "create"])
@stores(*SHARED)
def test_concurrent_savers_in_processes_exactly_one_wins(case, expected):
    if expected is not None:
        case.store().save(make_state(), None)
    case.before_fork()
    results = run_processes(MP, _save_in_child, (case, expected), n=4, timeout=PATIENCE)
    _exactly_one_won(case, results, 4, version=1 if expected is None else 2)


# -- bad stored data ---------------------------------------------------------------------------


def _with(**changes) -> str:
    return json.dumps({**make_state(), **changes})


CORRUPT = {
    "truncated": (lambda: json.dumps(make_state())[:-40], r"not valid JSON .*truncated"),
    "not JSON": (lambda: "\x01garbage{", r"not valid JSON"),
    "not an object": (lambda: "[1, 2, 3]", r"not a conversation file|must be a JSON object"),
    "foreign": (lambda: json.dumps(make_state("someone-else")),
                r"belongs to conversation 'someone-else'"),
    "unknown version": (lambda: _with(version=7), r"unsupported state version 7"),
    "bad role": (lambda: _with(messages=[{"role": "robot", "content": "beep"}]),
                 r"messages\[0\]\.role: must be one of"),
    "orphan tool result": (
        lambda: _with(messages=[{"role": "tool", "tool_call_id": "x", "content": "42"}]),
        r"messages\[0\]\.tool_call_id: 'x' answers no tool call"),
    "missing usage": (lambda: json.dumps({k: v for k, v in make_state().items() if k != "usage"}),
                      r"invalid state: missing 'usage'"),
    "NaN": (lambda: _with(usage={"prompt_tokens": float("nan"), "completion_tokens": 0,
                                 "total_tokens": 0}), r"NaN is not valid JSON"),
    "nested too deeply": (lambda: "[" * 100_000 + "]" * 100_000, r"nested too deeply"),
}


@pytest.mark.parametrize("kind", sorted(CORRUPT))
@stores(*PLANTABLE)
def test_bad_stored_data_is_a_state_error_naming_the_id_and_is_left_untouched(case, kind):
    build, problem = CORRUPT[kind]
    case.plant("conv-1", build())
    before = case.raw("conv-1")
    with pytest.raises(StateError, match=problem) as info:
        case.store().load("conv-1")
    assert info.value.conversation_id == "conv-1"
    assert str(info.value).startswith("conversation 'conv-1': ")
    with pytest.raises((ConflictError, StateError)):  # creating never replaces anything
        case.store().save(make_state(), None)
    assert case.raw("conv-1") == before


# -- a store that cannot be used ---------------------------------------------------------------


@stores(*SHARED)
def test_an_unreachable_store_is_a_conversation_store_error_and_saves_nothing(case):
    broken = case.broken()
    with pytest.raises(ConversationStoreError, match=r"conversation 'conv-1': cannot save it") as info:
        broken.save(make_state(), None)
    assert info.value.conversation_id == "conv-1"
    assert isinstance(info.value, gg.GatewayError) and not isinstance(info.value, StateError)
    with pytest.raises(ConversationStoreError, match=r"conversation 'conv-1': cannot (load|read)"):
        broken.load("conv-1")
    assert case.store().load("conv-1") is None
