"""The tutorial's scenario: weather in London and stock of SKU-8842 in EU-Central.

Used by ``genesys-gateway demo`` and by the tests: the two tools, a responder that plays
the model on the :class:`~genesys_gateway.testing.GatewayEmulator` (the emulator's
rule-based responder calls both tools for the question, then this one answers from their
results), and :func:`run_demo`, which runs the scenario on a client and prints it.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Callable, Literal, TextIO

from .tools.registry import ToolRegistry

if TYPE_CHECKING:
    from .client import GatewayClient
    from .console import Transcript
    from .result import RunResult

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
    """Play the model: the emulator's rule-based responder picks the tools and their
    arguments from the question (both tools, for :data:`PROMPT`); then answer from the
    results in a sentence."""
    from .testing import reply
    from .testing.emulator import rule_based_responder

    messages = request.get("messages") or []
    last = messages[-1] if messages else {}
    if last.get("role") != "tool":
        return rule_based_responder(request)
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


def run_demo(client: GatewayClient, out: TextIO, *, emulated: bool,
             clock: Callable[[], float] = time.monotonic) -> int:
    """Run :data:`PROMPT` on ``client`` (whose tools are :func:`build_registry`'s), printing
    the run as it happens, the answer, the token usage (estimates, when ``emulated``) and
    the wall time beside the tools' own durations, so tools run in parallel show. The exit
    status: 0 when the run completed."""
    from .console import Transcript

    where = "the embedded GatewayEmulator" if emulated else f"a real gateway at {client.url} (from the environment)"
    out.write(f"running the weather + inventory scenario against {where}\n")
    out.write(f"user: {PROMPT}\n\n")
    out.flush()
    note = " (estimated by the emulator)" if emulated else ""
    transcript = Transcript(out, "assistant: ", model_calls=True, started=True, result_width=200,
                            token_note=note, clock=clock)
    started = clock()
    result = transcript.follow(client.stream(PROMPT))
    _print_summary(result, transcript, clock() - started, note, out)
    return 0 if result.completed else 1


def _print_summary(result: RunResult, transcript: Transcript, wall_s: float, note: str,
                   out: TextIO) -> None:
    lines = [""]
    if result.content is not None:
        lines.append(f"answer: {result.content}")
    else:
        lines.append(f"no answer: stopped by {result.stop_reason}")
    u = result.usage
    lines.append(f"usage: {u.prompt_tokens} prompt + {u.completion_tokens} completion = "
                 f"{u.total_tokens} tokens{note}; {result.iterations} model call(s), "
                 f"stop reason {result.stop_reason}")
    runs = transcript.tool_runs
    if runs:
        work = sum(run.duration_s for run in runs)
        each = " + ".join(f"{run.duration_s * 1000:.0f}" for run in runs)
        how = "in parallel" if len(runs) > 1 and transcript.tools_span_s < work * 0.9 else "one after another"
        lines.append(f"wall time: {wall_s * 1000:.0f} ms; {len(runs)} tool call(s) took {each} ms "
                     f"= {work * 1000:.0f} ms of work in {transcript.tools_span_s * 1000:.0f} ms ({how})")
    else:
        lines.append(f"wall time: {wall_s * 1000:.0f} ms; no tool calls")
    out.write("\n".join(lines) + "\n")
    out.flush()
