"""JSON Schema compilation, Draft-07 schema checking and a validator cache.

Every tool schema is compiled once with :mod:`fastjsonschema` (``use_default=True`` so
schema defaults are applied) and cached by its canonical content
(``json.dumps(schema, sort_keys=True)``): two tools with the same schema share one
compiled function. Schema checking happens when a validator is built, never on the
hot path:

* :func:`check_schema`: the schema is validated against the official Draft-07
  meta-schema (shipped in :mod:`.draft07`), itself compiled with fastjsonschema once, on
  first use. This catches what fastjsonschema alone would compile without complaint
  (``"additionalProperties": "no"``, ``"minProperties": -1``, ``"required": "x"``...) and
  names the offending place: ``"<label>: at properties/x/type: <problem>"``;
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

import difflib
import json
import logging
import re
import threading
from typing import Any, Callable, Final, Mapping

import fastjsonschema

from ..constants import VALIDATOR_CACHE_SIZE
from ..errors import ToolArgumentsError, ToolDefinitionError
from .draft07 import DRAFT07_META_SCHEMA, DRAFT07_URI

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
_MAX_VALUE_REPR = 60
#: The problem reported for data nested too deeply to copy, validate or serialise.
NESTED_TOO_DEEPLY = "nested too deeply"


class _NoRemoteRefs(dict[str, Callable[[str], Any]]):
    """A fastjsonschema ``handlers`` mapping that claims every URI scheme and refuses it."""

    def __contains__(self, scheme: object) -> bool:
        return True

    def __getitem__(self, scheme: str) -> Callable[[str], Any]:
        return _refuse_remote_ref


def _refuse_remote_ref(uri: str) -> Any:
    raise fastjsonschema.JsonSchemaDefinitionException(
        f"remote $ref {uri!r} is not supported (inline the schema or use #/definitions)"
    )


_HANDLERS = _NoRemoteRefs()


def _copy_json(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts and lists), much cheaper than ``copy.deepcopy``."""
    if type(value) is dict:
        return {k: _copy_json(v) for k, v in value.items()}
    if type(value) is list:
        return [_copy_json(v) for v in value]
    return value


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
        problem = f"{_strip_name(exc)} (got {_short_repr(value)})"
    return f"{field}: {problem}" if field else problem


class SchemaValidator:
    """A compiled validator for one schema. Thread-safe and shareable.

    Calling :meth:`validate` never mutates its input: it validates a copy (shallow, or
    deep when nested defaults exist) and returns that copy with schema defaults applied.
    """

    __slots__ = ("schema", "_fn", "_deep")

    def __init__(self, schema: dict[str, Any], fn: Callable[[Any], Any], deep: bool) -> None:
        self.schema = schema
        self._fn = fn
        self._deep = deep

    def validate(self, data: Any, *, label: str = "arguments") -> Any:
        """Return a validated copy of ``data`` with defaults applied.

        Raises :class:`~genesys_gateway.errors.ToolArgumentsError` whose message is
        ``"invalid <label>: <field>: <problem>"``.
        """
        try:
            if type(data) is dict:
                data = _copy_json(data) if self._deep else data.copy()
            elif isinstance(data, dict):
                data = _copy_json(dict(data)) if self._deep else dict(data)
            elif self._deep:
                data = _copy_json(data)
            return self._fn(data)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise ToolArgumentsError(
                f"invalid {label}: {describe_validation_error(exc)}"
            ) from None
        except RecursionError:  # the deep copy, or a recursive ($ref) schema, on deep data
            raise ToolArgumentsError(f"invalid {label}: {NESTED_TOO_DEEPLY}") from None

    def __repr__(self) -> str:
        return f"<SchemaValidator deep_copy={self._deep}>"


_cache: dict[str, SchemaValidator] = {}
_cache_lock = threading.Lock()


def canonical_json(value: Any) -> str:
    """JSON text with sorted keys: the validator cache key (and the repeat-guard key).

    Raises ``TypeError``/``ValueError`` when ``value`` is not JSON data.
    """
    return json.dumps(value, sort_keys=True, allow_nan=False)


#: Formats the meta-schema names that are annotations here, not assertions. fastjsonschema's
#: URI regexes refuse references it resolves itself (``"#/definitions/my thing"``), and
#: ``jsonschema`` never asserted them either without optional packages. ``regex`` is asserted.
_ANNOTATION_FORMATS: Final[dict[str, Callable[[Any], bool]]] = {
    "uri": lambda value: True,
    "uri-reference": lambda value: True,
}
_SIMPLE_TYPES: Final = ("array", "boolean", "integer", "null", "number", "object", "string")
_TYPE_PHRASES: Final = {"array": "an array", "boolean": "a boolean", "integer": "an integer",
                        "null": "null", "number": "a number", "object": "an object",
                        "string": "a string"}
