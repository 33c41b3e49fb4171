"""Stress: 32 threads × 50 runs with tools on one shared client. Zero errors, one token
request, every answer paired with its own question, and the client's threads and sockets
all gone after ``close()``.

Throughput is printed (``-s``) for the record; it is not asserted (timing goals belong in
``benchmarks/``)."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest

import genesys_gateway as gg
from genesys_gateway.constants import TOOL_THREAD_NAME_PREFIX
from genesys_gateway.testing import GatewayEmulator, reply, tool_call

THREADS, RUNS = int(os.environ.get("GG_STRESS_THREADS", 32)), int(os.environ.get("GG_STRESS_RUNS", 50))


def responder(request: dict[str, Any]) -> dict[str, Any]:
    """Play a model: call ``tag`` with the user's words, then answer with the tool's result."""
    last = request["messages"][-1]
    if last["role"] == "user":
        return reply(tool_calls=[tool_call("tag", {"text": last["content"]})])
    return reply(content=f"answer: {last['content']}")


def client_sockets(port: int) -> int:
    """This process's TCP sockets connected to ``port`` on loopback (the client's side)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            rows = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[9] in inodes:
                count += 1
    return count


@pytest.mark.parametrize("transport", [gg.Urllib3Transport, gg.RequestsTransport])
def test_32_threads_x_50_runs_on_one_client(transport):
    registry = gg.ToolRegistry()

    @registry.tool
    def tag(text: str) -> str:
        """Tag the text."""
        return f"<{text}>"

    with GatewayEmulator(responder=responder) as emulator:
        baseline_threads = {t.ident for t in threading.enumerate()}
        assert client_sockets(emulator.port) == 0
        http = transport()
        client = gg.GatewayClient(
            base_url=emulator.url, tools=registry, transport=http,
            auth=gg.ClientCredentials("stress", "stress-secret", token_url=emulator.token_url))
        errors: list[BaseException] = []
        mismatches: list[tuple[str, str | None]] = []
        start = threading.Barrier(THREADS)

        def worker(n: int) -> None:
            start.wait()
            for i in range(RUNS):
                prompt = f"thread {n} run {i}"
                try:
                    result = client.run(prompt)
                except BaseException as error:  # noqa: BLE001 - every failure is counted
                    errors.append(error)
                    continue
                if result.content != f"answer: <{prompt}>" or result.tool_runs[0].status != "ok":
                    mismatches.append((prompt, result.content))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
        began = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - began
        print(f"\n{transport.__name__}: {THREADS * RUNS} runs ({2 * THREADS * RUNS} model calls, "
              f"{THREADS * RUNS} tool calls) in {elapsed:.2f} s = {THREADS * RUNS / elapsed:.0f} runs/s")
        assert errors == [] and mismatches == []
        assert emulator.token_requests == 1
        assert client.executor().stats["threads"] > 0  # tools ran on the client's workers
        if transport is gg.Urllib3Transport:  # one shared pool (requests: one per thread,
            assert client_sockets(emulator.port) > 0  # dropped with its thread): kept alive
        client.close()
        http.close()  # a transport passed in is the caller's to close
        assert client_sockets(emulator.port) == 0  # closed synchronously by close()
        leftover = [t for t in threading.enumerate() if t.ident not in baseline_threads
                    and not t.name.startswith("GatewayEmulator")]
        assert all(t.name.startswith(TOOL_THREAD_NAME_PREFIX) for t in leftover)
        for t in leftover:  # close() told the tool workers to exit: each ends promptly
            t.join(timeout=5)
        assert [t.name for t in leftover if t.is_alive()] == []
