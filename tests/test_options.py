"""Options, model parameters and extra headers/body: everything a caller passes is checked
before anything is sent, and a typed error names what is wrong (found by adversarial
review of the 0.2 foundation)."""

from __future__ import annotations

import pytest

import genesys_gateway as gg
from genesys_gateway.testing import MockTransport, json_response, reply, tool_call

MSG = [{"role": "user", "content": "hi"}]
OK = {"choices": [{"message": {"role": "assistant", "content": "ok"}}]}


@pytest.fixture
def sent():
    return []


@pytest.fixture
def client(sent):
    def handler(request):
        sent.append(request)
        return json_response(200, OK)

    with gg.GatewayClient(base_url="http://127.0.0.1:9", auth=gg.BearerToken("REAL"),
                          transport=MockTransport(handler), retry=gg.NoRetry()) as c:
        yield c


@pytest.mark.parametrize("headers", [
    {"authorization": "Bearer SMUGGLED"}, {"Host": "evil.example"}, {"Content-Length": "1"},
    {"Transfer-Encoding": "chunked"}, {"Connection": "close"}, {"Content-Type": "text/plain"},
    {"Idempotency-Key": "mine"}, {"AUTHORIZATION": "x"},
])
def test_extra_headers_cannot_replace_the_clients_headers_per_client_or_per_call(client, sent, headers):
    with pytest.raises(gg.ConfigurationError, match="extra_headers cannot set"):
        client.complete(MSG, extra_headers=headers)
    with pytest.raises(gg.ConfigurationError, match="extra_headers cannot set"):
        client.run("hi", extra_headers=headers)
    with pytest.raises(gg.ConfigurationError, match="extra_headers cannot set"):
        gg.GatewayClient(base_url="http://127.0.0.1:9", extra_headers=headers)
    assert sent == []  # nothing reached the transport


@pytest.mark.parametrize("headers, problem", [
    ({"Authorization ": "x"}, "not a valid header name"),
    ({"X A": "1"}, "not a valid header name"),
    ({"": "1"}, "not a valid header name"),
    ({"X-A": "a\r\nX-B: b"}, "without CR, LF"),
    ({"X-A": "\x00\x7f"}, "without CR, LF"),
    ({"X-A": 5}, "must be a string"),
    ({"X-A": None}, "must be a string"),
])
def test_extra_header_names_and_values_are_checked(client, sent, headers, problem):
    with pytest.raises(gg.ConfigurationError, match=problem) as info:
        client.complete(MSG, extra_headers=headers)
    assert info.value.option == "extra_headers"
    assert sent == []


def test_options_keep_a_copy_of_extra_headers_and_body(sent):
    headers, body = {"X-Team": "a"}, {"vendor": 1}

    def handler(request):
        sent.append(request)
        return json_response(200, OK)

    with gg.GatewayClient(base_url="http://127.0.0.1:9", transport=MockTransport(handler),
                          extra_headers=headers, extra_body=body) as c:
        headers[5] = None  # type: ignore[index]
        headers["Host"] = "evil"
        body["messages"] = []
        c.complete(MSG)
    request = sent[-1]
    assert request.headers["X-Team"] == "a" and "evil" not in request.headers.values()
    assert b'"messages":[{' in request.body and b'"vendor":1' in request.body


def test_extra_header_values_never_show_in_reprs():
    c = gg.GatewayClient(base_url="http://127.0.0.1:9", extra_headers={"api-key": "AZURE-SECRET"})
    try:
        assert "AZURE-SECRET" not in repr(c.options) and "'api-key'" in repr(c.options)
        run = gg.loop.RunOptions.build("run", extra_headers={"api-key": "AZURE-SECRET"})
        assert "AZURE-SECRET" not in repr(run)
    finally:
        c.close()


@pytest.mark.parametrize("body", [{"messages": []}, {"tools": []}, {"stream": True},
                                  {"stream_options": {}}])
def test_extra_body_cannot_replace_what_the_client_sets(client, body):
    with pytest.raises(gg.ConfigurationError, match="extra_body cannot set"):
        client.complete(MSG, extra_body=body)


@pytest.mark.parametrize("call", [
    lambda c: c.complete(MSG, temperature=float("nan")),
    lambda c: c.complete(MSG, temperature=float("inf")),
    lambda c: c.complete(MSG, metadata={"a": object()}),
    lambda c: c.complete(MSG, extra_body={"a": object()}),
    lambda c: c.run("hi", extra_body={"a": float("nan")}),
    lambda c: gg.GatewayClient(base_url="http://127.0.0.1:9", store=gg.MemoryTokenStore()),
])
def test_parameter_values_must_be_json(client, sent, call):
    with pytest.raises(gg.ConfigurationError, match="must be JSON data"):
        call(client)
    assert sent == []


