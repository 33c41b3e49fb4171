"""Credentials echoed by a server never reach an exception.

The emulator's ``echo_credentials`` fault answers an error that quotes the request's
``Authorization`` header (whole, without its scheme, and nested in ``details``), as a
careless gateway or login host might. Whatever the client sent (the bearer token, the
client secret, the Basic value and its Base64 part alone, the decoded ``id:secret``) must
be absent from the resulting error's ``str``, ``repr``, ``args``, ``body``, ``message``
and pickle, and from the library's logs.
"""

from __future__ import annotations

import base64
import json
import logging
import pickle

import pytest

import genesys_gateway as gg
from genesys_gateway.errors import APIError
from genesys_gateway.http.error_responses import api_error, credential_forms, redact
from genesys_gateway.http.transport import HTTPResponse

CLIENT_ID = "client-id"
SECRET = "s3cr3t-value"  # as the make_client fixture sends it
BASIC_B64 = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
BASIC = "Basic " + BASIC_B64


def exposures(error: BaseException) -> dict[str, str]:
    """Every view of ``error`` a user, a log or another process could see."""
    views = {
        "str": str(error),
        "repr": repr(error),
        "args": repr(error.args),
        "pickle": pickle.dumps(error).decode("latin-1"),
        "unpickled": repr(pickle.loads(pickle.dumps(error)).__dict__),
        "dict": repr(vars(error)),
    }
    if isinstance(error, APIError):
        views["body"] = repr(error.body)
        views["body-json"] = json.dumps(error.body)
        views["message"] = error.message
    return views


def assert_no_secret(error: BaseException, secrets: list[str], logs: str = "") -> None:
    assert secrets and all(secrets)
    for name, text in {**exposures(error), "logs": logs}.items():
        for secret in secrets:
            assert secret not in text, f"{secret!r} in the error's {name}: {text[:300]}"


def sent_authorizations(em, endpoint: str) -> list[str]:
    return [r.headers["authorization"] for r in em.requests if r.endpoint == endpoint]


@pytest.fixture
def all_logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_gateway_401_echoing_the_bearer_token(emulator, make_client, all_logs, content_type):
    emulator.echo_credentials(401, times=2, content_type=content_type)  # the replay too
    client = make_client()
    with pytest.raises(gg.AuthenticationError) as info:
        client.run("hi")
    sent = sent_authorizations(emulator, "chat")
    assert len(sent) == 2 and sent[0] != sent[1]  # one refresh, one replay, two tokens
    secrets = sent + [value.split(" ", 1)[1] for value in sent]
    assert_no_secret(info.value, secrets, all_logs.text)
    assert "<redacted>" in str(info.value) and "<redacted>" in repr(info.value.body)
    assert info.value.status == 401 and info.value.correlation_id  # the rest is kept


@pytest.mark.parametrize("status", [400, 403, 429, 500])
def test_other_gateway_errors_echoing_the_token(emulator, make_client, all_logs, status):
    emulator.echo_credentials(status, times=5)
    client = make_client(retry=gg.NoRetry())
    with pytest.raises(gg.APIError) as info:
        client.complete([{"role": "user", "content": "hi"}])
    [sent] = sent_authorizations(emulator, "chat")
    assert_no_secret(info.value, [sent, sent.split(" ", 1)[1]], all_logs.text)
    assert info.value.status == status


@pytest.mark.parametrize("status, error_type", [(400, gg.BadRequestError),
                                                (401, gg.AuthenticationError)])
@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_token_endpoint_echoing_the_basic_header(emulator, make_client, all_logs, status,
                                                 error_type, content_type):
    emulator.echo_credentials(status, endpoint="token", content_type=content_type)
    client = make_client(retry=gg.NoRetry())
    with pytest.raises(error_type) as info:
        client.run("hi")
    assert sent_authorizations(emulator, "token") == [BASIC]
    assert_no_secret(info.value, [BASIC, BASIC_B64, SECRET, f"{CLIENT_ID}:{SECRET}"],
                     all_logs.text)
    assert info.value.status == status


# -- the redaction itself -------------------------------------------------------------------


def test_credential_forms_of_each_scheme():
    assert credential_forms("Bearer tok-123") == ("Bearer tok-123", "tok-123")
    assert set(credential_forms(BASIC)) == {BASIC, BASIC_B64, f"{CLIENT_ID}:{SECRET}", SECRET}
    assert credential_forms("tok-only") == ("tok-only",)
    assert credential_forms("Basic !!notbase64") == ("Basic !!notbase64", "!!notbase64")
    assert credential_forms("") == ()


def test_redact_scrubs_nested_bodies_keys_numbers_and_every_field():
    error = gg.AuthenticationError(
        401, "refused tok-123 and Bearer tok-123", "tok-123", "ctx tok-123",
        {"tok-123": ["x", {"deep": "a tok-123 b", "n": 987654321}], "ok": 1, "none": None},
        retry_after=2.0)
    out = redact(error, ["Bearer tok-123", "tok-123", "987654321"])
    assert out is error and type(out) is gg.AuthenticationError
    assert "tok-123" not in repr(exposures(out)) and "987654321" not in repr(exposures(out))
    assert out.body == {"<redacted>": ["x", {"deep": "a <redacted> b", "n": "<redacted>"}],
                        "ok": 1, "none": None}
    assert out.message == "refused <redacted> and <redacted>"
    assert out.args == (str(out),) and out.retry_after == 2.0 and out.status == 401


def test_an_echo_cut_by_the_message_limit_leaves_no_prefix():
    token = "T" * 40
    body = json.dumps({"message": "x" * 480 + token}).encode()
    error = api_error(HTTPResponse(401, {}, body), secrets=[token])
    assert "TTTTT" not in str(error) and "TTTTT" not in repr(error.body)


def test_api_error_without_secrets_is_unchanged():
    body = json.dumps({"message": "no such model", "code": "bad.request"}).encode()
    error = api_error(HTTPResponse(400, {}, body))
    assert str(error) == "HTTP 400 [bad.request]: no such model"
    assert redact(error, []) is error and error.body == {"message": "no such model",
                                                          "code": "bad.request"}
