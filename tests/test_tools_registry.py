"""tools.py: registration checks, the decorator, snapshots, validate_arguments, ToolContext."""

import copy
import enum
import threading
from typing import Literal, Optional

import attrs
import pytest

from genesys_gateway.errors import GatewayError, ToolArgumentsError, ToolDefinitionError
from genesys_gateway.tools import Tool, ToolContext, ToolRegistry, ToolSet

from benchmarks.schemas import WEATHER


def weather(location, unit="celsius"):
    return {"location": location, "unit": unit}


@pytest.fixture
def registry():
    reg = ToolRegistry()
    reg.register("get_weather", "Retrieve current weather.", WEATHER, weather)
    return reg


# ------------------------------------------------------------------ register


def test_register_returns_tool_and_builds_definition(registry):
    tool = registry.get("get_weather")
    assert isinstance(tool, Tool)
    assert tool.handler is weather and tool.timeout is None and tool.context_param is None
    assert registry.definitions() == [{"type": "function", "function": {
        "name": "get_weather", "description": "Retrieve current weather.", "parameters": WEATHER}}]


@pytest.mark.parametrize("name", ["", "a" * 65, "has space", "dot.name", "ünï", None, 3])
def test_invalid_names(name):
    with pytest.raises(ToolDefinitionError, match="tool name .* is invalid"):
        ToolRegistry().register(name, "d", WEATHER, weather)


@pytest.mark.parametrize("name", ["a", "a" * 64, "get-weather_2", "X"])
def test_valid_names(name):
    assert ToolRegistry().register(name, "d", WEATHER, weather).name == name


def test_duplicate_names_rejected_unless_replace(registry):
    with pytest.raises(ToolDefinitionError, match="'get_weather' is already registered"):
        registry.register("get_weather", "x", WEATHER, weather)
    registry.register("other", "o", WEATHER, weather)
    new = registry.register("get_weather", "new", WEATHER, weather, replace=True)
    assert registry.get("get_weather") is new
    assert registry.names() == ["get_weather", "other"]  # position kept


def test_handler_must_be_callable():
    with pytest.raises(ToolDefinitionError, match="tool 'x': handler must be callable"):
        ToolRegistry().register("x", "d", WEATHER, "not callable")


def test_description_must_be_a_string_but_may_be_empty():
    with pytest.raises(ToolDefinitionError, match="tool 'x': description must be a string"):
        ToolRegistry().register("x", None, WEATHER, weather)
    assert ToolRegistry().register("x", "", WEATHER, weather).description == ""


@pytest.mark.parametrize("timeout", [0, -1, "5", True, float("nan"), float("inf")])
def test_bad_timeouts(timeout):
    with pytest.raises(ToolDefinitionError, match="tool 'x': timeout"):
        ToolRegistry().register("x", "d", WEATHER, weather, timeout=timeout)


def test_good_timeout_is_float():
    assert ToolRegistry().register("x", "d", WEATHER, weather, timeout=2).timeout == 2.0


@pytest.mark.parametrize("parameters, fragment", [
    ("{}", "parameters must be a JSON schema dict"),
    ({"type": "array"}, 'parameters must be a schema of "type": "object"'),
    ({"properties": {}}, 'parameters must be a schema of "type": "object"'),
    ({"type": "object", "properties": {"a": {"type": "strin"}}},
     "tool 'x': parameters: at properties/a/type: unknown type 'strin' (did you mean 'string'?)"),
    ({"type": "object", "required": "a"},
     "tool 'x': parameters: at required: must be an array of strings (got 'a')"),
])
def test_bad_parameters_name_tool_and_part(parameters, fragment):
    with pytest.raises(ToolDefinitionError) as info:
        ToolRegistry().register("x", "d", parameters, weather)
    assert fragment in str(info.value)
    assert isinstance(info.value, GatewayError)


def test_bad_output_schema_names_part():
    with pytest.raises(ToolDefinitionError,
                       match="^tool 'x': output_schema: at type: unknown type 'nope'"):
        ToolRegistry().register("x", "d", WEATHER, weather, output_schema={"type": "nope"})
    tool = ToolRegistry().register("x", "d", WEATHER, weather, output_schema={"type": "object"})
    assert tool.output_validator is not None


