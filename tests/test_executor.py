"""executor.py: ToolExecutor outcomes, ordering, parallelism, timeouts, hung threads, guard."""

import asyncio
import enum
import gc
import itertools
import json
import re
import subprocess
import sys
import threading
import textwrap
from typing import Any, Optional, Union

import attrs
import pytest

from genesys_gateway.errors import ConfigurationError
from genesys_gateway.tools import RepeatGuard, ToolCallRequest, ToolExecutor, ToolRun, plan_calls
from genesys_gateway.tools import ToolContext, ToolRegistry

WAIT = 10  # generous upper bound for events the test itself controls


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


@attrs.define
class Place:
    city: str


@pytest.fixture
def release():
    """An event blocking handlers; set at teardown so no thread outlives the test."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def executor(release):
    ex = ToolExecutor(max_workers=4, default_timeout=5.0, max_result_chars=200)
    yield ex
    release.set()
    assert ex.wait_for_hung(WAIT) == 0
    ex.close()


def call(name, args="{}", call_id=None):
    if not isinstance(args, str) and args is not None:
        args = json.dumps(args)
    return ToolCallRequest(call_id or f"call_{name}", name, args)


@pytest.fixture
def registry(release):
    reg = ToolRegistry()

    @reg.tool
    def add(a: int, b: int = 2) -> int:
        return a + b

    @reg.tool
    def echo(text: str) -> str:
        return text

    @reg.tool
    def fail(message: str = "boom") -> None:
        raise ValueError(message)

    @reg.tool(timeout=0.05)
    def block(ctx: ToolContext) -> str:
        release.wait(WAIT)
        return "late"

    return reg


# ------------------------------------------------------------------ basics and ordering


def test_zero_calls_returns_empty_and_creates_no_pool(registry, executor):
    assert executor.run(registry.snapshot(), []) == []
    assert executor._pool is None and executor.stats["threads"] == 0


def test_ok_run_fields(registry, executor):
    [run] = executor.run(registry.snapshot(), [call("add", {"a": 40}, "c1")])
    assert run == ToolRun(call_id="c1", name="add", arguments={"a": 40, "b": 2}, status="ok",
                          content="42", error=None, duration_s=run.duration_s, truncated=False)
    assert run.ok and run.duration_s >= 0


def test_results_keep_call_order_whatever_finishes_first(executor):
    reg = ToolRegistry()
    events = [threading.Event() for _ in range(4)]

    @reg.tool
    def step(i: int) -> int:
        assert events[i].wait(WAIT)
        if i > 0:
            events[i - 1].set()  # call i finishes before call i-1
        return i

    events[3].set()
    runs = executor.run(reg.snapshot(), [call("step", {"i": i}, f"c{i}") for i in range(4)])
    assert [r.call_id for r in runs] == ["c0", "c1", "c2", "c3"]
    assert [r.content for r in runs] == ["0", "1", "2", "3"]


def test_calls_run_in_parallel(executor):
    reg = ToolRegistry()
    barrier = threading.Barrier(4)

    @reg.tool
    def meet() -> str:
        barrier.wait(timeout=WAIT)  # passes only if 4 handlers run at the same time
        return threading.current_thread().name

    runs = executor.run(reg.snapshot(), [call("meet", "{}", f"c{i}") for i in range(4)])
    assert [r.status for r in runs] == ["ok"] * 4
    assert len({r.content for r in runs}) == 4


def test_more_calls_than_workers_all_complete(registry):
    ex = ToolExecutor(max_workers=2)
    try:
        runs = ex.run(registry.snapshot(), [call("add", {"a": i}, f"c{i}") for i in range(25)])
        assert [r.content for r in runs] == [str(i + 2) for i in range(25)]
        assert ex.stats["threads"] <= 2
    finally:
        ex.close()


def test_worker_threads_are_named_daemons(executor):
    reg = ToolRegistry()

    @reg.tool
    def where() -> dict:
        t = threading.current_thread()
        return {"name": t.name, "daemon": t.daemon}

    [run] = executor.run(reg.snapshot(), [call("where")])
    info = json.loads(run.content)
    assert info["daemon"] is True and info["name"].startswith("genesys-gateway-tool")


def test_executor_is_shared_safely_between_threads(registry, executor):
    snap = registry.snapshot()
    results = {}

    def worker(n):
        results[n] = executor.run(snap, [call("add", {"a": n, "b": k}) for k in range(5)])

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    for n in range(6):
        assert [r.content for r in results[n]] == [str(n + k) for k in range(5)]


# ------------------------------------------------------------------ bad calls never reach handlers


@pytest.mark.parametrize("raw, expected", [
    ('{"a": 1,', "tool 'add': arguments are not valid JSON: Expecting property name enclosed "
                 "in double quotes at char 8"),
    ('{"a": 1 "b": 2}', "tool 'add': arguments are not valid JSON: Expecting ',' delimiter at char 8"),
    ("[1, 2]", "tool 'add': arguments must be a JSON object, got array"),
    ('"text"', "tool 'add': arguments must be a JSON object, got string"),
    ('{"a": NaN}', "tool 'add': arguments are not valid JSON: NaN is not valid JSON"),
    ("[" * 100_000, "tool 'add': arguments are not valid JSON: nested too deeply"),
])
def test_invalid_json_arguments(executor, raw, expected):
    reg = ToolRegistry()
    called = []

    @reg.tool
    def add(a: int = 0, b: int = 0) -> int:
        called.append(1)
        return a + b

    [run] = executor.run(reg.snapshot(), [call("add", raw)])
    assert run.status == "invalid_arguments" and run.arguments is None
    assert run.error == expected and run.content == f"Error: {expected}"
    assert not called


def test_empty_and_none_arguments_mean_empty_object(registry, executor):
    runs = executor.run(registry.snapshot(), [call("fail", None), call("fail", "  ")])
    assert [r.status for r in runs] == ["error", "error"]  # the handler ran


def test_dict_arguments_are_accepted(registry, executor):
    [run] = executor.run(registry.snapshot(), [ToolCallRequest("c", "add", {"a": 1})])
    assert run.content == "3"


def test_schema_violation(registry, executor):
    [run] = executor.run(registry.snapshot(), [call("add", {"a": "one"})])
    assert run.status == "invalid_arguments"
    assert run.arguments == {"a": "one"}
    assert run.content == "Error: invalid arguments for tool 'add': a: must be integer (got 'one')"
    [run] = executor.run(registry.snapshot(), [call("add", {"a": 1, "z": 1})])
    assert run.error.endswith("additional property 'z' is not allowed")


def test_unknown_tool_lists_available_tools(registry, executor):
    [run, bad_json] = executor.run(registry.snapshot(), [call("nope", {"x": 1}), call("nope", "{")])
    assert run.status == "unknown_tool" and run.arguments == {"x": 1}
    assert run.content == "Error: unknown tool 'nope'; available tools: add, echo, fail, block"
    assert bad_json.status == "unknown_tool" and bad_json.arguments is None


# ------------------------------------------------------------------ handler outcomes


def test_handler_exception_becomes_error_run(registry, executor):
    [run, long] = executor.run(registry.snapshot(), [
        call("fail", {"message": "disk on fire"}), call("fail", {"message": "x" * 5000})])
    assert run.status == "error"
    assert run.content == "Error: the tool failed (ValueError)"  # the text may hold secrets
    assert run.error == "ValueError: disk on fire"  # for people and logs
    assert long.status == "error" and len(long.error) == 300 and long.error.endswith("…")
    assert len(long.content) <= 200  # and the content respects max_result_chars


def test_tool_error_message_is_what_the_model_sees(executor, caplog):
    from genesys_gateway import ToolError

    reg = ToolRegistry()

    @reg.tool
    def refund(order: str) -> str:
        raise ToolError(f"order {order} is older than 90 days; offer a voucher instead")

    @reg.tool
    def lookup(key: str) -> str:
        raise KeyError(f"db password=hunter2 key={key}")

    with caplog.at_level("INFO", logger="genesys_gateway.tools"):
        told, failed = executor.run(reg.snapshot(), [call("refund", {"order": "A1"}, "c1"),
                                                     call("lookup", {"key": "k"}, "c2")])
    assert told.status == "error"
    assert told.content == "Error: order A1 is older than 90 days; offer a voucher instead"
    assert failed.content == "Error: the tool failed (KeyError)"
    assert "hunter2" not in failed.content and "hunter2" in failed.error
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and warnings[0].exc_info is not None  # the traceback, at WARNING
    assert warnings[0].exc_info[0] is KeyError
    assert not any(r.exc_info for r in caplog.records if r.levelname != "WARNING")


def test_expose_errors_sends_the_exception_text(registry):
    ex = ToolExecutor(expose_errors=True)
    try:
        [run] = ex.run(registry.snapshot(), [call("fail", {"message": "disk on fire"})])
        assert run.content == "Error: ValueError: disk on fire"
    finally:
        ex.close()
    with pytest.raises(ConfigurationError, match="expose_errors"):
        ToolExecutor(expose_errors="yes")


def test_base_exception_in_handler_does_not_kill_the_loop(executor):
    reg = ToolRegistry()

    @reg.tool
    def leave() -> None:
        raise SystemExit(3)

    [run] = executor.run(reg.snapshot(), [call("leave")])
    assert run.status == "error" and run.content == "Error: the tool failed (SystemExit)"
    assert run.error == "SystemExit: 3"
    [again] = executor.run(reg.snapshot(), [call("leave")])  # the pool still works
    assert again.status == "error"


def test_str_result_verbatim_and_json_otherwise(registry, executor):
    reg = ToolRegistry()

    @reg.tool
    def data() -> dict:
        return {"city": "Zürich", "units": 42}

    runs = executor.run(reg.snapshot(), [call("data")])
    assert runs[0].content == '{"city":"Zürich","units":42}'
    [echo] = executor.run(registry.snapshot(), [call("echo", {"text": "  as is "})])
    assert echo.content == "  as is "


def test_long_results_are_truncated(registry, executor):
    [run] = executor.run(registry.snapshot(), [call("echo", {"text": "x" * 1000})])
    assert run.status == "ok" and run.truncated and len(run.content) <= 200
    assert run.content.endswith(f"…[truncated {1000 - run.content.index('…')} chars]")


def test_unserialisable_result_is_an_error(executor):
    reg = ToolRegistry()

    @reg.tool
    def raw() -> bytes:
        return b"\x00"

    [run] = executor.run(reg.snapshot(), [call("raw")])
    assert run.status == "error"
    assert run.content.startswith("Error: tool 'raw' returned a value that cannot be sent")


def test_output_schema_is_enforced(executor):
    reg = ToolRegistry()
    schema = {"type": "object", "properties": {"t": {"type": "number"}}, "required": ["t"]}

    @reg.tool(output_schema=schema)
    def temp(good: bool) -> dict:
        return {"t": 1.5} if good else {"t": "warm"}

    ok, bad = executor.run(reg.snapshot(), [call("temp", {"good": True}),
                                             call("temp", {"good": False})])
    assert ok.status == "ok" and ok.content == '{"t":1.5}'
    assert bad.status == "invalid_output"
    assert bad.content == "Error: invalid output of tool 'temp': t: must be number (got 'warm')"


def test_converted_arguments_and_context(executor):
    reg = ToolRegistry()
    seen = {}

    @reg.tool
    def convert(unit: Unit, place: Place, ctx: ToolContext) -> str:
        seen.update(unit=unit, place=place, ctx=ctx)
        return "done"

    [run] = executor.run(reg.snapshot(), [call("convert", {"unit": "fahrenheit",
                                                           "place": {"city": "Oslo"}}, "c9")])
    assert run.status == "ok"
    assert run.arguments == {"unit": "fahrenheit", "place": {"city": "Oslo"}}
    assert seen["unit"] is Unit.F and seen["place"] == Place("Oslo")
    ctx = seen["ctx"]
    assert ctx.call_id == "c9" and ctx.deadline is not None and not ctx.is_cancelled
    assert 0 < ctx.time_left() <= 5.0


def test_handler_without_context_gets_only_arguments(executor):
    reg = ToolRegistry()
    reg.register("raw", "", {"type": "object"}, lambda **kw: sorted(kw))
    [run] = executor.run(reg.snapshot(), [call("raw", {"b": 1, "a": 2})])
    assert run.content == '["a","b"]'


def test_async_handlers_run_on_a_fresh_closed_loop(executor):
    reg = ToolRegistry()
    loops = []

    @reg.tool
    async def fetch(n: int) -> dict:
        loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0)
        return {"n": n}

    runs = executor.run(reg.snapshot(), [call("fetch", {"n": i}, f"c{i}") for i in range(3)])
    assert [r.content for r in runs] == ['{"n":0}', '{"n":1}', '{"n":2}']
    assert len(set(map(id, loops))) == 3 and all(loop.is_closed() for loop in loops)


def test_async_exception(executor):
    reg = ToolRegistry()

    @reg.tool
    async def broken() -> None:
        raise KeyError("k")

    [run] = executor.run(reg.snapshot(), [call("broken")])
    assert run.status == "error" and run.content == "Error: the tool failed (KeyError)"
    assert run.error == "KeyError: 'k'"


def test_duration_uses_injected_clock(registry):
    ticks = itertools.count()
    lock = threading.Lock()

    def clock():
        with lock:
            return float(next(ticks))

    ex = ToolExecutor(clock=clock)
    try:
        [run] = ex.run(registry.snapshot(), [call("add", {"a": 1})])
        assert run.duration_s == 1.0  # exactly one tick between handler start and end
    finally:
        ex.close()


# ------------------------------------------------------------------ timeouts and hung threads


def test_timeout_is_reported_and_thread_tracked(registry, executor, release):
    [run, ok] = executor.run(registry.snapshot(), [call("block"), call("add", {"a": 1})])
    assert run.status == "timeout"
    assert run.content == "Error: tool 'block' timed out after 0.05 s and was cancelled"
    assert run.duration_s >= 0.05
    assert ok.status == "ok"
    assert executor.hung_count == 1 and executor.stats["hung"] == 1
    release.set()
    assert executor.wait_for_hung(WAIT) == 0 and executor.hung_count == 0


def test_timeout_sets_context_cancelled(executor):
    reg = ToolRegistry()
    contexts = []

    @reg.tool(timeout=0.05)
    def cooperative(ctx: ToolContext) -> str:
        contexts.append(ctx)
        ctx.cancelled.wait(WAIT)  # returns as soon as the executor gives up on the call
        return "stopped"

    [run] = executor.run(reg.snapshot(), [call("cooperative")])
    assert run.status == "timeout"
    assert executor.wait_for_hung(WAIT) == 0
    assert contexts[0].is_cancelled


def test_async_timeout_cancels_the_task(executor):
    reg = ToolRegistry()
    cancelled = threading.Event()

    @reg.tool(timeout=0.05)
    async def slow() -> None:
        try:
            await asyncio.Event().wait()  # forever
        except asyncio.CancelledError:
            cancelled.set()
            raise

    [run] = executor.run(reg.snapshot(), [call("slow")])
    assert run.status == "timeout"
    assert executor.wait_for_hung(WAIT) == 0  # freed without any help from the test
    assert cancelled.is_set()


def test_queued_call_times_out_without_running(release):
    reg = ToolRegistry()
    started = []

    @reg.tool(timeout=0.1)
    def first() -> None:
        release.wait(WAIT)

    @reg.tool(timeout=0.05)
    def second() -> None:
        started.append(1)

    ex = ToolExecutor(max_workers=1)
    try:
        runs = ex.run(reg.snapshot(), [call("first"), call("second")])
        assert [r.status for r in runs] == ["timeout", "timeout"]
        assert "before it could start" in runs[1].content and "not run" in runs[1].content
        release.set()
        assert ex.wait_for_hung(WAIT) == 0
        assert not started
    finally:
        ex.close()


def test_saturated_pool_fails_fast(registry, release):
    ex = ToolExecutor(max_workers=2)

    # 0.5 s, not block's 0.05 s: both calls must have started (a call that times out
    # before a worker takes it is cancelled, not hung), even on a loaded machine
    @registry.tool(timeout=0.5)
    def block_long(ctx: ToolContext) -> str:
        release.wait(WAIT)
        return "late"

    try:
        snap = registry.snapshot()
        runs = ex.run(snap, [call("block_long", "{}", "a"), call("block_long", "{}", "b")])
        assert [r.status for r in runs] == ["timeout", "timeout"]
        assert ex.hung_count == 2
        [run] = ex.run(snap, [call("add", {"a": 1})])
        assert run.status == "rejected"
        assert run.content == ("Error: tool 'add' was not run: all 2 tool workers are busy "
                               "with earlier calls that timed out; try again later")
        release.set()
        assert ex.wait_for_hung(WAIT) == 0
        [run] = ex.run(snap, [call("add", {"a": 1})])
        assert run.status == "ok"
    finally:
        ex.close()


def test_deadline_clips_the_timeout(registry, executor, release):
    reg = ToolRegistry()

    @reg.tool(timeout=30)
    def wait_long() -> None:
        release.wait(WAIT)

    [run] = executor.run(reg.snapshot(), [call("wait_long")], deadline=executor.clock() + 0.05)
    assert run.status == "timeout"
    assert re.search(r"timed out after 0\.0[0-5]\d* s", run.content), run.content


def test_passed_deadline_runs_nothing(registry, executor):
    [run] = executor.run(registry.snapshot(), [call("add", {"a": 1})],
                         deadline=executor.clock() - 1)
    assert run.status == "timeout" and "deadline has passed" in run.content
    assert executor._pool is None


def test_frozen_fake_clock_cannot_make_timeouts_hang(registry, release):
    ex = ToolExecutor(clock=lambda: 100.0)
    try:
        [run] = ex.run(registry.snapshot(), [call("block")], deadline=200.0)
        assert run.status == "timeout"
    finally:
        release.set()
        ex.wait_for_hung(WAIT)
        ex.close()


# ------------------------------------------------------------------ close


def test_close_is_idempotent_and_rejects_later_calls(registry):
    ex = ToolExecutor()
    ex.run(registry.snapshot(), [call("add", {"a": 1})])
    pool = ex._pool
    ex.close()
    ex.close()
    assert ex.closed
    [run] = ex.run(registry.snapshot(), [call("add", {"a": 1})])
    assert run.status == "rejected" and "executor is closed" in run.content
    pool.shutdown(wait=True)  # idle workers exit after close
    assert pool.thread_count == 0


def test_close_does_not_block_on_hung_threads(registry, release):
    ex = ToolExecutor()
    [run] = ex.run(registry.snapshot(), [call("block")])
    assert run.status == "timeout"
    done = threading.Event()
    closer = threading.Thread(target=lambda: (ex.close(), done.set()))
    closer.start()
    assert done.wait(WAIT)  # returned while the handler is still blocked
    assert ex.hung_count == 1
    release.set()
    assert ex.wait_for_hung(WAIT) == 0


def test_hung_thread_does_not_block_interpreter_exit():
    script = textwrap.dedent("""
        import threading
        from genesys_gateway.tools.executor import ToolExecutor, ToolCallRequest
        from genesys_gateway.tools import ToolRegistry
        reg = ToolRegistry()
        forever = threading.Event()
        @reg.tool(timeout=0.05)
        def hang() -> None:
            forever.wait()
        ex = ToolExecutor()
        [run] = ex.run(reg.snapshot(), [ToolCallRequest("c", "hang", "{}")])
        print(run.status, ex.hung_count)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=30, cwd=str(__import__("pathlib").Path(__file__).parents[1]))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "timeout 1"


