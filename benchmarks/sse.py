"""Streaming parse cost: ``python benchmarks/sse.py`` (``--quick`` for a smoke run).

A 2,000-delta OpenAI-shaped answer (``data: {chunk}\\n\\n`` frames, a usage-only last chunk,
``[DONE]``), parsed and merged by ``SSEParser`` + ``ChunkMerger`` into a ``ChatResponse``,
against the bare loop a hand-written client would use::

    for line in body.split(b"\\n"):
        if line.startswith(b"data: ") and line != b"data: [DONE]":
            json.loads(line[6:])

The bytes are fed as a server flushing one event per write would deliver them (one chunk
per event), in 16 KiB reads, and whole. Timings are the best of interleaved repeats, so
that a busy machine slows both sides alike. Target: <= 2x.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from genesys_gateway.deltas import ChunkMerger  # noqa: E402
from genesys_gateway.http.sse import SSEParser  # noqa: E402

from benchmarks.timing import best  # noqa: E402


def answer(n: int) -> bytes:
    head = {"id": "chatcmpl-AbC123", "object": "chat.completion.chunk", "created": 1731000000,
            "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_0ba0d124f1"}

    def frame(delta: dict, finish: str | None = None, **extra: object) -> bytes:
        chunk = dict(head, choices=[{"index": 0, "delta": delta, "logprobs": None,
                                     "finish_reason": finish}], usage=None, **extra)
        return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"

    frames = [frame({"role": "assistant", "content": "", "refusal": None})]
    frames += [frame({"content": f" word{i % 97}"}) for i in range(n)]
    frames.append(frame({}, "stop"))
    usage = dict(head, choices=[], usage={"prompt_tokens": 12, "completion_tokens": n,
                                          "total_tokens": n + 12})
    frames.append(b"data: " + json.dumps(usage, separators=(",", ":")).encode() + b"\n\n")
    frames.append(b"data: [DONE]\n\n")
    return b"".join(frames)


def bare(body: bytes) -> None:
    loads = json.loads
    for line in body.split(b"\n"):
        if line.startswith(b"data: ") and line != b"data: [DONE]":
            loads(line[6:])


def bare_lines(body: bytes) -> None:
    for line in body.split(b"\n"):
        if line.startswith(b"data: "):
            line[6:]


def parse_and_merge(chunks: list[bytes]) -> object:
    parser, merger = SSEParser(), ChunkMerger()
    for chunk in chunks:
        for event in parser.feed(chunk):
            merger.feed_data(event.data)
    parser.close()
    return merger.response()


def parse_only(chunks: list[bytes]) -> None:
    parser = SSEParser()
    for chunk in chunks:
        parser.feed(chunk)
    parser.close()


def bench_stream(n: int = 2000, repeats: int = 15, number: int = 5) -> list[tuple[str, str, str]]:
    body = answer(n)
    frames = [f + b"\n\n" for f in body.split(b"\n\n") if f]
    reads = [body[i:i + 16384] for i in range(0, len(body), 16384)]
    response = parse_and_merge(frames)
    assert response.usage.completion_tokens == n  # type: ignore[attr-defined]
    t = best({
        "bare": lambda: bare(body), "bare lines": lambda: bare_lines(body),
        "per event": lambda: parse_and_merge(frames), "16 KiB": lambda: parse_and_merge(reads),
        "whole": lambda: parse_and_merge([body]),
        "parse per event": lambda: parse_only(frames), "parse whole": lambda: parse_only([body]),
    }, repeats, number)
    ms = lambda s: f"{s * 1000:.2f} ms"  # noqa: E731
    x = lambda a, b: f"{t[a] / t[b]:.2f}x"  # noqa: E731
    return [
        (f"bare loop: split + json.loads ({n} deltas, {len(body) // 1024} KiB)", ms(t["bare"]), "1.00x"),
        ("SSEParser + ChunkMerger -> ChatResponse, one chunk per event", ms(t["per event"]),
         x("per event", "bare")),
        ("SSEParser + ChunkMerger -> ChatResponse, 16 KiB reads", ms(t["16 KiB"]), x("16 KiB", "bare")),
        ("SSEParser + ChunkMerger -> ChatResponse, whole body", ms(t["whole"]), x("whole", "bare")),
        ("bare loop over lines, no JSON", ms(t["bare lines"]), "1.00x"),
        ("SSEParser alone, whole body", ms(t["parse whole"]), x("parse whole", "bare lines")),
        ("SSEParser alone, one chunk per event", ms(t["parse per event"]),
         x("parse per event", "bare lines")),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run (few repeats)")
    args = ap.parse_args()
    rows = bench_stream(2000, repeats=3 if args.quick else 25, number=1 if args.quick else 5)
    width = max(len(r[0]) for r in rows)
    for label, value, ratio in rows:
        print(f"{label:<{width}}  {value:>10}  {ratio:>6}")


if __name__ == "__main__":
    main()
