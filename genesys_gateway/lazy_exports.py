"""A package's public names loaded on first use (PEP 562), for ``__init__`` modules.

``__getattr__, __dir__ = lazy_exports(__name__, globals(), {".module": "Name Other"}, __all__)``:
``package.Name`` imports ``.module`` the first time it is looked up and keeps the value in the
package's namespace, so later look-ups never come back here; ``dir(package)`` lists every
public name. The type checkers see the names through ``if TYPE_CHECKING:`` imports.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping, MutableMapping, Sequence

__all__ = ["lazy_exports"]


def lazy_exports(package: str, namespace: MutableMapping[str, Any], modules: Mapping[str, str],
                 public: Sequence[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``modules`` maps a relative module name to
    the space-separated names it provides."""
    where = {name: module for module, names in modules.items() for name in names.split()}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(public))

    return __getattr__, __dir__