@pytest.mark.parametrize("kwargs", [
    {"max_workers": 0}, {"max_workers": True}, {"max_workers": 2.5},
    {"default_timeout": 0}, {"default_timeout": float("inf")}, {"default_timeout": "1"},
    {"max_result_chars": 0}, {"max_result_chars": 10.0},
])
def test_bad_configuration(kwargs):
    with pytest.raises(ConfigurationError):
        ToolExecutor(**kwargs)


# ------------------------------------------------------------------ repeat guard


def test_repeat_guard_stops_the_fourth_identical_call(registry, executor):
    guard = RepeatGuard(max_repeats=3)
    snap = registry.snapshot()
    runs = executor.run(snap, [call("add", {"a": 1}, f"c{i}") for i in range(2)], guard=guard)
    # the defaults are applied before the key is built: {"a": 1} == {"a": 1, "b": 2}
    runs += executor.run(snap, [call("add", {"a": 1, "b": 2}, "c2"), call("add", {"a": 1}, "c3"),
                                call("add", {"a": 2}, "c4")], guard=guard)
    assert [r.status for r in runs] == ["ok", "ok", "ok", "repeated", "ok"]
    assert runs[3].content == ("not run: repeated call (same tool and arguments already called "
                               "3 times in this run)")
    assert runs[3].call_id == "c3"
    assert guard.count("add", {"a": 1, "b": 2}) == 3


