"""The secret scan: no credential ever leaves the SDK on any public path.

The secrets: the OAuth client secret (and the ``id:secret`` it is sent as), the Basic
value (``Basic base64(id:secret)`` and its Base64 part), a static ``BearerToken``, every
access token the emulators issue during a test (:class:`RecordingEmulator` remembers each;
each test also checks that every bearer token a request carried is among them), and a
token planted in a store that cannot be sent in a header.

The paths, each run on both transports: token fetch, 401 -> refresh -> replay, every
``APIError`` status and ``ResponseFormatError`` with servers that echo the credentials they
were sent (chat and token endpoints), the token endpoint's "rate limit exceeded" 400 and
``invalid_client`` 401, every ``TransportError`` kind (refused, DNS, reset, closed, bad
status line, truncated body, read timeout, deadline) on both endpoints, the three token
stores (a real redis-server) with a bad and a refused stored token, static bearer tokens.

What is scanned, by :func:`~tests.secret_scan.assert_no_secret` (raw, percent-encoded,
JSON-escaped, repr-escaped and Base64 forms): every log record at DEBUG of every logger
(the library's, ``genesys_gateway.audit`` with ``audit_payloads=True``, urllib3's,
requests') with its arguments and traceback, stdout and stderr (http.client's debug output
goes there), warnings, OpenTelemetry spans (an in-memory exporter: attributes, events,
recorded exceptions), and ``repr``/``str``/``format``/pickle/``vars`` of every public
object and of every error raised; then the CLI's output (``demo``, ``chat``, ``tools``,
``emulator``, embedded and ``--live``, and its error paths). Each channel is proved able to
fail by :func:`test_every_channel_catches_a_planted_secret`.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import warnings
from typing import Any, Callable
from urllib.parse import quote

import pytest

import genesys_gateway as gg
from genesys_gateway import demo
from genesys_gateway.contrib.django.cache import DjangoCacheTokenStore
from genesys_gateway.errors import error_for_status
from genesys_gateway.http.tokens import store_key
from genesys_gateway.options import ClientOptions
from genesys_gateway.testing import reply
from tests.net_helpers import RawServer, free_port
from tests.secret_scan import (
    TRANSPORTS,
    Recorder,
    RecordingEmulator,
    Scan,
    assert_no_secret,
    secret_forms,
    span_exporter,
)

CLIENT_ID = "scan-client-7d1e"
# Characters that every encoding writes differently: / + & = " \ % and a non-ASCII letter.
SECRET = 'Sc4n-s3cr3t/+&="\\\u00e9%2F-q9Z'
WRONG_SECRET = 'Wr0ng-s3cr3t/+&="\\\u00fc%3D-x8Y'
STATIC = "St4tic.Bearer+Tok/3n=9f27c1d0"  # a fixed token the emulator never issued
BAD_STORED = "B4d-st0red-t0ken-5e3a"  # planted in stores with a CR/LF after it
BAD_ISSUED = "B4d-issu3d-t0ken-71c4"  # answered by a token endpoint with a CR/LF after it


def basic(secret: str) -> str:
    return base64.b64encode(f"{CLIENT_ID}:{secret}".encode()).decode("ascii")


SECRETS = [
    SECRET, f"{CLIENT_ID}:{SECRET}", basic(SECRET), "Basic " + basic(SECRET),
    WRONG_SECRET, f"{CLIENT_ID}:{WRONG_SECRET}", basic(WRONG_SECRET),
    STATIC, BAD_STORED, BAD_ISSUED,
]


@pytest.fixture(scope="module")
def spans():
    yield from span_exporter()


def new_scan(capfd: Any, spans: Any, transport: str = "urllib3") -> Scan:
    return Scan(capfd, spans, transport, client_id=CLIENT_ID, client_secret=SECRET, secrets=SECRETS,
                known_tokens=[STATIC])


@pytest.fixture(params=list(TRANSPORTS))
def scan(request, capfd, spans):
    """A scan of one test's paths on each transport."""
    with new_scan(capfd, spans, request.param) as s:
        yield s


@pytest.fixture
def scan_once(capfd, spans):
    """A scan of paths that do not depend on the transport."""
    with new_scan(capfd, spans) as s:
        yield s


def audit_events(scan: Scan) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in scan.logs.records if r.name == "genesys_gateway.audit"]


