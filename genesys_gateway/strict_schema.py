"""OpenAI's strict JSON schemas: which schemas meet the rules, and the strict form of one.

``strict: true`` may be sent (in ``response_format`` or a tool's ``function``) only with a
schema meeting OpenAI's rules (:func:`meets_strict_rules`): every object with
``additionalProperties: false`` and every property listed in ``required``. A schema whose
optional properties are the only obstacle has a strict form (:func:`strict_form`): those
properties become required and nullable, and the nulls a model then sends for them are
mapped back before the answer is used.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Callable

from .tools.schema import allows_null, nullable

__all__ = ["Fix", "STRICT_KEYWORDS", "MAX_STRICT_DEPTH", "MAX_STRICT_PROPERTIES",
           "meets_strict_rules", "strict_form", "no_union_defaults"]

#: The JSON Schema keywords OpenAI's strict mode accepts (anything else: ``strict: false``).
STRICT_KEYWORDS = frozenset({
    "type", "properties", "required", "additionalProperties", "items", "enum", "const",
    "anyOf", "description", "title", "$ref", "$defs", "definitions", "pattern", "format",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minItems",
    "maxItems"})
MAX_STRICT_DEPTH = 10  # levels of nested objects OpenAI's strict mode allows
MAX_STRICT_PROPERTIES = 5000  # object properties in all, likewise
_ABSENT = object()

#: Maps the nulls of an answer in strict form back, in place.
Fix = Callable[[Any], None]


def meets_strict_rules(schema: Any) -> bool:
    """Whether ``schema`` may be sent with ``strict: true``: an object at the root; every
    object with ``additionalProperties: false`` and every property in ``required``; each
    schema with a ``type`` (or ``anyOf``, ``$ref``) and only keywords of
    :data:`STRICT_KEYWORDS`; at most 10 levels of objects and 5,000 properties."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return False
    count = [0]
    return _strict_node(schema, 0, count) and count[0] <= MAX_STRICT_PROPERTIES


def _strict_node(node: Any, depth: int, count: list[int]) -> bool:
    if (not isinstance(node, dict) or not node.keys() <= STRICT_KEYWORDS
            or not ("type" in node or "anyOf" in node or "$ref" in node)):
        return False
    kind = node.get("type")
    if kind == "object" or (isinstance(kind, list) and "object" in kind) or "properties" in node:
        properties = node.get("properties", {})
        required = node.get("required", [])
        if (not isinstance(properties, dict) or node.get("additionalProperties") is not False
                or not isinstance(required, list) or set(required) != set(properties)
                or depth >= MAX_STRICT_DEPTH):
            return False
        count[0] += len(properties)
        if not all(_strict_node(sub, depth + 1, count) for sub in properties.values()):
            return False
    elif "additionalProperties" in node:
        return False
    subs: list[Any] = [node["items"]] if "items" in node else []
    any_of = node.get("anyOf", [])
    if not isinstance(any_of, list):
        return False
    subs += any_of
    for defs in ("$defs", "definitions"):
        if defs in node:
            if not isinstance(node[defs], dict):
                return False
            subs += node[defs].values()
    return all(_strict_node(sub, depth, count) for sub in subs)


def strict_form(schema: dict[str, Any],
                ) -> tuple[dict[str, Any], dict[str, Any], Fix | None] | None:
    """``(strict schema, lenient schema, fix)`` when ``schema`` has a form meeting the
    strict rules, else ``None``. In the strict schema (the model's) optional properties
    are required and nullable and defaults are dropped; the lenient one (the validator's)
    is the original with those properties nullable, so that an answer from a server that
    does not enforce the schema may still leave them out. ``fix(value)`` maps the nulls
    sent for optional properties back (the key dropped, or set to the original default);
    ``fix`` is ``None`` when nothing needs mapping. A schema with ``$ref`` is taken as
    it is."""
    if "$ref" in json.dumps(schema):
        return (schema, schema, None) if meets_strict_rules(schema) else None
    strict, fix = _to_strict(schema, True)
    if not meets_strict_rules(strict):
        return None
    return strict, _to_strict(schema, False)[0], fix


