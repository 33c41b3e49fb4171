"""litellm with the manual tool loop of its function-calling docs: ``litellm.completion``
with ``tools=`` (an ``openai/`` model at the emulator's ``api_base``), ``json.loads`` of each
call's arguments, the function called, a ``role: tool`` message appended; the calls of a
turn one after another, arguments not validated. ``LITELLM_LOCAL_MODEL_COST_MAP`` is set so
importing it does not fetch the model price list from the network. Streaming: its docs'
``completion(..., stream=True)``, iterated for chunks whose delta has content."""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Iterator

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402

from benchmarks.scenarios import API_PREFIX, MODEL, PLAIN_MESSAGES, TOOL_DEFINITIONS, TOOL_PROMPT, TOOL_SCENARIOS, handlers  # noqa: E402


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {"litellm": version("litellm")}


class Driver:
    def __init__(self, env: dict[str, Any]) -> None:
        self.kwargs = {"model": "openai/" + MODEL, "api_base": env["url"] + API_PREFIX, "api_key": env["token"]}
        self.handlers = {scenario: handlers(scenario) for scenario in TOOL_SCENARIOS}

    def plain(self) -> Any:
        return litellm.completion(messages=PLAIN_MESSAGES, **self.kwargs).choices[0].message.content

    def tools(self, scenario: str) -> Any:
        fns = self.handlers[scenario]
        messages: list[Any] = [{"role": "user", "content": TOOL_PROMPT}]
        for _ in range(5):
            response = litellm.completion(messages=messages, tools=TOOL_DEFINITIONS, **self.kwargs)
            message = response.choices[0].message
            if not message.tool_calls:
                return message.content
            messages.append(message)
            for call in message.tool_calls:
                result = fns[call.function.name](**json.loads(call.function.arguments))
                messages.append({"role": "tool", "tool_call_id": call.id, "name": call.function.name,
                                 "content": json.dumps(result)})
        return None

    def stream(self) -> Iterator[str]:
        for chunk in litellm.completion(messages=PLAIN_MESSAGES, stream=True,
                                        stream_options={"include_usage": True}, **self.kwargs):
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content

    def thread_caller(self) -> Callable[[], Any]:
        return self.plain

    def close(self) -> None:
        pass