def assert_live_channels(scan: Scan, counts: dict[str, int]) -> None:
    """The capture saw the library's, the audit log's and urllib3's records, and spans:
    the scan looked at real output, not at an empty capture."""
    names = scan.logs.names()
    assert "genesys_gateway.audit" in names and any(n.startswith("urllib3") for n in names), names
    if scan.spans is not None:
        assert counts["spans"] > 0


# -- paths of a working client -----------------------------------------------------------------


def test_token_fetch_refresh_and_replay(scan):
    em = scan.emulator(responder=demo.responder)
    recorder = Recorder(scan.transport())
    client = scan.client(em, transport=recorder)
    result = client.run(demo.PROMPT)
    assert result.stop_reason == "completed" and len(result.tool_runs) == 2
    conversation = client.conversation(system="be brief")
    second = conversation.send("And in Paris?")
    em.revoke_tokens()  # the next call gets 401: refresh, then one replay
    third = client.run(demo.PROMPT)
    assert third.stop_reason == "completed"
    em.script(reply("plain"))
    response = client.complete([{"role": "user", "content": "hi"}], deadline=30)
    assert [r.status for r in em.requests if r.endpoint == "token"] == [200, 200]
    assert 401 in [r.status for r in em.requests if r.endpoint == "chat"]
    assert len(em.issued) == 2 and client.auth.token_requests == 2

    events = audit_events(scan)
    assert any(e["event"] == "model_call" and "response" in e for e in events)  # payloads on
    assert any(e["event"] == "tool_call" and "arguments" in e for e in events)
    token = client.auth.store.get(store_key(em.token_url, CLIENT_ID))
    assert token is not None and token.access_token == em.issued[-1]
    for label, obj in [("options", client.options), ("RunResult", result), ("RunResult 2", second),
                       ("RunResult 3", third), ("Conversation", conversation), ("ChatResponse", response),
                       ("MemoryTokenStore", client.auth.store), ("transport", recorder.inner),
                       ("ToolRegistry", client.tools), ("retry policy", client.retry),
                       ("RetryBudget", client.retry_budget), ("executor", client.executor())]:
        scan.keep(label, obj)
    for run in (*result.tool_runs, *second.tool_runs):
        scan.keep("ToolRun", run)
    for label, obj in [("ClientCredentials", client.auth), ("Token", token)]:
        scan.keep(label, obj, carrier=True)
    for request in recorder.requests:
        scan.keep("HTTPRequest", request, carrier=True)  # headers hold Authorization
    for response_ in recorder.responses:
        scan.keep("HTTPResponse", response_, carrier=True)  # token responses hold a token
    assert_live_channels(scan, scan.check())


def test_static_bearer_tokens(scan):
    em = scan.emulator(responder=demo.responder)
    issued = em.issue_token()
    good = scan.client(em, auth=gg.BearerToken(issued))
    assert good.run(demo.PROMPT).stop_reason == "completed"
    em.echo_credentials(403)
    scan.expect("403 echoing an issued static token", gg.PermissionDeniedError, lambda: good.run("hi"))
    scan.expect("a token as an extra header", gg.ConfigurationError,  # refused: auth= is the way
                lambda: scan.client(em, auth=None, extra_headers={"Authorization": "Bearer " + issued}))
    unknown = scan.client(em, auth=gg.BearerToken(STATIC))
    scan.expect("401 to a static token", gg.AuthenticationError, lambda: unknown.run("hi"))
    em.echo_credentials(401)
    scan.expect("401 echoing a static token", gg.AuthenticationError, lambda: unknown.run("hi"))
    assert STATIC in em.bearer_tokens_sent()
    scan.keep("BearerToken", good.auth, carrier=True)
    scan.keep("BearerToken", unknown.auth, carrier=True)
    assert_live_channels(scan, scan.check())


# -- servers that fail, and servers that echo the credentials they were sent ---------------------

GATEWAY_STATUSES = [400, 401, 403, 404, 409, 413, 415, 422, 429, 500, 502, 503, 504]


