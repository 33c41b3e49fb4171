"""One repeat of the benchmark: a fresh worker process per contestant, every measure
sampled in interleaved rounds (a shuffled order each round, one worker busy at a time, so
contestants share the machine's noise rather than each getting its own), then the import
and cold-start times in fresh processes (``benchmarks.fresh``)."""

from __future__ import annotations

import json
import os
import queue
import random
import statistics
import subprocess
import threading
from dataclasses import dataclass, field
from typing import IO, Any, Callable

from benchmarks import fresh
from benchmarks.contestants import ROOT, Contestant, child_env
from benchmarks.progress import Progress

#: Every measure, in table order (``--only`` takes these names).
MEASURES = ("plain", "instant", "short", "sleep", "threads", "import", "cold", "rss", "memory", "stream")
SAMPLED = ("plain", "instant", "short", "sleep", "stream")
NEEDS_WORKERS = frozenset({"plain", "instant", "short", "sleep", "threads", "rss", "memory", "stream"})
#: fresh processes per contestant and round, not workers
FRESH = ("import", "cold")
#: per sampled measure: warm-up calls (the fastest sizes the batches)
WARM = {"plain": 5, "instant": 3, "short": 2, "sleep": 1, "stream": 3}
#: model requests per sampled call (a tool loop is two model calls)
REQUESTS = {"plain": 1, "instant": 2, "short": 2, "sleep": 2, "stream": 1}


@dataclass(frozen=True)
class Plan:
    """How much to sample in one repeat. Each round, a worker runs as many calls as fit in
    ``budget[kind]`` seconds (from its warm-up latency; at least one, at most ``cap``)."""

    rounds: dict[str, int] = field(default_factory=lambda: {"plain": 15, "instant": 15, "short": 10, "sleep": 6,
                                                            "stream": 15})
    budget: dict[str, float] = field(default_factory=lambda: {"plain": 0.03, "instant": 0.05, "short": 0.05,
                                                              "sleep": 0.0, "stream": 0.03})
    cap: int = 60
    threads: int = 16
    calls: int = 50
    memory_runs: int = 3
    import_rounds: int = 3
    start_timeout: float = 300.0
    op_timeout: float = 120.0


FULL = Plan()
QUICK = Plan(rounds={"plain": 4, "instant": 4, "short": 2, "sleep": 2, "stream": 4},
             budget={"plain": 0.02, "instant": 0.03, "short": 0.02, "sleep": 0.0, "stream": 0.02},
             cap=30, calls=10, memory_runs=1, import_rounds=1, start_timeout=120.0, op_timeout=60.0)


class WorkerError(Exception):
    pass


