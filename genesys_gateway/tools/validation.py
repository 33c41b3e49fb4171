"""JSON Schema compilation, Draft-07 schema checking and a validator cache.

Every tool schema is compiled once with :mod:`fastjsonschema` (``use_default=True`` so
schema defaults are applied) and cached by its canonical content
(``json.dumps(schema, sort_keys=True)``): two tools with the same schema share one
compiled function. Schema checking happens when a validator is built, never on the
hot path:

* :func:`~.schema_check.check_schema`: the schema is validated against the official
  Draft-07 meta-schema, compiled with fastjsonschema once, on first use, naming the
  offending place: ``"<label>: at properties/x/type: <problem>"``;
* fastjsonschema's own compile errors (remote ``$ref``, unresolvable references...).

Remote ``$ref`` resolution is refused: fastjsonschema would otherwise fetch the URL
with ``urllib`` at compile time.

Data nested deeper than the interpreter's recursion limit allows is refused with
``ToolArgumentsError`` (``"... nested too deeply"``), never a ``RecursionError``.

Validation errors become short, model-actionable messages (see
:func:`describe_validation_error`), e.g. ``unit: must be one of ['celsius',
'fahrenheit'] (got 'kelvin')`` or ``missing required property 'location'``.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, Final, Mapping

from ..constants import NESTED_TOO_DEEPLY, VALIDATOR_CACHE_SIZE
from ..errors import ToolArgumentsError, ToolDefinitionError
from .draft07 import DRAFT07_URI
from .schema_check import NO_REMOTE_REFS, check_schema, copy_json, short_repr, strip_name

if TYPE_CHECKING:  # imported when the first validator is compiled
    import fastjsonschema

__all__ = [
    "SchemaValidator",
    "get_validator",
    "check_schema",
    "describe_validation_error",
    "clear_cache",
    "parse_arguments",
    "canonical_json",
]

logger = logging.getLogger("genesys_gateway.tools")

DRAFT7_URI: Final = DRAFT07_URI


def _needs_deep_copy(schema: Any) -> bool:
    """Whether applying defaults can mutate anything below the top-level object.

    fastjsonschema's ``use_default`` writes defaults into the object being validated.
    Defaults declared directly in ``schema["properties"][name]`` only touch the
    top-level dict, which a shallow copy protects; a ``default`` anywhere else (nested
    objects, ``items``, ``$ref`` targets, combinators) needs a deep copy.
    """

    def has_default(node: Any) -> bool:
        if isinstance(node, dict):
            return "default" in node or any(has_default(v) for v in node.values())
        if isinstance(node, list):
            return any(has_default(v) for v in node)
        return False

    if not isinstance(schema, dict):
        return False
    for key, value in schema.items():
        if key == "properties" and isinstance(value, dict):
            for prop in value.values():
                if isinstance(prop, dict):
                    if any(has_default(v) for k, v in prop.items() if k != "default"):
                        return True
                elif has_default(prop):
                    return True
        elif key != "default" and has_default(value):
            return True
    return False


def describe_validation_error(exc: fastjsonschema.JsonSchemaValueException) -> str:
    """A short description of a validation failure: the field, then what was expected."""
    path = list(exc.path or ())
    if path and path[0] == "data":
        path = path[1:]
    field = ""
    for part in path:
        field += f"[{part}]" if part.isdigit() else (f".{part}" if field else part)
    rule = exc.rule
    definition = exc.definition if isinstance(exc.definition, dict) else {}
    value = exc.value
    if rule == "required" and isinstance(value, dict):
        missing = [k for k in definition.get("required", ()) if k not in value]
        names = ", ".join(repr(k) for k in missing) or "?"
        plural = "properties" if len(missing) > 1 else "property"
        problem = f"missing required {plural} {names}"
    elif rule == "additionalProperties" and isinstance(value, dict):
        known = definition.get("properties", {})
        extra = [k for k in value if k not in known]
        names = ", ".join(repr(k) for k in extra) or "?"
        plural = "properties" if len(extra) > 1 else "property"
        verb = "are" if len(extra) > 1 else "is"
        problem = f"additional {plural} {names} {verb} not allowed"
    else:
        problem = f"{strip_name(exc)} (got {short_repr(value)})"
    return f"{field}: {problem}" if field else problem


class SchemaValidator:
    """A compiled validator for one schema. Thread-safe and shareable.

    Calling :meth:`validate` never mutates its input: it validates a copy (shallow, or
    deep when nested defaults exist) and returns that copy with schema defaults applied.
    """

    __slots__ = ("schema", "_fn", "_deep", "_invalid")

    def __init__(self, schema: dict[str, Any], fn: Callable[[Any], Any], deep: bool) -> None:
        import fastjsonschema

        self.schema = schema
        self._fn = fn
        self._deep = deep
        self._invalid = fastjsonschema.JsonSchemaValueException

    def validate(self, data: Any, *, label: str = "arguments") -> Any:
        """Return a validated copy of ``data`` with defaults applied.

        Raises :class:`~genesys_gateway.errors.ToolArgumentsError` whose message is
        ``"invalid <label>: <field>: <problem>"``.
        """
        try:
            if type(data) is dict:
                data = copy_json(data) if self._deep else data.copy()
            elif isinstance(data, dict):
                data = copy_json(dict(data)) if self._deep else dict(data)
            elif self._deep:
                data = copy_json(data)
            return self._fn(data)
        except self._invalid as exc:
            raise ToolArgumentsError(
                f"invalid {label}: {describe_validation_error(exc)}"
            ) from None
        except RecursionError:  # the deep copy, or a recursive ($ref) schema, on deep data
            raise ToolArgumentsError(f"invalid {label}: {NESTED_TOO_DEEPLY}") from None
        except OverflowError:  # an integer too large for a float (multipleOf, number bounds)
            raise ToolArgumentsError(f"invalid {label}: a number is too large") from None

    def __repr__(self) -> str:
        return f"<SchemaValidator deep_copy={self._deep}>"


_cache: dict[str, SchemaValidator] = {}
_cache_lock = threading.Lock()


#: ``json.dumps(value, sort_keys=True, allow_nan=False)`` without an encoder per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, allow_nan=False)


def canonical_json(value: Any) -> str:
    """JSON text with sorted keys: the validator cache key (and the repeat-guard key).

    Raises ``TypeError``/``ValueError`` when ``value`` is not JSON data.
    """
    return _CANONICAL.encode(value)


def _compile(schema: dict[str, Any], key: str, label: str) -> SchemaValidator:
    check_schema(schema, label=label)
    definition = json.loads(key)  # fastjsonschema rewrites $refs in place: give it a copy
    if isinstance(definition, dict) and "$schema" not in definition:
        definition["$schema"] = DRAFT7_URI  # without it fastjsonschema uses draft 2019-09
    import fastjsonschema

    try:
        fn = fastjsonschema.compile(definition, handlers=NO_REMOTE_REFS, use_default=True)
    except ToolDefinitionError:
        raise
    except Exception as exc:  # JsonSchemaDefinitionException, re.error, AttributeError...
        detail = str(exc) or type(exc).__name__
        raise ToolDefinitionError(f"{label}: invalid JSON schema: {detail}") from None
    return SchemaValidator(json.loads(key), fn, _needs_deep_copy(schema))


def get_validator(schema: Any, *, label: str = "schema") -> SchemaValidator:
    """The compiled, checked validator for ``schema`` (cached by canonical content).

    ``label`` prefixes :class:`ToolDefinitionError` messages, e.g.
    ``"tool 'get_weather': parameters"``.
    """
    if not isinstance(schema, dict):
        raise ToolDefinitionError(
            f"{label}: must be a JSON schema object (dict), got {type(schema).__name__}"
        )
    try:
        key = canonical_json(schema)
    except (TypeError, ValueError) as exc:
        raise ToolDefinitionError(f"{label}: schema is not JSON-serialisable: {exc}") from None
    except RecursionError:
        raise ToolDefinitionError(f"{label}: schema is {NESTED_TOO_DEEPLY}") from None
    with _cache_lock:
        validator = _cache.get(key)
    if validator is not None:
        return validator
    validator = _compile(schema, key, label)  # outside the lock; a duplicate compile is harmless
    with _cache_lock:
        existing = _cache.get(key)
        if existing is not None:
            return existing
        if len(_cache) >= VALIDATOR_CACHE_SIZE:
            _cache.pop(next(iter(_cache)))  # evict the oldest entry
        _cache[key] = validator
    logger.debug("compiled a JSON schema validator (%d cached)", len(_cache))
    return validator


def clear_cache() -> None:
    """Forget every compiled validator (tests, or after registering many transient schemas)."""
    with _cache_lock:
        _cache.clear()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_type(value: Any) -> str:
    for kind, name in ((bool, "boolean"), (str, "string"), (list, "array"), (int, "number"),
                       (float, "number"), (type(None), "null")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


#: ``json.loads(text, parse_constant=...)`` builds a decoder per call; one is shared.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def parse_arguments(raw: Any) -> tuple[dict[str, Any] | None, str | None]:
    """Parse a model's raw tool-call arguments: ``(arguments, None)`` or ``(None, problem)``.

    ``None``, an empty string or a mapping are accepted (empty means ``{}``); anything
    else must be a JSON object. ``NaN``/``Infinity`` and absurd nesting are refused.
    """
    if raw is None:
        return {}, None
    if type(raw) is not str and isinstance(raw, Mapping):  # typing's Mapping is slow to check
        return dict(raw), None
    if not isinstance(raw, (str, bytes, bytearray)):
        return None, f"arguments must be a JSON object, got {type(raw).__name__}"
    if not raw.strip():
        return {}, None
    try:
        value = (_DECODER.decode(raw) if type(raw) is str and raw[0] != "\ufeff"
                 else json.loads(raw, parse_constant=_reject_constant))
    except json.JSONDecodeError as exc:
        return None, f"arguments are not valid JSON: {exc.msg} at char {exc.pos}"
    except RecursionError:
        return None, f"arguments are not valid JSON: {NESTED_TOO_DEEPLY}"
    except ValueError as exc:  # NaN/Infinity, undecodable bytes
        return None, f"arguments are not valid JSON: {exc}"
    if not isinstance(value, dict):
        return None, f"arguments must be a JSON object, got {_json_type(value)}"
    return value, None
