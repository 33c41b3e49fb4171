"""The benchmark command must keep working (numbers are its business, not the tests')."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import report, scenarios  # noqa: E402
from benchmarks.contestants import ALL, FLOOR, PEERS, SDK, TUTORIAL  # noqa: E402
from benchmarks.runner import FULL  # noqa: E402
from benchmarks.targets import check  # noqa: E402


def test_benchmark_help():
    out = subprocess.run([sys.executable, "-m", "benchmarks", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for option in ("--quick", "--json", "--only", "--repeat", "--plot", "--peers", "--peer-venvs"):
        assert option in out.stdout


def test_benchmark_runs_end_to_end(tmp_path):
    """A real (tiny) run: emulator process, one worker per contestant, the table, the JSON."""
    path = tmp_path / "figures.json"
    out = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--only", "plain", "--only", "rss",
                          "--only", "stream", "--json", str(path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr
    assert "| per-turn plain completion" in out.stdout
    assert "skipped: openai (manual loop): not run (add --peers)" in out.stdout
    data = json.loads(path.read_text())
    assert {"sdk", "floor"} <= set(data["summary"]["plain"])
    assert data["summary"]["rss"]["sdk"]["median"] > 0
    stream = data["summary"]["stream"]
    assert set(stream) == {"sdk", "floor"}  # the tutorial does not stream
    assert 0 < stream["sdk"]["median"] < 1 and stream["floor"]["ratio"]["median"] > 0
    assert len(data["repeats"][0]["figures"]["stream"]["sdk"]["samples"]) >= 4  # one round each at least
    row = next(r for r in data["table"] if r[0].startswith("time to first streamed event"))
    header = data["table"][0]
    assert row[header.index("tutorial loop")] == "n/a (does not stream)"
    assert row[header.index("target")] == "≤ 1.3× floor"
    assert not [k for k in data["repeats"][0]["errors"] if k.endswith((":sdk", ":floor"))]


def test_the_sdk_driver_reuses_its_connection():
    """After its first call, the SDK's plain turns and tool runs open no TCP connection."""
    from genesys_gateway.testing import GatewayEmulator

    from benchmarks.this_sdk import Driver

    with GatewayEmulator(path=scenarios.CHAT_PATH, responder=scenarios.respond) as em:
        driver = Driver({"url": em.url, "token": em.issue_token()})
        try:
            scenarios.check_answer("plain", driver.plain())
            em.reset()
            for _ in range(5):
                scenarios.check_answer("plain", driver.plain())
                scenarios.check_answer("instant", driver.tools("instant"))
            assert em.connections_opened == 0
            assert em.token_requests == 0
        finally:
            driver.close()


@pytest.mark.parametrize("module", ["benchmarks.this_sdk", "benchmarks.baselines.floor"])
def test_stream_drivers_yield_the_deltas_then_finish_cleanly(module):
    """The benchmark server's streamed answer comes in several deltas; each driver yields
    the first, then the rest; the next stream works too (on the same connection: the
    emulator keeps it alive after a streamed answer) and the other calls keep their own."""
    import importlib

    from genesys_gateway.testing import GatewayEmulator

    with GatewayEmulator(path=scenarios.CHAT_PATH, responder=scenarios.respond,
                         stream_chunk_chars=scenarios.STREAM_CHUNK_CHARS) as em:
        driver = importlib.import_module(module).Driver(
            {"url": em.url, "token": em.issue_token(), "chat_path": scenarios.CHAT_PATH})
        try:
            for _ in range(3):
                deltas = list(driver.stream())
                assert deltas[0] == scenarios.STREAM_FIRST
                assert len(deltas) == 15
                scenarios.check_stream(deltas[0], "".join(deltas))
            assert [r["stream"] for r in em.chat_requests] == [True] * 3
            assert em.chat_requests[0]["messages"] == scenarios.PLAIN_MESSAGES
            scenarios.check_answer("plain", driver.plain())  # not streamed: the plain answer
            em.reset()
            scenarios.check_stream(scenarios.STREAM_FIRST, "".join(driver.stream()))
            scenarios.check_answer("plain", driver.plain())
            assert em.connections_opened == 0  # the stream and the plain turns keep theirs
        finally:
            driver.close()


def test_check_stream_refuses_a_wrong_answer():
    scenarios.check_stream(scenarios.STREAM_FIRST, scenarios.STREAM_ANSWER)
    with pytest.raises(AssertionError, match="stream"):
        scenarios.check_stream(scenarios.STREAM_ANSWER, scenarios.STREAM_ANSWER)
    with pytest.raises(AssertionError, match="stream"):
        scenarios.check_stream(scenarios.STREAM_FIRST, scenarios.STREAM_FIRST)


