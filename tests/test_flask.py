"""The Flask extension against a real GatewayEmulator, through Flask's test client."""

from __future__ import annotations

import threading

import pytest

flask = pytest.importorskip("flask")

import genesys_gateway as gg  # noqa: E402
from genesys_gateway.contrib import flask as gg_flask  # noqa: E402
from genesys_gateway.contrib.flask import GenesysGateway  # noqa: E402
from genesys_gateway.errors import ConfigurationError  # noqa: E402
from genesys_gateway.http.tokens import store_key  # noqa: E402

SECRET = "s3cr3t-flask-value"

registry = gg.ToolRegistry()  # named by GENESYS_GATEWAY_TOOLS below


@registry.tool
def shout(text: str) -> str:
    """Upper-case a text.

    Args:
        text: what to shout.
    """
    return text.upper()


def config_for(em, **extra):
    config = {
        "GENESYS_GATEWAY_BASE_URL": em.url,
        "GENESYS_GATEWAY_TOKEN_URL": em.token_url,
        "GENESYS_GATEWAY_CLIENT_ID": "flask-client",
        "GENESYS_GATEWAY_CLIENT_SECRET": SECRET,
    }
    config.update(extra)
    return config


def make_app(config, ext=None, **ext_kwargs):
    app = flask.Flask(__name__)
    app.config.update(config)
    ext = ext if ext is not None else GenesysGateway(**ext_kwargs)
    ext.init_app(app)

    @app.post("/ask")
    def ask():
        response = ext.client.complete([{"role": "user", "content": flask.request.json["q"]}])
        return {"answer": response.message.content}

    return app, ext


@pytest.fixture
def closing():
    apps = []
    yield apps.append
    for app in apps:
        app.extensions["genesys_gateway"].close()


def test_view_calls_the_gateway_with_the_shared_client(emulator, closing):
    app, ext = make_app(config_for(emulator))
    closing(app)
    http = app.test_client()
    for _ in range(3):
        reply = http.post("/ask", json={"q": "hi"})
        assert reply.status_code == 200
        assert reply.get_json() == {"answer": "Echo: hi"}
    assert emulator.token_requests == 1  # one token for every request
    assert len(emulator.chat_requests) == 3
    with app.app_context():
        assert ext.client is app.extensions["genesys_gateway"]
    assert isinstance(app.extensions["genesys_gateway"], gg.GatewayClient)
    assert ext.client is app.extensions["genesys_gateway"]  # one app: works outside a context


def test_constructor_form_and_threads_share_one_client(emulator, closing):
    app = flask.Flask(__name__)
    app.config.update(config_for(emulator))
    ext = GenesysGateway(app)
    closing(app)
    seen = []

    def worker():
        with app.app_context():
            seen.append(ext.client)
            ext.client.complete([{"role": "user", "content": "x"}])

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(seen) == 8 and all(c is seen[0] for c in seen)
    assert emulator.token_requests == 1


def test_app_factory_with_two_apps(emulator, closing):
    ext = GenesysGateway()
    app1, _ = make_app(config_for(emulator, GENESYS_GATEWAY_MODEL="model-one"), ext=ext)
    app2, _ = make_app(config_for(emulator, GENESYS_GATEWAY_MODEL="model-two"), ext=ext)
    closing(app1)
    closing(app2)
    with app1.app_context():
        assert ext.client.model == "model-one"
    with app2.app_context():
        assert ext.client.model == "model-two"
    with pytest.raises(RuntimeError, match="app context"):
        ext.client
    assert app2.test_client().post("/ask", json={"q": "yo"}).get_json() == {"answer": "Echo: yo"}
    assert emulator.chat_requests[-1]["model"] == "model-two"


def test_client_before_init_app():
    with pytest.raises(RuntimeError, match="init_app"):
        GenesysGateway().client