def test_gateway_errors_echoing_the_token(scan):
    em = scan.emulator()
    client = scan.client(em)
    cases = [(status, "application/json") for status in GATEWAY_STATUSES]
    cases += [(401, "text/plain"), (500, "text/plain"), (400, "text/html")]
    for status, content_type in cases:
        em.reset()  # no fault left over from a case that made fewer attempts
        em.echo_credentials(status, times=2, content_type=content_type)  # retry or replay too
        error = scan.expect(f"chat {status} echo ({content_type})", error_for_status(status),
                            lambda: client.run("hi"))
        assert isinstance(error, gg.APIError) and error.status == status
        echoed = [r for r in em.requests if r.fault == "echo"]
        assert echoed, status  # the server did quote the credential
    em.reset()
    em.echo_credentials(200)  # a "success" that is an error body quoting the token
    scan.expect("chat 200 echo", gg.ResponseFormatError, lambda: client.run("hi"))
    for garbage in (b"{not json", b"", b"<html>oops</html>", {"choices": []}):
        em.garbage(garbage)
        scan.expect(f"chat garbage {garbage!r}", gg.ResponseFormatError, lambda: client.run("hi"))
    assert len(em.issued) >= 2  # the 401s refreshed the token
    counts = scan.check()
    assert counts["errors"] == len(cases) + 5
    assert_live_channels(scan, counts)
    if scan.spans is not None:  # the spans recorded the errors, and were scanned with them
        events = [e for span in scan.spans.get_finished_spans() for e in span.events]
        assert any(e.name == "exception" and "redacted" in str(e.attributes) for e in events)


TOKEN_CASES = [
    # (what, how to fail the token endpoint, the error)
    ("400 rate limit exceeded", lambda em: em.fail(400, times=2, endpoint="token"), gg.RateLimitError),
    ("400 echo", lambda em: em.echo_credentials(400, endpoint="token"), gg.BadRequestError),
    ("401 echo", lambda em: em.echo_credentials(401, endpoint="token"), gg.AuthenticationError),
    ("401 echo as text", lambda em: em.echo_credentials(401, endpoint="token", content_type="text/plain"),
     gg.AuthenticationError),
    ("403 echo", lambda em: em.echo_credentials(403, endpoint="token"), gg.PermissionDeniedError),
    ("429 echo", lambda em: em.echo_credentials(429, times=2, endpoint="token"), gg.RateLimitError),
    ("500 echo", lambda em: em.echo_credentials(500, times=2, endpoint="token"), gg.ServerError),
    ("200 echo", lambda em: em.echo_credentials(200, endpoint="token"), gg.ResponseFormatError),
    ("200 not JSON", lambda em: em.garbage(b"<html>login</html>", endpoint="token"), gg.ResponseFormatError),
    ("200 bad token", lambda em: em.garbage({"access_token": BAD_ISSUED + "\r\nX: 1", "expires_in": 60},
                                            endpoint="token"), gg.ResponseFormatError),
    # servers that decode the Basic header and quote the secret in it
    ("401 quoting the secret", lambda em: em.fail(401, {"error": "invalid_client",
                                                        "error_description": f"bad secret {SECRET}"},
                                                  endpoint="token"), gg.AuthenticationError),
    ("400 quoting id:secret JSON-escaped in text", lambda em: em.fail(
        400, "<pre>" + json.dumps({"client": f"{CLIENT_ID}:{SECRET}"}) + "</pre>", endpoint="token"),
     gg.BadRequestError),
    ("400 quoting the secret percent-encoded", lambda em: em.fail(
        400, f"bad form: client_secret={quote(SECRET, safe='')}", endpoint="token"), gg.BadRequestError),
    ("500 quoting the secret in a key", lambda em: em.fail(
        500, {"details": {SECRET: [SECRET, 1]}}, times=2, endpoint="token"), gg.ServerError),
]


def test_token_endpoint_errors(scan):
    em = scan.emulator()
    for what, fail, error_type in TOKEN_CASES:
        em.reset()
        fail(em)
        client = scan.client(em)  # a new ClientCredentials: no cached token
        error = scan.expect(f"token endpoint {what}", error_type, lambda c=client: c.run("hi"))
        if "quoting" in what:  # what the server quoted is replaced, the rest is kept
            assert "<redacted>" in json.dumps(error.body, ensure_ascii=False), error.body
    em.reset()
    wrong = scan.client(em, secret=WRONG_SECRET)  # the emulator expects SECRET
    error = scan.expect("token endpoint 401 invalid_client", gg.AuthenticationError, lambda: wrong.run("hi"))
    assert error.code == "invalid_client"
    assert em.requests[-1].headers["authorization"] == "Basic " + basic(WRONG_SECRET)
    assert len(em.issued) == 0
    assert_live_channels(scan, scan.check())


# -- transport failures --------------------------------------------------------------------------


