"""The driver for this SDK, as its README shows it: one ``GatewayClient`` per process, a
``ToolRegistry`` with the tutorial's two tools (their JSON schemas given explicitly, so the
request body is byte-for-byte the one the http.client floor sends), ``complete()`` for a plain turn
and ``run()`` for the tool loop. Tools run in parallel in the client's pool, their
arguments validated by compiled fastjsonschema validators. A static ``BearerToken``.

Streaming is the README's idiom, ``client.conversation(SYSTEM).stream(QUESTION)`` (the
conversation form, so the request carries the same system message as the others')
iterated in a ``with`` block for its ``TextDelta`` events, on a client without tools."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import genesys_gateway as gg

from benchmarks.scenarios import (
    CHAT_PATH,
    INVENTORY_DESCRIPTION,
    INVENTORY_SCHEMA,
    MODEL,
    PLAIN_MESSAGES,
    QUESTION,
    SYSTEM,
    TOOL_PROMPT,
    WEATHER_DESCRIPTION,
    WEATHER_SCHEMA,
    tool_functions,
)


def versions() -> dict[str, str]:
    return {"genesys_gateway": gg.__version__}


def registry(scenario: str) -> gg.ToolRegistry:
    weather, inventory = tool_functions(scenario)
    tools = gg.ToolRegistry()
    tools.register("get_weather", WEATHER_DESCRIPTION, WEATHER_SCHEMA, weather)
    tools.register("check_inventory", INVENTORY_DESCRIPTION, INVENTORY_SCHEMA, inventory)
    return tools


class Driver:
    def __init__(self, env: dict[str, Any]) -> None:
        self.env = env
        self.clients: dict[str, gg.GatewayClient] = {}
        self.client = self._client("instant")  # plain turns share it; tools only in run()

    def _client(self, scenario: str) -> gg.GatewayClient:
        client = self.clients.get(scenario)
        if client is None:
            client = self.clients[scenario] = gg.GatewayClient(
                base_url=self.env["url"], path=CHAT_PATH, auth=gg.BearerToken(self.env["token"]),
                model=MODEL, tools=registry(scenario) if scenario != "stream" else None)
        return client

    def plain(self) -> Any:
        return self.client.complete(PLAIN_MESSAGES).message.content

    def tools(self, scenario: str) -> Any:
        return self._client(scenario).run(TOOL_PROMPT).content

    def stream(self) -> Iterator[str]:
        with self._client("stream").conversation(SYSTEM).stream(QUESTION) as events:
            for event in events:
                if isinstance(event, gg.TextDelta) and event.text:
                    yield event.text

    def thread_caller(self) -> Callable[[], Any]:
        return self.plain  # one client shared by every thread

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
