"""The benchmark command must keep working (numbers are its business, not the tests')."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import report, scenarios  # noqa: E402
from benchmarks.contestants import ALL, FLOOR, PEERS, SDK  # noqa: E402
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
                          "--json", str(path)], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    assert "| per-turn plain completion" in out.stdout
    assert "skipped: openai (manual loop): not run (add --peers)" in out.stdout
    data = json.loads(path.read_text())
    assert {"sdk", "floor"} <= set(data["summary"]["plain"])
    assert data["summary"]["rss"]["sdk"]["median"] > 0
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


@pytest.mark.parametrize("body, expected", [
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


def test_conversation_store_benchmark_runs_and_reports_ratios(tmp_path):
    sys.path.insert(0, str(ROOT))
    from benchmarks import conversation_stores as bench

    state = bench.fifty_turns()
    assert len(state["messages"]) == 201
    rows = bench.measure([bench.memory_pair(state), bench.file_pair(state, str(tmp_path))], 3)
    assert [r[0] for r in rows] == ["memory", "file"]
    assert all(r[3].endswith("×") for r in rows)