def test_transport_errors(scan):
    em = scan.emulator()
    stall = {"timeout": gg.Timeout(connect=5.0, read=0.2), "retry": gg.NoRetry()}  # read timeouts
    kinds = {}

    def chat_to(url: str, label: str, **kwargs: Any) -> None:
        client = scan.client(em, base_url=url, allow_insecure_http=True, **kwargs)
        error = scan.expect(f"chat {label}", gg.TransportError, lambda: client.run("hi"))
        kinds[f"chat {label}"] = error.kind

    chat_to(f"http://127.0.0.1:{free_port()}", "refused")
    chat_to("http://nonexistent-host.invalid", "DNS failure")
    for behaviour in [b for b in RawServer.BEHAVIOURS if b != "not_tls"]:  # not_tls: for https
        with RawServer(behaviour) as raw:
            chat_to(raw.url, behaviour, **(stall if behaviour == "stall" else {}))
    with RawServer("stall") as raw:
        client = scan.client(em, base_url=raw.url, retry=gg.NoRetry())
        error = scan.expect("chat deadline", gg.TransportError,
                            lambda: client.complete([{"role": "user", "content": "hi"}], deadline=0.2))
        kinds["chat deadline"] = error.kind
        result = client.run("hi", deadline=0.2)  # a run reports it as its stop reason
        assert result.stop_reason == "deadline"
        scan.keep("RunResult (deadline)", result)

    def token_from(url: str, label: str, **kwargs: Any) -> None:
        client = scan.client(em, token_url=url + "/oauth/token", **kwargs)
        error = scan.expect(f"token {label}", gg.TransportError, lambda: client.run("hi"))
        kinds[f"token {label}"] = error.kind

    token_from(f"http://127.0.0.1:{free_port()}", "refused")
    for behaviour in ("reset", "stall", "bad_status"):
        with RawServer(behaviour) as raw:
            token_from(raw.url, behaviour, **(stall if behaviour == "stall" else {}))
    em.drop_connection(times=2, endpoint="token")
    token_from(em.url, "dropped")
    assert len(set(kinds.values())) >= 4, kinds  # several kinds really happened
    assert len(em.issued) >= 1  # the chat cases fetched a token first
    counts = scan.check()
    assert counts["errors"] == len(kinds)
    names = scan.logs.names()
    assert any(n.startswith("urllib3") for n in names), names


# -- token stores --------------------------------------------------------------------------------


def make_store(kind: str, request: Any, tmp_path: Any) -> Any:
    if kind == "memory":
        return gg.MemoryTokenStore()
    if kind == "file":
        return gg.FileTokenStore(tmp_path / "tokens" / "tokens.json")
    server = request.getfixturevalue("redis_server")
    client = server.client()
    client.flushdb()
    request.addfinalizer(client.close)
    return gg.RedisTokenStore(client, key="scan", poll_interval=0.01)


@pytest.mark.parametrize("kind", ["memory", "file", "redis"])
def test_token_stores(scan, kind, request, tmp_path):
    em = scan.emulator()
    store = make_store(kind, request, tmp_path)
    key = store_key(em.token_url, CLIENT_ID)
    assert scan.client(em, store=store).run("hi").completed
    with store.lock(key):  # a token that cannot be sent: discarded, refetched, never logged
        stored = store.get(key)
        store.set(key, gg.Token(BAD_STORED + "\r\nX-Evil: 1", stored.expires_at, stored.refresh_at))
    assert scan.client(em, store=store).run("hi").completed
    em.revoke_tokens()  # a stored token the gateway refuses: 401, discarded, refetched
    assert scan.client(em, store=store).run("hi").completed
    assert len(em.issued) == 3
    scan.keep(f"{type(store).__name__}", store)
    scan.keep("Token", store.get(key), carrier=True)
    if kind == "redis":
        redis = request.getfixturevalue("redis_server").client()
        request.addfinalizer(redis.close)
        names = [k.decode() for k in redis.keys("*")]
        assert names, "the store wrote nothing"
        scan.text("Redis key names", json.dumps(names))
        down = gg.RedisTokenStore(gg_redis_down(), key="scan")  # unreachable: logged, bypassed
        assert scan.client(em, store=down).run("hi").completed
        assert any("token store unavailable" in r.getMessage() for r in scan.logs.records)
        scan.keep("RedisTokenStore (down)", down)
    if kind == "file":
        scan.text("token file names", json.dumps(sorted(os.listdir(tmp_path / "tokens"))))
        assert BAD_STORED not in (tmp_path / "tokens" / "tokens.json").read_text()  # replaced
    held, release = threading.Event(), threading.Event()

    def refresher() -> None:  # another refresher holds the lock past the caller's deadline
        with store.lock(key):
            held.set()
            release.wait(10)

    store.invalidate(key, store.get(key).access_token)  # the next client must refresh: it waits
    other = threading.Thread(target=refresher)
    other.start()
    try:
        assert held.wait(10)
        waiter = scan.client(em, store=store, retry=gg.NoRetry())
        error = scan.expect("waiting for another refresher", gg.TransportError,
                            lambda: waiter.complete([{"role": "user", "content": "hi"}], deadline=0.2))
        assert error.kind == "deadline"
    finally:
        release.set()
        other.join(10)
    assert any("discarding the stored access token" in r.getMessage() for r in scan.logs.records)
    assert_live_channels(scan, scan.check())


