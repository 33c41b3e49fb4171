"""The core client against the real loopback emulator: complete(), auth, retry, errors."""

import base64
import threading
from urllib.parse import parse_qs

import pytest

import genesys_gateway as gg
from genesys_gateway.testing import GatewayEmulator
from tests.net_helpers import free_port

HI = [{"role": "user", "content": "hi"}]


def chat_requests(em):
    return [r for r in em.requests if r.endpoint == "chat"]


def test_complete_echoes_and_is_typed(make_client, transport_factory):
    client = make_client(transport=transport_factory())
    response = client.complete(HI)
    assert isinstance(response, gg.ChatResponse)
    assert response.message.role == "assistant"
    assert response.message.content == "Echo: hi"
    assert response.choices[0].finish_reason == "stop"
    assert isinstance(response.usage, gg.Usage) and response.usage.total_tokens > 0


def test_message_objects_are_accepted(make_client):
    response = make_client().complete([gg.Message(role="user", content="objects")])
    assert response.message.content == "Echo: objects"


def test_token_request_matches_genesys(make_client, emulator):
    make_client().complete(HI)
    token = [r for r in emulator.requests if r.endpoint == "token"]
    assert len(token) == 1
    request = token[0]
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"client-id:s3cr3t-value").decode()
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.body.decode()) == {"grant_type": ["client_credentials"]}
    chat = chat_requests(emulator)[0]
    assert chat.headers["authorization"].startswith("Bearer ")
    assert "s3cr3t-value" not in chat.headers["authorization"]


def test_one_token_and_no_new_connections_after_warmup(make_client, emulator, transport_factory):
    client = make_client(transport=transport_factory())
    client.complete(HI)
    warm = emulator.connections_opened
    for _ in range(20):
        client.complete(HI)
    assert emulator.connections_opened == warm
    assert emulator.token_requests == 1


def test_concurrent_threads_fetch_one_token(make_client, emulator):
    client = make_client()
    barrier = threading.Barrier(8)
    errors = []

    def work():
        try:
            barrier.wait()
            client.complete(HI)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert emulator.token_requests == 1
    assert len(chat_requests(emulator)) == 8


def test_401_refreshes_once_and_replays(make_client, emulator):
    client = make_client()
    client.complete(HI)
    emulator.revoke_tokens()
    assert client.complete(HI).message.content == "Echo: hi"
    assert emulator.token_requests == 2
    statuses = [r.status for r in chat_requests(emulator)]
    assert statuses == [200, 401, 200]


def test_persistent_401_is_an_authentication_error(make_client, emulator):
    client = make_client()
    emulator.fail(401, times=5)
    with pytest.raises(gg.AuthenticationError) as info:
        client.complete(HI)
    assert info.value.status == 401
    assert len(chat_requests(emulator)) == 2  # the request and one replay, no more


def test_wrong_secret_is_authentication_error_without_the_secret(sleeps):
    with GatewayEmulator(client_id="client-id", client_secret="right-secret") as em:
        auth = gg.ClientCredentials("client-id", "wrong-secret-XYZ", token_url=em.token_url)
        with gg.GatewayClient(base_url=em.url, auth=auth, retry=gg.ExponentialBackoff(sleep=sleeps)) as client:
            with pytest.raises(gg.AuthenticationError) as info:
                client.complete(HI)
            text = str(info.value) + repr(info.value) + repr(info.value.body) + repr(client) + repr(auth)
            assert "wrong-secret-XYZ" not in text
            assert sleeps == []  # a refused credential is not retried
            assert len(chat_requests(em)) == 0