def test_schema_is_copied_at_registration():
    schema = copy.deepcopy(WEATHER)
    reg = ToolRegistry()
    reg.register("w", "d", schema, weather)
    schema["properties"]["location"]["type"] = "integer"
    schema["required"].append("unit")
    assert reg.definitions()[0]["function"]["parameters"] == WEATHER
    assert reg.validate_arguments("w", {"location": "x"}) == {"location": "x"}


def test_failed_registration_leaves_registry_unchanged(registry):
    before = registry.snapshot()
    with pytest.raises(ToolDefinitionError):
        registry.register("bad", "d", {"type": "object", "properties": 1}, weather)
    assert registry.snapshot() is before


# ------------------------------------------------------------------ decorator


def test_decorator_bare_and_with_options():
    reg = ToolRegistry()

    @reg.tool
    def get_weather(location: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict:
        """Retrieve current weather conditions for a specified location.

        Args:
            location: City or region name.
            unit: Temperature unit.
        """
        return {"location": location}

    @reg.tool(name="inv", description="Check stock.", timeout=2.5)
    def check_inventory(product_id: str, warehouse: str) -> dict:
        """Ignored docstring."""
        return {}

    assert get_weather("London") == {"location": "London"}  # still a plain function
    assert check_inventory.__name__ == "check_inventory"
    weather_def, inv_def = reg.definitions()
    assert weather_def["function"]["description"] == (
        "Retrieve current weather conditions for a specified location.")
    assert weather_def["function"]["parameters"] == {
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "City or region name."},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius",
                     "description": "Temperature unit."},
        },
        "required": ["location"],
        "additionalProperties": False,
    }
    assert inv_def["function"]["name"] == "inv"
    assert inv_def["function"]["description"] == "Check stock."
    assert reg.get("inv").timeout == 2.5


def test_decorator_errors():
    reg = ToolRegistry()
    with pytest.raises(ToolDefinitionError, match="keyword options"):
        reg.tool("name")
    with pytest.raises(ToolDefinitionError, match="tool name '<lambda>' is invalid"):
        reg.tool(lambda: None)
    with pytest.raises(ToolDefinitionError, match="tool 'f': parameter 'x': unsupported"):
        @reg.tool
        def f(x: bytes):
            pass
    assert len(reg) == 0


def test_decorator_duplicate_and_replace():
    reg = ToolRegistry()

    @reg.tool
    def f():
        return 1

    with pytest.raises(ToolDefinitionError, match="already registered"):
        @reg.tool
        def f():  # noqa: F811
            return 2

    @reg.tool(replace=True)
    def f():  # noqa: F811
        return 3

    assert reg.get("f").handler() == 3


def test_decorator_resolves_local_classes_in_string_annotations():
    reg = ToolRegistry()

    @attrs.define
    class Point:
        x: int
        y: int

    class Color(enum.Enum):
        RED = "red"

    @reg.tool
    def draw(p: "Point", color: "Color", ctx: "ToolContext"):
        return p, color

    tool = reg.get("draw")
    assert tool.context_param == "ctx"
    assert list(tool.parameters["properties"]) == ["p", "color"]
    converted = tool.converter(reg.validate_arguments("draw", {"p": {"x": 1, "y": 2}, "color": "red"}))
    assert converted == {"p": Point(1, 2), "color": Color.RED}


# ------------------------------------------------------------------ ToolContext


def test_context_parameter_detection():
    reg = ToolRegistry()

    def a(x, context: ToolContext):
        pass

    def b(x, *, c: Optional[ToolContext] = None):
        pass

    def c(x, c: "ToolContext"):
        pass

    def d(x):
        pass

    assert reg.register("a", "", WEATHER, a).context_param == "context"
    assert reg.register("b", "", WEATHER, b).context_param == "c"
    assert reg.register("c", "", WEATHER, c).context_param == "c"
    assert reg.register("d", "", WEATHER, d).context_param is None
    assert reg.register("e", "", WEATHER, print).context_param is None  # no signature


def test_context_parameter_errors():
    def two(a: ToolContext, b: ToolContext):
        pass

    def positional(ctx: ToolContext, /):
        pass

    with pytest.raises(ToolDefinitionError, match="more than one ToolContext"):
        ToolRegistry().register("x", "", WEATHER, two)
    with pytest.raises(ToolDefinitionError, match="must accept a keyword"):
        ToolRegistry().register("x", "", WEATHER, positional)


def test_tool_context_value():
    event = threading.Event()
    ctx = ToolContext("call_1", None, event)
    assert ctx.time_left() is None and not ctx.is_cancelled
    event.set()
    assert ctx.is_cancelled
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ctx.call_id = "x"


