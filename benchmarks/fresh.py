"""The measures taken in fresh processes, interleaved in shuffled rounds: the import row
(``python -c "<its imports>"``; the http.client floor's is the bare interpreter,
``python -c pass``) and the cold-start row (``python -m benchmarks.cold DRIVER``: import,
build the client, one plain call against the server, exit).

The figure is the process's CPU time (user + system): on an idle machine it equals the
wall time, but unlike the wall time it does not count the time spent waiting for a CPU that
other work holds. Wall times are kept too. Bytecode is cached as an installed package has
it: a checkout run with ``PYTHONDONTWRITEBYTECODE`` would otherwise compile every module of
this SDK (not of the site-packages peers) in every round, so one untimed run per
contestant fills a private cache first (once per run: the repeats share the cache)."""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import tempfile
import time
from typing import TYPE_CHECKING, Any

from benchmarks.contestants import ROOT, Contestant, child_env
from benchmarks.progress import Progress

if TYPE_CHECKING:
    from benchmarks.runner import Plan


def command(kind: str, contestant: Contestant) -> list[str]:
    if kind == "import":
        return [contestant.python, "-c", contestant.imports]
    return [contestant.python, "-m", "benchmarks.cold", contestant.driver]


def run(kinds: tuple[str, ...], contestants: list[Contestant], server: dict[str, Any], plan: Plan,
        rng: random.Random, figures: dict[str, Any], errors: dict[str, str], progress: Progress,
        pycache: str | None = None) -> None:
    """The fresh-process rows of *kinds* (``"import"``, ``"cold"``), bytecode cached in
    *pycache* (a private temporary directory if None; one shared by the repeats of a run
    warms each contestant only once)."""
    if pycache is None:
        with tempfile.TemporaryDirectory(prefix="benchmarks-pyc-") as private:
            run(kinds, contestants, server, plan, rng, figures, errors, progress, private)
        return
    os.makedirs(pycache, exist_ok=True)
    env = {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": pycache, "BENCH_ENV": json.dumps(server)}
    for contestant in contestants:  # one untimed run fills the cache
        marker = os.path.join(pycache, f".warm-{contestant.key}")
        if os.path.exists(marker):
            continue
        # the cold start imports the driver, which imports all the import row's statement
        # does (and what the first call loads lazily): one run warms both rows
        kind = "cold" if "cold" in kinds and not contestant.na("cold") else "import"
        subprocess.run(command(kind, contestant), cwd=ROOT, env=child_env(contestant, env),
                       capture_output=True, timeout=plan.op_timeout)
        open(marker, "w").close()
    for kind in kinds:
        _rounds(kind, [c for c in contestants if not c.na(kind)], plan, rng, figures, errors, progress, env)


def _rounds(kind: str, contestants: list[Contestant], plan: Plan, rng: random.Random, figures: dict[str, Any],
            errors: dict[str, str], progress: Progress, env: dict[str, str]) -> None:
    cpu: dict[str, list[float]] = {c.key: [] for c in contestants}
    wall: dict[str, list[float]] = {c.key: [] for c in contestants}
    by_key = {c.key: c for c in contestants}
    for round_no in range(plan.import_rounds):
        order = list(by_key)
        rng.shuffle(order)
        for key in order:
            progress.step(f"{kind} round {round_no + 1}/{plan.import_rounds}", key)
            if f"{kind}:{key}" in errors:
                continue
            before, t0 = children_cpu(), time.perf_counter()
            done = subprocess.run(command(kind, by_key[key]), cwd=ROOT, env=child_env(by_key[key], env),
                                  capture_output=True, text=True, timeout=plan.op_timeout)
            wall[key].append(time.perf_counter() - t0)
            used = children_cpu()
            cpu[key].append(used - before if used is not None and before is not None else wall[key][-1])
            if done.returncode:
                errors[f"{kind}:{key}"] = (done.stderr.strip().splitlines() or ["failed"])[-1]
    for key, samples in cpu.items():
        if samples and f"{kind}:{key}" not in errors:
            figures[kind][key] = {"value": statistics.median(samples), "mean": statistics.fmean(samples),
                                  "samples": samples, "wall": statistics.median(wall[key]),
                                  "wall_samples": wall[key]}


def children_cpu() -> float | None:
    """User + system CPU seconds of the children waited for so far (None without ``resource``)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows: wall time instead
        return None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
