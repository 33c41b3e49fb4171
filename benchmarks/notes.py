"""The lines printed under the table: how to read it, what each baseline is, where the CPU
goes (client and server), what is not measured, and what went wrong."""

from __future__ import annotations

import platform
from typing import Any

from benchmarks.contestants import ALL, SDK, SOCKET, Contestant
from benchmarks.report import HEAVY_STDLIB, TITLES

#: where the client's and the server's CPU per call is shown
CPU_MEASURES = ("plain", "instant", "threads")


def _label(key: str) -> str:
    return next(c.label for c in ALL if c.key == key)


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs"


def reading(cpus_note: str = "") -> list[str]:
    """How to read the cells and the ratios."""
    return [
        ("Cells: median over the repeats (min–max). genesys_gateway in its unit; every other column, the floors "
         "included, is its figure ÷ genesys_gateway's, per repeat: for time and memory above 1× is slower or larger, "
         "for throughput below 1× is fewer requests per second. So a floor column below 1× on a time row is how much "
         "of the SDK's time the floor needs. The result column turns the floor targets round: genesys_gateway ÷ "
         "http.client floor for times (met when at most the target), genesys_gateway's req/s ÷ the floor's for "
         "threads (met when at least the target). Means, the client's CPU per call and the server's CPU per "
         "request are in the JSON (--json) next to each median; the instant loop has its p99 there too."),
        (f"http.client floor (the issue's floor; the targets are set against it): one http.client keep-alive "
         f"connection sending the same JSON and headers; a hand loop on it for the tools (instant ones inline, "
         f"sleeping ones a thread each); one connection per thread; `python -c pass` for import; http.client + json "
         f"for memory. http.client is not free: on Python {platform.python_version()} it "
         + ("sends the headers and the body in two send() calls, " if _two_sends() else "")
         + "builds the request header by header, checks every header name and value and parses the reply's "
         "headers with the email package. The SDK's transport writes its request in one send and reads the "
         "reply with its own small HTTP/1.1 reader, skipping that work, so it can beat this floor on a plain turn."),
        (f"{SOCKET.label} (informational, no target): the same request bytes over a plain keep-alive socket, one "
         "sendall, a minimal reader of the status line, headers and Content-Length or chunked body, then "
         "json.loads; a hand loop on it for the tools; one socket per thread. The least the job can cost in "
         "Python: the distance from it to genesys_gateway is all the SDK's own work (validation, timeouts, "
         "typed results). n/a where it would repeat the http.client floor's figure "
         "(import, RSS, memory) or needs a reader of its own (streaming)."),
        ("Import is the CPU time (user + system) of `python -c 'import ...'` with bytecode cached (one untimed run "
         "first, as an installed package has its .pyc files): the wall time on an idle machine, without the waits "
         f"for a busy CPU (wall times are in the JSON). This SDK's statement: `{SDK.imports}`. Cold start is the "
         "same CPU time for a fresh process that imports the contestant's driver, builds its client (this SDK: a "
         "GatewayClient with the two tools registered), makes one plain call against the server and exits: "
         "what lazy loading moves out of the import row lands here."),
        ("Only unproxied plain HTTP on loopback is measured: no TLS, no proxy. Over TLS every contestant pays the "
         "same handshake and encryption on top, so the ratios move towards 1."),
    ]


def _two_sends() -> bool:
    """Whether this Python's http.client sends a request's headers and body separately."""
    import http.client
    import inspect

    try:
        source = inspect.getsource(getattr(http.client.HTTPConnection, "_send_output"))
    except (OSError, TypeError):
        return False
    return "msg += message_body" not in source


def cpu_lines(summary: dict[str, Any], columns: list[Contestant], threads: int) -> list[str]:
    """The client's CPU per call and the server's per model request, for the rows where it
    decides (the server's as its process reports it before and after each batch)."""
    out = []
    for measure in CPU_MEASURES:
        row = summary.get(measure, {})
        shown = [(c, e) for c in columns if (e := row.get(c.key)) and e.get("cpu")]
        if not shown:
            continue
        what = {"plain": "per call", "instant": "per tool loop (2 model calls)",
                "threads": "per successful call"}[measure]
        text = (f"CPU, {TITLES[measure].format(threads=threads, calls='N')}: client {what}: "
                + ", ".join(f"{c.label} {_us(e['cpu'])}" for c, e in shown))
        served = [(c, e["server_cpu"]) for c, e in shown if e.get("server_cpu")]
        if served:
            text += "; emulator server per request: " + ", ".join(f"{c.label} {_us(v)}" for c, v in served)
            sdk = row.get("sdk", {})
            if measure == "threads" and sdk.get("server_cpu") and sdk.get("median"):
                busy, client = sdk["server_cpu"] * sdk["median"], sdk["cpu"] * sdk["median"]
                text += (f" (at genesys_gateway's {sdk['median']:,.0f} req/s the server process was busy "
                         f"{busy:.0%} of one CPU and the client {client:.0%}: one Python process, one GIL, tops out "
                         "near 100%, so a server near it, not the client, sets the row's ceiling)")
            elif sdk.get("server_cpu"):
                text += (f" (one server process, one GIL: at most about {1 / sdk['server_cpu']:,.0f} req/s "
                         "of this SDK's requests)")
        out.append(text)
    return out


