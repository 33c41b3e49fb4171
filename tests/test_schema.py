"""schema.py: JSON schemas from signatures and docstrings, and argument conversion."""

import datetime
import enum
from typing import Annotated, Any, Dict, List, Literal, Optional, Set, Tuple, Union

from typing_extensions import NotRequired, TypedDict  # typing has NotRequired from 3.11 only

import attrs
import pytest

from genesys_gateway.errors import ToolDefinitionError
from genesys_gateway.tools.schema import annotation_schema, function_schema, parse_docstring
from genesys_gateway.tools.validation import check_schema
from genesys_gateway.tools import ToolContext


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@attrs.define
class Address:
    city: str
    zip: str = attrs.field(default="00000", metadata={"description": "Postal code"})
    tags: list = attrs.Factory(list)


@attrs.define
class Order:
    address: Address
    quantity: int


class Item(TypedDict):
    sku: str
    count: NotRequired[int]


class Node:
    pass


@attrs.define
class Recursive:
    child: Optional["Recursive"] = None


def params(func, **kwargs):
    return function_schema(func, tool_name="t", **kwargs).parameters


def props(func):
    return params(func)["properties"]


def test_primitives_and_required():
    def f(s: str, i: int, n: float, b: bool, opt: str = "x"):
        pass

    schema = params(f)
    assert schema == {
        "type": "object",
        "properties": {"s": {"type": "string"}, "i": {"type": "integer"},
                       "n": {"type": "number"}, "b": {"type": "boolean"},
                       "opt": {"type": "string", "default": "x"}},
        "required": ["s", "i", "n", "b"],
        "additionalProperties": False,
    }
    check_schema(schema)


def test_no_parameters_has_no_required_key():
    def f():
        pass

    assert params(f) == {"type": "object", "properties": {}, "additionalProperties": False}


def test_optional_and_pep604_union_with_none():
    def f(a: Optional[str], b: int | None = None, c: Optional[Literal["x", "y"]] = None):
        pass

    p = props(f)
    assert p["a"] == {"type": ["string", "null"]}
    assert p["b"] == {"type": ["integer", "null"], "default": None}
    assert p["c"] == {"type": ["string", "null"], "enum": ["x", "y", None], "default": None}
    assert params(f)["required"] == ["a"]


def test_implicit_optional_default_none_accepts_null():
    def f(a: int = None):
        pass

    assert props(f)["a"] == {"type": ["integer", "null"], "default": None}


