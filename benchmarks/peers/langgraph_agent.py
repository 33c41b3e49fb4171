"""LangGraph's documented sync idiom: ``create_react_agent`` (``langgraph.prebuilt``) on a
``ChatOpenAI`` model (``langchain-openai``, ``base_url``/``api_key``) with the tools as plain
typed functions, ``agent.invoke({"messages": [...]})``; a plain turn is ``ChatOpenAI.invoke``.
The calls of a turn run concurrently (its ToolNode maps them over a thread pool) and their
arguments are validated by the tools' pydantic schemas. One model and agent shared by every
thread. Streaming: ``ChatOpenAI.stream(messages)``, the chunks (``AIMessageChunk``) with content
(``stream_usage=True``, so the request asks for usage as the others' do)."""

from __future__ import annotations

import warnings
from typing import Any, Callable, Iterator

from langchain_openai import ChatOpenAI

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # create_react_agent is deprecated in favour of langchain's
    from langgraph.prebuilt import create_react_agent

from benchmarks.scenarios import API_PREFIX, MODEL, PLAIN_MESSAGES, TOOL_PROMPT, tool_functions  # noqa: E402


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {"langgraph": version("langgraph"), "langchain-openai": version("langchain-openai")}


class Driver:
    def __init__(self, env: dict[str, Any]) -> None:
        self.model = ChatOpenAI(model=MODEL, base_url=env["url"] + API_PREFIX, api_key=env["token"], max_retries=0,
                                stream_usage=True)
        self.agents: dict[str, Any] = {}

    def plain(self) -> Any:
        return self.model.invoke(PLAIN_MESSAGES).content

    def tools(self, scenario: str) -> Any:
        agent = self.agents.get(scenario)
        if agent is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                agent = self.agents[scenario] = create_react_agent(self.model, list(tool_functions(scenario)))
        return agent.invoke({"messages": [{"role": "user", "content": TOOL_PROMPT}]})["messages"][-1].content

    def stream(self) -> Iterator[str]:
        for chunk in self.model.stream(PLAIN_MESSAGES):
            if chunk.content:
                yield str(chunk.content)

    def thread_caller(self) -> Callable[[], Any]:
        return self.plain

    def close(self) -> None:
        pass