def alt_threads(summary: dict[str, Any], columns: list[Contestant]) -> list[str]:
    row = summary.get("threads", {})
    sdk = row.get("sdk", {}).get("median")
    out = []
    for c in columns:
        alt = row.get(c.key, {}).get("alt")
        if not c.alt_threads or not alt:
            continue
        ratio = f" ({alt['throughput'] / sdk:.2f}× genesys_gateway)" if sdk else ""
        out.append(f"{c.label}, threads: the row measures one Agent shared by every thread (its docs' idiom for a "
                   f"shared agent; run_sync from many threads fails, its event loop bound to another thread). "
                   f"Measured alternative, {c.alt_threads}: {alt['throughput']:,.0f} req/s{ratio}, "
                   f"{alt['errors']} errors" + (f", {alt['hung_threads']} hung threads" if alt["hung_threads"] else "")
                   + (f" ({alt['first_error']})" if alt["first_error"] else ""))
    return out


def notes(summary: dict[str, Any], columns: list[Contestant], skipped: dict[str, str], repeats: list[dict[str, Any]],
          imports: dict[str, Any] | None, versions: dict[str, str], cpus: int, threads: int = 16) -> list[str]:
    """The lines printed under the table."""
    out = reading()
    if "short" in summary:
        out.append("Tool loop, 2 tools of 2 ms each: two quick back-end calls; run in parallel the turn's tools take "
                   "about 2 ms, so the loop is two model calls + about 2 ms: a fixed cost in handing calls to threads "
                   "shows here.")
    if "stream" in summary:
        out.append("Time to first streamed event: from the call that sends a streamed request (`\"stream\": true`, "
                   "usage asked for) to its first text delta in hand, token fetched and client warm; the answer's "
                   "other deltas are then read to the end, untimed, before the next sample. The emulator keeps the "
                   "connection alive after a streamed answer (chunked, as a gateway does), so every sample streams on "
                   "a warm keep-alive connection, for every contestant that keeps one. This SDK: "
                   "`client.conversation(system).stream(question)` to the first `TextDelta`; "
                   "the http.client floor: `readline()` to the first `data:` line with content.")
    out += cpu_lines(summary, columns, threads)
    for c in columns:
        if c.is_peer and c.key not in skipped:
            out.append(f"{c.label}: {c.idiom}")
    out += alt_threads(summary, columns)
    for key, why in skipped.items():
        out.append(f"skipped: {_label(key)}: {why}")
    rows = summary.get("threads", {})
    for key, entry in rows.items():
        if entry.get("errors"):
            out.append(f"errors: {_label(key)}, {entry['errors']} failed calls in the threads test"
                       f"{', ' + str(entry['hung_threads']) + ' hung threads' if entry['hung_threads'] else ''}: "
                       f"{entry['first_error']}")
    slow = [f"{c.label} {e['calls_per_thread']}" for c in columns if (e := rows.get(c.key))
            and e["calls_per_thread"] != rows.get("sdk", {}).get("calls_per_thread")]
    if slow:
        out.append(f"calls per thread where fewer (a slow baseline, to keep the run short): {', '.join(slow)}")
    if imports:
        out.append(_imports_line(imports))
    loads = [x for r in repeats for x in r["load"]]
    spread = []
    for measure, row in summary.items():
        sdk = row.get("sdk")
        if sdk and sdk["repeats"] > 1 and sdk["median"]:
            spread.append(f"{measure} ±{50 * (sdk['max'] - sdk['min']) / sdk['median']:.0f}%")
    out.append(f"noise: {cpus} CPUs, 1-minute load average {min(loads):.1f}–{max(loads):.1f} during the run"
               + (f"; genesys_gateway's spread over repeats: {', '.join(spread)}" if spread else ""))
    out.append("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    errors = {k: v for r in repeats for k, v in r["errors"].items()}
    for key, text in errors.items():
        out.append(f"failed: {key}: {text}")
    return out


def _imports_line(imports: dict[str, Any]) -> str:
    if "error" in imports:
        return f"`{SDK.imports}` could not be inspected: {imports['error']}"
    optional = "; ".join(f"{m} ({why})" for m, why in imports["optional"].items()) or "none"
    deferred = "; ".join(f"{m} ({why}, but loaded here)" for m, why in imports.get("deferred_loaded", {}).items())
    heavy = [m for m in HEAVY_STDLIB if m in imports["stdlib"]]
    return (f"`{SDK.imports}` loads third-party {', '.join(imports['third_party']) or 'nothing'}"
            f"; optional among them: {optional}" + (f"; deferred dependencies: {deferred}" if deferred else "")
            + f"; not loaded: {', '.join(imports['absent']) or '–'}; "
            f"standard library: {len(imports['stdlib'])} top-level packages"
            + (f" (incl. {', '.join(heavy)})" if heavy else f" (none of {', '.join(HEAVY_STDLIB)})"))