def gg_redis_down() -> Any:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5, socket_timeout=0.5,
                       retry=Retry(NoBackoff(), 0))


# -- configuration errors and the public objects themselves ----------------------------------------


def test_configuration_errors_never_quote_a_secret(scan_once):
    scan = scan_once
    in_url = quote(SECRET, safe="")
    cases: list[tuple[str, Callable[[], object]]] = [
        ("https base_url with credentials",
         lambda: gg.GatewayClient(base_url=f"https://{CLIENT_ID}:{in_url}@api.example.com")),
        ("http base_url with credentials",
         lambda: gg.GatewayClient(base_url=f"http://{CLIENT_ID}:{in_url}@api.example.com")),
        ("not an http URL, with credentials",
         lambda: gg.GatewayClient(base_url=f"htps://{CLIENT_ID}:{in_url}@api.example.com")),
        ("no host, with credentials",
         lambda: gg.GatewayClient(base_url=f"https://{CLIENT_ID}:{in_url}@")),
        ("a static token with a newline", lambda: gg.BearerToken(STATIC + "\nX-Evil: 1")),
        ("a static token with a space", lambda: gg.BearerToken("Bearer " + STATIC)),
        ("an environment token with a newline", lambda: gg.GatewayClient.from_env({
            "GENESYS_GATEWAY_BASE_URL": "https://api.example.com",
            "GENESYSCLOUD_ACCESS_TOKEN": STATIC + "\nX-Evil: 1"})),
        ("an environment without a client id", lambda: gg.GatewayClient.from_env({
            "GENESYS_GATEWAY_BASE_URL": "https://api.example.com",
            "GENESYSCLOUD_OAUTHCLIENT_SECRET": SECRET})),
        ("a token URL setting with credentials", lambda: gg.GatewayClient.from_env({
            "GENESYS_GATEWAY_BASE_URL": "https://api.example.com", "GENESYSCLOUD_OAUTHCLIENT_ID": CLIENT_ID,
            "GENESYSCLOUD_OAUTHCLIENT_SECRET": SECRET,
            "GENESYS_GATEWAY_TOKEN_URL": f"https://{CLIENT_ID}:{in_url}@login.example.com/oauth/token"})),
        ("a non-string secret", lambda: gg.GatewayClient.from_settings({
            "BASE_URL": "https://api.example.com", "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": [SECRET]})),
    ]
    for label, call in cases:
        error = scan.expect(label, gg.ConfigurationError, call)
        if "with credentials" in label:  # said before any message could quote the URL
            assert "must not contain credentials" in str(error), error
        if "setting" in label:
            assert str(error) == "GENESYS_GATEWAY_TOKEN_URL must not contain credentials"
    em = scan.emulator()
    for label, url in [("a token_url with credentials", f"https://{CLIENT_ID}:{in_url}@{em.url[7:]}/t"),
                       ("a token_url with credentials, not http", f"htps://{CLIENT_ID}:{in_url}@login")]:
        error = scan.expect(label, gg.ConfigurationError, lambda u=url: scan.client(em, token_url=u))
        assert str(error) == "token_url must not contain credentials"  # at construction
    counts = scan.check()
    assert counts["errors"] == len(cases) + 2


