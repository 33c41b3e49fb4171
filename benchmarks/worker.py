"""One contestant in its own process: ``python -m benchmarks.worker MODULE``.

Standard library only (it runs in each peer's interpreter, perhaps its own venv). It
imports ``MODULE`` (a driver: ``benchmarks.this_sdk``, ``benchmarks.baselines.floor``,
``benchmarks.peers.openai_loop``...), builds its ``Driver(env)``, makes one plain call,
reports its RSS, then answers one JSON command per line from the runner:

* ``{"op": "sample", "kind": "plain"|"instant"|"sleep", "n": k}`` -> ``{"times": [...]}``
  (seconds per call, each answer checked), and ``"cpu"``: the process's CPU seconds for the batch;
* ``{"op": "sample", "kind": "stream", "n": k}`` -> ``{"times": [...]}``: seconds from the
  call that sends a streamed request to its first text delta in hand; the rest of the
  answer is then read to its end, untimed, and checked (so no sample pays for the leftovers
  of the one before, and none gains by abandoning a half-read response);
* ``{"op": "threads", "threads": 16, "calls": 50, "timeout": s, "variant"?: "alt"}`` -> throughput
  figures (and the process's CPU seconds per successful call);
* ``{"op": "memory", "kind": ..., "n": k}`` -> tracemalloc peaks of *k* runs;
* ``{"op": "exit"}``.

A driver has ``plain() -> str``, ``tools(scenario) -> str``, ``thread_caller() -> callable``
(what one thread of the throughput test calls), ``close()`` and, if it streams,
``stream() -> iterator of str``: a generator sending the streamed request when first
advanced and yielding each non-empty text delta with its library's idiom (closing what it
opened when exhausted). Replies go to a private copy
of stdout; the real stdout is pointed at stderr, so a library printing cannot corrupt them.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
import traceback
from typing import Any, Callable

from benchmarks.scenarios import check_answer, check_stream


def rss_bytes() -> int:
    """The resident set size now (Linux ``/proc``), else the peak from ``getrusage``."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def call(driver: Any, kind: str) -> None:
    content = driver.plain() if kind == "plain" else driver.tools(kind)
    check_answer(kind, content)


def sample(driver: Any, kind: str, n: int) -> dict[str, Any]:
    clock = time.perf_counter
    times = []
    cpu0 = time.process_time()
    if kind == "stream":
        for _ in range(n):
            t0 = clock()
            deltas = driver.stream()
            first = next(deltas)
            times.append(clock() - t0)
            check_stream(first, first + "".join(deltas))
        return {"times": times, "cpu": time.process_time() - cpu0}
    cpu0 = time.process_time()
    for _ in range(n):
        t0 = clock()
        call(driver, kind)
        times.append(clock() - t0)
    return {"times": times, "cpu": time.process_time() - cpu0}


def threads(driver: Any, n_threads: int, calls: int, timeout: float, variant: str = "") -> dict[str, Any]:
    """*n_threads* threads each making *calls* plain calls through ``driver.thread_caller()``
    (one shared client, or what the contestant's idiom gives each thread; with *variant*
    ``"alt"``, ``driver.thread_caller_alt()``: its second idiom)."""
    make = driver.thread_caller_alt if variant == "alt" else driver.thread_caller
    barrier = threading.Barrier(n_threads + 1)
    ok = [0] * n_threads
    errors = [0] * n_threads
    ends = [0.0] * n_threads
    first_error: list[str] = []

    def work(i: int) -> None:
        caller: Callable[[], str] = make()
        try:
            caller()  # warm: connections open, lazy imports done, before the clock starts
        finally:
            barrier.wait()
        for _ in range(calls):
            try:
                check_answer("plain", caller())
                ok[i] += 1
            except Exception as exc:  # counted, reported once
                errors[i] += 1
                if not first_error:
                    first_error.append(f"{type(exc).__name__}: {exc}"[:300])
        ends[i] = time.perf_counter()

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(n_threads)]
    for t in workers:
        t.start()
    barrier.wait()
    start, cpu0 = time.perf_counter(), time.process_time()
    stop_at = start + timeout
    for t in workers:
        t.join(max(0.0, stop_at - time.perf_counter()))
    hung = sum(t.is_alive() for t in workers)
    end = max(ends) if not hung else time.perf_counter()
    cpu = time.process_time() - cpu0
    done = sum(ok)
    return {"elapsed": end - start, "ok": done, "errors": sum(errors) + (n_threads * calls - done - sum(errors)),
            "hung_threads": hung, "throughput": done / (end - start),
            "cpu": cpu / done if done else None, "first_error": first_error[0] if first_error else None}


def memory(driver: Any, kind: str, n: int) -> dict[str, Any]:
    import tracemalloc

    peaks = []
    for _ in range(n):
        tracemalloc.start()
        try:
            call(driver, kind)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    return {"peaks": peaks}


def main(argv: list[str]) -> int:
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # anything a library prints goes to stderr
    sys.stdout = sys.stderr

    def send(obj: dict[str, Any]) -> None:
        replies.write(json.dumps(obj) + "\n")
        replies.flush()

    env = json.loads(os.environ["BENCH_ENV"])
    try:
        t0 = time.perf_counter()
        module = importlib.import_module(argv[0])
        imported = time.perf_counter() - t0
        driver = module.Driver(env)
        call(driver, "plain")
        send({"ready": True, "rss": rss_bytes(), "import_s": imported, "versions": getattr(module, "versions", dict)()})
    except Exception as exc:
        send({"ready": False, "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()})
        return 1
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd.get("op")
        try:
            if op == "exit":
                break
            if op == "sample":
                send(sample(driver, cmd["kind"], cmd["n"]))
            elif op == "threads":
                send(threads(driver, cmd["threads"], cmd["calls"], cmd["timeout"], cmd.get("variant", "")))
            elif op == "memory":
                send(memory(driver, cmd["kind"], cmd["n"]))
            else:
                send({"error": f"unknown op {op!r}"})
        except Exception as exc:
            send({"error": f"{type(exc).__name__}: {exc}"[:500], "trace": traceback.format_exc()})
    try:
        driver.close()
    finally:
        replies.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
