"""Helpers shared by the token-store tests."""

import multiprocessing
import time

from genesys_gateway.http.tokens import Token, single_flight

try:
    MP = multiprocessing.get_context("fork")
except ValueError:  # pragma: no cover - platforms without fork
    MP = multiprocessing.get_context("spawn")


def fresh_token(name: str, lifetime: float = 3600.0) -> Token:
    now = time.time()
    return Token(name, now + lifetime, now + lifetime - 60)


def get_token(store, key, fetch):
    """The SDK's own refresh path (what ClientCredentials runs) with a test fetch function."""
    return single_flight(store, key, fetch)


def join_all(procs, timeout=30.0):
    """Join every process within one deadline; kill (and fail on) any still alive, then
    assert each one exited with code 0."""
    deadline = time.monotonic() + timeout
    for p in procs:
        p.join(max(0.1, deadline - time.monotonic()))
    alive = [p for p in procs if p.is_alive()]
    for p in alive:
        p.kill()
        p.join()
    assert not alive, "a worker process hung"
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]


def run_processes(context, target, args, n, timeout=30.0) -> list:
    """Run ``target(*args, barrier, results)`` in n processes of the multiprocessing
    ``context`` (MP, or a spawn context when the parent runs threads such as an emulator's),
    sharing one Barrier(n) and one Queue. Returns the n values the workers put on the queue
    (in arrival order), after every process has been joined and exited with code 0."""
    barrier, results = context.Barrier(n), context.Queue()
    procs = [context.Process(target=target, args=(*args, barrier, results)) for _ in range(n)]
    for p in procs:
        p.start()
    try:
        return [results.get(timeout=timeout) for _ in range(n)]
    finally:
        join_all(procs, timeout)
