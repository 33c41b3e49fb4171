"""One command, one table: ``python benchmarks/run.py`` (``--quick`` for a smoke run).

Everything is measured side by side in one run, interleaved, against the same loopback
GatewayEmulator, and reported as ratios:

1. ``complete()`` per-turn wall time vs a raw ``http.client`` keep-alive POST of the same
   JSON (median of >= 400 each), for both transports; new TCP connections after warm-up
   and token requests.
2. Per-call argument validation: ``registry.validate_arguments`` vs the tutorial's
   ``jsonschema.validate(instance, schema)`` vs a bare compiled fastjsonschema validator,
   over three schemas (geometric mean).
3. One model turn calling 4 tools that each sleep 0.2 s: median ``run()`` wall time,
   vs the same turn with the tools run one after another (the tutorial's loop).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import genesys_gateway as gg  # noqa: E402
import genesys_gateway.constants  # noqa: E402,F401
from genesys_gateway.testing import GatewayEmulator, reply, tool_call  # noqa: E402

from benchmarks.schemas import SCHEMAS  # noqa: E402

MESSAGES = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the weather in London?"}]


@contextlib.contextmanager
def emulator_process():
    """The emulator in its own process (as a real gateway is remote): the client's CPU time
    is then not inflated by the server threads' share of this process's GIL."""
    proc = subprocess.Popen([sys.executable, "-m", "genesys_gateway", "emulator", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split()[-1]
        token_url = proc.stdout.readline().split()[-1]
        yield url, token_url
    finally:
        proc.terminate()
        proc.wait(10)


def bench_complete(n: int) -> list[tuple]:
    rows = []
    with emulator_process() as (url, token_url):
        clients = {
            "urllib3 (default)": gg.GatewayClient(base_url=url, auth=gg.ClientCredentials(
                "bench", "bench", token_url=token_url), transport=gg.Urllib3Transport()),
            "requests": gg.GatewayClient(base_url=url, auth=gg.ClientCredentials(
                "bench", "bench", token_url=token_url), transport=gg.RequestsTransport()),
        }
        # the raw floor: the same JSON to the same emulator on one keep-alive http.client
        # connection, serialized and parsed like the SDK does
        token = json.loads(_raw_post(token_url, b"grant_type=client_credentials", {
            "Authorization": "Basic YmVuY2g6YmVuY2g=",
            "Content-Type": "application/x-www-form-urlencoded"}))["access_token"]
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port)
        path = gg.constants.DEFAULT_PATH
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                   "Accept": "application/json", "User-Agent": gg.constants.USER_AGENT}
        payload = {"model": "gpt-4o", "messages": MESSAGES}

        def raw():  # the same request the SDK sends: same JSON, same headers
            headers["Idempotency-Key"] = os.urandom(16).hex()
            conn.request("POST", path, json.dumps(payload).encode(), headers)
            resp = conn.getresponse()
            data = resp.read()
            assert resp.status == 200, resp.status
            json.loads(data)

        fns = {"raw": raw}
        for name, client in clients.items():
            fns[name] = lambda c=client: c.complete(MESSAGES)
        samples = {name: [] for name in fns}
        for _ in range(30):  # warm-up: pools, token
            for fn in fns.values():
                fn()
        order = list(fns.items())
        rng = random.Random(7)
        clock = time.perf_counter
        for _ in range(n):
            rng.shuffle(order)  # interleaved, in a different order each round
            for name, fn in order:
                t0 = clock()
                fn()
                samples[name].append(clock() - t0)
        raw_median = statistics.median(samples["raw"])
        rows.append(("complete(): raw http.client keep-alive POST", f"{raw_median * 1e6:.0f} µs", "1.00×", "floor"))
        for name, client in clients.items():
            med = statistics.median(samples[name])
            target = "≤ 1.5× (aim 1.25×)" if "default" in name else "report"
            rows.append((f"complete(): {name}", f"{med * 1e6:.0f} µs", f"{med / raw_median:.2f}×", target))
            client.close()
        conn.close()
    rows += bench_connections(max(n // 3, 100))
    return rows


def bench_connections(n: int) -> list[tuple]:
    """New TCP connections after warm-up and token requests, counted by an in-process emulator."""
    with GatewayEmulator() as em:
        clients = [gg.GatewayClient(base_url=em.url, auth=gg.ClientCredentials("bench", "bench", token_url=em.token_url),
                                    transport=t()) for t in (gg.Urllib3Transport, gg.RequestsTransport)]
        for client in clients:
            client.complete(MESSAGES)
        em.reset()  # zeroes the counters
        for _ in range(n):
            for client in clients:
                client.complete(MESSAGES)
        for client in clients:
            client.close()
        return [("new TCP connections after warm-up (both transports)", str(em.connections_opened), "", "0"),
                (f"token requests during {n * len(clients)} calls after the first", str(em.token_requests), "", "0")]


def _raw_post(url, body, headers) -> bytes:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port)
    conn.request("POST", parts.path, body, headers)
    data = conn.getresponse().read()
    conn.close()
    return data


def _per_call(fn, number: int) -> float:
    best = math.inf
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def bench_validation(number: int) -> list[tuple]:
    import fastjsonschema
    import jsonschema

    rows = []
    speedups, overheads = [], []
    for label, schema, arguments in SCHEMAS:
        registry = gg.ToolRegistry()
        registry.register(label, "benchmark tool", schema, lambda **kw: kw)
        bare = fastjsonschema.compile(schema)
        t_tutorial = _per_call(lambda: jsonschema.validate(instance=arguments, schema=schema), max(number // 100, 50))
        t_registry = _per_call(lambda: registry.validate_arguments(label, arguments), number)
        t_bare = _per_call(lambda: bare(dict(arguments)), number)
        speedups.append(t_tutorial / t_registry)
        overheads.append(t_registry / t_bare)
        rows.append((f"validate {label}: tutorial / registry / bare",
                     f"{t_tutorial * 1e6:.1f} / {t_registry * 1e6:.2f} / {t_bare * 1e6:.2f} µs",
                     f"{t_tutorial / t_registry:.0f}× faster", f"{t_registry / t_bare:.2f}× bare"))
    geo = math.exp(sum(map(math.log, speedups)) / len(speedups))
    geo_bare = math.exp(sum(map(math.log, overheads)) / len(overheads))
    rows.append(("validation speed-up vs tutorial (geometric mean)", "", f"{geo:.0f}×", "≥ 20×"))
    rows.append(("registry vs bare fastjsonschema (geometric mean)", "", f"{geo_bare:.2f}×", "aim ≤ 2×"))
    return rows


def bench_parallel_tools(runs: int) -> list[tuple]:
    registry = gg.ToolRegistry()
    for i in range(4):
        def handler(item: str, _i=i) -> dict:
            time.sleep(0.2)
            return {"item": item, "tool": _i}
        registry.register(f"slow_{i}", "sleeps 0.2 s", {"type": "object", "properties": {
            "item": {"type": "string"}}, "required": ["item"]}, handler)

    def respond(request):
        if request["messages"][-1]["role"] == "tool":
            return reply(content="done")
        return reply(tool_calls=[tool_call(f"slow_{i}", {"item": str(i)}) for i in range(4)])

    parallel, sequential = [], []
    with GatewayEmulator(responder=respond) as em:
        with gg.GatewayClient(base_url=em.url, auth=gg.ClientCredentials("b", "b", token_url=em.token_url),
                              tools=registry) as client:
            client.run("warm up")
            for _ in range(runs):
                t0 = time.perf_counter()
                result = client.run("go")
                parallel.append(time.perf_counter() - t0)
                assert result.stop_reason == "completed" and len(result.tool_runs) == 4
                t0 = time.perf_counter()
                for i in range(4):  # what the tutorial's loop does: one after another
                    registry.get(f"slow_{i}").handler(item=str(i))
                sequential.append(time.perf_counter() - t0)
    med = statistics.median(parallel)
    seq = statistics.median(sequential)
    return [("run(): 1 turn, 4 tools × 0.2 s (parallel)", f"{med * 1000:.0f} ms", f"{seq / med:.1f}× faster",
             "≤ 350 ms"),
            ("same 4 tools one after another (tutorial)", f"{seq * 1000:.0f} ms", "1.0×", "≈ 800 ms")]


def print_table(rows: list[tuple]) -> None:
    headers = ("measurement", "value", "ratio", "target")
    widths = [max(len(str(r[i])) for r in rows + [headers]) for i in range(4)]
    line = " | ".join(h.ljust(w) for h, w in zip(headers, widths))
    print(line)
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(r, widths)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run, not for numbers)")
    args = parser.parse_args(argv)
    n = 60 if args.quick else 600
    rows = []
    rows += bench_complete(n)
    rows += bench_validation(2_000 if args.quick else 20_000)
    rows += bench_parallel_tools(3 if args.quick else 15)
    print(f"genesys_gateway {gg.__version__} benchmarks — Python {sys.version.split()[0]}, "
          f"{'quick' if args.quick else f'{n} interleaved samples per transport'}")
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