def test_repeat_guard_keys_and_reset():
    guard = RepeatGuard(1)
    assert guard.allow("t", {"a": 1, "b": 2})
    assert not guard.allow("t", {"b": 2, "a": 1})  # key order does not matter
    assert guard.allow("other", {"a": 1, "b": 2})
    guard.reset()
    assert guard.allow("t", {"a": 1, "b": 2})


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, None])
def test_repeat_guard_rejects_bad_limits(bad):
    with pytest.raises(ConfigurationError):
        RepeatGuard(bad)


def test_invalid_calls_do_not_count_against_the_guard(registry, executor):
    guard = RepeatGuard(1)
    runs = executor.run(registry.snapshot(), [call("add", {"a": "x"}), call("add", {"a": "x"}),
                                              call("add", {"a": 5}), call("add", {"a": 5})],
                        guard=guard)
    assert [r.status for r in runs] == ["invalid_arguments", "invalid_arguments", "ok", "repeated"]


# ------------------------------------------------------------------ absurdly deep data


def nested(depth):
    """A list nested ``depth`` levels deep, built without recursion."""
    value = []
    for _ in range(depth):
        value = [value]
    return value


DEEP = 10 * sys.getrecursionlimit()


@attrs.define
class Options:
    level: int = 1


def test_deep_arguments_for_a_schema_with_nested_defaults_are_invalid(executor):
    reg = ToolRegistry()
    called = []

    @reg.tool
    def take(x: Any = None, options: Options = Options()) -> str:
        called.append(1)
        return "ran"

    options_schema = reg.get("take").parameters["properties"]["options"]
    assert options_schema["properties"]["level"]["default"] == 1  # a nested default
    runs = executor.run(reg.snapshot(), [
        ToolCallRequest("deep", "take", {"x": nested(DEEP)}),
        call("take", json.dumps({"x": nested(700)}), "json"),  # the reported case
        call("take", "[" * 100_000, "unparsable"),
        call("take", {"x": nested(3)}, "fine")])
    assert runs[0].status == "invalid_arguments"
    assert runs[0].content == "Error: invalid arguments for tool 'take': nested too deeply"
    if sys.version_info < (3, 12):  # later versions may have the stack for 700 levels
        assert runs[1].status == "invalid_arguments"
    assert runs[1].status == "ok" or runs[1].error.endswith("nested too deeply")
    assert runs[2].status == "invalid_arguments" and runs[2].error.endswith("nested too deeply")
    assert runs[3].status == "ok" and runs[3].content == "ran"


