"""Streaming over the wire: ``python benchmarks/streaming.py`` (``--quick`` for a smoke run).

Against the loopback ``GatewayEmulator`` streaming a reply (``"stream": true``), two figures,
each SDK side against the bare loop a hand-written client would use on urllib3::

    resp = pool.urlopen("POST", path, body=..., headers=..., preload_content=False)
    for line in resp:                       # urllib3 iterates the body by lines
        if line.startswith(b"data: ") and line.strip() != b"data: [DONE]":
            json.loads(line[6:])

* **time to first event**: request sent -> first text delta in hand (``client.stream`` ->
  first ``TextDelta``) vs the bare loop's first parsed ``data:`` line. Target <= 1.3x.
* **per-event overhead**: a 2,000-delta answer (one character each) read to the end
  through ``RunStream`` vs the bare loop. Target <= 2x.

Both sides use warm keep-alive pools and a token already fetched; timings are the median
of interleaved repeats, so that a busy machine slows both sides alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import urllib3  # noqa: E402

import genesys_gateway as gg  # noqa: E402
from genesys_gateway.events import TextDelta  # noqa: E402
from genesys_gateway.testing import GatewayEmulator  # noqa: E402


def bare(pool: urllib3.HTTPConnectionPool, em: GatewayEmulator, token: str, first_only: bool) -> int:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True,
                       "stream_options": {"include_usage": True}}).encode()
    resp = pool.urlopen("POST", em.path, body=body, preload_content=False, retries=False,
                        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    n = 0
    for line in resp:
        if line.startswith(b"data: ") and line.strip() != b"data: [DONE]":
            chunk = json.loads(line[6:])
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                n += 1
                if first_only:
                    break
    resp.close()
    resp.release_conn()
    return n


def sdk(client: gg.GatewayClient, first_only: bool) -> int:
    n = 0
    with client.stream("hi") as stream:
        for event in stream:
            if isinstance(event, TextDelta):
                n += 1
                if first_only:
                    break
    return n


def measure(repeats: int, deltas: int) -> dict[str, float]:
    text = "x" * deltas
    with GatewayEmulator(stream_chunk_chars=1, responder=lambda _body: {"content": text}) as em:
        token = em.issue_token()
        pool = urllib3.HTTPConnectionPool(em.host, em.port, maxsize=4)
        client = gg.GatewayClient(base_url=em.url, auth=gg.BearerToken(token), retry=gg.NoRetry(),
                                  max_response_bytes=64 * 1024 * 1024)
        try:
            times: dict[str, list[float]] = {k: [] for k in ("bare_first", "sdk_first", "bare_all", "sdk_all")}
            for _ in range(repeats):
                for name, fn in (("bare_first", lambda: bare(pool, em, token, True)),
                                 ("sdk_first", lambda: sdk(client, True)),
                                 ("bare_all", lambda: bare(pool, em, token, False)),
                                 ("sdk_all", lambda: sdk(client, False))):
                    start = time.perf_counter()
                    count = fn()
                    times[name].append(time.perf_counter() - start)
                    assert count == (1 if name.endswith("first") else deltas), (name, count)
        finally:
            client.close()
            pool.close()
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few repeats, 200 deltas")
    args = ap.parse_args()
    repeats, deltas = (3, 200) if args.quick else (15, 2000)
    m = measure(repeats, deltas)
    first = m["sdk_first"] / m["bare_first"]
    per = m["sdk_all"] / m["bare_all"]
    print(f"time to first event: sdk {m['sdk_first'] * 1e3:.2f} ms, bare urllib3 {m['bare_first'] * 1e3:.2f} ms"
          f" -> {first:.2f}x (target <= 1.3x)")
    print(f"{deltas}-delta answer:      sdk {m['sdk_all'] * 1e3:.1f} ms, bare urllib3 {m['bare_all'] * 1e3:.1f} ms"
          f" -> {per:.2f}x (target <= 2x); per event sdk {m['sdk_all'] / deltas * 1e6:.1f} us,"
          f" bare {m['bare_all'] / deltas * 1e6:.1f} us")


if __name__ == "__main__":
    main()
