"""The benchmark command must keep working (numbers are its business, not the tests')."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_parts_run_and_report_rows():
    sys.path.insert(0, str(ROOT))
    from benchmarks import run

    rows = run.bench_validation(50) + run.bench_connections(5)
    labels = [r[0] for r in rows]
    assert any("geometric mean" in label for label in labels)
    connections = dict((r[0], r[1]) for r in rows)
    assert connections["new TCP connections after warm-up (both transports)"] == "0"


def test_benchmark_help():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--quick" in out.stdout


def test_conversation_store_benchmark_runs_and_reports_ratios(tmp_path):
    sys.path.insert(0, str(ROOT))
    from benchmarks import conversation_stores as bench

    state = bench.fifty_turns()
    assert len(state["messages"]) == 201
    rows = bench.measure([bench.memory_pair(state), bench.file_pair(state, str(tmp_path))], 3)
    assert [r[0] for r in rows] == ["memory", "file"]
    assert all(r[3].endswith("×") for r in rows)