def test_deep_arguments_the_repeat_guard_cannot_key_are_invalid(executor):
    reg = ToolRegistry()

    @reg.tool
    def take(x: Any = None) -> str:  # no nested default: validation does not copy x
        return "ran"

    guard = RepeatGuard()
    [run] = executor.run(reg.snapshot(), [ToolCallRequest("c", "take", {"x": nested(DEEP)})],
                         guard=guard)
    assert run.status == "invalid_arguments" and run.arguments is None
    assert run.content == "Error: invalid arguments for tool 'take': nested too deeply"
    [run] = executor.run(reg.snapshot(), [call("take", {"x": [1]})], guard=guard)
    assert run.status == "ok"


def test_deep_or_recursive_results_become_error_runs(executor):
    reg = ToolRegistry()

    @reg.tool
    def deep() -> list:
        return nested(DEEP)

    @reg.tool
    def loop() -> list:
        value = []
        value.append(value)
        return value

    runs = executor.run(reg.snapshot(), [call("deep"), call("loop")])
    assert [r.status for r in runs] == ["error", "error"]
    assert runs[0].error.startswith("tool 'deep' returned a value that cannot be sent to the "
                                    "model: RecursionError")
    assert "Circular reference" in runs[1].error


# ------------------------------------------------------------------ int parameters


