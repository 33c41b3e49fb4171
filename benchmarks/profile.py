"""Where this SDK's time goes: ``python -m benchmarks.profile [plain|instant|threads] [-n N]``.

First a *ladder*: the floor, then the floor with one of the SDK's costs added at a time
(urllib3's two sends per request, urllib3 itself, the SDK's transport alone, a thread-pool
hand-off per tool call, one shared pool for all threads), then the SDK, timed interleaved without a profiler: each
rung's step up is what that layer costs. Then the benchmark's own scenario under cProfile,
its self time grouped by where the code lives (``genesys_gateway.<module>``, urllib3,
http.client, json, socket calls) in microseconds per call, and the top functions. cProfile
inflates Python-heavy code more than C code: read its shares, not its absolute figures.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import os
import pstats
import sys
import threading
import time
from collections import defaultdict
from typing import Any, Callable

from benchmarks.baselines.floor import request_body
from benchmarks.baselines.floor import Driver as FloorDriver
from benchmarks.scenarios import MODEL, PLAIN_MESSAGES
from benchmarks.server import ServerProcess
from benchmarks.this_sdk import Driver as SDKDriver


def where(filename: str) -> str:
    """A short name for the code in *filename*: ``genesys_gateway.<module>``, a library's
    top-level package, a standard-library module, or ``<builtin>``."""
    if filename.startswith(("~", "<")):
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


def threaded(driver: Any, threads: int = 16, calls: int = 50,
             profiles: list[cProfile.Profile] | None = None) -> Callable[[], None]:
    """One run of the throughput test; with *profiles*, each thread profiles itself (cProfile
    sees only the thread that enabled it) and appends its profile there."""
    callers = [driver.thread_caller() for _ in range(threads)]

    def work(caller: Callable[[], Any]) -> None:
        prof = cProfile.Profile() if profiles is not None else None
        if prof is not None:
            prof.enable()
        for _ in range(calls):
            caller()
        if prof is not None and profiles is not None:
            prof.disable()
            profiles.append(prof)

    def run() -> None:
        workers = [threading.Thread(target=work, args=(c,)) for c in callers]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    return run


def ladder(kind: str, server: dict[str, Any], sdk: SDKDriver, floor: FloorDriver
           ) -> list[tuple[str, Callable[[], Any]]]:
    """(label, one call) rungs from the floor up to the SDK, for *kind*."""
    import concurrent.futures
    import json

    import urllib3

    body = request_body({"model": MODEL, "messages": PLAIN_MESSAGES})
    pool = urllib3.HTTPConnectionPool(floor.host, floor.port, maxsize=16, retries=False)

    def split_sends() -> None:  # http.client, headers and body in two sends (as urllib3 does)
        conn = floor.conn
        conn.putrequest("POST", floor.path, skip_accept_encoding=True)
        for name, value in dict(floor.headers, **{"Idempotency-Key": os.urandom(16).hex()}).items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        conn.send(body)
        response = conn.getresponse()
        json.loads(response.read())

    def raw_urllib3() -> None:
        headers = dict(floor.headers, **{"Idempotency-Key": os.urandom(16).hex()})
        response = pool.urlopen("POST", floor.path, body=body, headers=headers, retries=False, redirect=False)
        json.loads(response.data)

    from genesys_gateway import Urllib3Transport
    from genesys_gateway.http.transport import HTTPRequest

    transport = Urllib3Transport()
    url = f"http://{floor.host}:{floor.port}{floor.path}"

    def sdk_transport() -> None:  # the SDK's transport alone: its direct path, no client layers
        headers = dict(floor.headers, **{"Idempotency-Key": os.urandom(16).hex()})
        json.loads(transport.send(HTTPRequest("POST", url, headers, body)).body)

    if kind == "plain":
        return [("http.client floor: request(), headers and body in two sends", floor.plain),
                ("http.client by hand (putheader, endheaders, send), as urllib3 drives it", split_sends),
                ("urllib3 pool.urlopen, same request", raw_urllib3),
                ("genesys_gateway Urllib3Transport.send, same request", sdk_transport),
                ("genesys_gateway complete()", sdk.plain)]
    if kind == "instant":
        executor = concurrent.futures.ThreadPoolExecutor(8)
        handoff = FloorDriver(server)
        fns = handoff.handlers["instant"]
        handoff.handlers["instant"] = {name: functools.partial(_through_pool, executor, fn) for name, fn in fns.items()}
        return [("http.client floor: hand loop, tools inline", lambda: floor.tools("instant")),
                ("hand loop, each tool through a thread pool", lambda: handoff.tools("instant")),
                ("genesys_gateway run()", lambda: sdk.tools("instant"))]

    class SharedPool:  # what every thread of the throughput test shares
        def thread_caller(self) -> Callable[[], None]:
            return raw_urllib3

    return [("http.client floor: a connection per thread", threaded(floor)),
            ("one shared urllib3 pool, raw requests", threaded(SharedPool())),
            ("genesys_gateway, one shared client", threaded(sdk))]


def _through_pool(executor: Any, fn: Callable[..., Any], **kwargs: Any) -> Any:
    return executor.submit(fn, **kwargs).result()


def climb(rungs: list[tuple[str, Callable[[], Any]]], rounds: int, per_round: int) -> list[tuple[str, float]]:
    """Median time per call of each rung, sampled in interleaved rounds."""
    import statistics

    times: dict[str, list[float]] = {label: [] for label, _ in rungs}
    for _ in range(rounds):
        for label, fn in rungs:
            for _ in range(per_round):
                t0 = time.perf_counter()
                fn()
                times[label].append(time.perf_counter() - t0)
    return [(label, statistics.median(times[label])) for label, _ in rungs]


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
        rungs = ladder(args.kind, server, sdk, floor)
        for _, fn in rungs:  # warm
            for _ in range(3 if args.kind == "threads" else 30):
                fn()
        per_round = 1 if args.kind == "threads" else 20
        steps = climb(rungs, max(5, calls // per_round // 2) if args.kind != "threads" else 10, per_round)
        _, floor_time = profile(fns[1], calls)
        stats, sdk_time = profile(fns[0], calls)
        if args.kind == "threads":  # the profile of the threads themselves, merged
            profiles: list[cProfile.Profile] = []
            run = threaded(sdk, profiles=profiles)
            for _ in range(calls):
                run()
            stats = pstats.Stats(profiles[0])
            for prof in profiles[1:]:
                stats.add(prof)
        sdk.close()
        floor.close()
    unit = "run of 16 threads x 50 calls" if args.kind == "threads" else "call"
    print(f"{args.kind}: the ladder from the floor to the SDK (median µs per {unit}, interleaved, no profiler)")
    base = steps[0][1]
    previous = base
    for label, t in steps:
        print(f"  {t * 1e6:9.1f}  {t / base:5.2f}× http.client floor  {(t - previous) * 1e6:+8.1f}  {label}")
        previous = t
    print()
    print(f"{args.kind}: genesys_gateway {sdk_time * 1e6:,.0f} µs per {unit} unprofiled, http.client floor "
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