@pytest.mark.parametrize("status,cls,code", [
    (400, gg.BadRequestError, "bad.request"),
    (403, gg.PermissionDeniedError, None),
    (404, gg.NotFoundError, "not.found"),
    (422, gg.BadRequestError, None),
    (409, gg.APIError, None),
])
def test_client_errors_are_typed(make_client, emulator, sleeps, status, cls, code):
    body = {"message": "nope", "code": code or "some.code", "status": status, "contextId": "ctx-1"}
    emulator.fail(status, body=body, times=4)
    with pytest.raises(cls) as info:
        make_client().complete(HI)
    error = info.value
    assert type(error) is cls
    assert error.status == status and error.message == "nope" and error.code == (code or "some.code")
    assert error.correlation_id  # from ININ-Correlation-Id, or the body's contextId
    assert error.body["contextId"] == "ctx-1"
    assert sleeps == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried_then_typed(make_client, emulator, sleeps, status):
    emulator.fail(status, times=10)
    with pytest.raises(gg.ServerError) as info:
        make_client().complete(HI)
    assert info.value.status == status and info.value.correlation_id
    assert len(chat_requests(emulator)) == 4 and len(sleeps) == 3


def test_transient_errors_recover(make_client, emulator, sleeps):
    emulator.fail(503, times=2)
    assert make_client().complete(HI).message.content == "Echo: hi"
    assert sleeps == [0.5, 1.0]


def test_rate_limit_honours_retry_after(make_client, emulator, sleeps):
    emulator.fail(429, headers={"Retry-After": "7"})
    assert make_client().complete(HI).message.content == "Echo: hi"
    assert sleeps == [7.0]


def test_rate_limit_beyond_cap_raises_with_retry_after(make_client, emulator, sleeps):
    emulator.fail(429, headers={"Retry-After": "120"})
    with pytest.raises(gg.RateLimitError) as info:
        make_client().complete(HI)
    assert info.value.retry_after == 120.0
    assert info.value.code == "too.many.requests.retry.after"
    assert sleeps == []


def test_openai_style_and_non_json_error_bodies(make_client, emulator):
    emulator.fail(400, body={"error": {"message": "bad tools", "type": "invalid_request_error", "code": "x1"}})
    with pytest.raises(gg.BadRequestError) as info:
        make_client().complete(HI)
    assert info.value.message == "bad tools" and info.value.code == "x1"
    emulator.fail(404, body=b"<html>gone</html>")
    with pytest.raises(gg.NotFoundError) as info:
        make_client().complete(HI)
    assert "gone" in info.value.message and info.value.correlation_id


@pytest.mark.parametrize("body", [b"", b"{not json", b"[]", b'{"choices": []}', b'{"choices": [{"message": 3}]}',
                                  b'{"choices": [{"message": {"role": "assistant", "content": 5}}]}',
                                  b'{"id": "x"}', b'\xff\xfe'])
def test_bad_2xx_bodies_are_response_format_errors(make_client, emulator, body):
    emulator.garbage(body)
    with pytest.raises(gg.ResponseFormatError):
        make_client().complete(HI)


def test_missing_usage_and_unknown_fields_are_tolerated(make_client, emulator):
    emulator.script({"choices": [{"message": {"role": "assistant", "content": "ok", "extra": 1}}], "zzz": True})
    response = make_client().complete(HI)
    assert response.message.content == "ok" and response.usage == gg.Usage()


def test_dropped_connection_is_retried_with_same_idempotency_key(make_client, emulator, transport_factory):
    emulator.drop_connection()
    client = make_client(transport=transport_factory())
    assert client.complete(HI).message.content == "Echo: hi"
    keys = [r.headers.get("idempotency-key") for r in chat_requests(emulator)]
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0]


def test_dropped_connections_exhaust_to_transport_error(make_client, emulator, sleeps, transport_factory):
    emulator.drop_connection(times=10)
    with pytest.raises(gg.TransportError):
        make_client(transport=transport_factory()).complete(HI)
    assert len(sleeps) == 3


def test_connection_refused_is_transport_error(sleeps, transport_factory):
    url = f"http://127.0.0.1:{free_port()}"
    with gg.GatewayClient(base_url=url, auth=gg.BearerToken("t"), transport=transport_factory(),
                          retry=gg.ExponentialBackoff(max_attempts=2, sleep=sleeps)) as client:
        with pytest.raises(gg.TransportError) as info:
            client.complete(HI)
    assert info.value.kind == "refused" and len(sleeps) == 1


def test_read_timeout_is_transport_error(make_client, emulator, transport_factory):
    emulator.delay(0.5)
    client = make_client(transport=transport_factory(), timeout=gg.Timeout(1.0, 0.05), retry=gg.NoRetry())
    with pytest.raises(gg.TransportError) as info:
        client.complete(HI)
    assert info.value.kind == "read_timeout"


def test_token_endpoint_503_and_rate_limit_400_are_retried(make_client, emulator, sleeps):
    emulator.fail(503, endpoint="token")
    emulator.fail(400, endpoint="token", body={"error": "invalid_request",
                                               "error_description": "rate limit exceeded"})
    assert make_client().complete(HI).message.content == "Echo: hi"
    assert emulator.token_requests == 3 and len(sleeps) == 2


def test_redirects_are_not_followed(make_client, emulator, transport_factory):
    emulator.fail(302, headers={"Location": "http://127.0.0.1:1/steal"}, body=b"")
    with pytest.raises(gg.APIError) as info:
        make_client(transport=transport_factory()).complete(HI)
    assert info.value.status == 302
    assert len(chat_requests(emulator)) == 1


def test_parameters_pass_through_with_client_defaults(make_client, emulator):
    client = make_client(temperature=0.2, max_tokens=50)
    client.complete(HI, temperature=0.7, tools=[], tool_choice="auto")
    body = emulator.chat_requests[-1]
    assert body["temperature"] == 0.7 and body["max_tokens"] == 50
    assert "tools" not in body and "tool_choice" not in body
    assert body["model"] == "gpt-4o"


def test_bearer_token_sends_fixed_token(emulator):
    with gg.GatewayClient(base_url=emulator.url, auth=gg.BearerToken("fixed"), retry=gg.NoRetry()) as client:
        with pytest.raises(gg.AuthenticationError):
            client.complete(HI)
    assert chat_requests(emulator)[0].headers["authorization"] == "Bearer fixed"
    assert "fixed" not in repr(gg.BearerToken("fixed"))


def test_plain_http_only_for_loopback():
    auth = gg.BearerToken("t")
    with pytest.raises(gg.ConfigurationError) as info:
        gg.GatewayClient(base_url="http://gateway.example.com", auth=auth)
    assert "gateway.example.com" in str(info.value)
    gg.GatewayClient(base_url="http://gateway.example.com", auth=auth, allow_insecure_http=True).close()
    gg.GatewayClient(base_url="http://[::1]:8080", auth=auth).close()
    with pytest.raises(gg.ConfigurationError):
        gg.GatewayClient(base_url="ftp://x", auth=auth)


def test_region_derives_hosts_and_repr_hides_secret():
    auth = gg.ClientCredentials("my-id", "super-secret-123")
    client = gg.GatewayClient(region="eu-west-2", auth=auth)
    assert client.url == "https://api.euw2.pure.cloud/api/v2/ai-builder/llm-gateway/conversations"
    assert client.auth.token_url == "https://login.euw2.pure.cloud/oauth/token"
    assert "super-secret-123" not in repr(client) and "super-secret-123" not in repr(client.auth)
    client.close()
    with pytest.raises(gg.ConfigurationError) as info:
        gg.GatewayClient(region="narnia-1", auth=auth)
    assert "narnia-1" in str(info.value)
    with pytest.raises(gg.ConfigurationError):
        gg.GatewayClient(auth=auth)


def test_close_releases_and_refuses(make_client, emulator):
    client = make_client()
    client.complete(HI)
    client.close()
    with pytest.raises(gg.GatewayError):
        client.complete(HI)
    client.close()  # idempotent


def test_mock_transport_unit(sleeps):
    from genesys_gateway.testing import MockTransport, json_response

    seen = []

    def handler(request):
        seen.append(request)
        return json_response(200, {"choices": [{"message": {"role": "assistant", "content": "mocked"}}]})

    with gg.GatewayClient(base_url="https://gw.example.com", auth=gg.BearerToken("tok"),
                          transport=MockTransport(handler)) as client:
        assert client.complete(HI).message.content == "mocked"
    assert seen[0].url == "https://gw.example.com/api/v2/ai-builder/llm-gateway/conversations"
    assert "tok" not in repr(seen[0])


def test_requests_transport_drops_sessions_of_finished_threads(make_client, emulator):
    import gc

    transport = gg.RequestsTransport()
    client = make_client(transport=transport)
    for _ in range(5):
        t = threading.Thread(target=client.complete, args=(HI,))
        t.start()
        t.join()
    client.complete(HI)
    gc.collect()
    assert len(transport._sessions) == 1  # only the live (main) thread's session remains
    transport.close()
    with pytest.raises(gg.TransportError):
        client.complete(HI)


def test_closed_urllib3_transport_refuses(make_client):
    transport = gg.Urllib3Transport()
    client = make_client(transport=transport)
    client.complete(HI)
    transport.close()
    with pytest.raises(gg.TransportError) as info:
        client.complete(HI)
    assert "closed" in str(info.value)


def test_token_retries_are_not_nested_inside_call_retries(make_client, emulator, sleeps):
    emulator.fail(503, times=1000, endpoint="token")
    with pytest.raises(gg.ServerError):
        make_client().complete(HI)
    assert emulator.token_requests == 4 and len(sleeps) == 3  # max_attempts bounds everything


@pytest.mark.parametrize("token", ["abc\r\nX-Evil: 1", "tök€n", "has space"])
def test_unsendable_tokens_are_typed_errors_without_the_token(token):
    from genesys_gateway.testing import MockTransport, json_response

    def handler(request):
        return json_response(200, {"access_token": token, "expires_in": 3600})

    client = gg.GatewayClient(base_url="https://gw.example.com", transport=MockTransport(handler),
                              auth=gg.ClientCredentials("id", "secret", token_url="https://login.example.com/t"),
                              retry=gg.NoRetry())
    with pytest.raises(gg.ResponseFormatError) as info:
        client.complete(HI)
    assert token not in str(info.value)
    with pytest.raises(gg.ConfigurationError) as info:
        gg.BearerToken(token)
    assert token not in str(info.value)


def test_nan_expires_in_is_refused():
    from genesys_gateway.testing import MockTransport, json_response

    handler = lambda r: json_response(200, {"access_token": "t", "expires_in": "nan"})  # noqa: E731
    client = gg.GatewayClient(base_url="https://gw.example.com", transport=MockTransport(handler),
                              auth=gg.ClientCredentials("id", "secret", token_url="https://login.example.com/t"),
                              retry=gg.NoRetry())
    with pytest.raises(gg.ResponseFormatError):
        client.complete(HI)


@pytest.mark.parametrize("kwargs", [
    {"timeout": 0}, {"timeout": -1}, {"timeout": float("inf")}, {"timeout": "5"},
    {"timeout": gg.Timeout(0, 1)}, {"tools": [print]}, {"retry": "x"}, {"transport": object()},
    {"tool_timeout": float("nan")}, {"tool_timeout": float("inf")}, {"max_iterations": 0},
])
def test_bad_client_options_fail_at_construction(kwargs):
    with pytest.raises(gg.ConfigurationError):
        gg.GatewayClient(base_url="http://127.0.0.1:9", auth=gg.BearerToken("t"), **kwargs)


def test_header_injection_through_a_custom_header_is_refused(make_client):
    with pytest.raises(gg.TransportError) as info:
        from genesys_gateway.http.transport import HTTPRequest

        gg.Urllib3Transport().send(HTTPRequest("GET", "http://127.0.0.1:9/", {"X-Key": "secret\r\nEvil: 1"}))
    assert "secret" not in str(info.value)


@pytest.mark.parametrize("status,error", [(200, gg.ResponseFormatError), (500, gg.ServerError),
                                          (400, gg.BadRequestError)])
def test_deeply_nested_bodies_are_typed_errors(make_client, emulator, status, error):
    deep = b"[" * 100000 + b"]" * 100000
    emulator.garbage(deep, status=status) if status == 200 else emulator.fail(status, body=deep, times=10)
    with pytest.raises(error):
        make_client(retry=gg.NoRetry()).complete(HI)


def test_deeply_nested_token_response_is_a_typed_error(make_client, emulator):
    emulator.garbage(b"[" * 100000 + b"]" * 100000, endpoint="token")
    with pytest.raises(gg.ResponseFormatError):
        make_client(retry=gg.NoRetry()).complete(HI)