_PYTHON_TYPE_NAMES: Final = {"str": "string", "int": "integer", "float": "number",
                             "bool": "boolean", "dict": "object", "list": "array",
                             "none": "null", "nonetype": "null"}
_meta_check: Callable[[Any], Any] | None = None
_meta_lock = threading.Lock()


def _draft07_check() -> Callable[[Any], Any]:
    """The Draft-07 meta-schema compiled with fastjsonschema: built once, on first use.

    ``use_default=False``: the meta-schema's defaults (``"properties": {}``,
    ``"readOnly": false``...) must never be written into the schema being checked.
    """
    global _meta_check
    check = _meta_check
    if check is None:
        with _meta_lock:
            check = _meta_check
            if check is None:
                check = fastjsonschema.compile(
                    _copy_json(DRAFT07_META_SCHEMA),  # compile() rewrites $refs in place
                    handlers=_HANDLERS,  # its refs are all local: anything else is refused
                    formats=_ANNOTATION_FORMATS,
                    use_default=False,
                )
                _meta_check = check
    return check


def check_schema(schema: Any, *, label: str = "schema") -> None:
    """Check ``schema`` against the JSON Schema Draft-07 meta-schema.

    ``schema`` is never modified. Raises :class:`ToolDefinitionError`
    ``"<label>: at <path>: <problem>"``, where ``<path>`` is the slash-joined location
    inside ``schema`` (``<root>`` for the schema itself), e.g.
    ``"tool 'x': parameters: at properties/unit/type: unknown type 'strnig' ..."``.
    """
    check = _draft07_check()
    try:
        check(schema)
        return
    except fastjsonschema.JsonSchemaValueException as exc:
        error = exc
    except RecursionError:
        raise ToolDefinitionError(f"{label}: schema is {NESTED_TOO_DEEPLY}") from None
    try:
        path, problem = _describe_schema_error(error, schema, check)
    except RecursionError:  # looking deeper into an absurdly nested schema
        path, problem = error.path[1:], _strip_name(error)
    where = "/".join(path) or "<root>"
    raise ToolDefinitionError(f"{label}: at {where}: {problem}") from None


def _describe_schema_error(
    exc: fastjsonschema.JsonSchemaValueException, schema: Any, check: Callable[[Any], Any]
) -> tuple[list[str], str]:
    """The location (keys and indices inside ``schema``) and a description of a meta-check error.

    Two refinements over fastjsonschema's first error:

    * it visits the entries of ``properties``/``definitions``/... in no fixed order, so an
      earlier entry (in the schema's own order) that is also wrong is reported instead:
      the message does not depend on hash randomisation;
    * when a value fails every branch of an ``anyOf`` (``items``: a schema or an array of
      schemas; ``dependencies``: a schema or an array of names) and it is meant as a
      schema, that schema is checked on its own so the error names the wrong keyword.
    """
    prefix: list[str] = []
    while True:
        path = _schema_path(exc, schema)
        earlier = _earlier_entry_error(schema, path, check)
        if earlier is not None:
            where, exc = earlier
            prefix += where
            schema = _follow(schema, where)
            continue
        path = prefix + path
        value = exc.value
        definition = exc.definition if isinstance(exc.definition, dict) else {}
        if exc.rule != "anyOf":
            return path, _describe_meta_rule(exc, definition)
        alternatives = [a for a in definition.get("anyOf", ()) if isinstance(a, dict)]
        if any("enum" in a for a in alternatives):  # the "type" keyword
            where, problem = _describe_type_keyword(value)
            return path + where, problem
        names = any(a.get("items") == {"type": "string"} for a in alternatives)
        if names and isinstance(value, list):  # "dependencies": an array of property names
            return _describe_names(path, value)
        inner = _first_schema_error(value, check)
        if inner is None:
            what = "an array of property names" if names else "a non-empty array of schemas"
            return path, (f"must be a schema (an object or a boolean) or {what} "
                          f"(got {_short_repr(value)})")
        where, exc = inner
        prefix = path + where
        schema = _follow(value, where)


#: Schema keywords whose value maps names to schemas (fastjsonschema visits them unordered).
_SCHEMA_MAPS: Final = frozenset({"properties", "definitions", "patternProperties",
                                 "dependencies"})
#: Schema keywords whose value is a schema or a list of schemas.
_SUBSCHEMAS: Final = frozenset({"additionalItems", "items", "contains", "additionalProperties",
                                "propertyNames", "if", "then", "else", "not", "allOf",
                                "anyOf", "oneOf"})


