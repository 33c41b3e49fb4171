"""The benchmark command must keep working (numbers are its business, not the tests')."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import report, scenarios  # noqa: E402
from benchmarks.contestants import ALL, FLOOR, PEERS, SDK, SOCKET, TUTORIAL  # noqa: E402
from benchmarks.runner import FULL, QUICK, steps  # noqa: E402
from benchmarks.targets import DEFERRED, OPTIONAL, check  # noqa: E402


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
    assert row[header.index("target")] == "≤ 1.3× http.client floor"
    assert row[header.index("raw socket")] == "n/a (no SSE reader written)"
    assert "quick smoke run: 1 repeat, fewer calls — figures are not for quoting" in out.stdout
    plain = data["summary"]["plain"]
    for key in ("sdk", "floor", "socket"):  # the mean and CPU figures next to each median
        assert plain[key]["mean"] > 0 and 0 < plain[key]["cpu"] < 1 and 0 < plain[key]["server_cpu"] < 1
    assert plain["socket"]["ratio"]["median"] > 0
    assert "http.client floor (the issue's floor" in out.stdout and "Only unproxied plain HTTP" in out.stdout
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
    assert (target, met) == ("≤ 1.25× http.client floor; ahead of peers", "no")  # 1.5× in the second repeat
    assert "ahead of 1/1" in result
    target, result, met = check("threads", summary, ["openai"], None)
    assert met == "yes" and result.startswith("0.80×, 0 errors")
    _, result, met = check("import", summary, [], {"optional": {"opentelemetry": "the otel extra"}})
    assert met == "no" and "+90 ms" in result and "opentelemetry" in result


def test_table_lists_skipped_peers():
    summary = report.summarise([_repeat({"plain": {"sdk": 1e-3, "floor": 1e-3}})])
    skipped = {p.key: "not installed" for p in PEERS}
    rows = report.table(summary, [SDK, FLOOR, *PEERS], skipped, FULL, ("plain",), None, {})
    assert rows[0][:3] == ["measure", "genesys_gateway", "http.client floor"]
    assert rows[1][3:7] == ["skipped"] * 4
    text = report.render(rows)
    assert len({len(line) for line in text.splitlines()}) == 1  # aligned
    assert [c.key for c in ALL][:4] == ["sdk", "floor", "socket", "tutorial"]


def test_stream_row_marks_who_does_not_stream_and_checks_its_target():
    summary = report.summarise([_repeat({"stream": {"sdk": 1.0e-3, "floor": 0.8e-3, "openai": 2.5e-3}})])
    rows = report.table(summary, [SDK, FLOOR, TUTORIAL, PEERS[0]], {}, FULL, ("stream",), None, {})
    assert rows[1][1:5] == ["1,000 µs", "0.80×", "n/a (does not stream)", "2.50×"]
    assert rows[1][5:] == ["≤ 1.3× http.client floor; ahead of peers", "1.25×; ahead of 1/1", "yes"]


def test_conversation_store_benchmark_runs_and_reports_ratios(tmp_path):
    sys.path.insert(0, str(ROOT))
    from benchmarks import conversation_stores as bench

    state = bench.fifty_turns()
    assert len(state["messages"]) == 201
    rows = bench.measure([bench.memory_pair(state), bench.file_pair(state, str(tmp_path))], 3)
    assert [r[0] for r in rows] == ["memory", "file"]
    assert all(r[3].endswith("×") for r in rows)


def test_new_rows_run_end_to_end(tmp_path):
    """The cold-start row, the 2 ms tool row and the threads row's CPU figures, for every
    contestant that runs without --peers (a real quick run)."""
    path = tmp_path / "figures.json"
    out = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--only", "short", "--only", "cold",
                          "--only", "threads", "--json", str(path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr
    data = json.loads(path.read_text())
    assert not data["repeats"][0]["errors"]
    summary = data["summary"]
    for key in ("sdk", "floor", "socket", "tutorial"):
        assert 0.001 < summary["cold"][key]["median"] < 30  # CPU seconds of a whole process
        assert summary["short"][key]["median"] >= 0.002  # the tools did sleep 2 ms
        assert summary["threads"][key]["errors"] == 0 and 0 < summary["threads"][key]["cpu"] < 1
    assert summary["cold"]["socket"]["ratio"]["median"] > 0
    header = data["table"][0]
    cold = next(r for r in data["table"] if r[0].startswith("cold start: import + client + first call"))
    short = next(r for r in data["table"] if r[0] == "tool loop, 2 tools of 2 ms each")
    assert cold[header.index("raw socket")].endswith("×") and short[header.index("raw socket")].endswith("×")
    assert "CPU, 16 threads" in out.stdout and "emulator server per request" in out.stdout


@pytest.mark.parametrize("scenario", ["instant", "short"])
def test_raw_socket_driver_answers_and_keeps_its_connection(scenario):
    from genesys_gateway.testing import GatewayEmulator

    from benchmarks.baselines.raw_socket import Driver

    with GatewayEmulator(path=scenarios.CHAT_PATH, responder=scenarios.respond) as em:
        driver = Driver({"url": em.url, "token": em.issue_token(), "chat_path": scenarios.CHAT_PATH})
        try:
            scenarios.check_answer("plain", driver.plain())
            em.reset()
            for _ in range(3):
                scenarios.check_answer("plain", driver.plain())
                scenarios.check_answer(scenario, driver.tools(scenario))
            assert em.connections_opened == 0
            caller = driver.thread_caller()
            scenarios.check_answer("plain", caller())
            assert em.connections_opened == 1  # one socket per thread
        finally:
            driver.close()


def test_raw_socket_reads_chunked_and_content_length_bodies():
    import socket

    from benchmarks.baselines.raw_socket import RawConnection

    ours, theirs = socket.socketpair()
    conn = RawConnection(ours)
    try:
        theirs.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=1\r\n\":1}\r\n0\r\n\r\n"
                       b"HTTP/1.1 503 Busy\r\nContent-Length: 2\r\n\r\nno")
        assert conn.exchange(b"GET / HTTP/1.1\r\n\r\n") == (200, b'{"a":1}')
        assert conn.exchange(b"GET / HTTP/1.1\r\n\r\n") == (503, b"no")
        theirs.close()
        with pytest.raises(ConnectionError):
            conn.exchange(b"GET / HTTP/1.1\r\n\r\n")
    finally:
        conn.close()


def test_every_tool_scenario_sleeps_as_declared():
    assert scenarios.SLEEPS["short"] == (0.002, 0.002)
    assert set(scenarios.TOOL_SCENARIOS) == {"instant", "short", "sleep"}
    assert set(scenarios.handlers("short")) == {"get_weather", "check_inventory"}


def test_urllib3_is_a_deferred_dependency_not_an_optional_one():
    assert "urllib3" not in OPTIONAL and "urllib3" in DEFERRED
    _, result, met = check("import", report.summarise([_repeat({"import": {"sdk": 0.05, "floor": 0.02}})]), [],
                           {"optional": {}, "deferred_loaded": {"urllib3": DEFERRED["urllib3"]}})
    assert met == "yes" and result == "+30 ms"  # loading it early is slower, not a broken promise


def test_summary_carries_means_cpu_and_the_alternative_threads_idiom():
    from benchmarks.notes import notes

    repeat = _repeat({"threads": {"sdk": 1000.0, "floor": 1100.0, "pydantic-ai": 30.0},
                      "plain": {"sdk": 1e-3, "floor": 1e-3}})
    repeat["figures"]["plain"]["sdk"].update(mean=1.2e-3, cpu=2e-4, server_cpu=2.5e-4)
    repeat["figures"]["threads"]["sdk"].update(cpu=1.5e-4, server_cpu=2.5e-4)
    repeat["figures"]["threads"]["pydantic-ai"]["alt"] = {"value": 250.0, "errors": 0, "hung_threads": 0,
                                                          "first_error": None}
    summary = report.summarise([repeat])
    assert summary["plain"]["sdk"]["mean"] == pytest.approx(1.2e-3)
    assert summary["threads"]["pydantic-ai"]["alt"]["throughput"] == 250.0
    pydantic = next(p for p in PEERS if p.key == "pydantic-ai")
    lines = notes(summary, [SDK, FLOOR, SOCKET, pydantic], {}, [repeat], None, {}, 2)
    text = "\n".join(lines)
    assert "one Agent (and its OpenAI client) per thread: 250 req/s (0.25× genesys_gateway), 0 errors" in text
    assert "at most about 4,000 req/s of this SDK's requests" in text  # the plain row: 1 / 250 µs
    assert "at genesys_gateway's 1,000 req/s the server process was busy 25% of one CPU and the client 15%" in text
    assert "client per call: genesys_gateway 200 µs" in text


def test_progress_steps_skip_what_a_contestant_does_not_measure():
    both = steps(QUICK, ("stream", "import", "cold"), [SDK, SOCKET])
    assert both == 2 * 2 + QUICK.rounds["stream"] * 1 + QUICK.import_rounds * (1 + 2)


def test_fresh_process_rows_warm_each_contestant_once_per_cache(tmp_path):
    import io
    import random

    from benchmarks import fresh
    from benchmarks.progress import Progress

    cache = tmp_path / "pyc"
    for _ in range(2):  # two repeats sharing one cache
        figures: dict = {"import": {}}
        errors: dict = {}
        fresh.run(("import",), [FLOOR], {}, QUICK, random.Random(0), figures, errors,
                  Progress(1, stream=io.StringIO()), str(cache))
        assert not errors and 0 < figures["import"]["floor"]["value"] < 30
        assert figures["import"]["floor"]["mean"] > 0
    assert [p.name for p in cache.iterdir() if p.name.startswith(".warm-")] == [".warm-floor"]
    assert fresh.command("cold", SOCKET)[-2:] == ["benchmarks.cold", "benchmarks.baselines.raw_socket"]