def test_integral_floats_reach_int_parameters_as_ints(executor):
    reg = ToolRegistry()

    @reg.tool
    def kinds(n: int, opt: Optional[int] = None, either: Union[int, str] = "",
              items: list[int] = [], by_name: dict[str, int] = {}, ratio: float = 0.5,
              number: Union[int, float] = 0) -> list:
        values = [n, opt, either, *items, *by_name.values(), ratio, number]
        return [[type(v).__name__, v] for v in values]

    args = {"n": 2.0, "opt": 1e20, "either": 3.0, "items": [4.0, 5], "by_name": {"a": 6.0},
            "ratio": 7.0, "number": 8.0}
    [run] = executor.run(reg.snapshot(), [call("kinds", args)])
    assert run.status == "ok", run.content
    assert json.loads(run.content) == [
        ["int", 2], ["int", 10 ** 20], ["int", 3], ["int", 4], ["int", 5], ["int", 6],
        ["float", 7.0], ["float", 8.0]]  # float and int | float keep the float
    assert run.arguments["n"] == 2.0  # the recorded arguments are the validated JSON
    [run] = executor.run(reg.snapshot(), [call("kinds", {"n": 2.5})])
    assert run.status == "invalid_arguments"  # the schema refuses non-integral values


# ------------------------------------------------------------------ idle workers


