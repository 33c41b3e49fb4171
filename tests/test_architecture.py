"""The layout's rules, checked on the source: data flows one way, no import cycles, no
private name crosses a module boundary, and every module stays small."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "genesys_gateway"
MAX_LINES = 400


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(path: pathlib.Path) -> list[tuple[str, str | None]]:
    """(imported module, imported name or None) for every import in the file, at any depth."""
    module, is_package = module_name(path), path.name == "__init__.py"
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = resolve(module, is_package, node)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((sub, None) if (ROOT / sub.replace(".", "/")).with_suffix(".py").exists()
                             or (ROOT / sub.replace(".", "/") / "__init__.py").exists()
                             else (target, alias.name))
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))
MODULES = {module_name(p): p for p in SOURCES}


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        graph[name] = {target for target, _ in imports_of(path)
                       if target in MODULES and target != name
                       and not name.startswith(target + ".")}  # a package's own __init__
    return graph


def test_no_import_cycles():
    graph = package_graph()
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


@pytest.mark.parametrize("path", SOURCES + sorted((ROOT / "tests").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_name_crosses_a_module_boundary(path):
    private = [f"{target}.{name}" for target, name in imports_of(path)
               if name is not None and name.startswith("_") and not name.startswith("__")]
    assert private == []


WING_RULES = {
    # the wings know nothing of the core loop, the client or each other
    "genesys_gateway.http": ("genesys_gateway.client", "genesys_gateway.loop",
                             "genesys_gateway.conversation", "genesys_gateway.settings",
                             "genesys_gateway.tools"),
    "genesys_gateway.tools": ("genesys_gateway.client", "genesys_gateway.loop",
                              "genesys_gateway.conversation", "genesys_gateway.settings",
                              "genesys_gateway.http"),
    # conversation state and its stores: only errors, checks and constants from the core
    "genesys_gateway.state": ("genesys_gateway.client", "genesys_gateway.loop",
                              "genesys_gateway.conversation", "genesys_gateway.settings",
                              "genesys_gateway.tools", "genesys_gateway.http",
                              "genesys_gateway.contrib"),
    # the loop is handed its inputs; settings produce keyword arguments
    "genesys_gateway.loop": ("genesys_gateway.client", "genesys_gateway.http"),
    "genesys_gateway.conversation": ("genesys_gateway.client",),
    "genesys_gateway.settings": ("genesys_gateway.client", "genesys_gateway.loop"),
    "genesys_gateway.tools.pool": ("genesys_gateway.tools.",),
    # merging streamed deltas is core, beside the models: it knows no wire format (SSE is
    # the http wing's) and nothing above it
    "genesys_gateway.deltas": ("genesys_gateway.client", "genesys_gateway.loop",
                               "genesys_gateway.conversation", "genesys_gateway.settings",
                               "genesys_gateway.http", "genesys_gateway.tools"),
}


@pytest.mark.parametrize("prefix", sorted(WING_RULES))
def test_data_flows_one_way(prefix):
    forbidden = WING_RULES[prefix]
    offences = [(name, target) for name, path in MODULES.items()
                if name == prefix or name.startswith(prefix + ".")
                for target, _ in imports_of(path)
                if any(target == f or target.startswith(f if f.endswith(".") else f + ".")
                       for f in forbidden)]
    assert offences == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_stay_small(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES
