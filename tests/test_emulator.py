"""Tests of the GatewayEmulator itself, driven with http.client only (no SDK client)."""

from __future__ import annotations

import base64
import errno
import http.client
import json
import socket
import threading
import time

import pytest

from genesys_gateway.testing.emulator import (
    Fault,
    GatewayEmulator,
    load_script,
    reply,
    tool_call,
)

FORM = "application/x-www-form-urlencoded"


# -- helpers ---------------------------------------------------------------------------------


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def send(em, method, path, body=b"", headers=None, conn=None):
    """One request; returns (status, headers dict lower-cased, raw body)."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", em.port, timeout=5)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        if own:
            conn.close()


def get_token(em, client_id="id", secret="secret", conn=None) -> str:
    status, _, data = send(em, "POST", em.token_path, "grant_type=client_credentials",
                           {"Authorization": basic(client_id, secret), "Content-Type": FORM}, conn)
    assert status == 200, data
    return json.loads(data)["access_token"]


def chat(em, body, token=None, conn=None, headers=None):
    hdrs = {"Content-Type": "application/json"}
    if token:
        hdrs["Authorization"] = "Bearer " + token
    hdrs.update(headers or {})
    status, h, data = send(em, "POST", em.path, body, hdrs, conn)
    try:
        parsed = json.loads(data)
    except ValueError:
        parsed = None
    return status, h, parsed, data


def user(text="hi", model="gpt-4o", **extra):
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture
def em():
    with GatewayEmulator() as emulator:
        yield emulator


@pytest.fixture
def token(em):
    return get_token(em)


# -- lifecycle and addresses -----------------------------------------------------------------


def test_start_on_a_busy_port_raises_its_oserror_and_leaves_no_thread():
    before = set(threading.enumerate())
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        em = GatewayEmulator(port=busy.getsockname()[1])
        with pytest.raises(OSError) as info:
            em.start()
    # the bind's own error, not a follow-up AttributeError
    assert info.value.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", None))
    assert repr(em) == "<GatewayEmulator stopped>"
    em.close()  # nothing to close
    assert set(threading.enumerate()) - before == set()


@pytest.mark.parametrize("kwargs, fragment", [
    ({"port": 99999}, "invalid port 99999"),
    ({"port": -1}, "invalid port -1"),
    ({"port": "80"}, "invalid port '80'"),
    ({"host": "no-such-host.invalid"}, None),  # socket.gaierror, an OSError
])
def test_start_with_a_bad_address_raises_oserror(kwargs, fragment):
    before = set(threading.enumerate())
    em = GatewayEmulator(**kwargs)
    with pytest.raises(OSError, match=fragment):
        em.start()
    assert set(threading.enumerate()) - before == set()


def test_urls_and_close_leaves_no_threads():
    before = set(threading.enumerate())
    em = GatewayEmulator(path="/chat", token_path="/tok").start()
    assert em.url == f"http://127.0.0.1:{em.port}"
    assert em.token_url == em.url + "/tok" and em.chat_url == em.url + "/chat"
    conn = http.client.HTTPConnection("127.0.0.1", em.port, timeout=5)
    send(em, "POST", "/tok", "grant_type=client_credentials",
         {"Authorization": basic("a", "b"), "Content-Type": FORM}, conn)  # idle keep-alive left open
    em.close()
    em.close()  # idempotent
    assert set(threading.enumerate()) - before == set()
    conn.close()
    with pytest.raises(OSError):
        send(em, "POST", "/tok")


# -- token endpoint --------------------------------------------------------------------------


def test_token_issued_with_ttl():
    with GatewayEmulator(client_id="id", client_secret="secret", token_ttl=120) as em:
        status, headers, data = send(em, "POST", em.token_path, "grant_type=client_credentials",
                                     {"Authorization": basic("id", "secret"), "Content-Type": FORM})
        body = json.loads(data)
        assert status == 200 and headers["inin-correlation-id"]
        assert body["token_type"] == "bearer" and body["expires_in"] == 120
        assert isinstance(body["access_token"], str) and len(body["access_token"]) > 20
        assert em.token_requests == 1
        assert chat(em, user(), body["access_token"])[0] == 200


@pytest.mark.parametrize("client_id,secret", [("id", "wrong-s3cret"), ("other", "secret")])
def test_token_wrong_credentials(client_id, secret):
    with GatewayEmulator(client_id="id", client_secret="secret") as em:
        status, headers, data = send(em, "POST", em.token_path, "grant_type=client_credentials",
                                     {"Authorization": basic(client_id, secret), "Content-Type": FORM})
        assert status == 401
        body = json.loads(data)
        assert body["error"] == "invalid_client" and body["description"] and body["error_description"]
        assert b"secret" not in data and b"s3cret" not in data
        assert "secret" not in json.dumps(headers)


@pytest.mark.parametrize(
    "auth,ctype,form,status,error",
    [
        (None, FORM, "grant_type=client_credentials", 401, "invalid_client"),
        ("Bearer abc", FORM, "grant_type=client_credentials", 401, "invalid_client"),
        ("Basic !!notbase64", FORM, "grant_type=client_credentials", 401, "invalid_client"),
        (basic("a", "b"), FORM, "", 400, "unsupported_grant_type"),
        (basic("a", "b"), FORM, "grant_type=password", 400, "unsupported_grant_type"),
        (basic("a", "b"), "application/json", '{"grant_type":"client_credentials"}', 400, "invalid_request"),
    ],
)
def test_token_refusals(em, auth, ctype, form, status, error):
    headers = {"Content-Type": ctype}
    if auth:
        headers["Authorization"] = auth
    got, _, data = send(em, "POST", em.token_path, form, headers)
    assert got == status and json.loads(data)["error"] == error
    assert em.token_requests == 1


def test_issue_token_directly(em):
    assert chat(em, user(), em.issue_token())[0] == 200


# -- chat auth -------------------------------------------------------------------------------


def test_chat_requires_bearer_token(em):
    status, headers, body, _ = chat(em, user())
    assert status == 401 and body["code"] == "authentication.required" and body["status"] == 401
    assert body["contextId"] == headers["inin-correlation-id"]
    assert body["details"] == [] and body["errors"] == []
    assert chat(em, user(), "not-issued")[0] == 401
    assert em.chat_requests == []


def test_token_expiry_uses_injected_clock():
    now = [1000.0]
    with GatewayEmulator(token_ttl=60, clock=lambda: now[0]) as em:
        token = get_token(em)
        assert chat(em, user(), token)[0] == 200
        now[0] += 61
        assert chat(em, user(), token)[0] == 401


def test_revoke_tokens(em, token):
    assert chat(em, user(), token)[0] == 200
    em.revoke_tokens()
    assert chat(em, user(), token)[0] == 401
    assert chat(em, user(), get_token(em))[0] == 200
    assert em.token_requests == 2


# -- validation ------------------------------------------------------------------------------

CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


def msgs(*messages, **extra):
    return {"model": "gpt-4o", "messages": list(messages), **extra}


U = {"role": "user", "content": "hi"}
A_CALL = {"role": "assistant", "content": None, "tool_calls": [CALL]}
T1 = {"role": "tool", "tool_call_id": "call_1", "content": "ok"}


@pytest.mark.parametrize(
    "body,needle",
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        ({"messages": [U]}, "'model' is a required property"),
        ({"model": "", "messages": [U]}, "'model' must be a non-empty string"),
        ({"model": 4, "messages": [U]}, "'model' must be a non-empty string"),
        ({"model": "m"}, "'messages' is a required property"),
        ({"model": "m", "messages": "hi"}, "'messages' must be an array"),
        ({"model": "m", "messages": []}, "[] is too short - 'messages'"),
        (msgs("hi"), "messages[0] must be an object"),
        (msgs({"role": "robot", "content": "x"}), "messages[0].role must be one of"),
        (msgs({"role": "user"}), "messages[0].content is required for role 'user'"),
        (msgs({"role": "system", "content": 3}), "messages[0].content must be a string"),
        (msgs({"role": "user", "content": [{"type": "text"}]}), "messages[0].content[0].text"),
        (msgs(U, {"role": "tool", "content": "x"}), "requires a string 'tool_call_id'"),
        (msgs(U, {"role": "tool", "tool_call_id": "call_9", "content": "x"}), "answers no pending call"),
        (msgs(U, A_CALL, T1, dict(T1)), "answers no pending call"),  # answered twice
        (msgs(U, A_CALL), "must be followed by tool messages responding to each 'tool_call_id'"),
        (msgs(U, A_CALL, U), "did not have response messages: call_1"),
        (msgs(U, {"role": "assistant", "tool_calls": [{**CALL, "id": 1}]}, T1), "tool_calls[0].id"),
        (msgs(U, {"role": "assistant", "tool_calls": [{**CALL, "type": "x"}]}, T1), "tool_calls[0].type"),
        (msgs(U, {"role": "assistant", "tool_calls": [{**CALL, "function": {"arguments": "{}"}}]}, T1),
         "function.name"),
        (msgs(U, {"role": "assistant", "tool_calls": [{**CALL, "function": {"name": "f", "arguments": {}}}]},
              T1), "function.arguments must be a string"),
        (msgs(U, {"role": "assistant", "tool_calls": []}), "[] is too short - 'messages[1].tool_calls'"),
        (msgs(U, {"role": "assistant"}), "needs 'content' or 'tool_calls'"),
        (msgs(U, tools=[]), "[] is too short - 'tools'"),
        (msgs(U, tools={"f": 1}), "'tools' must be an array"),
        (msgs(U, tools=[{"type": "function", "function": {"name": "bad name"}}]), "tools[0].function.name"),
        (msgs(U, tools=[{"type": "function", "function": {"name": "x" * 65}}]), "tools[0].function.name"),
        (msgs(U, tools=[{"type": "other", "function": {"name": "f"}}]), "tools[0].type"),
        (msgs(U, tools=[{"type": "function"}]), "tools[0].function must be an object"),
        (msgs(U, tools=[{"type": "function", "function": {"name": "f", "description": 1}}]), "description"),
        (msgs(U, tools=[{"type": "function", "function": {"name": "f", "parameters": []}}]), "parameters"),
        (msgs(U, tools=[TOOL, TOOL]), "defined more than once"),
        (msgs(U, tool_choice="auto"), "When using `tool_choice`, `tools` must be set."),
        (msgs(U, tools=[TOOL], tool_choice="sometimes"), "'tool_choice' must be"),
        (msgs(U, tools=[TOOL], tool_choice={"type": "function", "function": {"name": "g"}}), "not in 'tools'"),
        (msgs(U, stream="yes"), "'stream' must be a boolean"),
        (msgs(U, stream_options={"include_usage": True}), "only allowed when 'stream' is true"),
        (msgs(U, stream=True, stream_options={"include_usage": 1}), "must be a boolean"),
        (msgs(U, stream=True, stream_options={"other": True}), "unknown property"),
    ],
)
def test_validation_rejects(em, token, body, needle):
    status, headers, parsed, _ = chat(em, body, token)
    assert status == 400, parsed
    assert parsed["code"] == "bad.request" and parsed["status"] == 400
    assert needle in parsed["message"]
    assert parsed["contextId"] == headers["inin-correlation-id"]
    assert em.chat_requests == [] and em.requests[-1].status == 400


def test_validation_accepts_full_tool_conversation(em, token):
    call2 = {**CALL, "id": "call_2"}
    body = msgs(
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}]},
        {"role": "assistant", "content": "", "tool_calls": [CALL, call2]},
        {"role": "tool", "tool_call_id": "call_2", "content": "two"},
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "one"}]},
        {"role": "assistant", "content": "done"},
        {"role": "user", "content": "again"},
        tools=[TOOL], tool_choice={"type": "function", "function": {"name": "f"}},
        temperature=0.2, max_tokens=10, parallel_tool_calls=True, anything_else={"x": 1}, stream=False,
    )
    status, _, parsed, _ = chat(em, body, token)
    assert status == 200, parsed
    assert em.chat_requests == [body]


def test_body_too_large(em, token):
    status, _, parsed, _ = chat(em, user("x" * 512_001), token)
    assert status == 413 and parsed["status"] == 413
    assert chat(em, user(), token)[0] == 200  # connection-level recovery


def test_wrong_content_type(em, token):
    status, _, parsed, _ = chat(em, user(), token, headers={"Content-Type": "text/plain"})
    assert status == 415 and parsed["code"] == "unsupported.media.type"


def test_chunked_request_body(em, token):
    conn = http.client.HTTPConnection("127.0.0.1", em.port, timeout=5)
    conn.request("POST", em.path, body=iter([json.dumps(user("chunky")).encode()]),
                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"},
                 encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 200
    assert json.loads(resp.read())["choices"][0]["message"]["content"] == "Echo: chunky"
    conn.close()


# -- replies ---------------------------------------------------------------------------------


def test_echo_default(em, token):
    status, headers, body, _ = chat(em, user("What is up?", model="my-model"), token)
    assert status == 200 and headers["inin-correlation-id"]
    assert headers["content-length"] and headers["content-type"] == "application/json"
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "my-model" and isinstance(body["created"], int)
    choice = body["choices"][0]
    assert choice == {"index": 0, "message": {"role": "assistant", "content": "Echo: What is up?"},
                      "finish_reason": "stop"}
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_script_tool_calls_then_fallback(em, token):
    em.script(
        reply(tool_calls=[tool_call("get_weather", {"location": "Zürich"}), tool_call("f", "{not json", id="c9")]),
        reply("It is sunny.", usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}),
    )
    assert em.pending_replies == 2
    _, _, first, _ = chat(em, user(), token)
    choice = first["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert calls[0]["id"].startswith("call_") and calls[0]["type"] == "function"
    assert json.loads(calls[0]["function"]["arguments"]) == {"location": "Zürich"}
    assert calls[1] == {"id": "c9", "type": "function", "function": {"name": "f", "arguments": "{not json"}}
    _, _, second, _ = chat(em, user(), token)
    assert second["choices"][0]["message"] == {"role": "assistant", "content": "It is sunny."}
    assert second["usage"] == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    _, _, third, _ = chat(em, user("back"), token)
    assert third["choices"][0]["message"]["content"] == "Echo: back"


def test_script_raw_callable_and_string(em, token):
    raw = {"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "raw"},
                                   "finish_reason": "length"}]}
    seen = []
    em.script(raw, lambda body: seen.append(body) or reply("called"), "plain",
              {"tool_calls": [{"name": "g", "arguments": {"a": 1}}], "finish_reason": "stop"})
    assert chat(em, user(), token)[2] == raw
    assert chat(em, user("q"), token)[2]["choices"][0]["message"]["content"] == "called"
    assert seen[0]["messages"][0]["content"] == "q"
    assert chat(em, user(), token)[2]["choices"][0]["message"]["content"] == "plain"
    choice = chat(em, user(), token)[2]["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["tool_calls"][0]["function"] == {"name": "g", "arguments": '{"a": 1}'}


def test_responder_and_responder_error(token, em):
    em.responder = lambda body: reply("n=%d" % len(body["messages"]))
    assert chat(em, user(), token)[2]["choices"][0]["message"]["content"] == "n=1"
    em.script("scripted first")
    assert chat(em, user(), token)[2]["choices"][0]["message"]["content"] == "scripted first"
    em.responder = lambda body: 1 / 0
    status, _, body, _ = chat(em, user(), token)
    assert status == 500 and "ZeroDivisionError" in body["message"]


def test_responder_constructor_argument():
    with GatewayEmulator(responder=lambda body: "from responder") as em:
        assert chat(em, user(), get_token(em))[2]["choices"][0]["message"]["content"] == "from responder"


def test_load_script_and_from_script_file(tmp_path):
    path = tmp_path / "script.json"
    path.write_text(json.dumps([
        {"content": None, "tool_calls": [{"name": "get_weather", "arguments": {"location": "London"}}]},
        "The weather is fine.",
    ]))
    specs = load_script(str(path))
    assert specs[0]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert load_script({"replies": ["x"]})[0]["content"] == "x"
    with pytest.raises(ValueError, match="script item 0"):
        load_script([42])
    with GatewayEmulator.from_script_file(str(path)) as em:
        token = get_token(em)
        first = chat(em, user(), token)[2]["choices"][0]
        assert first["finish_reason"] == "tool_calls"
        assert json.loads(first["message"]["tool_calls"][0]["function"]["arguments"]) == {"location": "London"}
        assert chat(em, user(), token)[2]["choices"][0]["message"]["content"] == "The weather is fine."


# -- faults ----------------------------------------------------------------------------------


def test_fail_default_bodies_and_times(em, token):
    em.fail(503, times=2).fail(429).fail(500)
    for _ in range(2):
        status, headers, body, _ = chat(em, user(), token)
        assert status == 503 and body["code"] == "service.unavailable"
        assert body["contextId"] == headers["inin-correlation-id"]
    status, headers, body, _ = chat(em, user(), token)
    assert status == 429 and body["code"] == "too.many.requests.retry.after"
    assert headers["retry-after"] == "1"
    assert chat(em, user(), token)[2]["code"] == "internal.server.error"
    assert chat(em, user(), token)[0] == 200
    assert [r.fault for r in em.requests if r.endpoint == "chat"] == ["fail"] * 4 + [None]


def test_fail_custom_body_headers_and_before_auth(em):
    em.fail(429, body={"custom": True}, headers={"Retry-After": "7", "X-Extra": "1"})
    em.fail(502, body=b"<html>bad gateway</html>")
    status, headers, body, _ = chat(em, user())  # no token: faults come before auth
    assert status == 429 and body == {"custom": True}
    assert headers["retry-after"] == "7" and headers["x-extra"] == "1"
    status, _, _, raw = chat(em, user())
    assert status == 502 and raw == b"<html>bad gateway</html>"
    assert chat(em, user())[0] == 401
    em.fail(429, headers={"Retry-After": None})
    assert "retry-after" not in chat(em, user())[1]


def test_token_endpoint_faults(em):
    em.fail(503, endpoint="token").fail(400, endpoint="token")
    status, _, data = send(em, "POST", em.token_path, "grant_type=client_credentials",
                           {"Authorization": basic("a", "b"), "Content-Type": FORM})
    assert status == 503 and json.loads(data)["code"] == "service.unavailable"
    status, _, data = send(em, "POST", em.token_path, "grant_type=client_credentials",
                           {"Authorization": basic("a", "b"), "Content-Type": FORM})
    assert status == 400 and "rate limit exceeded" in json.loads(data)["description"]
    assert em.pending_faults("chat") == 0 and em.pending_faults("token") == 0
    get_token(em)
    assert em.token_requests == 3
    with pytest.raises(ValueError):
        em.fail(500, endpoint="nope")


def test_delay(em, token):
    em.delay(0.05)
    start = time.perf_counter()
    status, _, body, _ = chat(em, user("slow"), token)
    assert status == 200 and body["choices"][0]["message"]["content"] == "Echo: slow"
    assert time.perf_counter() - start >= 0.05


def test_drop_connection(em, token):
    em.drop_connection()
    conn = http.client.HTTPConnection("127.0.0.1", em.port, timeout=5)
    with pytest.raises(ConnectionError) as info:  # RemoteDisconnected is a ConnectionResetError
        chat(em, user(), token, conn=conn)
    assert isinstance(info.value, (http.client.RemoteDisconnected, ConnectionResetError))
    conn.close()
    assert chat(em, user(), token)[0] == 200
    dropped = [r for r in em.requests if r.endpoint == "chat"][0]
    assert dropped.status is None and dropped.fault == "drop" and dropped.json == user()


@pytest.mark.parametrize("body,expected", [(b"{not json", b"{not json"), (b"", b""),
                                           ({"choices": []}, b'{"choices":[]}'), ("text", b"text")])
def test_garbage(em, token, body, expected):
    em.garbage(body)
    status, headers, _, raw = chat(em, user(), token)
    assert status == 200 and raw == expected and headers["content-length"] == str(len(expected))
    assert chat(em, user(), token)[0] == 200


def test_inject_fault_object(em, token):
    em.inject(Fault("garbage", 200, b"<html>", content_type="text/html"))
    status, headers, _, raw = chat(em, user(), token)
    assert status == 200 and raw == b"<html>" and headers["content-type"] == "text/html"


# -- connections, log, routing ---------------------------------------------------------------


def test_keep_alive_single_connection(em):
    conn = http.client.HTTPConnection("127.0.0.1", em.port, timeout=5)
    token = get_token(em, conn=conn)
    assert chat(em, user("one"), token, conn=conn)[0] == 200
    assert chat(em, user("two"), token, conn=conn)[0] == 200
    conn.close()
    assert em.connections_opened == 1
    assert len({r.connection_id for r in em.requests}) == 1
    em.reset()
    assert em.connections_opened == 0


def test_request_log_and_reset(em, token):
    em.script("queued")
    em.fail(500, endpoint="token")
    chat(em, user("logged"), token, headers={"X-Test": "yes"})
    record = em.requests[-1]
    assert record.method == "POST" and record.path == em.path and record.endpoint == "chat"
    assert record.status == 200 and record.headers["x-test"] == "yes"
    assert record.json == user("logged") and json.loads(record.body) == user("logged")
    assert em.requests[0].endpoint == "token" and em.requests[0].json is None
    assert em.chat_requests == [user("logged")]
    em.script("left over")
    em.reset()
    assert em.requests == [] and em.chat_requests == [] and em.token_requests == 0
    assert em.pending_replies == 0 and em.pending_faults("token") == 0
    assert chat(em, user("after"), token)[2]["choices"][0]["message"]["content"] == "Echo: after"


def test_not_found_and_method_not_allowed(em):
    status, headers, data = send(em, "GET", "/nope")
    assert status == 404 and json.loads(data)["code"] == "not.found"
    assert headers["inin-correlation-id"]
    status, headers, data = send(em, "GET", em.path)
    assert status == 405 and headers["allow"] == "POST"
    assert [r.endpoint for r in em.requests] == ["other", "chat"]


def test_concurrent_connections(em, token):
    results, errors = [], []

    def worker(i):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", em.port, timeout=5)
            for j in range(5):
                status, _, body, _ = chat(em, user(f"{i}-{j}"), token, conn=conn)
                results.append((status, body["choices"][0]["message"]["content"]))
            conn.close()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 40
    assert all(status == 200 for status, _ in results)
    assert em.connections_opened == 9  # 8 workers + the token fixture's connection
