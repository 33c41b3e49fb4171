"""MkDocs hooks of the documentation site.

The package's docstrings cross-reference with reStructuredText roles
(``:class:`~genesys_gateway.RunResult```), which are readable in ``help()`` but mean
nothing to Markdown. After mkdocstrings renders a page, each role becomes a link to the
object it names (through mkdocs-autorefs, found by its canonical path), or plain code
when the object is not in the reference: an unresolved role never fails the build.
"""

from __future__ import annotations

import html
import importlib
import re
import sys
from typing import Any

_ROLE = re.compile(r":(?:class|meth|func|attr|data|mod|exc|obj|const):<code>([^<]*)</code>")
_EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[\w.]+)>$")


def _canonical(path: str) -> str | None:
    """The dotted path mkdocstrings files ``path`` under (the defining module's), or
    ``None`` when ``path`` names nothing importable in the package."""
    if not path.startswith("genesys_gateway"):
        path = "genesys_gateway." + path
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        except Exception:  # a module that needs a configured framework (Django models)
            return None
        try:
            for name in parts[split:]:
                obj = getattr(obj, name)
        except Exception:  # no such attribute, or a lazy one that cannot load here
            return None
        module = getattr(obj, "__module__", None)
        qualname = getattr(obj, "__qualname__", None)
        if isinstance(obj, type(importlib)):
            return obj.__name__
        if module and qualname and module.startswith("genesys_gateway"):
            return f"{module}.{qualname}"
        return _defining_module(parts[-1], obj) or path
    return None


def _defining_module(name: str, obj: Any) -> str | None:
    """For data without ``__module__`` (a ``Literal`` alias such as ``StopReason``): the
    path in the most deeply nested loaded package module that exports ``obj`` as ``name``."""
    exporters = [m.__name__ for m in list(sys.modules.values())
                 if getattr(m, "__name__", "").startswith("genesys_gateway")
                 and name in (getattr(m, "__all__", None) or ())
                 and getattr(m, name, None) is obj]
    return f"{max(exporters, key=lambda m: m.count('.'))}.{name}" if exporters else None


def _link(match: re.Match[str]) -> str:
    text = html.unescape(match.group(1))
    explicit = _EXPLICIT.match(text)
    if explicit:
        label, target = explicit.group("text"), explicit.group("target")
    else:
        target = text.lstrip("~")
        label = target.rsplit(".", 1)[-1] if text.startswith("~") else target
    identifier = _canonical(target)
    code = f"<code>{html.escape(label)}</code>"
    if identifier is None:
        return code
    return f'<autoref identifier="{html.escape(identifier)}" optional>{code}</autoref>'


def on_page_content(html_text: str, **_kwargs: Any) -> str:
    """Turn the rendered roles of one page into links (or code)."""
    return _ROLE.sub(_link, html_text)