def thread_recording_registry():
    """A registry with one tool that records which worker thread ran it."""
    reg = ToolRegistry()
    seen = set()

    @reg.tool
    def where() -> str:
        seen.add(threading.current_thread())
        return "ok"

    return reg, seen


def test_idle_workers_exit_and_new_ones_start_on_demand():
    reg, seen = thread_recording_registry()
    ex = ToolExecutor(max_workers=3, worker_idle_timeout=0.05)
    try:
        runs = ex.run(reg.snapshot(), [call("where", "{}", f"c{i}") for i in range(6)])
        assert [r.status for r in runs] == ["ok"] * 6 and seen
        first = set(seen)
        for thread in first:
            thread.join(WAIT)  # each exits after 0.05 s idle
        assert not any(t.is_alive() for t in first)
        assert ex.stats["threads"] == 0
        runs = ex.run(reg.snapshot(), [call("where", "{}", f"d{i}") for i in range(3)])
        assert [r.status for r in runs] == ["ok"] * 3
        assert seen - first  # new workers started
    finally:
        ex.close()
    for thread in seen:
        thread.join(WAIT)
    assert not any(t.is_alive() for t in seen)


def test_workers_of_dropped_unclosed_executors_exit():
    reg, seen = thread_recording_registry()
    for _ in range(20):  # the default idle timeout (60 s) is not what ends them
        ex = ToolExecutor(max_workers=2)
        runs = ex.run(reg.snapshot(), [call("where", "{}", f"c{i}") for i in range(2)])
        assert [r.status for r in runs] == ["ok"] * 2
        del ex, runs
    gc.collect()
    assert len(seen) >= 20
    for thread in seen:
        thread.join(WAIT)
    assert not [t for t in seen if t.is_alive()]


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), True, "1"])
def test_bad_worker_idle_timeout(bad):
    with pytest.raises(ConfigurationError, match="worker_idle_timeout"):
        ToolExecutor(worker_idle_timeout=bad)
    assert ToolExecutor(worker_idle_timeout=None).worker_idle_timeout is None


