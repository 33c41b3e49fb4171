"""Turning validated JSON into the annotated Python types, with cattrs.

JSON cannot carry enum members, attrs and dataclass instances, tuples or sets as they are;
:data:`converter` structures them from validated JSON (tool arguments, structured output).
JSON Schema's ``"integer"`` accepts ``2.0``: :func:`coerce_ints` makes an integral float an
``int`` wherever the annotation says ``int`` (registered as the converter's ``int`` hook).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import functools
import types
import typing
from typing import TYPE_CHECKING, Any, Callable, Union

import attrs

from ..errors import ToolDefinitionError
from .typed_dicts import is_typeddict

if TYPE_CHECKING:  # imported when the first handler needs a conversion
    import cattrs

__all__ = ["SEQUENCES", "SETS", "MAPPINGS", "converter", "coerce_ints", "needs_structuring",
           "make_converter", "structurer"]

SEQUENCES = {list, collections.abc.Sequence, collections.abc.MutableSequence,
             collections.abc.Iterable, collections.abc.Collection}
SETS = {set, frozenset, collections.abc.Set, collections.abc.MutableSet}
MAPPINGS = {dict, collections.abc.Mapping, collections.abc.MutableMapping}



@functools.lru_cache(maxsize=None)
def converter() -> cattrs.Converter:
    """The one cattrs converter of tool arguments, made on first use (cattrs costs ~12 ms
    to import, and a plain client converts nothing)."""
    import cattrs

    made = cattrs.Converter()
    made.register_structure_hook(int, _int)  # e.g. int fields of attrs classes
    return made


def coerce_ints(value: Any, tp: Any) -> Any:
    """``value`` with each integral float (JSON Schema's ``"integer"`` accepts ``2.0``,
    ``1e20``) made an ``int`` where ``tp`` says ``int``; containers keep their types."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return coerce_ints(value, args[0])
    if tp is int:
        return int(value) if type(value) is float and value.is_integer() else value
    if origin is Union or origin is types.UnionType:  # the one member the value can be
        if type(value) is float:
            return value if float in args else coerce_ints(value, int if int in args else Any)
        fits = [a for a in args if type(value) is (
            list if (typing.get_origin(a) or a) in SEQUENCES else dict
            if (typing.get_origin(a) or a) in MAPPINGS or is_typeddict(a) else None)]
        return coerce_ints(value, fits[0]) if len(fits) == 1 else value
    if type(value) is list and (origin or tp) in SEQUENCES and args:
        return [coerce_ints(v, args[0]) for v in value]
    if type(value) is dict and (origin or tp) in MAPPINGS and len(args) == 2:
        return {k: coerce_ints(v, args[1]) for k, v in value.items()}
    if type(value) is dict and is_typeddict(tp):
        hints = typing.get_type_hints(tp)
        return {k: coerce_ints(v, hints.get(k, Any)) for k, v in value.items()}
    return value


def _int(value: Any, _tp: Any) -> Any:
    """:func:`coerce_ints` for ``int`` itself, without its dispatch (the hot path)."""
    return int(value) if type(value) is float and value.is_integer() else value


def needs_structuring(tp: Any, seen: frozenset[Any] = frozenset(), ints: bool = True) -> bool:
    """Whether a JSON value must be converted to match ``tp`` (enum, attrs, dataclass, tuple,
    set, and with ``ints`` an ``int``, which the schema lets arrive as an integral float)."""
    if tp in seen:
        return False
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return needs_structuring(args[0], seen, ints)
    if isinstance(tp, type):
        if (issubclass(tp, enum.Enum) or attrs.has(tp) or dataclasses.is_dataclass(tp)
                or tp in (tuple, set, frozenset)):
            return True
        if tp is int:
            return ints
        if is_typeddict(tp):
            hints = typing.get_type_hints(tp)
            return any(needs_structuring(h, seen | {tp}, ints) for h in hints.values())
    if origin in (tuple, set, frozenset, collections.abc.Set):
        return True
    return any(needs_structuring(a, seen, ints) for a in args if a is not Ellipsis)


def structurer(tp: Any, where: str) -> Callable[[Any], Any]:
    """A function turning validated JSON into ``tp`` with cattrs (integral floats made ints
    where ``tp`` says ``int``, as for tool arguments); :class:`ToolDefinitionError` naming
    ``where`` when cattrs cannot structure ``tp``."""
    try:
        hook = converter().get_structure_hook(tp)
    except Exception as exc:
        raise ToolDefinitionError(f"{where}: cannot convert JSON to {tp!r}: {exc}") from None
    return lambda value: hook(value, tp)


def make_converter(plan: list[tuple[str, Any]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """``convert(arguments) -> kwargs`` applying each ``(name, structure)`` of ``plan`` to
    the argument of that name when it is present and not null."""

    def convert(arguments: dict[str, Any]) -> dict[str, Any]:
        out = dict(arguments)
        for name, structure in plan:
            if out.get(name) is not None:  # null passed schema validation: keep it
                out[name] = structure(out[name])
        return out

    return convert
