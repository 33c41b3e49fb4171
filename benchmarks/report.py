"""From the repeats to the one table: medians and min–max over repeats, ratios to this SDK
(per repeat, so each ratio compares samples taken side by side), targets, notes."""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.contestants import ALL, Contestant
from benchmarks.runner import MEASURES, Plan
from benchmarks.targets import HIGHER_IS_BETTER, check

TITLES = {
    "plain": "per-turn plain completion",
    "instant": "tool loop, 2 instant tools (2 model + 2 tool calls)",
    "short": "tool loop, 2 tools of 2 ms each",
    "sleep": "tool loop, tools sleeping 0.1 s + 0.15 s",
    "threads": "{threads} threads × {calls} calls, one shared client",
    "import": "import in a fresh process (CPU time)",
    "cold": "cold start: import + client + first call (CPU time)",
    "rss": "RSS after import + one call",
    "memory": "memory per run (tracemalloc peak, instant tool loop)",
    "stream": "time to first streamed event (request → first text delta)",
}

#: standard-library packages worth naming when the SDK's import loads them
HEAVY_STDLIB = ("asyncio", "concurrent", "ssl", "email", "http", "uuid")


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


#: per-repeat figures besides the value that the summary carries (median over repeats)
EXTRAS = ("mean", "p99", "cpu", "server_cpu")


def summarise(repeats: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{measure: {key: {"median", "min", "max", "ratio"?: {...}, "errors"?, ...}}}``."""
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for measure in MEASURES:
        per_repeat = [r["figures"].get(measure, {}) for r in repeats]
        keys = [c.key for c in ALL if any(c.key in figs for figs in per_repeat)]
        row: dict[str, dict[str, Any]] = {}
        for key in keys:
            values = [figs[key]["value"] for figs in per_repeat if key in figs]
            entry: dict[str, Any] = dict(_spread(values))
            entry["repeats"] = len(values)
            ratios = [figs[key]["value"] / figs["sdk"]["value"] for figs in per_repeat
                      if key in figs and "sdk" in figs and figs["sdk"]["value"]]
            if key != "sdk" and ratios:
                entry["ratio"] = _spread(ratios)
            for extra in EXTRAS:
                found = [figs[key][extra] for figs in per_repeat if figs.get(key, {}).get(extra) is not None]
                if found:
                    entry[extra] = statistics.median(found)
            alts = [figs[key]["alt"] for figs in per_repeat if "alt" in figs.get(key, {})]
            if alts:
                entry["alt"] = {"throughput": statistics.median(a["value"] for a in alts),
                                "errors": sum(a["errors"] for a in alts), "hung_threads": sum(a["hung_threads"] for a in alts),
                                "first_error": next((a["first_error"] for a in alts if a["first_error"]), None)}
            if measure == "threads":
                entry["errors"] = sum(figs[key]["errors"] for figs in per_repeat if key in figs)
                entry["hung_threads"] = sum(figs[key]["hung_threads"] for figs in per_repeat if key in figs)
                entry["calls_per_thread"] = next(figs[key]["calls_per_thread"] for figs in per_repeat if key in figs)
                entry["first_error"] = next((figs[key]["first_error"] for figs in per_repeat
                                             if key in figs and figs[key]["first_error"]), None)
            both = [figs for figs in per_repeat if "sdk" in figs and "floor" in figs and figs["floor"]["value"]]
            if key == "sdk" and both:  # what the targets compare, per repeat
                entry["vs_floor"] = _spread([figs["sdk"]["value"] / figs["floor"]["value"] for figs in both])
                entry["delta"] = _spread([figs["sdk"]["value"] - figs["floor"]["value"] for figs in both])
            row[key] = entry
        if row:
            summary[measure] = row
    return summary


def _unit(measure: str, value: float) -> tuple[str, float, str]:
    """(unit, scale, number format) for *value*, so a range can share its median's unit."""
    if measure in ("plain", "instant", "short", "sleep", "import", "cold", "stream"):
        if value < 0.01:
            return "µs", 1e6, ",.0f"
        return ("ms", 1e3, ",.1f") if value < 1 else ("s", 1, ",.2f")
    if measure == "threads":
        return "req/s", 1, ",.0f"
    return ("MiB", 2**-20, ",.1f") if measure == "rss" else ("KiB", 2**-10, ",.1f")


def fmt(measure: str, value: float, like: float | None = None) -> str:
    """*value* in its unit (or in the unit *like* would get), 3-4 significant digits."""
    unit, scale, spec = _unit(measure, value if like is None else like)
    return f"{value * scale:{spec}} {unit}"


def _bare(measure: str, value: float, like: float) -> str:
    return fmt(measure, value, like).split(" ")[0]


def cell(measure: str, key: str, entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "–"
    if key == "sdk":
        text = fmt(measure, entry["median"])
        if entry["repeats"] > 1:
            text += f" ({_bare(measure, entry['min'], entry['median'])}–{_bare(measure, entry['max'], entry['median'])})"
    elif "ratio" in entry:
        r = entry["ratio"]
        text = f"{r['median']:.2f}×"
        if entry["repeats"] > 1:
            text += f" ({r['min']:.2f}–{r['max']:.2f})"
    else:
        text = fmt(measure, entry["median"])
    if measure == "threads" and entry.get("errors"):
        text += f", {entry['errors']} errors"
        if entry.get("hung_threads"):
            text += f", {entry['hung_threads']} hung"
    return text


def table(summary: dict[str, Any], columns: list[Contestant], skipped: dict[str, str], plan: Plan,
          measures: tuple[str, ...], imports: dict[str, Any] | None, errors: dict[str, str]) -> list[list[str]]:
    """The rows of the table (the first is the header)."""
    peers = [c.key for c in columns if c.is_peer and c.key not in skipped]
    header = ["measure"] + [c.label for c in columns] + ["target", "result", "met"]
    rows = [header]
    for measure in measures:
        title = TITLES[measure].format(threads=plan.threads, calls=plan.calls)
        row = summary.get(measure, {})
        cells = []
        for c in columns:
            if c.key in skipped:
                cells.append("skipped")
            elif c.na(measure):
                cells.append(f"n/a ({c.na(measure)})")
            elif c.key not in row:
                failed = next((k for k in errors if k.endswith(f":{c.key}") and k.split(":")[0] in (measure, "start")),
                              None)
                cells.append("failed" if failed else "–")
            else:
                cells.append(cell(measure, c.key, row[c.key]))
        rows.append([title] + cells + list(check(measure, summary, peers, imports)))
    if any(m in measures for m in ("instant", "short", "sleep")):
        rows.append(["runs a turn's tools in parallel"] + [("skipped" if c.key in skipped else c.parallel_tools)
                                                           for c in columns] + ["", "", ""])
        rows.append(["validates tool arguments"] + [("skipped" if c.key in skipped else c.validates_args)
                                                    for c in columns] + ["", "", ""])
    return rows


def render(rows: list[list[str]]) -> str:
    """A Markdown table, padded so it also reads as plain text."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]

    def line(r: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"

    return "\n".join([line(rows[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows[1:]])


def direction(measure: str) -> str:
    return "higher is better" if measure in HIGHER_IS_BETTER else "lower is better"