def test_missing_key_names_the_config_key_not_the_secret(emulator):
    config = config_for(emulator)
    del config["GENESYS_GATEWAY_CLIENT_ID"]
    with pytest.raises(ConfigurationError) as info:
        make_app(config)
    assert "GENESYS_GATEWAY_CLIENT_ID" in str(info.value)
    assert SECRET not in str(info.value)

    with pytest.raises(ConfigurationError, match="GENESYS_GATEWAY_REGION"):
        make_app({"GENESYS_GATEWAY_CLIENT_ID": "x", "GENESYS_GATEWAY_CLIENT_SECRET": SECRET})


def test_invalid_values_name_the_config_key(emulator):
    with pytest.raises(ConfigurationError, match="GENESYS_GATEWAY_REGION"):
        make_app(config_for(emulator, GENESYS_GATEWAY_REGION="atlantis-9"))
    with pytest.raises(ConfigurationError, match="GENESYS_GATEWAY_MAX_ITERATIONS"):
        make_app(config_for(emulator, GENESYS_GATEWAY_MAX_ITERATIONS="many"))
    with pytest.raises(ConfigurationError, match="GENESYS_GATEWAY_TOOLS"):
        make_app(config_for(emulator, GENESYS_GATEWAY_TOOLS="no_such_module_xyz:registry"))
    with pytest.raises(ConfigurationError, match="GENESYS_GATEWAY_TOOLS"):
        make_app(config_for(emulator, GENESYS_GATEWAY_TOOLS=f"{__name__}:SECRET"))  # not a registry


def test_other_keys_become_client_options_and_tools_load(emulator, closing):
    app, ext = make_app(
        config_for(
            emulator,
            GENESYS_GATEWAY_MAX_ITERATIONS="3",
            GENESYS_GATEWAY_PATH="/custom/chat",
            GENESYS_GATEWAY_TOOLS=f"{__name__}:registry",
        )
    )
    closing(app)
    client = app.extensions["genesys_gateway"]
    assert client.max_iterations == 3
    assert client.path == "/custom/chat"
    assert client.tools is registry


def test_access_token_config(emulator, closing):
    token = emulator.issue_token()
    app, _ = make_app(
        {"GENESYS_GATEWAY_BASE_URL": emulator.url, "GENESYS_GATEWAY_ACCESS_TOKEN": token}
    )
    closing(app)
    assert app.test_client().post("/ask", json={"q": "hi"}).get_json() == {"answer": "Echo: hi"}
    assert emulator.token_requests == 0


def test_constructor_kwargs_reach_the_client(emulator, closing, tmp_path):
    store = gg.FileTokenStore(tmp_path / "tokens.json")
    tools = gg.ToolRegistry()
    app, ext = make_app(config_for(emulator), token_store=store, tools=tools, tool_timeout=2.5)
    closing(app)
    client = app.extensions["genesys_gateway"]
    assert client.tools is tools and client.tool_timeout == 2.5
    app.test_client().post("/ask", json={"q": "hi"})
    assert store.get(store_key(emulator.token_url, "flask-client")) is not None


def test_init_app_again_replaces_and_closes_the_old_client(emulator, closing):
    app, ext = make_app(config_for(emulator))
    old = app.extensions["genesys_gateway"]
    ext.init_app(app)
    closing(app)
    assert app.extensions["genesys_gateway"] is not old
    with pytest.raises(gg.GatewayError):
        old.executor()  # closed


def test_client_is_closed_at_exit_without_being_kept_alive(emulator, monkeypatch):
    registered = []
    monkeypatch.setattr(gg_flask.atexit, "register", registered.append)
    app, _ = make_app(config_for(emulator))
    client = app.extensions["genesys_gateway"]
    assert len(registered) == 1
    registered[0]()  # what the interpreter does at exit
    with pytest.raises(gg.GatewayError):
        client.executor()
    registered[0]()  # idempotent


def test_secret_not_in_reprs(emulator, closing):
    app, ext = make_app(config_for(emulator))
    closing(app)
    assert SECRET not in repr(app.extensions["genesys_gateway"])
    assert SECRET not in repr(ext)