def test_public_objects_at_rest(scan_once, tmp_path):
    """The objects a user builds, before and without any request."""
    scan = scan_once
    credentials = gg.ClientCredentials(CLIENT_ID, SECRET, token_url="https://login.example.com/oauth/token")
    scan.keep("ClientCredentials", credentials, carrier=True)
    scan.keep("BearerToken", gg.BearerToken(STATIC), carrier=True)
    scan.keep("Token", gg.Token(STATIC, 2e9, 2e9), carrier=True)
    request = gg.HTTPRequest("POST", "https://api.example.com/x",
                             {"Authorization": "Basic " + basic(SECRET)}, b"{}")
    scan.keep("HTTPRequest", request, carrier=True)
    scan.keep("HTTPResponse", gg.HTTPResponse(401, {}, b"{}"))
    options_client = gg.GatewayClient(base_url="https://api.example.com", auth=credentials,
                                      extra_headers={"X-Api-Key": STATIC})
    scan.keep("GatewayClient with a secret extra header", options_client)
    scan.keep("ClientOptions with a secret extra header", options_client.options, carrier=True)
    bearer_client = gg.GatewayClient(base_url="https://api.example.com", auth=gg.BearerToken(STATIC))
    scan.keep("GatewayClient with a BearerToken", bearer_client)
    for store in (gg.MemoryTokenStore(), gg.FileTokenStore(tmp_path / "t.json"),
                  DjangoCacheTokenStore("default")):
        if not isinstance(store, DjangoCacheTokenStore):  # (no Django cache configured here)
            store.set("k", gg.Token(STATIC, 4e9, 4e9))
        scan.keep(type(store).__name__, store)
    for label, obj in [("Timeout", gg.Timeout()), ("ExponentialBackoff", gg.ExponentialBackoff()),
                       ("TokenBucket", gg.TokenBucket(per_minute=300)), ("RetryBudget", gg.RetryBudget())]:
        scan.keep(label, obj)
    scan.check()
    options_client.close()
    bearer_client.close()
    # What the carriers' pickles hold, by design (they are how a credential is passed on):
    assert STATIC.encode() in pickle.dumps(gg.BearerToken(STATIC))
    assert ClientOptions(extra_headers={"X-Api-Key": STATIC}).extra_headers["X-Api-Key"] == STATIC


# -- the scanner can fail ------------------------------------------------------------------------


def test_assert_no_secret_catches_every_form():
    secret = SECRET
    plants = {
        "as is": f"error: {secret}!",
        "percent-encoded": "https://host/?q=" + quote(secret, safe=""),
        "form-encoded": "a=1&b=" + quote(secret).replace("%20", "+"),
        "JSON": json.dumps({"message": secret}),
        "JSON, UTF-8": json.dumps({"message": secret}, ensure_ascii=False),
        "repr": repr({"secret": secret}),
        "repr of bytes": repr(secret.encode()),
        "Basic header": "Authorization: Basic " + basic(secret),
        "URL-safe Base64": base64.urlsafe_b64encode(b"x" + secret.encode()).decode(),
        "pickled exception": pickle.dumps(gg.AuthenticationError(401, "no", body={"echo": secret})),
        "protocol-0 pickle": pickle.dumps(gg.AuthenticationError(401, "no", body=[secret]), protocol=0),
        "UTF-8 bytes": ("x" + secret).encode(),
    }
    for prefix in range(3):  # Base64 at each alignment inside a longer value
        plants[f"Base64 after {prefix} bytes"] = base64.b64encode(
            b"p" * prefix + secret.encode() + b"suffix").decode()
    for what, planted in plants.items():
        with pytest.raises(AssertionError, match="found"):
            assert_no_secret(planted, [secret], where=what)
    clean = ["", f"client id {CLIENT_ID}", "Basic " + basic("another-secret-value"), secret[:-1],
             quote(secret[1:], safe=""), base64.b64encode(secret.encode()[:8]).decode()]
    for text in clean:
        assert_no_secret(text, [secret], where="clean text")
    assert_no_secret(b"\x00\xff binary", [secret])
    with pytest.raises(AssertionError, match="too short"):
        assert_no_secret("text", ["short"])
    kinds = set(secret_forms(secret).values())
    assert {"as is", "percent-encoded", "JSON-escaped", "repr-escaped", "base64 (offset 0)",
            "base64 (offset 1)", "base64 (offset 2)"} <= kinds, kinds