def _earlier_entry_error(
    root: Any, path: list[str], check: Callable[[Any], Any]
) -> tuple[list[str], fastjsonschema.JsonSchemaValueException] | None:
    """An error in an entry of a schema map that comes before the one on ``path``, if any."""
    node, kind = root, "schema"
    for depth, part in enumerate(path):
        if kind == "map" and isinstance(node, dict):
            for key, value in node.items():
                if key == part:
                    break
                if isinstance(value, list):  # "dependencies": names, not a schema
                    continue
                try:
                    check(value)
                except fastjsonschema.JsonSchemaValueException as exc:
                    return [*path[:depth], key], exc
        if kind == "schema" and part in _SCHEMA_MAPS:
            kind = "map"
        elif kind == "map" or (kind == "schema" and part in _SUBSCHEMAS) or kind == "list":
            kind = "schema"
        else:
            return None
        node = _follow(node, [part])
        if kind == "schema" and isinstance(node, list):
            kind = "list"
    return None


def _follow(node: Any, path: list[str]) -> Any:
    """The value at ``path`` (keys and decimal indices) inside ``node``."""
    for part in path:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _describe_names(path: list[str], value: list[Any]) -> tuple[list[str], str]:
    """What is wrong with an array of property names (a ``dependencies`` entry)."""
    for index, item in enumerate(value):
        if not isinstance(item, str):
            return [*path, str(index)], f"must be a string (got {_short_repr(item)})"
        if item in value[:index]:
            return path, f"must not repeat {item!r} (got {_short_repr(value)})"
    return path, f"must be an array of unique property names (got {_short_repr(value)})"


def _first_schema_error(
    value: Any, check: Callable[[Any], Any]
) -> tuple[list[str], fastjsonschema.JsonSchemaValueException] | None:
    """The meta-check error inside ``value`` (a schema, or the first bad one of a list)."""
    if isinstance(value, dict):
        candidates: list[tuple[list[str], Any]] = [([], value)]
    elif isinstance(value, list) and value:
        candidates = [([str(i)], item) for i, item in enumerate(value)]
    else:
        return None
    for where, candidate in candidates:
        try:
            check(candidate)
        except fastjsonschema.JsonSchemaValueException as exc:
            return where, exc
    return None


def _schema_path(exc: fastjsonschema.JsonSchemaValueException, root: Any) -> list[str]:
    """The keys and indices of ``exc.name`` (``data.properties.a.b[0]``) inside ``root``.

    fastjsonschema joins keys with ``.`` and indices with ``[i]``, so a key containing
    ``.`` or ``[`` is ambiguous in the name: the schema itself is walked to split it.
    """
    name = exc.name or "data"
    rest = name[4:] if name.startswith("data") else name
    stack: list[tuple[int, Any, list[str]]] = [(0, root, [])]
    while stack:
        pos, node, parts = stack.pop()
        if pos == len(rest):
            return parts
        if rest[pos] == "[" and isinstance(node, list):
            end = rest.find("]", pos)
            index = rest[pos + 1:end]
            if end > pos and index.isdigit() and int(index) < len(node):
                stack.append((end + 1, node[int(index)], [*parts, index]))
        elif rest[pos] == "." and isinstance(node, dict):
            tail = rest[pos + 1:]
            keys = sorted((k for k in node if isinstance(k, str) and tail.startswith(k)), key=len)
            for key in keys:  # the longest key is tried first (popped last-in, first-out)
                after = pos + 1 + len(key)
                if after == len(rest) or rest[after] in ".[":
                    stack.append((after, node[key], [*parts, key]))
    return exc.path[1:]  # not found in the schema (should not happen): fastjsonschema's split


def _describe_type_keyword(value: Any) -> tuple[list[str], str]:
    """What is wrong with a ``"type"`` value: an unknown name, a repeat, an empty array."""
    allowed = ", ".join(repr(t) for t in _SIMPLE_TYPES)
    if isinstance(value, list) and value:
        seen: set[str] = set()
        for index, item in enumerate(value):
            if item not in _SIMPLE_TYPES:
                return [str(index)], f"{_unknown_type(item)}; must be one of {allowed}"
            if item in seen:
                return [], f"must not repeat {item!r} (got {_short_repr(value)})"
            seen.add(item)
    either = f"must be one of {allowed}, or a non-empty array of them"
    if isinstance(value, str):
        return [], f"{_unknown_type(value)}; {either}"
    return [], f"{either} (got {_short_repr(value)})"


