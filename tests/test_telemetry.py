"""Audit events, OpenTelemetry spans and library hygiene."""

import json
import logging
import threading

import pytest

import genesys_gateway as gg
from genesys_gateway import demo
from genesys_gateway.testing import GatewayEmulator, reply, tool_call

SECRET = "s3cr3t-value"


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def capture(name, level):
    """Attach a capturing handler to logger ``name`` at ``level`` for one test."""
    handler = Capture()
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(level)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old)


@pytest.fixture
def audit_events():
    yield from capture("genesys_gateway.audit", logging.INFO)


@pytest.fixture
def all_logs():
    yield from capture("genesys_gateway", logging.DEBUG)


def test_audit_events_are_one_json_object_each(emulator, make_client, audit_events):
    emulator.responder = demo.responder
    make_client(tools=demo.build_registry(latency=0)).run(demo.PROMPT)
    assert all(r.levelno == logging.INFO for r in audit_events.records)
    events = [json.loads(r.getMessage()) for r in audit_events.records]
    kinds = [e["event"] for e in events]
    assert kinds == ["run_start", "model_call", "tool_call", "tool_call", "model_call", "run_end"]
    model_call = events[1]
    assert model_call["status"] == "ok" and model_call["attempts"] == 1
    assert model_call["latency_ms"] >= 0 and model_call["usage"]["total_tokens"] > 0
    tool = events[2]
    assert tool["tool"] == "get_weather" and tool["status"] == "ok" and "duration_ms" in tool
    assert "arguments" not in tool and "content" not in tool  # payloads only when asked
    assert events[-1]["stop_reason"] == "completed"
    assert len({e["conversation_id"] for e in events if "conversation_id" in e}) == 1


def test_audit_payloads_when_asked(emulator, make_client, audit_events):
    emulator.responder = demo.responder
    make_client(tools=demo.build_registry(latency=0), audit_payloads=True).run(demo.PROMPT)
    tool = [json.loads(r.getMessage()) for r in audit_events.records][2]
    assert tool["arguments"] == {"location": "London", "unit": "celsius"}
    assert "temperature" in tool["content"]


def test_failed_model_call_is_audited(emulator, make_client, audit_events):
    emulator.fail(503, times=10)
    with pytest.raises(gg.ServerError):
        make_client().run("x")
    events = [json.loads(r.getMessage()) for r in audit_events.records]
    failed = [e for e in events if e["event"] == "model_call"][0]
    assert failed["status"] == "error" and failed["http_status"] == 503 and failed["attempts"] == 4
    assert events[-1] == {**events[-1], "event": "run_end", "stop_reason": "error"}


def test_secrets_never_reach_logs(emulator, make_client, all_logs):
    emulator.responder = demo.responder
    client = make_client(tools=demo.build_registry(latency=0), audit_payloads=True)
    client.run(demo.PROMPT)
    emulator.revoke_tokens()
    client.run(demo.PROMPT)
    token = client.auth._cached.access_token
    text = "\n".join(r.getMessage() for r in all_logs.records)
    assert all_logs.records
    assert SECRET not in text and token not in text


def test_library_loggers_have_null_handlers_and_root_is_untouched():
    import importlib

    root_handlers = list(logging.getLogger().handlers)
    importlib.reload(importlib.import_module("genesys_gateway.telemetry"))
    assert logging.getLogger().handlers == root_handlers
    for name in ("genesys_gateway", "genesys_gateway.audit"):
        assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger(name).handlers)


def test_no_threads_left_after_close():
    before = set(threading.enumerate())
    registry = demo.build_registry(latency=0)
    with GatewayEmulator(responder=demo.responder) as em:
        with gg.GatewayClient(base_url=em.url, auth=gg.ClientCredentials("a", "b", token_url=em.token_url),
                              tools=registry) as client:
            assert client.run(demo.PROMPT).stop_reason == "completed"
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for t in leftover:  # idle pool workers exit once told to; bounded join, no sleeping
        t.join(timeout=5)
    assert [t.name for t in threading.enumerate() if t not in before and t.is_alive()] == []


@pytest.fixture(scope="module")
def spans():
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, sdk.TracerProvider):
        provider = sdk.TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.clear()


def test_spans_nest_under_the_run(emulator, make_client, spans):
    spans.clear()
    emulator.script(reply(tool_calls=[tool_call("get_weather", {"location": "Rome"}),
                                      tool_call("check_inventory", {"product_id": "A", "warehouse": "B"})]),
                    reply(content="done"))
    make_client(tools=demo.build_registry(latency=0)).run("go")
    finished = spans.get_finished_spans()
    by_name = {}
    for s in finished:
        by_name.setdefault(s.name, []).append(s)
    run = by_name["invoke_agent genesys_gateway"][0]
    chats = by_name["chat gpt-4o"]
    tools = by_name["execute_tool get_weather"] + by_name["execute_tool check_inventory"]
    assert len(chats) == 2 and len(tools) == 2
    for child in chats + tools:
        assert child.parent is not None and child.parent.span_id == run.context.span_id
        assert child.context.trace_id == run.context.trace_id
    assert chats[0].attributes["gen_ai.operation.name"] == "chat"
    assert chats[0].attributes["gen_ai.usage.input_tokens"] > 0
    assert tools[0].attributes["gen_ai.tool.name"] in ("get_weather", "check_inventory")
    for s in finished:
        assert SECRET not in json.dumps(dict(s.attributes or {}), default=str)