def test_every_channel_catches_a_planted_secret(capfd, spans):
    """Each channel of :class:`Scan` fails when the secret is in it."""
    def planted(plant: Callable[[Scan], None], check: Callable[[Scan], None]) -> None:
        with new_scan(capfd, spans) as scan:
            check(scan)  # clean before
            plant(scan)
            with pytest.raises(AssertionError, match="found"):
                check(scan)

    planted(lambda s: logging.getLogger("urllib3.connectionpool").debug("header %s", SECRET),
            Scan.check_logs)
    planted(lambda s: logging.getLogger("genesys_gateway.audit").info(json.dumps({"x": SECRET})),
            Scan.check_logs)
    planted(lambda s: logging.getLogger("genesys_gateway").warning("x", exc_info=ValueError(basic(SECRET))),
            Scan.check_logs)
    planted(lambda s: print("send: Authorization: Basic " + basic(SECRET)), Scan.check_output)
    planted(lambda s: os.write(2, ("header: " + STATIC + "\n").encode()), Scan.check_output)
    planted(lambda s: warnings.warn(f"token {STATIC}"), Scan.check_warnings)
    planted(lambda s: s.errors.append(("planted", gg.AuthenticationError(401, "x", body={"t": STATIC}))),
            Scan.check_errors)
    planted(lambda s: s.errors.append(("planted", chained(SECRET))), Scan.check_errors)
    planted(lambda s: s.keep("planted", {"token": STATIC}), Scan.check_objects)
    planted(lambda s: s.keep("planted", gg.HTTPRequest("GET", "https://x/?t=" + quote(SECRET, safe=""))),
            Scan.check_objects)

    def issue(s: Scan) -> None:
        em = s.emulator()
        token = em.issue_token()
        logging.getLogger("genesys_gateway").debug("token %s", token)

    planted(issue, Scan.check_logs)  # issued tokens are secrets too

    if spans is not None:
        from opentelemetry import trace

        def span(s: Scan) -> None:
            with trace.get_tracer("scan").start_as_current_span("x") as current:
                current.set_attribute("http.request.header.authorization", "Basic " + basic(SECRET))

        planted(span, Scan.check_spans)


def chained(secret: str) -> BaseException:
    try:
        try:
            raise ValueError(f"Invalid header value {secret!r}")
        except ValueError:
            raise gg.TransportError("invalid request", kind="protocol") from None
    except gg.TransportError as e:
        return e


# -- the command line ------------------------------------------------------------------------------

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CLI_TIMEOUT = 30


