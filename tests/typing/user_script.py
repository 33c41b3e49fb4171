"""A user's script that uses every documented call. It is type-checked, not run:
``mypy --strict tests/typing/user_script.py`` and ``pyright tests/typing/user_script.py``
must both be clean; ``.ci/run`` runs both."""

from __future__ import annotations

import dataclasses
import enum
import os
import time
from typing import Any, Literal, TypedDict

import attrs

import genesys_gateway as gg
from genesys_gateway.testing import GatewayEmulator, MockTransport, json_response, reply, tool_call

registry = gg.ToolRegistry()


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


@attrs.frozen
class Place:
    city: str
    country: str = "GB"


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0


class Forecast(TypedDict):
    city: str
    celsius: float


@registry.tool
def get_weather(location: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict[str, Any]:
    """Retrieve current weather conditions for a specified location."""
    return {"location": location, "unit": unit}


@registry.tool(timeout=5.0, name="where")
def where(place: Place, unit: Unit = Unit.C, ctx: gg.ToolContext | None = None) -> str:
    """Describe a place."""
    left: float | None = ctx.time_left() if ctx is not None else None
    return f"{place.city} {unit.value} {left}"


# the decorator keeps the function's type: a direct call type-checks as the function
weather: dict[str, Any] = get_weather("London")
text: str = where(Place("Paris"))

tool: gg.Tool = registry.register(
    name="check_inventory", description="Check stock.",
    parameters={"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]},
    handler=lambda sku: {"sku": sku, "quantity": 1}, timeout=None, output_schema=None)
names: list[str] = registry.names()
checked: dict[str, Any] = registry.validate_arguments("check_inventory", {"sku": "A"})
definitions: list[dict[str, Any]] = registry.definitions()
registry.unregister("check_inventory")

retry_policies: list[gg.RetryPolicy] = [
    gg.ExponentialBackoff(max_attempts=4, base_delay=0.5, max_delay=8.0, max_retry_after=60.0,
                          deadline=None, sleep=time.sleep),
    gg.NoRetry(),
]

limiters: list[gg.RateLimiter] = [
    gg.TokenBucket(per_minute=300, clock=time.monotonic, sleep=time.sleep, max_pause=60.0),
    gg.RedisRateLimiter(object(), per_minute=300, key="genesys_gateway:rate_limit",
                        sleep=time.sleep, max_pause=60.0),
]
budget = gg.RetryBudget(ratio=0.2, min_per_second=10, window=10.0, clock=time.monotonic)
retry_allowed: bool = budget.try_retry()

with GatewayEmulator() as emulator:
    emulator.script(reply(tool_calls=[tool_call("get_weather", {"location": "London"})]),
                    reply(content="22 degrees"))
    store: gg.TokenStore = gg.FileTokenStore(os.path.join("/tmp", "gg-typing", "token.json"))
    with gg.GatewayClient(
        base_url=emulator.url,
        auth=gg.ClientCredentials("id", "secret", token_url=emulator.token_url, store=store),
        tools=registry, model="gpt-4o", transport=gg.Urllib3Transport(),
        retry=gg.ExponentialBackoff(max_attempts=4), timeout=gg.Timeout(connect=5, read=30),
        rate_limiter=gg.TokenBucket(per_minute=300), retry_budget=gg.RetryBudget(),
        max_iterations=5, tool_timeout=5.0, tool_workers=8, max_tool_result_chars=4096,
        output_retries=2, temperature=0.2, extra_body={"vendor": 1}, extra_headers={"X-Team": "a"},
    ) as client:
        result: gg.RunResult = client.run("What is the weather in London?", deadline=30,
                                          max_iterations=3, tool_choice="auto")
        stop: gg.StopReason = result.stop_reason
        content: str | None = result.content
        messages: list[dict[str, Any]] = result.messages
        usage: gg.Usage = result.usage
        total: int = usage.total_tokens + result.iterations
        for run in result.tool_runs:
            status: gg.ToolRunStatus = run.status
            arguments: dict[str, Any] | None = run.arguments
            print(run.call_id, run.name, status, arguments, run.content, run.error,
                  run.duration_s, run.truncated, run.ok)
        conversation: gg.Conversation = client.conversation(system="You are helpful.")
        first: gg.RunResult = conversation.send("first question", deadline=10.0)
        history: list[dict[str, Any]] = conversation.messages
        response: gg.ChatResponse = client.complete([{"role": "user", "content": "hi"}],
                                                    tools=registry.definitions(), deadline=5.0,
                                                    max_tokens=16)
        message: gg.Message = response.message
        reason: str | None = response.finish_reason
        executor: gg.ToolExecutor = client.executor()
        # structured output: an attrs class, a dataclass, a TypedDict or a JSON Schema
        place: Place = client.run("where?", output_type=Place, output_retries=1).output
        point: Point | None = client.run("a point", output_type=Point, output_mode="tool").output
        forecast: Forecast = conversation.send("forecast", output_type=Forecast).output
        data: Any = client.run("sum", output_schema={"type": "object"}).output
        with client.stream("where?", output_type=Place, output_mode="json_schema") as events:
            streamed: gg.RunResult = events.until_done()
        with conversation.stream("again", output_schema={"type": "object"}) as more:
            for event in more:
                if isinstance(event, gg.RunFinished):
                    final_output: Any = event.result.output
        invalid: bool = result.stop_reason == "invalid_output"

with gg.GatewayClient(region="us-east-1", auth=gg.BearerToken("token"),
                      transport=gg.RequestsTransport(), retry=gg.NoRetry()) as other:
    region: gg.Region | None = other.region

mock = MockTransport(lambda request: json_response(200, {"choices": []}))
env_client: gg.GatewayClient = gg.GatewayClient.from_env({"GENESYSCLOUD_REGION": "us-east-1",
                                                          "GENESYSCLOUD_ACCESS_TOKEN": "t"})
env_client.close()

try:
    pass
except gg.RateLimitError as error:
    wait: float | None = error.retry_after
except gg.APIError as error:
    details: tuple[int, str, str | None, str | None] = (error.status, error.message, error.code,
                                                        error.correlation_id)
except gg.TransportError as error:
    kind: str = error.kind
except gg.GatewayError:
    pass


def conversation_stores(redis_client: Any) -> None:
    """The conversation stores, as a web app's views would use them."""
    stores: list[gg.ConversationStore] = [
        gg.MemoryConversationStore(),
        gg.FileConversationStore("/var/lib/myapp/conversations", lock_timeout=5.0),
        gg.RedisConversationStore(redis_client, key="myapp:conv", ttl=7 * 24 * 3600),
    ]
    for store in stores:
        loaded: gg.StoredState | None = store.load("conversation-42")
        if loaded is None:
            continue
        state: dict[str, Any] = loaded.state
        try:
            version: int = store.save(state, loaded.version)
        except gg.ConflictError as error:
            lost: tuple[str | None, int | None, int | None] = (
                error.conversation_id, error.expected_version, error.stored_version)
        except (gg.StateError, gg.ConversationStoreError) as error:
            named: str | None = error.conversation_id


def streamed_to_a_browser(client: gg.GatewayClient) -> None:
    from flask import Response

    from genesys_gateway.contrib.flask import stream_response
    from genesys_gateway.web import SSEBody

    frames: SSEBody = gg.sse(client.stream("hi"))
    first: bytes = next(frames)
    frames.close()
    response: Response = stream_response(client.stream("hi"))


def web_conversations(client: gg.GatewayClient, redis_client: Any, key: bytes) -> None:
    """Conversations that outlive a request: state, stores, approval, idempotency, limits."""
    tools = gg.ToolRegistry()

    @tools.tool(requires_approval=True)
    def refund(order: int, ctx: gg.ToolContext) -> str:
        """Refund an order."""
        idempotency_key: str | None = ctx.idempotency_key
        return f"refunded {order} ({idempotency_key})"

    tools.register("mail", "Send mail.", {"type": "object"}, lambda: "sent",
                   requires_approval=True)
    store: gg.ConversationStore = gg.FileConversationStore("/var/lib/myapp/conversations")
    conversation: gg.Conversation = client.conversation(
        "You are helpful.", id="conversation-42", store=store, max_history_tokens=8000)
    result: gg.RunResult = conversation.send("refund order 7", limits=gg.Limits(max_tool_calls=3))
    if result.stop_reason == "approval_required":
        for call in result.pending:
            pending: tuple[str, str, dict[str, Any]] = (call.call_id, call.name, call.arguments)
    waiting: tuple[gg.PendingCall, ...] = conversation.pending
    version: int | None = conversation.version
    resumed: gg.RunResult = conversation.resume(approve=["call_1"], deny={"call_2": "no"},
                                                deadline=30.0)
    with conversation.resume_stream(approve=["call_3"]) as events:
        for event in events:
            print(event.type)
    state: dict[str, Any] = conversation.to_dict(key=key)
    restored: gg.Conversation = client.conversation(state=state, key=key)
    redis_backed = client.conversation(id="c", store=gg.RedisConversationStore(redis_client))
    print(resumed, restored, redis_backed, waiting, version)
