"""The public API is documented: every exported name, every public method and property
of an exported class, every field of an attrs class (in its ``Attributes:`` section,
which ``help()`` shows and the MkDocs reference renders) and every parameter of an
exported class's hand-written ``__init__`` (in an ``Args:`` section).

The check walks what users import: ``__all__`` of the package, of
``genesys_gateway.testing`` (and its emulator and mock modules) and of the Flask and
Django integrations. Names are fetched with ``getattr`` so that a lazy package
``__getattr__`` (PEP 562) is walked the same way.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pathlib
import re
import types
from typing import Any

import attrs
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "genesys_gateway"

PUBLIC_MODULES = [
    "genesys_gateway",
    "genesys_gateway.testing",
    "genesys_gateway.testing.emulator",
    "genesys_gateway.testing.mock",
    "genesys_gateway.contrib.flask",
    "genesys_gateway.contrib.django",
    "genesys_gateway.contrib.django.cache",
    "genesys_gateway.contrib.django.conversations",
]

#: Names exported for introspection, not documentation.
NOT_DOCUMENTED = {"__version__"}

_SECTION = re.compile(r"^(\s*)(Args|Arguments|Attributes|Parameters|Keyword Args):\s*$")
_ENTRY = re.compile(r"^\s*\*{0,2}(\w+)\s*(\([^)]*\))?\s*:")


def section_names(doc: str | None, *sections: str) -> set[str]:
    """The names documented in the Google-style ``sections`` of ``doc``: the lines one
    level deeper than the section header that read ``name:`` or ``name (type):``."""
    names: set[str] = set()
    lines = inspect.cleandoc(doc or "").splitlines()
    i = 0
    while i < len(lines):
        match = _SECTION.match(lines[i])
        i += 1
        if not match or match.group(2) not in sections:
            continue
        base = len(match.group(1))
        entry_indent: int | None = None
        while i < len(lines):
            line = lines[i]
            if line.strip():
                indent = len(line) - len(line.lstrip())
                if indent <= base:
                    break
                if entry_indent is None:
                    entry_indent = indent
                if indent == entry_indent:
                    entry = _ENTRY.match(line)
                    if entry:
                        names.add(entry.group(1))
            i += 1
    return names


def documented_data() -> set[tuple[str, str]]:
    """(module, name) of every module-level assignment in the package that carries a
    docstring (a string right after it) or a ``#:`` comment right above it."""
    found: set[tuple[str, str]] = set()
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        module = ".".join(parts)
        source = path.read_text()
        lines = source.splitlines()
        body = ast.parse(source).body
        for index, node in enumerate(body):
            if isinstance(node, ast.Assign):
                targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                targets = [node.target.id]
            else:
                continue
            nxt = body[index + 1] if index + 1 < len(body) else None
            has_docstring = (isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                             and isinstance(nxt.value.value, str))
            has_comment = node.lineno >= 2 and lines[node.lineno - 2].lstrip().startswith("#:")
            if has_docstring or has_comment:
                found.update((module, name) for name in targets)
    return found


def public_modules() -> list[types.ModuleType]:
    from tests import django_env

    django_env.configure()  # DjangoConversationStore needs the app registry
    return [importlib.import_module(name) for name in PUBLIC_MODULES]


def is_ours(obj: Any) -> bool:
    return (getattr(obj, "__module__", None) or "").startswith("genesys_gateway")


def has_doc(obj: Any) -> bool:
    return bool((inspect.getdoc(obj) or "").strip())


def init_params(cls: type) -> list[str]:
    """The parameters of ``cls``'s own hand-written ``__init__`` (not one attrs wrote)."""
    init = cls.__dict__.get("__init__")
    code = getattr(init, "__code__", None)
    if code is None or not code.co_filename.endswith(".py"):
        return []
    params = list(inspect.signature(init).parameters.values())[1:]
    return [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            and not p.name.startswith("_")]


