"""Valid tools for the CLI tests: two registries (``registry`` and ``extra``)."""

import enum

from genesys_gateway import ToolRegistry

registry = ToolRegistry()
extra = ToolRegistry()
NOT_A_REGISTRY = {"weather": "sunny"}


class Unit(enum.Enum):
    celsius = "celsius"
    fahrenheit = "fahrenheit"


@registry.tool
def get_weather(location: str, unit: Unit = Unit.celsius) -> dict:
    """Current weather for a city.

    Args:
        location: City name.
        unit: Temperature unit.
    """
    # unit.value only works if the CLI kept the tool's argument converter (str -> Unit)
    return {"location": location, "temperature": 22 if unit is Unit.celsius else 72, "unit": unit.value}


registry.register(
    "lookup_sku",
    "Look up a product by SKU.",
    {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]},
    lambda sku: {"sku": sku, "quantity": 145},
)


@extra.tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b
