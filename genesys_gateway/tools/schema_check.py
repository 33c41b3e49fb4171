"""Checking a JSON schema against the Draft-07 meta-schema, with fastjsonschema.

The official Draft-07 meta-schema (shipped in :mod:`.draft07`) is compiled with
fastjsonschema once, on first use, with ``use_default=False`` so that checking never
writes the meta-schema's defaults into the schema being checked. It catches what
fastjsonschema alone compiles without complaint (``"additionalProperties": "no"``,
``"minProperties": -1``, ``"required": "x"``...) and names the offending place:
``"<label>: at properties/x/type: <problem>"``.

Remote ``$ref`` resolution is refused everywhere (:data:`NO_REMOTE_REFS`):
fastjsonschema would otherwise fetch the URL with ``urllib`` at compile time.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any, Callable, Final

from ..errors import ToolDefinitionError
from ..constants import NESTED_TOO_DEEPLY
from .draft07 import DRAFT07_META_SCHEMA, DRAFT07_URI

if TYPE_CHECKING:  # imported where used: a plain client never loads it
    import fastjsonschema

__all__ = ["check_schema", "NO_REMOTE_REFS", "copy_json", "short_repr", "strip_name"]

_MAX_VALUE_REPR = 60


class _NoRemoteRefs(dict[str, Callable[[str], Any]]):
    """A fastjsonschema ``handlers`` mapping that claims every URI scheme and refuses it."""

    def __contains__(self, scheme: object) -> bool:
        return True

    def __getitem__(self, scheme: str) -> Callable[[str], Any]:
        return _refuse_remote_ref


def _refuse_remote_ref(uri: str) -> Any:
    import fastjsonschema

    raise fastjsonschema.JsonSchemaDefinitionException(
        f"remote $ref {uri!r} is not supported (inline the schema or use #/definitions)"
    )


#: fastjsonschema ``handlers`` that refuse every remote ``$ref``.
NO_REMOTE_REFS = _NoRemoteRefs()


def copy_json(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts and lists), much cheaper than ``copy.deepcopy``."""
    if type(value) is dict:
        return {k: copy_json(v) for k, v in value.items()}
    if type(value) is list:
        return [copy_json(v) for v in value]
    return value


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
    import fastjsonschema

    global _meta_check
    check = _meta_check
    if check is None:
        with _meta_lock:
            check = _meta_check
            if check is None:
                check = fastjsonschema.compile(
                    copy_json(DRAFT07_META_SCHEMA),  # compile() rewrites $refs in place
                    handlers=NO_REMOTE_REFS,  # its refs are all local: anything else is refused
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
    import fastjsonschema

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
        path, problem = error.path[1:], strip_name(error)
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
                          f"(got {short_repr(value)})")
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
    import fastjsonschema

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
            return [*path, str(index)], f"must be a string (got {short_repr(item)})"
        if item in value[:index]:
            return path, f"must not repeat {item!r} (got {short_repr(value)})"
    return path, f"must be an array of unique property names (got {short_repr(value)})"


def _first_schema_error(
    value: Any, check: Callable[[Any], Any]
) -> tuple[list[str], fastjsonschema.JsonSchemaValueException] | None:
    """The meta-check error inside ``value`` (a schema, or the first bad one of a list)."""
    import fastjsonschema

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
                return [], f"must not repeat {item!r} (got {short_repr(value)})"
            seen.add(item)
    either = f"must be one of {allowed}, or a non-empty array of them"
    if isinstance(value, str):
        return [], f"{_unknown_type(value)}; {either}"
    return [], f"{either} (got {short_repr(value)})"


def _unknown_type(value: Any) -> str:
    if not isinstance(value, str):
        return f"unknown type {short_repr(value)}"
    guess = _PYTHON_TYPE_NAMES.get(value.lower())
    if guess is None:
        import difflib  # only to suggest a name in an error message

        close = difflib.get_close_matches(value.lower(), _SIMPLE_TYPES, n=1)
        guess = close[0] if close else None
    hint = f" (did you mean {guess!r}?)" if guess else ""
    return f"unknown type {short_repr(value)}{hint}"


def _describe_meta_rule(exc: fastjsonschema.JsonSchemaValueException,
                        definition: dict[str, Any]) -> str:
    """The problem for one failed meta-schema rule, ending with the value found."""
    rule, value = exc.rule, exc.value
    got = f" (got {short_repr(value)})"
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
                return f"must not repeat {short_repr(item)}" + got
    if rule == "format" and definition.get("format") == "regex" and isinstance(value, str):
        problem = _regex_problem(value)
        if problem:
            return f"is not a valid regular expression: {problem}" + got
    if rule == "propertyNames" and isinstance(value, dict):  # patternProperties: regex keys
        for key in value:
            problem = _regex_problem(key)
            if problem:
                return f"key {short_repr(key)} is not a valid regular expression: {problem}"
    return strip_name(exc) + got


def _regex_problem(pattern: Any) -> str | None:
    """Why ``pattern`` does not compile as a (Python) regular expression, or None."""
    try:
        re.compile(pattern)
    except (re.error, TypeError, ValueError, RecursionError) as err:
        return str(err) or type(err).__name__
    return None


def strip_name(exc: fastjsonschema.JsonSchemaValueException) -> str:
    """fastjsonschema's message without its leading ``data.x.y`` name."""
    message = exc.message or "is invalid"
    prefix = exc.name or "data"
    return message[len(prefix) + 1:] if message.startswith(prefix + " ") else message


def short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_VALUE_REPR else text[: _MAX_VALUE_REPR - 1] + "…"
