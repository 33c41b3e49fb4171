"""``python -m benchmarks``: every benchmark, one table.

This SDK, the floors (http.client, and a raw socket), the tutorial's loop and (``--peers``) the libraries users would
pick instead, each in its own process, against one emulator process giving every one of
them identical replies; samples interleaved in shuffled rounds; ``--repeat`` fresh sets of
processes; medians with their min–max over repeats. The exit status is 0 whether or not
the targets are met (machines are noisy: read the table), 1 only when this SDK or a
baseline could not be measured at all (the suite itself is broken).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
from typing import Any

from benchmarks import report
from benchmarks.contestants import ALL, PEERS, select
from benchmarks.notes import notes
from benchmarks.progress import Progress
from benchmarks.runner import FULL, MEASURES, QUICK, run_repeat, steps
from benchmarks.server import ServerProcess
from benchmarks.targets import import_report


QUICK_BANNER = "quick smoke run: 1 repeat, fewer calls — figures are not for quoting"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0],
                                     epilog=f"measures: {', '.join(MEASURES)}")
    parser.add_argument("--quick", action="store_true", help="a smoke run (< 1 minute; figures are not for quoting)")
    parser.add_argument("--repeat", type=int, metavar="N", help="repeats, each with fresh processes (default 3; 1 with --quick)")
    parser.add_argument("--only", action="append", metavar="NAME", choices=MEASURES,
                        help="run only this measure (repeatable)")
    parser.add_argument("--peers", action="store_true",
                        help="also run each installed peer (openai, pydantic-ai, litellm, langgraph); pip install -e '.[bench]'")
    parser.add_argument("--peer-venvs", metavar="DIR",
                        help="with --peers: run each peer from its own venv under DIR, made and installed from "
                             "the package index if missing (for peers whose dependencies conflict)")
    parser.add_argument("--json", metavar="PATH", help="write the raw figures (every sample, every repeat) as JSON")
    parser.add_argument("--plot", metavar="PATH", help="write a PNG chart of each measure as a ratio to this SDK (matplotlib)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.peer_venvs and not args.peers:
        args.peers = True
    plan = QUICK if args.quick else FULL
    repeats = args.repeat or (1 if args.quick else 3)
    if repeats < 1:
        build_parser().error("--repeat must be at least 1")
    measures = tuple(m for m in MEASURES if not args.only or m in args.only)
    contestants, skipped = select(args.peers, args.peer_venvs and os.path.abspath(args.peer_venvs), log)
    running = {c.key: c for c in contestants}
    # a column for each contestant that runs, and for each one asked for that cannot
    shown = [c for c in ALL if c.key in running or (c.key in skipped and (args.peers or not c.is_peer))]
    columns = [running.get(c.key, c) for c in shown]
    log(f"benchmarks: {', '.join(c.label for c in contestants)}; {repeats} repeat(s) of {', '.join(measures)}"
        f"{' (quick)' if args.quick else ''}")
    progress = Progress(repeats * steps(plan, measures, contestants))
    results: list[dict[str, Any]] = []
    versions: dict[str, str] = {"Python": platform.python_version()}
    server_process = ServerProcess()
    with tempfile.TemporaryDirectory(prefix="gg-bench-") as logdir, server_process as server:
        pycache = os.path.join(logdir, "pycache")
        for n in range(repeats):
            progress.prefix = f"repeat {n + 1}/{repeats}: "
            result = run_repeat(contestants, server, plan, measures, progress, logdir, seed=n,
                                server_cpu=server_process.cpu, pycache=pycache)
            results.append(result)
            for key, text in result["errors"].items():
                progress.note(f"  {key}: {text}")
    progress.finish()
    for result in results:
        for found in result["versions"].values():
            versions.update(found)
    sdk = next(c for c in contestants if c.key == "sdk")
    imports = import_report(sdk) if "import" in measures else None
    summary = report.summarise(results)
    rows = report.table(summary, columns, skipped, plan, measures, imports, {k: v for r in results for k, v in r["errors"].items()})
    print(f"genesys_gateway benchmarks — Python {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} CPUs; {repeats} repeat(s){', quick' if args.quick else ''}")
    if args.quick:
        print(QUICK_BANNER)
    print()
    print(report.render(rows))
    print()
    for line in notes(summary, columns, skipped, results, imports, versions, os.cpu_count() or 1, plan.threads):
        print(line)
    if args.json:
        _write_json(args.json, args, plan, results, summary, skipped, imports, versions, rows)
        print(f"raw figures: {args.json}")
    if args.plot:
        try:
            from benchmarks.plot import plot

            plot(args.plot, summary, columns, measures, plan)
            print(f"chart: {args.plot}")
        except ImportError as exc:
            print(f"no chart: {exc} (pip install matplotlib, or -e '.[bench]')")
    broken = sorted({k for r in results for k in r["errors"] if k.split(":")[1] in ("sdk", "floor", "tutorial")})
    if broken:
        print(f"the suite is broken: {', '.join(broken)} could not be measured (see 'failed:' above)")
    return 1 if broken else 0


def _write_json(path: str, args: argparse.Namespace, plan: Any, results: list[dict[str, Any]],
                summary: dict[str, Any], skipped: dict[str, str], imports: Any, versions: dict[str, str],
                rows: list[list[str]]) -> None:
    data = {
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version, "platform": platform.platform(), "cpus": os.cpu_count(),
        "args": {k: v for k, v in vars(args).items()}, "plan": plan.__dict__, "versions": versions,
        "skipped": skipped, "import_report": imports, "summary": summary, "table": rows,
        "repeats": results,
        "peers": {p.key: {"parallel_tools": p.parallel_tools, "validates_args": p.validates_args} for p in PEERS},
    }
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, ensure_ascii=False)
