"""The targets the table prints (issue 12, "Numbers"), checked against a summary, and what
``import genesys_gateway`` brings into a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from benchmarks.contestants import ROOT, Contestant, child_env

#: Packages `import genesys_gateway` should not load: extras, and what only some paths need.
#: A package found here among what the import loads fails the import target.
OPTIONAL = {
    "requests": "only RequestsTransport needs it",
    "opentelemetry": "the otel extra",
    "redis": "the redis extra",
    "flask": "the flask extra",
    "django": "the django extra",
    "jsonschema": "the test/bench extras",
    "httpx": "not a dependency",
    "pydantic": "not a dependency",
}
#: Required dependencies the import defers (loaded by the first ``GatewayClient``, so the
#: import row does not count them and the cold-start row does). Not optional: loading one
#: at import time costs time but does not fail the import target.
DEFERRED = {"urllib3": "a dependency (the default transport), loaded when the first client is made"}
HIGHER_IS_BETTER = frozenset({"threads"})
#: measure -> (the SDK's figure over the floor's must be within this, comparison)
FLOOR_TARGETS = {"plain": (1.25, "≤"), "instant": (1.4, "≤"), "threads": (0.8, "≥"), "stream": (1.3, "≤")}
IMPORT_BUDGET_S = 0.060


def import_report(contestant: Contestant) -> dict[str, Any]:
    """The top-level modules the SDK's import statement (``contestant.imports``: the
    package, ``GatewayClient`` and ``ToolRegistry``) adds to a fresh interpreter, split
    into third-party (flagging the optional ones) and standard library."""
    code = (f"import json, sys; before = set(sys.modules); {contestant.imports}; "
            "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before})))")
    done = subprocess.run([contestant.python, "-c", code], cwd=ROOT, env=child_env(contestant),
                          capture_output=True, text=True, timeout=120)
    if done.returncode:
        return {"error": done.stderr.strip()[-300:]}
    added = json.loads(done.stdout)
    stdlib: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())
    third = [m for m in added if m not in stdlib and not m.startswith("_") and m != "genesys_gateway"]
    return {"third_party": third, "optional": {m: OPTIONAL[m] for m in third if m in OPTIONAL},
            "deferred_loaded": {m: DEFERRED[m] for m in third if m in DEFERRED},
            "stdlib": [m for m in added if m in stdlib],
            "absent": [m for m in ("requests", *DEFERRED) if m not in added]}


def floor_ratio(summary: dict[str, Any], measure: str) -> dict[str, float] | None:
    """The SDK's figure over the floor's, per repeat (median, min, max)."""
    ratio: dict[str, float] | None = summary.get(measure, {}).get("sdk", {}).get("vs_floor")
    return ratio


def ahead_of_peers(summary: dict[str, Any], measure: str, peers: list[str]) -> tuple[int, int, list[str]]:
    """(peers the SDK beats on *measure*, peers measured, the ones it does not beat)."""
    row = summary.get(measure, {})
    sdk = row.get("sdk")
    measured = [p for p in peers if p in row and "ratio" in row[p]]
    behind = []
    for p in measured:
        ratio = row[p]["ratio"]["median"]  # peer / sdk
        beaten = ratio < 1 if measure in HIGHER_IS_BETTER else ratio > 1
        if measure == "threads" and sdk and sdk.get("errors", 0) and not row[p].get("errors", 0):
            beaten = False
        if not beaten:
            behind.append(p)
    return len(measured) - len(behind), len(measured), behind


def check(measure: str, summary: dict[str, Any], peers: list[str], imports: dict[str, Any] | None
          ) -> tuple[str, str, str]:
    """``(target, result, met)`` cells for *measure*'s row; met is ``yes``/``no``/``–``."""
    targets, results, met = [], [], []
    if measure in FLOOR_TARGETS:
        limit, op = FLOOR_TARGETS[measure]
        targets.append(f"{op} {limit:g}× http.client floor" + (", 0 errors" if measure == "threads" else ""))
        ratio = floor_ratio(summary, measure)
        if ratio is None:
            results.append("no floor figure")
        else:
            ok = ratio["median"] <= limit if op == "≤" else ratio["median"] >= limit
            text = f"{ratio['median']:.2f}×"
            if measure == "threads":
                errors = summary.get("threads", {}).get("sdk", {}).get("errors", 0)
                ok = ok and not errors
                text += f", {errors} errors"
            results.append(text)
            met.append(ok)
    if measure == "import":
        targets.append(f"≤ bare + {IMPORT_BUDGET_S * 1000:.0f} ms, nothing optional")
        row = summary.get("import", {})
        if "sdk" in row and "floor" in row and "delta" in row["sdk"]:
            delta = row["sdk"]["delta"]["median"]
            optional = sorted((imports or {}).get("optional", {}))
            results.append(f"+{delta * 1000:.0f} ms" + (f", imports {', '.join(optional)}" if optional else ""))
            met.append(delta <= IMPORT_BUDGET_S and not optional)
        else:
            results.append("not measured")
    if peers:
        targets.append("ahead of peers")
        beaten, measured, behind = ahead_of_peers(summary, measure, peers)
        if measured:
            results.append(f"ahead of {beaten}/{measured}" + (f" (not {', '.join(behind)})" if behind else ""))
            met.append(not behind)
    verdict = "–" if not met else ("yes" if all(met) else "no")
    return "; ".join(targets) or "–", "; ".join(results) or "–", verdict