def _to_strict(node: Any, for_model: bool) -> tuple[Any, Fix | None]:
    """``node`` with its optional properties nullable and, ``for_model``, required and
    without defaults; with the fix mapping their nulls back."""
    if not isinstance(node, dict):
        return node, None
    out: dict[str, Any] = {}
    fixes: list[Fix] = []
    for key, value in node.items():
        if for_model and (key == "default" or (
                key == "required" and isinstance(node.get("properties"), dict))):
            continue
        if key == "properties" and isinstance(value, dict):
            out[key], fix = _strict_properties(value, node.get("required", []), for_model)
            if for_model:
                out["required"] = list(value)
        elif key == "items" and isinstance(value, dict):
            out[key], item_fix = _to_strict(value, for_model)
            fix = None if item_fix is None else _each(item_fix)
        elif key == "anyOf" and isinstance(value, list):
            pairs = [_to_strict(branch, for_model) for branch in value]
            out[key] = [branch for branch, _ in pairs]
            fix = _choice(value, [f for _, f in pairs])
        else:
            out[key], fix = value, None
        if fix is not None:
            fixes.append(fix)
    if not fixes:
        return out, None
    return out, fixes[0] if len(fixes) == 1 else _all(fixes)


def _strict_properties(properties: dict[str, Any], required: Any, for_model: bool,
                       ) -> tuple[dict[str, Any], Fix | None]:
    out: dict[str, Any] = {}
    drops: dict[str, Any] = {}
    subs: dict[str, Fix] = {}
    for name, sub in properties.items():
        strict, fix = _to_strict(sub, for_model)
        if isinstance(sub, dict) and name not in required and not allows_null(sub):
            strict = nullable(strict)
            drops[name] = sub.get("default", _ABSENT)
        out[name] = strict
        if fix is not None:
            subs[name] = fix
    if not drops and not subs:
        return out, None
    drop_items, sub_items = tuple(drops.items()), tuple(subs.items())

    def fix_object(value: Any) -> None:
        if type(value) is dict:
            for key, default in drop_items:
                if value.get(key, _ABSENT) is None:
                    if default is _ABSENT:
                        del value[key]
                    else:
                        value[key] = copy.deepcopy(default)
            for key, fix in sub_items:
                item = value.get(key)
                if item is not None:
                    fix(item)

    return out, fix_object


def no_union_defaults(node: Any, in_union: bool = False) -> Any:
    """``node`` without the defaults inside ``anyOf``/``oneOf`` branches: fastjsonschema
    applies a branch's defaults while trying it, so a failed branch's would stay in a
    value another branch matches (structuring applies a type's own defaults anyway)."""
    if isinstance(node, list):
        return [no_union_defaults(item, in_union) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if in_union and key == "default":
            continue
        if key in ("enum", "const"):
            out[key] = value
        elif key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            out[key] = {name: no_union_defaults(sub, in_union) for name, sub in value.items()}
        else:
            out[key] = no_union_defaults(value, in_union or key in ("anyOf", "oneOf"))
    return out


def _each(fix: Fix) -> Fix:
    def fix_items(value: Any) -> None:
        if type(value) is list:
            for item in value:
                if item is not None:
                    fix(item)
    return fix_items


def _choice(branches: list[Any], fixes: list[Fix | None]) -> Fix | None:
    """The fix of a union: an object goes to the branch listing exactly its keys (every
    key is required in strict form), a list to the first array branch."""
    objects = tuple((frozenset(b["properties"]), f) for b, f in zip(branches, fixes)
                    if f is not None and isinstance(b, dict) and isinstance(b.get("properties"), dict))
    arrays = [f for b, f in zip(branches, fixes)
              if f is not None and isinstance(b, dict) and "items" in b]
    if not objects and not arrays:
        return None
    first_array = arrays[0] if arrays else None

    def fix_choice(value: Any) -> None:
        if type(value) is dict:
            keys = value.keys()
            for names, fix in objects:
                if keys == names:
                    fix(value)
                    return
        elif type(value) is list and first_array is not None:
            first_array(value)
    return fix_choice


def _all(fixes: list[Fix]) -> Fix:
    def fix_all(value: Any) -> None:
        for fix in fixes:
            fix(value)
    return fix_all