def class_problems(qualname: str, cls: type) -> list[str]:
    problems: list[str] = []
    own_doc = cls.__dict__.get("__doc__")
    if not (own_doc or "").strip():
        problems.append(f"{qualname}: class has no docstring")
    fields: set[str] = set()
    if attrs.has(cls):
        fields = {f.name for f in attrs.fields(cls) if not f.name.startswith("_")}
        listed = section_names(own_doc, "Attributes")
        problems += [f"{qualname}.{name}: attrs field not in the class's Attributes: section"
                     for name in sorted(fields - listed)]
    params = init_params(cls)
    if params:
        listed = section_names(own_doc, "Args", "Arguments", "Parameters", "Keyword Args")
        listed |= section_names(cls.__dict__["__init__"].__doc__, "Args", "Arguments",
                                "Parameters", "Keyword Args")
        problems += [f"{qualname}.__init__({name}): parameter not in an Args: section"
                     for name in params if name not in listed]
    for name in sorted(dir(cls)):
        if name.startswith("_") or name in fields:
            continue
        owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
        if owner is None or not is_ours(owner):
            continue  # inherited from Exception, Protocol, a library base, ...
        raw = inspect.getattr_static(cls, name)
        if isinstance(raw, property):
            documented = bool((raw.fget.__doc__ or "").strip()) if raw.fget else False
        elif isinstance(raw, (staticmethod, classmethod)):
            documented = has_doc(getattr(cls, name))
        elif inspect.isfunction(raw):
            documented = has_doc(getattr(cls, name))  # getdoc: an overridden base's doc too
        elif hasattr(type(raw), "__get__") and is_ours(type(raw)):
            # e.g. the client's read-only options: documented as its Args or Attributes
            if name not in section_names(own_doc, "Attributes", "Args"):
                problems.append(f"{qualname}.{name}: attribute not in the class's Attributes: "
                                "or Args: section")
            continue
        else:
            continue  # a class constant or an attribute slot
        if not documented:
            problems.append(f"{qualname}.{name}: no docstring")
    return problems


def undocumented() -> list[str]:
    """Everything public that lacks documentation, as ``module.name: what is missing``."""
    data = documented_data()
    problems: list[str] = []
    seen: set[int] = set()
    for module in public_modules():
        for name in module.__all__:
            if name in NOT_DOCUMENTED:
                continue
            obj = getattr(module, name)
            qualname = f"{module.__name__}.{name}"
            if inspect.isclass(obj):
                if id(obj) in seen:
                    continue
                seen.add(id(obj))
                problems += class_problems(qualname, obj)
            elif inspect.isfunction(obj) or inspect.isbuiltin(obj):
                if not (obj.__doc__ or "").strip():
                    problems.append(f"{qualname}: function has no docstring")
            elif not any(n == name for _, n in data if _.startswith("genesys_gateway")):
                problems.append(f"{qualname}: no docstring or #: comment where it is assigned")
    return problems


def test_every_public_name_is_documented():
    problems = undocumented()
    assert problems == [], "undocumented public API:\n  " + "\n  ".join(problems)


# ------------------------------------------------------------------ the checker itself


def test_section_names_reads_google_sections():
    doc = """Summary.

    Args:
        first: one.
        second (int): two,
            continued: not a name.
        **extra: any other option.

    Attributes:
        field: a field.

    Returns:
        nothing: not listed.
    """
    assert section_names(doc, "Args") == {"first", "second", "extra"}
    assert section_names(doc, "Attributes") == {"field"}


def test_checker_reports_what_is_missing():
    @attrs.frozen
    class Bare:
        """A class.

        Attributes:
            listed: documented.
        """

        listed: int
        unlisted: int

        def method(self) -> None:
            pass

        @property
        def prop(self) -> int:
            return 1

    Bare.__module__ = "genesys_gateway.fake"

    class Configured:
        def __init__(self, documented: int, missing: int) -> None:
            """Make one.

            Args:
                documented: yes.
            """

    Configured.__module__ = "genesys_gateway.fake"

    assert class_problems("Bare", Bare) == [
        "Bare.unlisted: attrs field not in the class's Attributes: section",
        "Bare.method: no docstring",
        "Bare.prop: no docstring",
    ]
    assert class_problems("Configured", Configured) == [
        "Configured: class has no docstring",
        "Configured.__init__(missing): parameter not in an Args: section",
    ]


@pytest.mark.parametrize("name", ["RunResult", "ToolRun", "ChatResponse", "Usage", "ToolContext"])
def test_help_shows_what_each_field_means(name):
    import genesys_gateway as gg

    cls = getattr(gg, name)
    doc = inspect.getdoc(cls) or ""
    assert "Attributes:" in doc
    assert {f.name for f in attrs.fields(cls) if not f.name.startswith("_")} <= section_names(
        doc, "Attributes")
