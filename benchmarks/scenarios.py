"""What every contestant is asked to do, and what the one emulator answers: standard library
only, because each peer imports it in its own process (perhaps its own venv).

The server's replies depend only on the request, never on the order requests arrive in, so
interleaved samples from many contestants all get identical answers:

* no ``tools`` in the request: a one-line answer (the per-turn plain completion);
* ``tools`` and a last message from the user: one assistant turn calling ``get_weather`` and
  ``check_inventory`` (the tutorial's scenario);
* a last message from a tool: the final answer;
* ``"stream": true`` and no ``tools``: :data:`STREAM_ANSWER`, which the server
  (``benchmarks.server``) streams as server-sent events of :data:`STREAM_CHUNK_CHARS`
  characters each: a multi-delta answer, the first delta :data:`STREAM_FIRST`.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from benchmarks.schemas import INVENTORY, WEATHER

MODEL = "gpt-4o"
#: The emulator serves chat completions here: OpenAI-style clients append
#: ``/chat/completions`` to a base URL, so peers use ``<url>/v1`` and this SDK ``path=``.
CHAT_PATH = "/v1/chat/completions"
API_PREFIX = "/v1"

SYSTEM = "You are a helpful assistant."
QUESTION = "What is the weather in London?"
PLAIN_MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": QUESTION},
]
PLAIN_ANSWER = "It is 22 °C and clear in London."

#: The streamed answer: 113 characters, 15 text deltas of at most 8 characters.
STREAM_ANSWER = ("It is 22 °C and clear in London, with a light westerly breeze; "
                 "no rain is expected before the evening, thank you.")
STREAM_CHUNK_CHARS = 8
STREAM_FIRST = STREAM_ANSWER[:STREAM_CHUNK_CHARS]

TOOL_PROMPT = ("What is the weather in London, and how many units of product SKU-8842 are in "
               "the EU-Central warehouse?")
FINAL_ANSWER = "It is 22 °C and clear in London; 145 units of SKU-8842 are in stock in EU-Central."

WEATHER_ARGS = {"location": "London", "unit": "celsius"}
INVENTORY_ARGS = {"product_id": "SKU-8842", "warehouse": "EU-Central"}
USAGE = {"prompt_tokens": 60, "completion_tokens": 20, "total_tokens": 80}

WEATHER_DESCRIPTION = "Retrieve current weather conditions for a specified location."
WEATHER_SCHEMA: dict[str, Any] = WEATHER  # the tutorial's schemas
INVENTORY_DESCRIPTION = "Check stock levels for a product in a specific warehouse."
INVENTORY_SCHEMA: dict[str, Any] = INVENTORY

#: The tools as OpenAI-format definitions (for the contestants that send them by hand).
TOOL_DEFINITIONS: list[dict[str, Any]] = [
    {"type": "function", "function": {"name": "get_weather", "description": WEATHER_DESCRIPTION,
                                      "parameters": WEATHER_SCHEMA}},
    {"type": "function", "function": {"name": "check_inventory", "description": INVENTORY_DESCRIPTION,
                                      "parameters": INVENTORY_SCHEMA}},
]

#: How long each tool sleeps per scenario: "sleep" is the tutorial's sample handlers, "short"
#: two quick back-end calls (2 ms each), where a tool hand-off's fixed costs show.
SLEEPS = {"instant": (0.0, 0.0), "sleep": (0.1, 0.15), "short": (0.002, 0.002)}
TOOL_SCENARIOS = tuple(SLEEPS)


def tool_functions(scenario: str) -> tuple[Callable[..., dict[str, Any]], Callable[..., dict[str, Any]]]:
    """``(get_weather, check_inventory)`` for *scenario* (a key of :data:`SLEEPS`): plain
    typed functions with docstrings, so every library can derive the same schema from them."""
    weather_s, inventory_s = SLEEPS[scenario]

    def get_weather(location: str, unit: str = "celsius") -> dict[str, Any]:
        """Retrieve current weather conditions for a specified location.

        Args:
            location: City or region name
            unit: Temperature unit
        """
        if weather_s:
            time.sleep(weather_s)
        return {"location": location, "temperature": 22, "unit": unit, "condition": "clear"}

    def check_inventory(product_id: str, warehouse: str) -> dict[str, Any]:
        """Check stock levels for a product in a specific warehouse.

        Args:
            product_id: Unique product identifier
            warehouse: Warehouse location code
        """
        if inventory_s:
            time.sleep(inventory_s)
        return {"product_id": product_id, "warehouse": warehouse, "quantity": 145, "status": "in_stock"}

    return get_weather, check_inventory


def handlers(scenario: str) -> dict[str, Callable[..., dict[str, Any]]]:
    weather, inventory = tool_functions(scenario)
    return {"get_weather": weather, "check_inventory": inventory}


def respond(body: dict[str, Any]) -> dict[str, Any]:
    """The emulator's answer to a chat request (a reply spec, see the emulator's ``reply()``)."""
    messages = body.get("messages") or [{}]
    last = messages[-1] if isinstance(messages[-1], dict) else {}
    if last.get("role") == "tool":
        return {"content": FINAL_ANSWER, "usage": USAGE}
    if body.get("tools"):
        import json

        return {"content": None, "usage": USAGE, "tool_calls": [
            {"id": "call_weather_1", "type": "function",
             "function": {"name": "get_weather", "arguments": json.dumps(WEATHER_ARGS)}},
            {"id": "call_inventory_1", "type": "function",
             "function": {"name": "check_inventory", "arguments": json.dumps(INVENTORY_ARGS)}},
        ]}
    if body.get("stream") is True:
        return {"content": STREAM_ANSWER, "usage": USAGE}
    return {"content": PLAIN_ANSWER, "usage": USAGE}


def check_stream(first: object, whole: object) -> None:
    """Raise unless a contestant's first text delta and its whole streamed text are the
    scripted ones."""
    if first != STREAM_FIRST or whole != STREAM_ANSWER:
        raise AssertionError(f"stream: expected {STREAM_FIRST!r} first and {STREAM_ANSWER!r} in all, "
                             f"got {first!r} and {whole!r}")


def check_answer(kind: str, content: object) -> None:
    """Raise if a contestant's answer is not the scripted one (a benchmark that silently
    measured an error path would be worthless)."""
    expected = PLAIN_ANSWER if kind == "plain" else FINAL_ANSWER
    if content != expected:
        raise AssertionError(f"{kind}: expected {expected!r}, got {content!r}")