@pytest.mark.parametrize("keyword, hint", [
    ("token_store", "ClientCredentials"), ("tools", r"GatewayClient\(tools=registry\)"),
    ("stream", "streaming")])
def test_keywords_that_belong_elsewhere_say_where(client, keyword, hint):
    with pytest.raises(TypeError, match=hint):
        client.run("hi", **{keyword: 1})


@pytest.mark.parametrize("make", [
    lambda: gg.GatewayClient(base_url="http://127.0.0.1:9", timeout=10**400),
    lambda: gg.GatewayClient(base_url="http://127.0.0.1:9", tool_timeout=10**400),
    lambda: gg.LockTiming(lock_ttl=10**400),
])
def test_huge_integers_are_configuration_errors_not_overflow(make):
    with pytest.raises(gg.ConfigurationError, match="must be a"):
        make()


def test_huge_deadlines_are_configuration_errors(client):
    with pytest.raises(gg.ConfigurationError, match="deadline"):
        client.run("hi", deadline=10**400)
    with pytest.raises(gg.ConfigurationError, match="deadline"):
        client.complete(MSG, deadline=10**400)


@pytest.mark.parametrize("kwargs, problem", [
    ({"clock": None}, "clock must be callable"),
    ({"retry": gg.NoRetry}, "the class NoRetry"),
    ({"transport": gg.Urllib3Transport}, "the class Urllib3Transport"),
])
def test_objects_are_checked_at_construction(kwargs, problem):
    with pytest.raises(gg.ConfigurationError, match=problem):
        gg.GatewayClient(base_url="http://127.0.0.1:9", **kwargs)


def test_options_are_read_only_on_the_client(client):
    with pytest.raises(AttributeError, match="read-only"):
        client.model = "other"  # type: ignore[misc]
    assert client.model == "gpt-4o"


def test_a_huge_integer_argument_is_an_invalid_arguments_run(emulator, make_client):
    registry = gg.ToolRegistry()
    registry.register("t", "d", {"type": "object", "properties": {"n": {"type": "number",
                                                                       "multipleOf": 0.1}}},
                      lambda **kw: "ok")
    emulator.script(reply(tool_calls=[tool_call("t", '{"n": 1' + "0" * 400 + "}")]), reply("done"))
    result = make_client(tools=registry).run("go")
    assert result.stop_reason == "completed"
    assert result.tool_runs[0].status == "invalid_arguments"
    assert "too large" in result.tool_runs[0].content


def test_ids_that_differ_only_in_lone_surrogates_stay_unique(sent):
    """A model's ids "\\ud800x" and "\\udc00x" are both "?x" once the request is encoded:
    the repair must see them as the wire will, or the strict server refuses the next turn."""
    from genesys_gateway.testing.emulator.validation import validate_chat_request

    registry = gg.ToolRegistry()
    registry.register("t", "d", {"type": "object"}, lambda: "ok")
    turn = {"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [
        tool_call("t", {}, id="\ud800x"), tool_call("t", {}, id="\udc00x")]},
        "finish_reason": "tool_calls"}]}
    replies = iter([turn, OK])

    def handler(request):
        sent.append(request)
        return json_response(200, next(replies))  # JSON escapes carry the lone surrogates

    with gg.GatewayClient(base_url="http://127.0.0.1:9", tools=registry,
                          transport=MockTransport(handler)) as c:
        result = c.run("go")
    assert result.stop_reason == "completed"
    ids = [r.call_id for r in result.tool_runs]
    assert ids[0] == "?x" and ids[1] != "?x" and len(set(ids)) == 2
    import json
    validate_chat_request(json.loads(sent[-1].body))  # what a strict server checks: no raise


def test_a_run_opens_a_conversation_with_a_fresh_uuid4(client):
    import uuid

    ids = {client.run("hi").conversation_id for _ in range(50)}
    assert len(ids) == 50
    for text in ids:  # the text of a version 4, RFC 4122 UUID, as str(uuid.uuid4()) gives
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_run_that_asks_for_nothing_shares_its_checked_options():
    build = gg.loop.RunOptions.build
    assert build("run") is build("run") and build("send") is not build("run")
    assert build("run") == gg.loop.RunOptions(quiet=True)
    assert build("stream") == gg.loop.RunOptions(streaming=True)
    assert build("run", deadline=1.0) is not build("run", deadline=1.0)
    with pytest.raises(gg.ConfigurationError, match="output_mode"):
        build("run", output_mode="nope")  # still checked without an output type
