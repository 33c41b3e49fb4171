"""Where this SDK's time goes: ``python -m benchmarks.profile [plain|instant|threads] [-n N]``.

Runs the benchmark's own scenario against the emulator process under cProfile, next to the
raw floor doing the same, and prints the SDK's self time grouped by where the code lives
(``genesys_gateway.<module>``, urllib3, http.client, json, ...) as microseconds per call,
then the top functions. cProfile inflates Python-heavy code more than C code: read the
shares, not the absolute figures (the table has those).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import threading
import time
from collections import defaultdict
from typing import Any, Callable

from benchmarks.baselines.floor import Driver as FloorDriver
from benchmarks.server import ServerProcess
from benchmarks.this_sdk import Driver as SDKDriver


def where(filename: str) -> str:
    """A short name for the code in *filename*: ``genesys_gateway.<module>``, a library's
    top-level package, a standard-library module, or ``<builtin>``."""
    if filename.startswith("~") or filename.startswith("<"):
        return "<builtin>"
    path = filename.replace(os.sep, "/")
    if "/genesys_gateway/" in path:
        return "genesys_gateway." + path.rsplit("/genesys_gateway/", 1)[1][:-3].replace("/", ".")
    if "site-packages/" in path:
        return path.rsplit("site-packages/", 1)[1].split("/")[0]
    if "/benchmarks/" in path:
        return "benchmarks (driver)"
    return "stdlib " + path.rsplit("/", 1)[-1][:-3]


def groups(stats: pstats.Stats, calls: int) -> list[tuple[str, float]]:
    by: dict[str, float] = defaultdict(float)
    for (filename, _, name), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        key = where(filename)
        if key == "<builtin>":
            key = "builtin " + name.strip("<>").split(" of ")[0].replace("method '", "").rstrip("'")
        by[key] += tottime
    return sorted(((k, v / calls * 1e6) for k, v in by.items()), key=lambda kv: -kv[1])


def profile(fn: Callable[[], Any], calls: int) -> tuple[pstats.Stats, float]:
    for _ in range(max(20, calls // 10)):
        fn()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    plain = (time.perf_counter() - t0) / calls
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        fn()
    prof.disable()
    return pstats.Stats(prof), plain


def threaded(driver: Any, threads: int = 16, calls: int = 50) -> Callable[[], None]:
    callers = [driver.thread_caller() for _ in range(threads)]

    def run() -> None:
        workers = [threading.Thread(target=lambda c=c: [c() for _ in range(calls)]) for c in callers]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", nargs="?", default="plain", choices=("plain", "instant", "threads"))
    parser.add_argument("-n", type=int, default=2000, help="calls profiled (default 2000; runs for threads)")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    calls = max(1, args.n if args.kind != "threads" else args.n // 800)
    with ServerProcess() as server:
        sdk, floor = SDKDriver(server), FloorDriver(server)
        fns = {"plain": (sdk.plain, floor.plain), "instant": (lambda: sdk.tools("instant"), lambda: floor.tools("instant")),
               "threads": (threaded(sdk), threaded(floor))}[args.kind]
        _, floor_time = profile(fns[1], calls)
        stats, sdk_time = profile(fns[0], calls)
        sdk.close()
        floor.close()
    unit = "run of 16 threads x 50 calls" if args.kind == "threads" else "call"
    print(f"{args.kind}: genesys_gateway {sdk_time * 1e6:,.0f} µs per {unit} unprofiled, raw floor "
          f"{floor_time * 1e6:,.0f} µs ({sdk_time / floor_time:.2f}×); profiled self time by place "
          f"(µs per {unit}):")
    total = sum(v for _, v in groups(stats, calls))
    for key, us in groups(stats, calls)[:args.top]:
        print(f"  {us:9.1f}  {100 * us / total:5.1f}%  {key}")
    print()
    stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