def test_is_async_detection():
    reg = ToolRegistry()

    async def coro(location):
        return 1

    class AsyncCallable:
        async def __call__(self, location):
            return 1

    assert reg.register("a", "", WEATHER, coro).is_async
    assert reg.register("b", "", WEATHER, AsyncCallable()).is_async
    assert not reg.register("c", "", WEATHER, weather).is_async


# ------------------------------------------------------------------ reading, snapshots


def test_collection_protocol(registry):
    registry.register("b", "", WEATHER, weather)
    assert registry.names() == ["get_weather", "b"]
    assert "b" in registry and "zz" not in registry
    assert len(registry) == 2
    assert [t.name for t in registry] == ["get_weather", "b"]
    assert registry.get("zz") is None


def test_unregister(registry):
    tool = registry.unregister("get_weather")
    assert tool.name == "get_weather" and len(registry) == 0
    with pytest.raises(KeyError):
        registry.unregister("get_weather")


def test_snapshot_is_immutable_and_copy_on_write(registry):
    snap = registry.snapshot()
    assert isinstance(snap, ToolSet)
    assert registry.snapshot() is snap  # no mutation: the same object
    assert snap.definitions is registry.snapshot().definitions  # built once
    registry.register("b", "", WEATHER, weather)
    assert snap.names == ("get_weather",) and len(snap.definitions) == 1
    new = registry.snapshot()
    assert new.version == snap.version + 1 and new.names == ("get_weather", "b")
    with pytest.raises(TypeError):
        snap.by_name["x"] = None
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        snap.tools = ()


def test_definitions_returns_a_new_list(registry):
    defs = registry.definitions()
    defs.append("junk")
    assert len(registry.definitions()) == 1


def test_concurrent_registration_and_snapshots_are_consistent():
    reg = ToolRegistry()
    barrier = threading.Barrier(9)
    errors = []
    stop = threading.Event()

    def writer(n):
        barrier.wait(timeout=5)
        for i in range(25):
            reg.register(f"t{n}_{i}", "", WEATHER, weather)

    def reader():
        barrier.wait(timeout=5)
        while not stop.is_set():
            snap = reg.snapshot()
            if len(snap.definitions) != len(snap.tools) or set(snap.names) != set(snap.by_name):
                errors.append(snap)

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    r = threading.Thread(target=reader)
    r.start()
    for t in writers:
        t.start()
    for t in writers:
        t.join(10)
    stop.set()
    r.join(10)
    assert not errors
    assert len(reg) == 200 and reg.snapshot().version == 200


# ------------------------------------------------------------------ validate_arguments


def test_validate_arguments_applies_defaults_without_mutating():
    reg = ToolRegistry()

    @reg.tool
    def f(location: str, unit: Literal["celsius", "fahrenheit"] = "celsius"):
        pass

    args = {"location": "London"}
    out = reg.validate_arguments("f", args)
    assert out == {"location": "London", "unit": "celsius"}
    assert args == {"location": "London"} and out is not args


@pytest.mark.parametrize("args, expected", [
    ({}, "missing required property 'location'"),
    ({"location": 3}, "location: must be string (got 3)"),
    ({"location": "x", "unit": "kelvin"},
     "unit: must be one of ['celsius', 'fahrenheit'] (got 'kelvin')"),
])
def test_validate_arguments_errors(registry, args, expected):
    with pytest.raises(ToolArgumentsError) as info:
        registry.validate_arguments("get_weather", args)
    assert str(info.value) == f"invalid arguments for tool 'get_weather': {expected}"
    assert isinstance(info.value, GatewayError)


def test_validate_arguments_unknown_tool_lists_available(registry):
    registry.register("check_inventory", "", WEATHER, weather)
    with pytest.raises(ToolArgumentsError,
                       match="unknown tool 'nope'; available tools: get_weather, check_inventory"):
        registry.validate_arguments("nope", {})
    with pytest.raises(ToolArgumentsError, match="no tools are available"):
        ToolRegistry().validate_arguments("nope", {})


def test_unknown_tool_list_is_capped():
    reg = ToolRegistry()
    for i in range(30):
        reg.register(f"t{i}", "", WEATHER, weather)
    message = reg.snapshot().unknown_tool_message("x")
    assert "t19" in message and "t20" not in message and "(10 more)" in message