def cli_env(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENESYSCLOUD_", "GENESYS_GATEWAY_"))}
    env["PYTHONPATH"] = os.pathsep.join([REPO, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(variables)
    return env


def live_env(em: RecordingEmulator, **variables: str) -> dict[str, str]:
    """``--live`` settings pointing at ``em``, with the client secret (``variables`` win)."""
    return cli_env(**{"GENESYS_GATEWAY_BASE_URL": em.url, "GENESYS_GATEWAY_TOKEN_URL": em.token_url,
                      "GENESYSCLOUD_OAUTHCLIENT_ID": CLIENT_ID, "GENESYSCLOUD_OAUTHCLIENT_SECRET": SECRET,
                      **variables})


def cli(*args: str, env: dict[str, str], input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "genesys_gateway", *args], env=env, input=input,
                          capture_output=True, text=True, encoding="utf-8", timeout=CLI_TIMEOUT,
                          cwd=REPO)


def scan_cli(result: subprocess.CompletedProcess[str], secrets: list[str], what: str) -> str:
    output = result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert_no_secret(output, secrets, where=f"the output of {what}")
    return output


def one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode != 0, result
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("type a message")]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def revoke_after_first(em: RecordingEmulator) -> Callable[[dict[str, Any]], Any]:
    """A responder: demo's model, revoking every token once it has answered (the CLI's next
    request gets a 401, refreshes and replays)."""
    calls = []

    def responder(body: dict[str, Any]) -> Any:
        calls.append(1)
        if len(calls) == 1:
            em.revoke_tokens()
        return demo.responder(body)

    return responder


def test_cli_demo_and_chat_never_print_a_secret(capfd, spans):
    with new_scan(capfd, spans) as scan:
        env_with_secrets = cli_env(GENESYSCLOUD_OAUTHCLIENT_ID=CLIENT_ID,
                                   GENESYSCLOUD_OAUTHCLIENT_SECRET=SECRET,
                                   GENESYSCLOUD_ACCESS_TOKEN=STATIC)
        embedded = cli("demo", env=env_with_secrets)  # ignores the environment's credentials
        assert embedded.returncode == 0 and "answer: " in embedded.stdout, embedded.stderr
        scan_cli(embedded, SECRETS, "demo")
        chat = cli("chat", env=env_with_secrets, input="hello\n\n")
        assert "assistant> " in chat.stdout and "not a model" in chat.stdout, chat.stderr
        scan_cli(chat, SECRETS, "chat")
        tools = cli("tools", os.path.join(HERE, "cli_fixtures", "gg_cli_tools.py"), env=env_with_secrets)
        assert tools.returncode == 0, tools.stderr
        scan_cli(tools, SECRETS, "tools")

        em = scan.emulator()
        em.responder = revoke_after_first(em)
        live = cli("demo", "--live", env=live_env(em))
        assert live.returncode == 0 and "22°C" in live.stdout, live.stderr
        assert len(em.issued) == 2  # a 401 after the first answer: refreshed, replayed
        em.responder = revoke_after_first(em)
        chat_live = cli("chat", "--live", env=live_env(em), input="hello\nagain\n\n")
        assert chat_live.stdout.count("assistant> ") == 2, chat_live.stderr
        assert len(em.issued) == 4
        for result, what in ((live, "demo --live"), (chat_live, "chat --live")):
            scan_cli(result, scan.all_secrets(), what)
        scan.check()  # this process's side: the emulator's logs


def test_cli_errors_never_print_a_secret(capfd, spans):
    with new_scan(capfd, spans) as scan:
        em = scan.emulator()
        runs = []
        runs.append(("wrong secret", cli("demo", "--live", env=live_env(
            em, GENESYSCLOUD_OAUTHCLIENT_SECRET=WRONG_SECRET)), "AuthenticationError"))
        em.echo_credentials(401, endpoint="token")
        runs.append(("token endpoint echo", cli("chat", "--live", env=live_env(em), input="hi\n\n"),
                     "AuthenticationError"))
        em.echo_credentials(400, endpoint="token")
        runs.append(("token endpoint 400 echo", cli("demo", "--live", env=live_env(em)), "BadRequestError"))
        em.echo_credentials(401, times=2)
        runs.append(("gateway 401 echo", cli("demo", "--live", env=live_env(em)), "AuthenticationError"))
        em.echo_credentials(401)
        runs.append(("static token echo", cli("demo", "--live", env=live_env(
            em, GENESYSCLOUD_ACCESS_TOKEN=STATIC)), "AuthenticationError"))
        runs.append(("static token with a newline", cli("demo", "--live", env=live_env(
            em, GENESYSCLOUD_ACCESS_TOKEN=STATIC + "\nX: 1")), "configuration error"))
        for what, result, needle in runs:
            one_line_error(result, needle)
            scan_cli(result, scan.all_secrets(), what)
        assert len([r for r in em.requests if r.fault == "echo"]) == 5  # every echo was served
        assert len(em.issued) >= 1
        scan.check()


def test_cli_emulator_never_prints_its_secret(capfd, spans):
    env = cli_env(GENESYS_GATEWAY_EMULATOR_SECRET=SECRET)
    proc = subprocess.Popen(
        [sys.executable, "-m", "genesys_gateway", "emulator", "--port", "0", "--client-id", CLIENT_ID],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8", cwd=REPO,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    watchdog = threading.Timer(CLI_TIMEOUT, proc.kill)  # never hang the suite on a stuck child
    watchdog.start()
    try:
        with new_scan(capfd, spans) as scan:
            first = proc.stdout.readline()
            assert first.startswith("GatewayEmulator serving at http://127.0.0.1:"), first
            url = first.split()[-1]
            store = gg.MemoryTokenStore()
            good = scan.client(base_url=url, token_url=url + "/oauth/token", store=store)
            good.complete([{"role": "user", "content": "hi"}])
            token = store.get(store_key(url + "/oauth/token", CLIENT_ID))
            scan.secrets.append(token.access_token)  # issued by the emulator in the child
            wrong = scan.client(base_url=url, token_url=url + "/oauth/token", secret=WRONG_SECRET)
            scan.expect("the CLI emulator refusing a wrong secret", gg.AuthenticationError,
                        lambda: wrong.complete([{"role": "user", "content": "hi"}]))
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=CLI_TIMEOUT) == 0
            output = first + proc.stdout.read() + proc.stderr.read()
            assert "stopped" in output
            assert_no_secret(output, scan.all_secrets(), where="the output of emulator")
            scan.check()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