def test_plan_calls_gives_every_call_a_unique_id_and_notes_unrunnable_ones():
    planned = plan_calls([
        ("a", "t", "{}"),               # kept
        (None, "t", "{}"),              # no id -> call_missing_id_1, not run
        ("a", "t", "{}"),               # duplicate -> a_2 is taken by the model: a_3
        ("a_2", None, "{}"),            # kept; no name -> missing_tool_name
        ("call_missing_id_4", "t", None),   # kept id; no arguments, not run
        ("", "t", "{}"),                # empty id counts as missing; avoids the model's id
    ])
    ids = [p.call_id for p in planned]
    assert ids == ["a", "call_missing_id_1", "a_3", "a_2", "call_missing_id_4", "call_missing_id_5"]
    assert len(set(ids)) == len(ids)
    assert [p.problem is not None for p in planned] == [False, True, True, False, True, True]
    assert planned[2].problem.startswith("duplicate tool call id 'a'")
    assert planned[3].name == "missing_tool_name"
    assert planned[4].problem_status == "invalid_arguments" and planned[1].problem_status == "error"


def test_the_executor_answers_unrunnable_calls_in_order_without_running_them(registry, executor):
    ran = []
    registry.register("probe", "records calls", {"type": "object"}, lambda: ran.append(1) or "ran")
    planned = plan_calls([("x", "probe", "{}"), (None, "probe", "{}"), ("x", "probe", "{}"),
                          ("y", "probe", None), ("z", "probe", "{}")])
    runs = executor.run(registry.snapshot(), planned)
    assert [r.call_id for r in runs] == [p.call_id for p in planned]
    assert [r.status for r in runs] == ["ok", "error", "error", "invalid_arguments", "ok"]
    assert len(ran) == 2
    assert runs[1].content.startswith("Error: not run: the tool call has no id")
    assert runs[3].arguments is None and "no arguments" in runs[3].content


def test_no_toolset_means_every_call_is_an_unknown_tool(executor):
    runs = executor.run(None, [ToolCallRequest("c1", "anything", "{}")])
    assert runs[0].status == "unknown_tool" and "no tools are available" in runs[0].content