@pytest.mark.parametrize("body, expected", [
    ({"messages": [{"role": "user", "content": "hi"}], "stream": True}, scenarios.STREAM_ANSWER),
    ({"messages": [{"role": "user", "content": "hi"}]}, scenarios.PLAIN_ANSWER),
    ({"messages": [{"role": "user", "content": "hi"}], "tools": scenarios.TOOL_DEFINITIONS}, None),
    ({"messages": [{"role": "tool", "tool_call_id": "x", "content": "{}"}]}, scenarios.FINAL_ANSWER),
])
def test_replies_depend_only_on_the_request(body, expected):
    reply = scenarios.respond(body)
    assert reply == scenarios.respond(body)  # identical for every contestant, in any order
    assert reply["content"] == expected
    if expected is None:
        assert [c["function"]["name"] for c in reply["tool_calls"]] == ["get_weather", "check_inventory"]


def _repeat(values):
    return {"figures": {m: {k: {"value": v, "errors": 0, "hung_threads": 0, "calls_per_thread": 50,
                                "first_error": None} for k, v in row.items()} for m, row in values.items()},
            "errors": {}, "load": [1.0, 1.0], "versions": {}}


def test_targets_and_ratios():
    repeats = [_repeat({"plain": {"sdk": 1.0e-3, "floor": 0.9e-3, "openai": 3e-3},
                        "threads": {"sdk": 900.0, "floor": 1000.0, "openai": 200.0},
                        "import": {"sdk": 0.15, "floor": 0.02, "openai": 0.5}}),
               _repeat({"plain": {"sdk": 1.2e-3, "floor": 0.8e-3, "openai": 3e-3},
                        "threads": {"sdk": 700.0, "floor": 1000.0, "openai": 300.0},
                        "import": {"sdk": 0.07, "floor": 0.02, "openai": 0.5}})]
    summary = report.summarise(repeats)
    assert summary["plain"]["sdk"]["median"] == pytest.approx(1.1e-3)
    assert summary["plain"]["openai"]["ratio"]["min"] == pytest.approx(2.5)  # per repeat: 3/1.2
    target, result, met = check("plain", summary, ["openai"], None)
    assert (target, met) == ("≤ 1.25× floor; ahead of peers", "no")  # 1.5× in the second repeat
    assert "ahead of 1/1" in result
    target, result, met = check("threads", summary, ["openai"], None)
    assert met == "yes" and result.startswith("0.80×, 0 errors")
    _, result, met = check("import", summary, [], {"optional": {"opentelemetry": "the otel extra"}})
    assert met == "no" and "+90 ms" in result and "opentelemetry" in result


def test_table_lists_skipped_peers():
    summary = report.summarise([_repeat({"plain": {"sdk": 1e-3, "floor": 1e-3}})])
    skipped = {p.key: "not installed" for p in PEERS}
    rows = report.table(summary, [SDK, FLOOR, *PEERS], skipped, FULL, ("plain",), None, {})
    assert rows[0][:3] == ["measure", "genesys_gateway", "raw floor"]
    assert rows[1][3:7] == ["skipped"] * 4
    text = report.render(rows)
    assert len({len(line) for line in text.splitlines()}) == 1  # aligned
    assert [c.key for c in ALL][:3] == ["sdk", "floor", "tutorial"]


def test_stream_row_marks_who_does_not_stream_and_checks_its_target():
    summary = report.summarise([_repeat({"stream": {"sdk": 1.0e-3, "floor": 0.8e-3, "openai": 2.5e-3}})])
    rows = report.table(summary, [SDK, FLOOR, TUTORIAL, PEERS[0]], {}, FULL, ("stream",), None, {})
    assert rows[1][1:5] == ["1,000 µs", "0.80×", "n/a (does not stream)", "2.50×"]
    assert rows[1][5:] == ["≤ 1.3× floor; ahead of peers", "1.25×; ahead of 1/1", "yes"]


def test_conversation_store_benchmark_runs_and_reports_ratios(tmp_path):
    sys.path.insert(0, str(ROOT))
    from benchmarks import conversation_stores as bench

    state = bench.fifty_turns()
    assert len(state["messages"]) == 201
    rows = bench.measure([bench.memory_pair(state), bench.file_pair(state, str(tmp_path))], 3)
    assert [r[0] for r in rows] == ["memory", "file"]
    assert all(r[3].endswith("×") for r in rows)