def test_literal_enum_and_intenum():
    def f(mode: Literal["fast", "slow"], n: Literal[1, 2], mixed: Literal["a", 1],
          unit: Unit = Unit.CELSIUS, level: Level = Level.LOW):
        pass

    p = props(f)
    assert p["mode"] == {"type": "string", "enum": ["fast", "slow"]}
    assert p["n"] == {"type": "integer", "enum": [1, 2]}
    assert p["mixed"] == {"enum": ["a", 1]}
    assert p["unit"] == {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"}
    assert p["level"] == {"type": "integer", "enum": [1, 2], "default": 1}


def test_containers():
    def f(a: list[int], b: List[str], c: tuple[int, ...], d: Tuple[int, str], e: set[str],
          g: dict[str, float], h: Dict[str, Any], i: list, j: dict, k: frozenset[int], m: Set[int]):
        pass

    p = props(f)
    assert p["a"] == {"type": "array", "items": {"type": "integer"}}
    assert p["b"] == {"type": "array", "items": {"type": "string"}}
    assert p["c"] == {"type": "array", "items": {"type": "integer"}}
    assert p["d"] == {"type": "array", "items": [{"type": "integer"}, {"type": "string"}],
                      "additionalItems": False, "minItems": 2, "maxItems": 2}
    assert p["e"] == {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    assert p["g"] == {"type": "object", "additionalProperties": {"type": "number"}}
    assert p["h"] == {"type": "object"}
    assert p["i"] == {"type": "array"}
    assert p["j"] == {"type": "object"}
    assert p["k"]["uniqueItems"] is True and p["m"]["uniqueItems"] is True


def test_any_and_unannotated_have_no_constraint():
    def f(a, b: Any, c=3):
        pass

    p = props(f)
    assert p["a"] == {} and p["b"] == {}
    assert p["c"] == {"default": 3}


def test_union_becomes_any_of():
    def f(a: Union[int, str]):
        pass

    assert props(f)["a"] == {"anyOf": [{"type": "integer"}, {"type": "string"}]}


def test_nested_attrs_class():
    def f(order: Order):
        pass

    order = props(f)["order"]
    assert order["type"] == "object" and order["required"] == ["address", "quantity"]
    assert order["additionalProperties"] is False
    address = order["properties"]["address"]
    assert address["required"] == ["city"]
    assert address["properties"]["zip"] == {"type": "string", "default": "00000",
                                            "description": "Postal code"}
    assert address["properties"]["tags"] == {"type": "array"}  # factory default: not recorded
    check_schema(params(f))


def test_typeddict():
    def f(items: list[Item]):
        pass

    item = props(f)["items"]["items"]
    assert item == {"type": "object",
                    "properties": {"sku": {"type": "string"}, "count": {"type": "integer"}},
                    "required": ["sku"], "additionalProperties": False}


def test_annotated_description_and_docstring_description():
    def f(a: Annotated[str, "from annotated"], b: int):
        """Do it.

        Args:
            a: from docstring
            b: the b value
        """

    p = props(f)
    assert p["a"]["description"] == "from annotated"
    assert p["b"] == {"type": "integer", "description": "the b value"}


def test_skips_self_varargs_kwargs_and_the_names_it_is_given():
    class K:
        def method(self, x: int, *args, ctx: ToolContext, **kwargs):
            pass

    skip = frozenset({"ctx"})  # the registry passes the handler's ToolContext parameter
    assert params(K.method, skip=skip)["properties"] == {"x": {"type": "integer"}}
    assert params(K().method, skip=skip)["properties"] == {"x": {"type": "integer"}}

    def g(a: int, context: "ToolContext", other: str = ""):
        pass

    assert list(params(g, skip=frozenset({"context"}))["properties"]) == ["a", "other"]
    assert list(params(g, skip=frozenset({"context", "other"}))["properties"]) == ["a"]


def test_the_registry_leaves_the_context_parameter_out_of_the_schema():
    from genesys_gateway.tools import ToolRegistry

    registry = ToolRegistry()

    class K:
        def method(self, x: int, *args, ctx: ToolContext, **kwargs):
            pass

    def g(a: int, context: "ToolContext", other: str = ""):
        pass

    registry.tool(K().method, name="m")
    registry.tool(g)
    assert registry.get("m").parameters["properties"] == {"x": {"type": "integer"}}
    assert registry.get("m").context_param == "ctx"
    assert list(registry.get("g").parameters["properties"]) == ["a", "other"]
    assert registry.get("g").context_param == "context"


def test_non_serialisable_default_is_not_recorded():
    sentinel = object()

    def f(a: Any = sentinel, when: str = "x"):
        pass

    p = props(f)
    assert p["a"] == {}
    assert "a" not in params(f).get("required", [])


@pytest.mark.parametrize("annotation", [bytes, datetime.datetime, Node, complex])
def test_unsupported_annotation_names_tool_and_parameter(annotation):
    def f(bad: annotation):  # type: ignore[valid-type]
        pass

    with pytest.raises(ToolDefinitionError) as info:
        function_schema(f, tool_name="my_tool")
    assert "'my_tool'" in str(info.value) and "'bad'" in str(info.value)
    assert "unsupported type annotation" in str(info.value)


def test_unsupported_nested_field_is_named():
    @attrs.define
    class Bad:
        when: datetime.date

    def f(x: Bad):
        pass

    with pytest.raises(ToolDefinitionError, match="parameter 'x' field 'when'"):
        function_schema(f, tool_name="t", localns={"Bad": Bad})


def test_non_string_dict_keys_rejected():
    def f(x: dict[int, str]):
        pass

    with pytest.raises(ToolDefinitionError, match="keys must be str"):
        function_schema(f, tool_name="t")


def test_recursive_types_rejected():
    def f(x: Recursive):
        pass

    with pytest.raises(ToolDefinitionError, match="recursive type"):
        function_schema(f, tool_name="t")


def test_bad_literal_value_rejected():
    with pytest.raises(ToolDefinitionError, match="not a JSON"):
        annotation_schema(Literal[b"x"], "here")


def test_positional_only_parameter_rejected():
    def f(a: int, /):
        pass

    with pytest.raises(ToolDefinitionError, match="positional-only"):
        function_schema(f, tool_name="t")


def test_unresolvable_string_annotation_names_parameter():
    def f(a: "NoSuchType"):  # noqa: F821
        pass

    with pytest.raises(ToolDefinitionError, match="parameter 'a': cannot resolve"):
        function_schema(f, tool_name="t")


def test_string_annotations_resolve_with_localns():
    @attrs.define
    class Local:
        v: int

    def f(a: "Local"):
        pass

    assert props_local(f, Local)["a"]["properties"] == {"v": {"type": "integer"}}


def props_local(func, cls):
    return function_schema(func, tool_name="t", localns={cls.__name__: cls}).parameters["properties"]


# ------------------------------------------------------------------ conversion


def test_converter_builds_enums_attrs_tuples_sets():
    def f(unit: Unit, order: Order, pair: tuple[int, int], tags: set[str], plain: str,
          maybe: Optional[Unit] = None):
        pass

    derived = function_schema(f, tool_name="t")
    out = derived.converter({"unit": "fahrenheit", "pair": [1, 2], "tags": ["a", "a"],
                             "plain": "p", "maybe": None,
                             "order": {"address": {"city": "x", "zip": "1", "tags": []},
                                       "quantity": 2}})
    assert out["unit"] is Unit.FAHRENHEIT
    assert out["order"] == Order(Address("x", "1", []), 2)
    assert out["pair"] == (1, 2) and out["tags"] == {"a"} and out["plain"] == "p"
    assert out["maybe"] is None


def test_no_converter_for_plain_json_types():
    def f(a: str, b: list[int], c: dict[str, Any], d: Literal["x"], e: Item):
        pass

    assert function_schema(f, tool_name="t").converter is None


# ------------------------------------------------------------------ docstrings


def test_google_docstring():
    summary, docs = parse_docstring("""Get the weather
    for a place.

    More details here.

    Args:
        location (str): City or region
            name.
        unit: Temperature unit.

    Returns:
        dict: not a parameter.
    """)
    assert summary == "Get the weather for a place."
    assert docs == {"location": "City or region name.", "unit": "Temperature unit."}


def test_numpy_docstring():
    summary, docs = parse_docstring("""Summary line.

    Parameters
    ----------
    location : str
        City or region
        name.
    a, b : int
        Two numbers.

    Returns
    -------
    dict
        Not a parameter.
    """)
    assert summary == "Summary line."
    assert docs == {"location": "City or region name.", "a": "Two numbers.", "b": "Two numbers."}


def test_sphinx_docstring():
    summary, docs = parse_docstring("""Summary.
    :param location: City or region
        name.
    :param str unit: Temperature unit.
    :type unit: str
    :returns: nothing
    """)
    assert summary == "Summary."
    assert docs == {"location": "City or region name.", "unit": "Temperature unit."}


def test_summary_stops_at_section_and_empty_docstring():
    assert parse_docstring("Do a thing.\nArgs:\n    x: the x\n") == ("Do a thing.", {"x": "the x"})
    assert parse_docstring(None) == ("", {})
    assert parse_docstring("") == ("", {})


def test_function_schema_description_from_docstring():
    def f(x: int):
        """Add things up.

        Args:
            x: The x.
        """

    derived = function_schema(f, tool_name="t")
    assert derived.description == "Add things up."
    assert derived.parameters["properties"]["x"]["description"] == "The x."
