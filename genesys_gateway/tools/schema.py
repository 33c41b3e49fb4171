"""JSON schemas derived from a function's signature, type hints and docstring.

Supported annotations: ``str``, ``int``, ``float``, ``bool``, ``None``, ``Any`` (or no
annotation: no constraint), ``Optional[X]`` / ``X | None``, other unions (``anyOf``),
``Literal[...]``, ``Enum`` subclasses, ``list``/``List``/``Sequence``, ``tuple``,
``set``/``frozenset``, ``dict[str, X]``/``Mapping``, nested attrs classes, dataclasses
and ``TypedDict``\\ s, and ``Annotated[X, "description"]``. Anything else raises
:class:`~genesys_gateway.errors.ToolDefinitionError` naming the tool and parameter.

Values that JSON cannot carry as-is (enum members, attrs and dataclass instances, tuples,
sets) are converted from the validated JSON arguments with cattrs
(:mod:`~genesys_gateway.tools.structuring`) before the handler is called (see
:attr:`FunctionSchema.converter`), so a handler annotated ``unit: Unit`` receives a
``Unit`` member, and one annotated ``n: int`` an ``int`` even for a model's ``2.0``.

Docstrings: the first paragraph becomes the description; parameter descriptions come
from Google (``Args:``), numpy (``Parameters`` + dashes) or Sphinx (``:param x:``) style
(parsed by :mod:`genesys_gateway.docstrings`).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import json
import types
import typing
from typing import Any, Callable, Literal, Mapping, Union

import attrs

from .context import hint_target
from .docstrings import parse_docstring
from .typed_dicts import is_typeddict, required_markers
from .structuring import MAPPINGS, SEQUENCES, SETS, coerce_ints, converter, make_converter
from .structuring import needs_structuring
from ..errors import ToolDefinitionError

__all__ = ["FunctionSchema", "function_schema", "parse_docstring", "annotation_schema",
           "nullable", "allows_null"]

_NoneType = type(None)
_PRIMITIVES = {str: "string", bool: "boolean", int: "integer", float: "number"}
_LITERAL_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number",
                  _NoneType: "null"}
_SKIP_NAMES = ("self", "cls")


@attrs.frozen
class FunctionSchema:
    """What :func:`function_schema` derives from a handler."""

    description: str
    parameters: dict[str, Any]
    #: ``converter(arguments) -> kwargs`` turning validated JSON arguments into the
    #: annotated Python types (enums, attrs instances, tuples, sets); ``None`` if not needed.
    converter: Callable[[dict[str, Any]], dict[str, Any]] | None
    #: What a decorated tool calls: :attr:`converter`, and for parameters of plain JSON
    #: types mentioning ``int`` an integral float (``"integer"`` accepts ``2.0``) made an int.
    call_converter: Callable[[dict[str, Any]], dict[str, Any]] | None = None


# --------------------------------------------------------------------------- annotations


def _json_default(value: Any) -> tuple[bool, Any]:
    """``(ok, json_value)`` for a Python default value."""
    if isinstance(value, enum.Enum):
        value = value.value
    elif isinstance(value, (tuple, set, frozenset)):
        value = list(value)
    try:
        return True, json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        return False, None


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if not schema or schema.get("type") == "null":
        return schema
    schema = dict(schema)
    if "enum" in schema:
        if None not in schema["enum"]:
            schema["enum"] = [*schema["enum"], None]
        if "type" not in schema:
            return schema
    kind = schema.get("type")
    if isinstance(kind, str):
        schema["type"] = [kind, "null"]
    elif isinstance(kind, list):
        schema["type"] = kind if "null" in kind else [*kind, "null"]
    else:
        description = schema.pop("description", None)
        schema = {"anyOf": [schema, {"type": "null"}]}
        if description:
            schema["description"] = description
    return schema


def _allows_null(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    if not schema:
        return True
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    return any(s.get("type") == "null" for s in schema.get("anyOf", ()))


#: Public names of the two helpers above (structured output builds strict schemas with them).
nullable = _nullable
allows_null = _allows_null


def _unsupported(tp: Any, where: str) -> ToolDefinitionError:
    return ToolDefinitionError(
        f"{where}: unsupported type annotation {tp!r} (supported: str, int, float, bool, "
        "None, Any, Optional/Union, Literal, Enum, list, tuple, set, dict[str, X], "
        "attrs classes, dataclasses, TypedDict)"
    )


def _enum_schema(values: list[Any], tp: Any, where: str) -> dict[str, Any]:
    kinds = set()
    for value in values:
        if type(value) not in _LITERAL_TYPES:
            raise ToolDefinitionError(
                f"{where}: {tp!r} has a value {value!r} that is not a JSON string, number, "
                "boolean or null"
            )
        kinds.add(_LITERAL_TYPES[type(value)])
    schema: dict[str, Any] = {}
    if len(kinds) == 1:
        schema["type"] = kinds.pop()
    elif kinds == {"integer", "number"}:
        schema["type"] = "number"
    schema["enum"] = values
    return schema


def _object_schema(cls: Any, where: str, localns: Mapping[str, Any] | None,
                   seen: frozenset[Any]) -> dict[str, Any]:
    if cls in seen:
        raise ToolDefinitionError(f"{where}: recursive type {cls.__qualname__} is not supported")
    seen = seen | {cls}
    try:
        hints = typing.get_type_hints(cls, localns=dict(localns or {}), include_extras=True)
    except Exception as exc:
        raise ToolDefinitionError(
            f"{where}: cannot resolve the annotations of {cls.__qualname__}: {exc}"
        ) from None
    props: dict[str, Any] = {}
    required: list[str] = []
    if attrs.has(cls):
        for field in attrs.fields(cls):
            if not field.init:
                continue
            tp = hints.get(field.name, field.type if field.type is not None else Any)
            sub = annotation_schema(tp, f"{where} field {field.name!r}", localns, seen)
            if field.default is attrs.NOTHING:
                required.append(field.name)
            elif not isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
                ok, value = _json_default(field.default)
                if ok:
                    sub = _nullable(sub) if value is None and not _allows_null(sub) else sub
                    sub = {**sub, "default": value}
            if field.metadata.get("description"):
                sub = {**sub, "description": str(field.metadata["description"])}
            props[field.name] = sub
    elif dataclasses.is_dataclass(cls):
        for dc_field in dataclasses.fields(cls):
            if not dc_field.init:
                continue
            sub = annotation_schema(hints.get(dc_field.name, Any),
                                    f"{where} field {dc_field.name!r}", localns, seen)
            if dc_field.default is not dataclasses.MISSING:
                ok, value = _json_default(dc_field.default)
                if ok:
                    sub = _nullable(sub) if value is None and not _allows_null(sub) else sub
                    sub = {**sub, "default": value}
            elif dc_field.default_factory is dataclasses.MISSING:
                required.append(dc_field.name)
            if dc_field.metadata.get("description"):
                sub = {**sub, "description": str(dc_field.metadata["description"])}
            props[dc_field.name] = sub
    else:  # TypedDict
        for key, tp in hints.items():
            if typing.get_origin(tp) in required_markers():
                tp = typing.get_args(tp)[0]
            props[key] = annotation_schema(tp, f"{where} key {key!r}", localns, seen)
            if key in cls.__required_keys__:
                required.append(key)
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    return schema


def annotation_schema(tp: Any, where: str, localns: Mapping[str, Any] | None = None,
                      seen: frozenset[Any] = frozenset()) -> dict[str, Any]:
    """The JSON schema of one type annotation (``where`` names it in errors)."""
    if tp is inspect.Parameter.empty or tp is Any or tp is object:
        return {}
    if tp is None or tp is _NoneType:
        return {"type": "null"}
    if isinstance(tp, type) and tp in _PRIMITIVES:
        return {"type": _PRIMITIVES[tp]}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    schema: dict[str, Any]
    if origin is typing.Annotated:
        schema = annotation_schema(args[0], where, localns, seen)
        notes = [a for a in args[1:] if isinstance(a, str)]
        return {**schema, "description": notes[0]} if notes else schema
    if origin is Literal:
        return _enum_schema(list(args), tp, where)
    if origin is Union or origin is types.UnionType:
        members = [a for a in args if a is not _NoneType]
        if len(members) == 1:
            schema = annotation_schema(members[0], where, localns, seen)
        else:
            schema = {"anyOf": [annotation_schema(a, where, localns, seen) for a in members]}
        return _nullable(schema) if len(members) < len(args) else schema
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum_schema([m.value for m in tp], tp, where)
    if isinstance(tp, type) and (attrs.has(tp) or dataclasses.is_dataclass(tp)
                                 or is_typeddict(tp)):
        return _object_schema(tp, where, localns, seen)
    container = origin if origin is not None else tp
    if container is tuple:
        if not args:
            return {"type": "array"}
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": annotation_schema(args[0], where, localns, seen)}
        if args == ((),):
            return {"type": "array", "maxItems": 0}
        items = [annotation_schema(a, where, localns, seen) for a in args]
        return {"type": "array", "items": items, "additionalItems": False,
                "minItems": len(items), "maxItems": len(items)}
    if container in SEQUENCES or container in SETS:
        schema = {"type": "array"}
        if args:
            schema["items"] = annotation_schema(args[0], where, localns, seen)
        if container in SETS:
            schema["uniqueItems"] = True
        return schema
    if container in MAPPINGS:
        if args and args[0] not in (str, Any):
            raise ToolDefinitionError(f"{where}: {tp!r}: JSON object keys must be str")
        schema = {"type": "object"}
        if len(args) == 2 and args[1] is not Any:
            schema["additionalProperties"] = annotation_schema(args[1], where, localns, seen)
        return schema
    raise _unsupported(tp, where)


# --------------------------------------------------------------------------- functions


def _resolve_hints(func: Any, names: list[str], localns: Mapping[str, Any] | None,
                   tool_name: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    target = hint_target(func)
    try:
        return typing.get_type_hints(target, localns=dict(localns or {}), include_extras=True)
    except Exception:
        pass  # resolve one by one below to name the parameter that fails
    globalns = getattr(inspect.unwrap(target), "__globals__", {})
    hints: dict[str, Any] = {}
    for name in names:
        ann = raw[name]
        if isinstance(ann, str):
            try:
                ann = eval(ann, dict(globalns), dict(localns or {}))  # noqa: S307 - annotation
            except Exception as exc:
                raise ToolDefinitionError(
                    f"tool {tool_name!r}: parameter {name!r}: cannot resolve annotation "
                    f"{raw[name]!r}: {exc}"
                ) from None
        hints[name] = ann
    return hints


def function_schema(func: Callable[..., Any], *, tool_name: str, skip: frozenset[str] = frozenset(),
                    localns: Mapping[str, Any] | None = None) -> FunctionSchema:
    """Derive the description, parameters schema and argument converter of ``func``.

    Parameters named in ``skip`` (the registry passes the handler's ``ToolContext``
    parameter) are left out, as are ``self``/``cls``, ``*args`` and ``**kwargs``. ``localns`` resolves annotations that
    name classes local to the decorating scope.
    """
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise ToolDefinitionError(f"tool {tool_name!r}: cannot read the signature: {exc}") from None
    params = []
    for index, param in enumerate(signature.parameters.values()):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or param.name in skip:
            continue
        if index == 0 and param.name in _SKIP_NAMES:
            continue
        if param.kind is param.POSITIONAL_ONLY:
            if param.default is param.empty:
                raise ToolDefinitionError(
                    f"tool {tool_name!r}: parameter {param.name!r} is positional-only; tool "
                    "handlers are called with keyword arguments"
                )
            continue
        params.append(param)
    raw = {p.name: p.annotation for p in params}
    hints = _resolve_hints(func, [p.name for p in params], localns, tool_name, raw)
    summary, docs = parse_docstring(inspect.getdoc(func))
    properties: dict[str, Any] = {}
    required: list[str] = []
    plan: list[tuple[str, Any]] = []
    ints: list[tuple[str, Any]] = []
    for param in params:
        tp = hints.get(param.name, param.annotation)
        schema = annotation_schema(tp, f"tool {tool_name!r}: parameter {param.name!r}", localns)
        if param.default is param.empty:
            required.append(param.name)
        else:
            ok, value = _json_default(param.default)
            if ok:
                if value is None and not _allows_null(schema):
                    schema = _nullable(schema)  # ``x: int = None`` accepts null
                schema = {**schema, "default": value}
        if param.name in docs and "description" not in schema:
            schema = {**schema, "description": docs[param.name]}
        properties[param.name] = schema
        if needs_structuring(tp, ints=False):
            try:
                converter().get_structure_hook(tp)
            except Exception as exc:
                raise ToolDefinitionError(
                    f"tool {tool_name!r}: parameter {param.name!r}: cannot convert JSON to "
                    f"{tp!r}: {exc}"
                ) from None
            plan.append((param.name, functools.partial(converter().structure, cl=tp)))
        elif needs_structuring(tp):  # a plain JSON type: only integral floats to make ints
            ints.append((param.name, functools.partial(coerce_ints, tp=tp)))
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    parameters["additionalProperties"] = False
    return FunctionSchema(summary, parameters, make_converter(plan) if plan else None,
                          make_converter(plan + ints) if plan or ints else None)


