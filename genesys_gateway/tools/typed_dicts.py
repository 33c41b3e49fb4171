"""TypedDicts recognised without importing ``typing_extensions``.

A TypedDict (or a ``Required[...]``/``NotRequired[...]`` marker) from ``typing_extensions``
can only exist once its user imported that module, so looking it up in ``sys.modules`` at
the time of the check answers the same as importing it, without the import's cost for
everyone else (``typing`` has all of them from Python 3.11).
"""

from __future__ import annotations

import sys
import typing
from typing import Any

__all__ = ["is_typeddict", "required_markers"]


def is_typeddict(tp: Any) -> bool:
    """Whether ``tp`` is a TypedDict class, of ``typing`` or of ``typing_extensions``."""
    if typing.is_typeddict(tp):
        return True
    extensions = sys.modules.get("typing_extensions")
    return extensions is not None and bool(extensions.is_typeddict(tp))


def required_markers() -> tuple[Any, ...]:
    """``Required`` and ``NotRequired`` of ``typing`` and, once imported, ``typing_extensions``."""
    modules = [typing]
    extensions = sys.modules.get("typing_extensions")
    if extensions is not None:
        modules.append(extensions)
    return tuple(getattr(module, name) for module in modules
                 for name in ("Required", "NotRequired") if hasattr(module, name))