def _unknown_type(value: Any) -> str:
    if not isinstance(value, str):
        return f"unknown type {_short_repr(value)}"
    guess = _PYTHON_TYPE_NAMES.get(value.lower())
    if guess is None:
        close = difflib.get_close_matches(value.lower(), _SIMPLE_TYPES, n=1)
        guess = close[0] if close else None
    hint = f" (did you mean {guess!r}?)" if guess else ""
    return f"unknown type {_short_repr(value)}{hint}"


def _describe_meta_rule(exc: fastjsonschema.JsonSchemaValueException,
                        definition: dict[str, Any]) -> str:
    """The problem for one failed meta-schema rule, ending with the value found."""
    rule, value = exc.rule, exc.value
    got = f" (got {_short_repr(value)})"
    if definition.get("$id") == DRAFT07_URI:  # the meta-schema root: this place is a schema
        return "must be a schema (an object or a boolean)" + got
    if definition == {"type": "integer", "minimum": 0}:  # #/definitions/nonNegativeInteger
        return "must be a non-negative integer" + got
    if rule == "type":
        expected = definition.get("type")
        kinds = [expected] if isinstance(expected, str) else list(expected or ())
        phrase = " or ".join(_TYPE_PHRASES.get(k, repr(k)) for k in kinds) or "valid"
        if kinds == ["array"] and definition.get("items") == {"type": "string"}:
            phrase = "an array of strings"
        return f"must be {phrase}" + got
    if rule == "exclusiveMinimum":
        return f"must be greater than {definition.get('exclusiveMinimum')}" + got
    if rule == "minItems":
        least = definition.get("minItems")
        return ("must not be empty" if least == 1 else f"must have at least {least} items") + got
    if rule == "uniqueItems" and isinstance(value, list):
        for i, item in enumerate(value):
            if any(item == other and type(item) is type(other) for other in value[:i]):
                return f"must not repeat {_short_repr(item)}" + got
    if rule == "format" and definition.get("format") == "regex" and isinstance(value, str):
        problem = _regex_problem(value)
        if problem:
            return f"is not a valid regular expression: {problem}" + got
    if rule == "propertyNames" and isinstance(value, dict):  # patternProperties: regex keys
        for key in value:
            problem = _regex_problem(key)
            if problem:
                return f"key {_short_repr(key)} is not a valid regular expression: {problem}"
    return _strip_name(exc) + got


def _regex_problem(pattern: Any) -> str | None:
    """Why ``pattern`` does not compile as a (Python) regular expression, or None."""
    try:
        re.compile(pattern)
    except (re.error, TypeError, ValueError, RecursionError) as err:
        return str(err) or type(err).__name__
    return None


def _strip_name(exc: fastjsonschema.JsonSchemaValueException) -> str:
    """fastjsonschema's message without its leading ``data.x.y`` name."""
    message = exc.message or "is invalid"
    prefix = exc.name or "data"
    return message[len(prefix) + 1:] if message.startswith(prefix + " ") else message


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_VALUE_REPR else text[: _MAX_VALUE_REPR - 1] + "…"


def _compile(schema: dict[str, Any], key: str, label: str) -> SchemaValidator:
    check_schema(schema, label=label)
    definition = json.loads(key)  # fastjsonschema rewrites $refs in place: give it a copy
    if isinstance(definition, dict) and "$schema" not in definition:
        definition["$schema"] = DRAFT7_URI  # without it fastjsonschema uses draft 2019-09
    try:
        fn = fastjsonschema.compile(definition, handlers=_HANDLERS, use_default=True)
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


def parse_arguments(raw: Any) -> tuple[dict[str, Any] | None, str | None]:
    """Parse a model's raw tool-call arguments: ``(arguments, None)`` or ``(None, problem)``.

    ``None``, an empty string or a mapping are accepted (empty means ``{}``); anything
    else must be a JSON object. ``NaN``/``Infinity`` and absurd nesting are refused.
    """
    if raw is None:
        return {}, None
    if isinstance(raw, Mapping):
        return dict(raw), None
    if not isinstance(raw, (str, bytes, bytearray)):
        return None, f"arguments must be a JSON object, got {type(raw).__name__}"
    if not raw.strip():
        return {}, None
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        return None, f"arguments are not valid JSON: {exc.msg} at char {exc.pos}"
    except RecursionError:
        return None, f"arguments are not valid JSON: {NESTED_TOO_DEEPLY}"
    except ValueError as exc:  # NaN/Infinity, undecodable bytes
        return None, f"arguments are not valid JSON: {exc}"
    if not isinstance(value, dict):
        return None, f"arguments must be a JSON object, got {_json_type(value)}"
    return value, None
