"""Parameter descriptions from docstrings, for tool schemas (see :mod:`genesys_gateway.schema`).

The first paragraph of a docstring becomes the summary; parameter descriptions come from
Google (``Args:``), numpy (``Parameters`` + dashes) or Sphinx (``:param x:``) style.
"""

from __future__ import annotations

import inspect
import re

__all__ = ["parse_docstring"]

_GOOGLE_PARAM_HEADERS = {"args", "arguments", "parameters", "params", "keyword args",
                         "keyword arguments", "kwargs", "other parameters"}
_GOOGLE_HEADER = re.compile(r"^\s*([A-Za-z][A-Za-z ]*):\s*$")
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}([A-Za-z_]\w*)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_DASHES = re.compile(r"^\s*-{3,}\s*$")
_SPHINX_PARAM = re.compile(r"^\s*:param\s+(?:[^:]*?\s)?\*{0,2}([A-Za-z_]\w*)\s*:\s*(.*)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _is_section_start(lines: list[str], i: int) -> bool:
    if _GOOGLE_HEADER.match(lines[i]):
        return True
    return i + 1 < len(lines) and bool(_DASHES.match(lines[i + 1])) and bool(lines[i].strip())


def _google_params(lines: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    i, n = 0, len(lines)
    while i < n:
        m = _GOOGLE_HEADER.match(lines[i])
        i += 1
        if not m or m.group(1).strip().lower() not in _GOOGLE_PARAM_HEADERS:
            continue
        base, entry_indent, current = _indent(lines[i - 1]), None, None
        while i < n:
            line = lines[i]
            if line.strip():
                ind = _indent(line)
                if ind <= base:
                    break
                if entry_indent is None:
                    entry_indent = ind
                entry = _GOOGLE_ENTRY.match(line.strip()) if ind <= entry_indent else None
                if entry:
                    current = entry.group(1)
                    params[current] = entry.group(3).strip()
                elif current is not None and ind > entry_indent:
                    params[current] = f"{params[current]} {line.strip()}".strip()
            i += 1
    return params


def _numpy_params(lines: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    i, n = 0, len(lines)
    while i + 1 < n:
        header = lines[i].strip().lower()
        if header not in ("parameters", "other parameters") or not _DASHES.match(lines[i + 1]):
            i += 1
            continue
        base, current, i = _indent(lines[i]), [], i + 2
        while i < n:
            line = lines[i]
            if line.strip():
                if i + 1 < n and _DASHES.match(lines[i + 1]):
                    break  # the next section
                if _indent(line) <= base:
                    names = line.split(" :")[0].split(":")[0]
                    current = [nm.strip().lstrip("*") for nm in names.split(",") if nm.strip()]
                    for nm in current:
                        params[nm] = ""
                else:
                    for nm in current:
                        params[nm] = f"{params[nm]} {line.strip()}".strip()
            i += 1
    return params


def _sphinx_params(lines: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    current, base = None, 0
    for line in lines:
        m = _SPHINX_PARAM.match(line)
        if m:
            current, base = m.group(1), _indent(line)
            params[current] = m.group(2).strip()
        elif current and line.strip() and _indent(line) > base and not line.strip().startswith(":"):
            params[current] = f"{params[current]} {line.strip()}"
        else:
            current = None
    return params


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """``(summary, {parameter: description})`` from a Google, numpy or Sphinx docstring."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    for i, line in enumerate(lines):
        if not line.strip() or _is_section_start(lines, i) or line.lstrip().startswith(":"):
            break
        summary.append(line.strip())
    params = _sphinx_params(lines)
    params.update(_numpy_params(lines))
    params.update(_google_params(lines))
    return " ".join(summary), {k: v for k, v in params.items() if v}
