"""openai-python with the manual tool loop of OpenAI's function-calling guide: one
``OpenAI`` client, ``chat.completions.create`` with ``tools=``, ``json.loads`` of each
call's arguments, the function called, a ``role: tool`` message appended; the calls of a
turn one after another, arguments not validated. Streaming: ``create(..., stream=True)``
iterated for chunks whose first choice's delta has content, in a ``with`` block."""

from __future__ import annotations

import json
from typing import Any, Callable, Iterator

import openai

from benchmarks.scenarios import API_PREFIX, MODEL, PLAIN_MESSAGES, TOOL_DEFINITIONS, TOOL_PROMPT, TOOL_SCENARIOS, handlers


def versions() -> dict[str, str]:
    return {"openai": openai.__version__}


class Driver:
    def __init__(self, env: dict[str, Any]) -> None:
        self.client = openai.OpenAI(base_url=env["url"] + API_PREFIX, api_key=env["token"], max_retries=0)
        self.handlers = {scenario: handlers(scenario) for scenario in TOOL_SCENARIOS}

    def plain(self) -> Any:
        return self.client.chat.completions.create(model=MODEL, messages=PLAIN_MESSAGES).choices[0].message.content

    def tools(self, scenario: str) -> Any:
        fns = self.handlers[scenario]
        messages: list[Any] = [{"role": "user", "content": TOOL_PROMPT}]
        for _ in range(5):
            completion = self.client.chat.completions.create(model=MODEL, messages=messages, tools=TOOL_DEFINITIONS)
            message = completion.choices[0].message
            if not message.tool_calls:
                return message.content
            messages.append(message)
            for call in message.tool_calls:
                result = fns[call.function.name](**json.loads(call.function.arguments))
                messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
        return None

    def stream(self) -> Iterator[str]:
        with self.client.chat.completions.create(model=MODEL, messages=PLAIN_MESSAGES, stream=True,
                                                 stream_options={"include_usage": True}) as chunks:
            for chunk in chunks:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content

    def thread_caller(self) -> Callable[[], Any]:
        return self.plain  # the client is thread-safe: one shared by every thread

    def close(self) -> None:
        self.client.close()
