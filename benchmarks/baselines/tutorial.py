"""The tutorial's own loop (``seed/tutorial.txt``), made synchronous, as a baseline.

Its flow, kept on purpose (these are the costs the SDK exists to remove):

* the "Complete Working Example" builds the auth manager and the gateway client for each
  run, so each run fetches a token; the token and every gateway request each use a new HTTP
  client (a new TCP connection): ``httpx.Client()`` when httpx is installed (the tutorial's
  library; the ``bench`` extra brings it), else a new ``requests`` session;
* ``jsonschema.validate(instance, schema)`` on every tool call (the schema re-checked each
  time);
* the calls of one turn run one after another;
* an OpenTelemetry span per model call and per tool call when ``opentelemetry-api`` is
  installed (no SDK configured: no-op spans, as in most apps), a JSON audit line per event.

Its bugs that would crash a run are not copied: arguments that are not JSON, an unknown
tool name and a tool error are reported to the model; credentials go as HTTP Basic (the
emulator, like Genesys Cloud, refuses them in the form body); no unbounded 429 recursion.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any, Callable

import jsonschema

from benchmarks.scenarios import (
    INVENTORY_DESCRIPTION,
    INVENTORY_SCHEMA,
    MODEL,
    PLAIN_MESSAGES,
    TOOL_PROMPT,
    TOOL_SCENARIOS,
    WEATHER_DESCRIPTION,
    WEATHER_SCHEMA,
    handlers,
)

try:
    import httpx

    def _post(url: str, **kwargs: Any) -> Any:
        with httpx.Client(timeout=30.0) as client:  # a new client per request, as the tutorial
            response = client.post(url, **kwargs)
            response.raise_for_status()
            return response.json()

    HTTP_LIBRARY = "httpx"
except ImportError:  # pragma: no cover - the test extra alone has no httpx
    import requests

    def _post(url: str, **kwargs: Any) -> Any:
        with requests.Session() as session:  # a new session (connection) per request
            response = session.post(url, timeout=30.0, **kwargs)
            response.raise_for_status()
            return response.json()

    HTTP_LIBRARY = "requests"

try:
    from opentelemetry import trace

    tracer: Any = trace.get_tracer("genesys.llm.gateway")
except ImportError:  # pragma: no cover
    tracer = None

logger = logging.getLogger("genesys_llm_tools")
audit_logger = logging.getLogger("genesys.audit")


def versions() -> dict[str, str]:
    return {"tutorial's HTTP client": HTTP_LIBRARY, "jsonschema": getattr(jsonschema, "__version__", "?")}


class _NoSpan:
    def set_attribute(self, *args: Any) -> None:
        pass

    def end(self) -> None:
        pass


def _span(name: str, **attributes: Any) -> Any:
    return tracer.start_span(name, attributes=attributes) if tracer is not None else _NoSpan()


class GenesysAuthManager:
    def __init__(self, token_url: str, client_id: str, client_secret: str) -> None:
        self.token_url = token_url
        self.auth = (client_id, client_secret)
        self.access_token: str | None = None
        self.token_expiry = 0.0

    def get_token(self) -> str:
        if self.access_token and time.time() < self.token_expiry - 60:
            return self.access_token
        payload = _post(self.token_url, auth=self.auth,
                        data={"grant_type": "client_credentials", "scope": "ai-builder:llm-gateway:write"})
        self.access_token = payload["access_token"]
        self.token_expiry = time.time() + payload["expires_in"]
        return self.access_token

    def get_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.get_token()}", "Content-Type": "application/json",
                "Accept": "application/json"}


class ToolRegistry:
    def __init__(self) -> None:
        self._tools: dict[str, dict[str, Any]] = {}
        self._handlers: dict[str, Callable[..., Any]] = {}

    def register(self, name: str, description: str, schema: dict[str, Any], handler: Callable[..., Any]) -> None:
        self._tools[name] = {"type": "function",
                             "function": {"name": name, "description": description, "parameters": schema}}
        self._handlers[name] = handler

    def get_definitions(self) -> list[dict[str, Any]]:
        return list(self._tools.values())

    def get_handler(self, name: str) -> Callable[..., Any]:
        if name not in self._handlers:
            raise ValueError(f"Tool handler not registered: {name}")
        return self._handlers[name]

    def validate_input(self, name: str, arguments: dict[str, Any]) -> bool:
        schema = self._tools[name]["function"]["parameters"]
        try:
            jsonschema.validate(instance=arguments, schema=schema)
            return True
        except jsonschema.ValidationError as err:
            raise ValueError(f"Tool input validation failed for {name}: {err.message}") from None


def execute_tool_with_safety(handler: Callable[..., Any], arguments: dict[str, Any]) -> str:
    try:
        return str(handler(**arguments))
    except Exception as exc:
        logger.error(f"Tool execution raised exception: {exc}")
        return f"Error: {exc}"


def validate_and_format_tool_result(tool_call_id: str, raw_result: Any, max_length: int = 4096) -> dict[str, Any]:
    if isinstance(raw_result, (dict, list)):
        content = json.dumps(raw_result, ensure_ascii=False)
    else:
        content = str(raw_result)
    if len(content) > max_length:
        content = content[:max_length - 3] + "..."
    return {"role": "tool", "tool_call_id": tool_call_id, "content": content}


class LLMGatewayClient:
    def __init__(self, auth_manager: GenesysAuthManager, registry: ToolRegistry, url: str) -> None:
        self.auth = auth_manager
        self.registry = registry
        self.url = url
        self.max_tool_iterations = 5

    def _post_conversation(self, payload: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = _post(self.url, headers=self.auth.get_headers(), json=payload)
        return result

    def run_conversation(self, messages: list[dict[str, Any]], model: str = MODEL) -> Any:
        conversation_id = str(uuid.uuid4())
        span = _span("genesys.llm.gateway.conversation", **{"conversation.id": conversation_id, "model": model})
        audit_logger.info(json.dumps({"event": "conversation_start", "conversation_id": conversation_id,
                                      "model": model, "timestamp": time.time()}))
        tools = self.registry.get_definitions()
        try:
            for iteration in range(self.max_tool_iterations):
                payload: dict[str, Any] = {"model": model, "messages": messages, "stream": False}
                if tools:  # the tutorial sends "tools": [] too, which strict servers refuse
                    payload["tools"] = tools
                invocation = _span("genesys.llm.gateway.invocation", iteration=iteration, tool_count=len(tools))
                start_time = time.time()
                response = self._post_conversation(payload)
                invocation.set_attribute("latency_ms", round((time.time() - start_time) * 1000, 2))
                invocation.end()
                assistant_msg = response["choices"][0]["message"]
                messages.append(assistant_msg)
                if not assistant_msg.get("tool_calls"):
                    return assistant_msg["content"]
                for tool_call in assistant_msg["tool_calls"]:  # one after another
                    tool_name = tool_call["function"]["name"]
                    tool_id = tool_call["id"]
                    tool_span = _span(f"tool.execute.{tool_name}", **{"tool.name": tool_name, "tool.call_id": tool_id})
                    try:
                        raw_args = json.loads(tool_call["function"]["arguments"])
                        self.registry.validate_input(tool_name, raw_args)
                        result = execute_tool_with_safety(self.registry.get_handler(tool_name), raw_args)
                        messages.append(validate_and_format_tool_result(tool_id, result))
                        audit_logger.info(json.dumps({"event": "tool_success", "conversation_id": conversation_id,
                                                      "tool_name": tool_name, "tool_call_id": tool_id}))
                    except Exception as e:
                        messages.append({"role": "tool", "tool_call_id": tool_id, "content": f"Execution error: {e}"})
                    finally:
                        tool_span.end()
            return None  # the tutorial returns a fake answer here
        finally:
            span.end()


class Driver:
    def __init__(self, env: dict[str, Any]) -> None:
        self.env = env
        self.registries: dict[str, ToolRegistry] = {}
        for scenario in TOOL_SCENARIOS:
            registry = self.registries[scenario] = ToolRegistry()
            fns = handlers(scenario)
            registry.register("get_weather", WEATHER_DESCRIPTION, WEATHER_SCHEMA, fns["get_weather"])
            registry.register("check_inventory", INVENTORY_DESCRIPTION, INVENTORY_SCHEMA, fns["check_inventory"])

    def _client(self, registry: ToolRegistry) -> LLMGatewayClient:
        # per run, as the tutorial's example does: a new auth manager (a token fetch)
        auth = GenesysAuthManager(self.env["token_url"], "bench-client", "bench-secret")
        return LLMGatewayClient(auth, registry, self.env["url"] + self.env["chat_path"])

    def plain(self) -> Any:
        return self._client(ToolRegistry()).run_conversation(list(PLAIN_MESSAGES))

    def tools(self, scenario: str) -> Any:
        return self._client(self.registries[scenario]).run_conversation([{"role": "user", "content": TOOL_PROMPT}])

    def thread_caller(self) -> Callable[[], Any]:
        return self.plain

    def close(self) -> None:
        pass
