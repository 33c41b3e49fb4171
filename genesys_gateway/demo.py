"""The tutorial's scenario: weather in London and stock of SKU-8842 in EU-Central.

Used by ``genesys-gateway demo`` and by the tests: the two tools, and a responder that
plays the model on the :class:`~genesys_gateway.testing.GatewayEmulator` — it calls both
tools for a new question, then answers from their results.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from .tools.registry import ToolRegistry

PROMPT = (
    "What is the weather in London, and how many units of product SKU-8842 are in the "
    "EU-Central warehouse?"
)


def build_registry(latency: float = 0.1) -> ToolRegistry:
    """The tutorial's two tools (handlers simulate a backend call of ``latency`` seconds)."""
    registry = ToolRegistry()

    @registry.tool(timeout=5.0)
    def get_weather(location: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict[str, Any]:
        """Retrieve current weather conditions for a specified location.

        Args:
            location: City or region name.
            unit: Temperature unit.
        """
        time.sleep(latency)
        temperature = 22 if unit == "celsius" else 72
        return {"location": location, "temperature": temperature, "unit": unit, "condition": "clear"}

    @registry.tool(timeout=5.0)
    def check_inventory(product_id: str, warehouse: str) -> dict[str, Any]:
        """Check stock levels for a product in a specific warehouse.

        Args:
            product_id: Unique product identifier.
            warehouse: Warehouse location code.
        """
        time.sleep(latency * 1.5)
        return {"product_id": product_id, "warehouse": warehouse, "quantity": 145, "status": "in_stock"}

    return registry


def responder(request: dict[str, Any]) -> dict[str, Any]:
    """Play the model: call both tools for a user question, then answer from the results."""
    from .testing import reply, tool_call

    messages = request.get("messages") or []
    last = messages[-1] if messages else {}
    if last.get("role") != "tool":
        return reply(tool_calls=[
            tool_call("get_weather", {"location": "London", "unit": "celsius"}),
            tool_call("check_inventory", {"product_id": "SKU-8842", "warehouse": "EU-Central"}),
        ])
    results = {}
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        try:
            results.update(json.loads(message.get("content") or "{}"))
        except (ValueError, TypeError):
            results.setdefault("errors", []).append(message.get("content"))
    if "temperature" in results and "quantity" in results:
        text = (f"In {results['location']} it is {results['temperature']}°"
                f"{'C' if results.get('unit') == 'celsius' else 'F'} and {results['condition']}. "
                f"Product {results['product_id']} has {results['quantity']} units in the "
                f"{results['warehouse']} warehouse ({results['status'].replace('_', ' ')}).")
    else:
        text = "I could not get every answer: " + json.dumps(results, ensure_ascii=False)
    return reply(content=text)
