"""pydantic-ai's documented sync idiom: an ``Agent`` on ``OpenAIChatModel`` with an
``OpenAIProvider(base_url=..., api_key=...)``, the tools registered as plain typed functions
(``tools=[...]``; schemas from their signatures and docstrings), ``agent.run_sync(prompt)``.
The calls of a turn run concurrently (sync functions in worker threads) and their arguments
are validated by pydantic. One agent shared by every thread. Streaming: its sync streaming
idiom, ``with agent.run_stream_sync(prompt) as result:`` iterating
``result.stream_text(delta=True, debounce_by=None)`` (each piece as it arrives: the default
groups them over 0.1 s, which would time the debounce, not the library)."""

from __future__ import annotations

from typing import Any, Callable, Iterator

from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from benchmarks.scenarios import API_PREFIX, MODEL, QUESTION, SYSTEM, TOOL_PROMPT, tool_functions


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {"pydantic-ai-slim": version("pydantic-ai-slim")}


class Driver:
    def __init__(self, env: dict[str, Any]) -> None:
        self.env = env
        self.model = OpenAIChatModel(MODEL, provider=OpenAIProvider(base_url=env["url"] + API_PREFIX,
                                                                    api_key=env["token"]))
        self.plain_agent = Agent(self.model, system_prompt=SYSTEM)
        self.agents: dict[str, Agent[None, str]] = {}

    def plain(self) -> Any:
        return self.plain_agent.run_sync(QUESTION).output

    def tools(self, scenario: str) -> Any:
        agent = self.agents.get(scenario)
        if agent is None:
            agent = self.agents[scenario] = Agent(self.model, tools=list(tool_functions(scenario)))
        return agent.run_sync(TOOL_PROMPT).output

    def stream(self) -> Iterator[str]:
        with self.plain_agent.run_stream_sync(QUESTION) as result:
            for text in result.stream_text(delta=True, debounce_by=None):
                if text:
                    yield text

    def thread_caller(self) -> Callable[[], Any]:
        return self.plain  # the shared agent, as its docs show one (run_sync from many threads fails)

    def thread_caller_alt(self) -> Callable[[], Any]:
        return Driver(self.env).plain  # the footnote's variant: an Agent and OpenAI client per thread

    def close(self) -> None:
        pass
