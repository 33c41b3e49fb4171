"""Finding a :class:`ToolRegistry` by name: ``"package.module:attribute"``.

One loader for the CLI, the Flask extension and the Django app, so that a bad name gets
the same clear message everywhere.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import ConfigurationError, ToolDefinitionError
from .registry import ToolRegistry

__all__ = ["load_registry", "import_tools_module"]


def import_tools_module(module_name: str, *, what: str) -> Any:
    """Import the user's module ``module_name``. An invalid tool definition in it
    propagates as :class:`ToolDefinitionError`; any other failure of its import becomes a
    one-line :class:`ConfigurationError` starting with ``what``."""
    try:
        return importlib.import_module(module_name)
    except ToolDefinitionError:
        raise
    except ImportError as e:
        raise ConfigurationError(f"{what}: cannot import {module_name!r}: {e}") from e
    except Exception as e:  # the user's module failed while importing: one line, no traceback
        raise ConfigurationError(
            f"{what}: error importing {module_name!r}: {type(e).__name__}: {e}") from e
    except SystemExit as e:  # a module that exits when imported (a script, not a library)
        raise ConfigurationError(
            f"{what}: importing {module_name!r} called sys.exit({e.code!r})") from None


def load_registry(spec: Any, *, what: str = "tools") -> ToolRegistry:
    """The :class:`ToolRegistry` named by ``spec``: a registry itself, or
    ``"package.module:attribute"`` (the attribute may be dotted).

    ``what`` names the source of ``spec`` in error messages (a setting, a CLI argument).
    Raises :class:`ConfigurationError`, or the module's own :class:`ToolDefinitionError`.
    """
    if isinstance(spec, ToolRegistry):
        return spec
    if not isinstance(spec, str):
        raise ConfigurationError(f"{what} must name a ToolRegistry, got {type(spec).__name__}")
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"{what} must look like 'package.module:attribute', got {spec!r}")
    obj = import_tools_module(module_name, what=what)
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigurationError(
                f"{what}: module {module_name!r} has no attribute {attribute!r}") from None
    if not isinstance(obj, ToolRegistry):
        raise ConfigurationError(f"{what}: {spec} is a {type(obj).__name__}, not a ToolRegistry")
    return obj