class Worker:
    """A contestant's ``benchmarks.worker`` process: one JSON command, one JSON answer."""

    def __init__(self, contestant: Contestant, server: dict[str, Any], logdir: str) -> None:
        self.contestant = contestant
        self.log_path = os.path.join(logdir, f"{contestant.key}.stderr.log")
        self._log: IO[str] = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self.proc = subprocess.Popen(
            [contestant.python, "-m", "benchmarks.worker", contestant.driver], cwd=ROOT,
            env=child_env(contestant, {"BENCH_ENV": json.dumps(server)}),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True)
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.info: dict[str, Any] = {}
        self.dead = False

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put("")  # EOF

    def _answer(self, timeout: float, what: str) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise WorkerError(f"{what}: no answer within {timeout:.0f} s (killed)") from None
        if not line:
            self.dead = True
            raise WorkerError(f"{what}: the process exited ({self.stderr_tail()})")
        answer: dict[str, Any] = json.loads(line)
        if answer.get("error"):
            raise WorkerError(f"{what}: {answer['error']}")
        return answer

    def ready(self, timeout: float) -> dict[str, Any]:
        self.info = self._answer(timeout, "start")
        return self.info

    def ask(self, cmd: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self.dead:
            raise WorkerError("the worker is gone")
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        except OSError as exc:
            self.dead = True
            raise WorkerError(f"{cmd['op']}: {exc}") from None
        return self._answer(timeout, cmd["op"])

    def stderr_tail(self, lines: int = 3) -> str:
        self._log.flush()
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            tail = [line.rstrip() for line in fh.readlines()[-lines:]]
        return " | ".join(tail) or "no output"

    def kill(self) -> None:
        self.dead = True
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        if not self.dead and self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write('{"op": "exit"}\n')
                self.proc.stdin.close()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()
        self._log.close()


def steps(plan: Plan, measures: tuple[str, ...], contestants: list[Contestant]) -> int:
    """How many progress steps one repeat has for *contestants*."""
    total = 0
    if NEEDS_WORKERS & set(measures):
        total += len(contestants) * 2  # start, warm-up
    for kind in SAMPLED:
        if kind in measures:
            total += plan.rounds[kind] * sum(not c.na(kind) for c in contestants)
    for kind in ("memory", "threads"):
        if kind in measures:
            total += sum(not c.na(kind) for c in contestants)
    for kind in FRESH:
        if kind in measures:
            total += plan.import_rounds * sum(not c.na(kind) for c in contestants)
    return total


def run_repeat(contestants: list[Contestant], server: dict[str, Any], plan: Plan, measures: tuple[str, ...],
               progress: Progress, logdir: str, seed: int,
               server_cpu: Callable[[], float | None] = lambda: None, pycache: str | None = None) -> dict[str, Any]:
    """``{"figures": {measure: {key: {...}}}, "errors": {"measure:key": text}, "load": [...]}``;
    *server_cpu* gives the server process's CPU seconds so far (None: not known); *pycache*
    is the bytecode cache of the fresh-process rows (shared by the repeats of a run)."""
    rng = random.Random(seed)
    figures: dict[str, dict[str, dict[str, Any]]] = {m: {} for m in measures}
    errors: dict[str, str] = {}
    load = [os.getloadavg()[0]]
    versions: dict[str, dict[str, str]] = {}
    workers: dict[str, Worker] = {}
    if NEEDS_WORKERS & set(measures):
        workers = _start(contestants, server, plan, figures, errors, progress, logdir)
        versions = {key: w.info.get("versions", {}) for key, w in workers.items()}
    try:
        latency = _warm(workers, measures, plan, errors, progress)
        for kind in SAMPLED:
            if kind in measures:
                _sample(kind, workers, latency, plan, rng, figures, errors, progress, server_cpu)
        if "memory" in measures:
            for key in _shuffled(workers, rng):
                if workers[key].contestant.na("memory"):
                    continue
                progress.step("memory per run", key)
                answer = _ask(errors, "memory", workers[key], {"op": "memory", "kind": "instant",
                                                               "n": plan.memory_runs}, plan.op_timeout)
                if answer:
                    figures["memory"][key] = {"value": statistics.median(answer["peaks"]), "samples": answer["peaks"]}
        if "threads" in measures:  # last: a peer may leave hung threads behind
            _threads(workers, plan, rng, figures, errors, progress, server_cpu)
    finally:
        for worker in workers.values():
            worker.close()
    kinds = tuple(k for k in FRESH if k in measures)
    if kinds:
        fresh.run(kinds, contestants, server, plan, rng, figures, errors, progress, pycache)
    load.append(os.getloadavg()[0])
    return {"figures": figures, "errors": errors, "load": load, "versions": versions}


def _threads(workers: dict[str, Worker], plan: Plan, rng: random.Random, figures: dict[str, Any],
             errors: dict[str, str], progress: Progress, server_cpu: Callable[[], float | None]) -> None:
    """The throughput test, each worker in turn; a contestant with ``alt_threads`` runs its
    second idiom after its first (``figures["threads"][key]["alt"]``)."""
    for key in _shuffled(workers, rng):
        progress.step(f"{plan.threads} threads", key)
        calls = min(plan.calls, workers[key].contestant.thread_calls or plan.calls)
        cmd = {"op": "threads", "threads": plan.threads, "calls": calls, "timeout": plan.op_timeout / 2}
        before = server_cpu()
        answer = _ask(errors, "threads", workers[key], cmd, plan.op_timeout)
        after = server_cpu()
        if not answer:
            continue
        entry = figures["threads"][key] = _throughput(answer, calls)
        if before is not None and after is not None and answer["ok"]:
            entry["server_cpu"] = (after - before) / answer["ok"]
        if workers[key].contestant.alt_threads:
            alt = _ask(errors, "threads-alt", workers[key], dict(cmd, variant="alt"), plan.op_timeout)
            if alt:
                entry["alt"] = _throughput(alt, calls)


def _start(contestants: list[Contestant], server: dict[str, Any], plan: Plan, figures: dict[str, Any],
           errors: dict[str, str], progress: Progress, logdir: str) -> dict[str, Worker]:
    started = {c.key: Worker(c, server, logdir) for c in contestants}  # all at once: imports overlap
    workers = {}
    for key, worker in started.items():
        progress.step("starting workers", key)
        try:
            info = worker.ready(plan.start_timeout)
        except WorkerError as exc:
            errors[f"start:{key}"] = str(exc)
            worker.close()
            continue
        workers[key] = worker
        if "rss" in figures and not worker.contestant.na("rss"):
            figures["rss"][key] = {"value": info["rss"]}
    return workers


def _warm(workers: dict[str, Worker], measures: tuple[str, ...], plan: Plan, errors: dict[str, str],
          progress: Progress) -> dict[str, dict[str, float]]:
    """Warm every worker on each sampled scenario; the fastest warm call sizes its batches."""
    latency: dict[str, dict[str, float]] = {k: {} for k in SAMPLED}
    for key, worker in list(workers.items()):
        progress.step("warming up", key)
        for kind, n in WARM.items():
            if kind not in measures or worker.contestant.na(kind):
                continue
            try:
                latency[kind][key] = min(worker.ask({"op": "sample", "kind": kind, "n": n}, plan.op_timeout)["times"])
            except WorkerError as exc:
                errors[f"{kind}:{key}"] = str(exc)
    return latency


def _sample(kind: str, workers: dict[str, Worker], latency: dict[str, dict[str, float]], plan: Plan,
            rng: random.Random, figures: dict[str, Any], errors: dict[str, str], progress: Progress,
            server_cpu: Callable[[], float | None] = lambda: None) -> None:
    """Interleaved rounds of *kind*; each figure the median call with its mean, the client's
    CPU per call and the server's CPU per model request."""
    times: dict[str, list[float]] = {key: [] for key in workers if key in latency[kind]}
    cpu: dict[str, float] = {key: 0.0 for key in times}
    served: dict[str, float] = {key: 0.0 for key in times}
    for round_no in range(plan.rounds[kind]):
        for key in _shuffled(times, rng):
            progress.step(f"{kind} round {round_no + 1}/{plan.rounds[kind]}", key)
            if f"{kind}:{key}" in errors:
                continue
            n = max(1, min(plan.cap, int(plan.budget[kind] / max(latency[kind][key], 1e-6))))
            before = server_cpu()
            answer = _ask(errors, kind, workers[key], {"op": "sample", "kind": kind, "n": n}, plan.op_timeout)
            after = server_cpu()
            if answer:
                times[key].extend(answer["times"])
                cpu[key] += answer.get("cpu", 0.0)
                if before is not None and after is not None:
                    served[key] += after - before
    for key, samples in times.items():
        if samples and f"{kind}:{key}" not in errors:
            entry = figures[kind][key] = {"value": statistics.median(samples), "mean": statistics.fmean(samples),
                                          "cpu": cpu[key] / len(samples), "samples": samples}
            if served[key]:
                entry["server_cpu"] = served[key] / (len(samples) * REQUESTS[kind])
            if len(samples) >= 20:
                entry["p99"] = statistics.quantiles(samples, n=100)[98]


def _throughput(answer: dict[str, Any], calls: int) -> dict[str, Any]:
    return {"value": answer["throughput"], "cpu": answer.get("cpu"),
            "errors": answer["errors"], "hung_threads": answer["hung_threads"],
            "elapsed": answer["elapsed"], "calls_per_thread": calls, "first_error": answer["first_error"]}


def _shuffled(keys: Any, rng: random.Random) -> list[str]:
    order = list(keys)
    rng.shuffle(order)
    return order


def _ask(errors: dict[str, str], measure: str, worker: Worker, cmd: dict[str, Any],
         timeout: float) -> dict[str, Any] | None:
    """The worker's answer, or None with the failure recorded as ``errors["measure:key"]``."""
    try:
        return worker.ask(cmd, timeout)
    except WorkerError as exc:
        errors[f"{measure}:{worker.contestant.key}"] = str(exc)
        return None
