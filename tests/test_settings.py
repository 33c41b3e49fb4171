"""``GatewayClient.from_env`` and ``settings.client_from_settings``: configuration from
environment variables (or any mapping), with errors that name the variable and never show
a secret."""

import pytest

import genesys_gateway as gg
from genesys_gateway import BearerToken, ClientCredentials, ConfigurationError, GatewayClient
from genesys_gateway.constants import DEFAULT_MODEL, DEFAULT_PATH
from genesys_gateway.settings import ENV_NAMES

client_from_settings = GatewayClient.from_settings
from genesys_gateway.testing import GatewayEmulator

SECRET = "env-s3cr3t-value"
CREDENTIALS = {"GENESYSCLOUD_OAUTHCLIENT_ID": "env-client", "GENESYSCLOUD_OAUTHCLIENT_SECRET": SECRET}


@pytest.fixture
def clients():
    made = []
    yield made
    for client in made:
        client.close()


def from_env(clients, environ, **overrides):
    client = GatewayClient.from_env(environ, **overrides)
    clients.append(client)
    return client


def config_error(environ, **overrides):
    with pytest.raises(ConfigurationError) as info:
        GatewayClient.from_env(environ, **overrides).close()
    message = str(info.value)
    assert SECRET not in message and SECRET not in repr(info.value)
    return message


# -- regions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("region, key, domain", [
    ("eu-west-1", "eu-west-1", "mypurecloud.ie"),
    ("  AP-SOUTHEAST-2 ", "ap-southeast-2", "mypurecloud.com.au"),
    ("mypurecloud.de", "eu-central-1", "mypurecloud.de"),
    ("https://api.usw2.pure.cloud", "us-west-2", "usw2.pure.cloud"),
    ("https://api.mypurecloud.jp/", "ap-northeast-1", "mypurecloud.jp"),
], ids=["key", "key-case-and-spaces", "domain", "api-url", "api-url-slash"])
def test_region_key_domain_or_url(clients, region, key, domain):
    client = from_env(clients, {"GENESYSCLOUD_REGION": region, **CREDENTIALS})
    assert client.region.key == key
    assert client.base_url == f"https://api.{domain}"
    assert client.url == f"https://api.{domain}{DEFAULT_PATH}"
    assert client.model == DEFAULT_MODEL
    assert isinstance(client.auth, ClientCredentials)
    assert client.auth.client_id == "env-client"
    assert client.auth.token_url == f"https://login.{domain}/oauth/token"


def test_access_token_gives_a_bearer_token(clients):
    client = from_env(clients, {"GENESYSCLOUD_REGION": "us-east-1", "GENESYSCLOUD_ACCESS_TOKEN": " tok-123 "})
    assert isinstance(client.auth, BearerToken)
    assert client.auth.authorization(None) == "Bearer tok-123"
    assert "tok-123" not in repr(client.auth)


def test_access_token_wins_over_client_credentials(clients):
    client = from_env(clients, {"GENESYSCLOUD_REGION": "us-east-1", "GENESYSCLOUD_ACCESS_TOKEN": "tok",
                                **CREDENTIALS})
    assert isinstance(client.auth, BearerToken)


# -- gateway variables -----------------------------------------------------------------------


def test_base_url_token_url_model_and_path_are_honored(clients):
    client = from_env(clients, {
        "GENESYS_GATEWAY_BASE_URL": "https://gateway.example.com/",
        "GENESYS_GATEWAY_TOKEN_URL": "https://auth.example.com/oauth2/token",
        "GENESYS_GATEWAY_MODEL": "gpt-4o-mini",
        "GENESYS_GATEWAY_PATH": "/v1/chat/completions",
        **CREDENTIALS,
    })
    assert client.region is None
    assert client.url == "https://gateway.example.com/v1/chat/completions"
    assert client.model == "gpt-4o-mini"
    assert client.auth.token_url == "https://auth.example.com/oauth2/token"


def test_base_url_overrides_the_region_url_but_keeps_its_token_url(clients):
    client = from_env(clients, {"GENESYSCLOUD_REGION": "eu-west-1",
                                "GENESYS_GATEWAY_BASE_URL": "https://proxy.example.com", **CREDENTIALS})
    assert client.url == "https://proxy.example.com" + DEFAULT_PATH
    assert client.auth.token_url == "https://login.mypurecloud.ie/oauth/token"


@pytest.mark.parametrize("base_url, token_url", [
    ("https://api.mypurecloud.de", "https://login.mypurecloud.de/oauth/token"),
    ("https://gateway.example.com", "https://gateway.example.com/oauth/token"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080/oauth/token"),
])
def test_token_url_defaults_from_the_base_url(clients, base_url, token_url):
    client = from_env(clients, {"GENESYS_GATEWAY_BASE_URL": base_url, **CREDENTIALS})
    assert client.auth.token_url == token_url


def test_empty_and_blank_variables_count_as_unset(clients):
    client = from_env(clients, {"GENESYSCLOUD_REGION": "us-east-1", "GENESYS_GATEWAY_BASE_URL": "",
                                "GENESYS_GATEWAY_MODEL": "   ", "GENESYS_GATEWAY_PATH": "",
                                "GENESYSCLOUD_ACCESS_TOKEN": "", **CREDENTIALS})
    assert client.url == "https://api.mypurecloud.com" + DEFAULT_PATH
    assert client.model == DEFAULT_MODEL
    assert isinstance(client.auth, ClientCredentials)


def test_keyword_overrides_win_over_the_environment(clients):
    tools = gg.ToolRegistry()
    client = from_env(clients, {"GENESYSCLOUD_REGION": "us-east-1", "GENESYS_GATEWAY_MODEL": "from-env",
                                **CREDENTIALS}, model="from-code", tools=tools, max_iterations=9)
    assert client.model == "from-code"
    assert client.tools is tools
    assert client.max_iterations == 9


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("environ, names", [
    ({}, ["GENESYSCLOUD_REGION", "GENESYS_GATEWAY_BASE_URL"]),
    ({"GENESYSCLOUD_REGION": "us-east-1"},
     ["GENESYSCLOUD_OAUTHCLIENT_ID", "GENESYSCLOUD_OAUTHCLIENT_SECRET", "GENESYSCLOUD_ACCESS_TOKEN"]),
    ({"GENESYSCLOUD_REGION": "us-east-1", "GENESYSCLOUD_OAUTHCLIENT_SECRET": SECRET},
     ["GENESYSCLOUD_OAUTHCLIENT_ID is missing"]),
    ({"GENESYSCLOUD_REGION": "us-east-1", "GENESYSCLOUD_OAUTHCLIENT_ID": "   ",
      "GENESYSCLOUD_OAUTHCLIENT_SECRET": SECRET}, ["GENESYSCLOUD_OAUTHCLIENT_ID is missing"]),
    ({"GENESYSCLOUD_REGION": "us-east-1", "GENESYSCLOUD_OAUTHCLIENT_ID": "env-client"},
     ["GENESYSCLOUD_OAUTHCLIENT_SECRET is missing"]),
    ({"GENESYSCLOUD_REGION": "mars-1", **CREDENTIALS}, ["GENESYSCLOUD_REGION", "'mars-1'"]),
    ({"GENESYSCLOUD_REGION": "https://api.mypurecloud.com/api/v2", **CREDENTIALS}, ["GENESYSCLOUD_REGION"]),
    ({"GENESYSCLOUD_REGION": "http://api.mypurecloud.com", **CREDENTIALS}, ["GENESYSCLOUD_REGION"]),
    ({"GENESYS_GATEWAY_BASE_URL": "ftp://gateway.example.com", **CREDENTIALS}, ["GENESYS_GATEWAY_BASE_URL"]),
    ({"GENESYS_GATEWAY_BASE_URL": "gateway.example.com", **CREDENTIALS}, ["GENESYS_GATEWAY_BASE_URL"]),
    ({"GENESYS_GATEWAY_BASE_URL": "http://gateway.example.com", **CREDENTIALS},
     ["GENESYS_GATEWAY_BASE_URL", "http://"]),
    ({"GENESYS_GATEWAY_BASE_URL": f"https://env-client:{SECRET}@gateway.example.com", **CREDENTIALS},
     ["GENESYS_GATEWAY_BASE_URL", "credentials"]),
    ({"GENESYSCLOUD_REGION": "us-east-1", "GENESYS_GATEWAY_TOKEN_URL": "not a url", **CREDENTIALS},
     ["GENESYS_GATEWAY_TOKEN_URL"]),
    ({"GENESYSCLOUD_REGION": "us-east-1", "GENESYS_GATEWAY_PATH": "v1/chat", **CREDENTIALS},
     ["GENESYS_GATEWAY_PATH", "'/'"]),
], ids=["nothing", "no-credentials", "no-id", "blank-id", "no-secret", "unknown-region",
        "region-url-with-path", "region-url-http", "base-url-scheme", "base-url-no-scheme",
        "base-url-plain-http", "base-url-with-credentials", "token-url", "path"])
def test_missing_or_malformed_variables_are_named(environ, names):
    message = config_error(environ)
    for name in names:
        assert name in message


def test_non_string_values_are_named_without_showing_them():
    message = config_error({"GENESYSCLOUD_REGION": "us-east-1", "GENESYSCLOUD_OAUTHCLIENT_ID": "env-client",
                            "GENESYSCLOUD_OAUTHCLIENT_SECRET": 12345678})
    assert "GENESYSCLOUD_OAUTHCLIENT_SECRET must be a string" in message
    assert "12345678" not in message
    assert "GENESYS_GATEWAY_MODEL" in config_error({"GENESYSCLOUD_REGION": "us-east-1", **CREDENTIALS,
                                                    "GENESYS_GATEWAY_MODEL": 4})


def test_configuration_error_is_a_gateway_error_and_a_value_error():
    with pytest.raises(gg.GatewayError):
        GatewayClient.from_env({})
    with pytest.raises(ValueError):
        GatewayClient.from_env({})


# -- os.environ --------------------------------------------------------------------------------


@pytest.fixture
def clean_environ(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith(("GENESYSCLOUD_", "GENESYS_GATEWAY_")):
            monkeypatch.delenv(name)
    return monkeypatch


def test_from_env_reads_os_environ(clients, clean_environ):
    clean_environ.setenv("GENESYSCLOUD_REGION", "eu-central-1")
    clean_environ.setenv("GENESYSCLOUD_OAUTHCLIENT_ID", "process-client")
    clean_environ.setenv("GENESYSCLOUD_OAUTHCLIENT_SECRET", SECRET)
    clean_environ.setenv("GENESYS_GATEWAY_MODEL", "gpt-4.1")
    client = GatewayClient.from_env()
    clients.append(client)
    assert client.url == "https://api.mypurecloud.de" + DEFAULT_PATH
    assert client.model == "gpt-4.1"
    assert client.auth.client_id == "process-client"
    assert client.auth.token_url == "https://login.mypurecloud.de/oauth/token"


def test_from_env_with_an_empty_os_environ_names_what_to_set(clean_environ):
    with pytest.raises(ConfigurationError, match="GENESYSCLOUD_REGION or GENESYS_GATEWAY_BASE_URL"):
        GatewayClient.from_env()


def test_an_explicit_mapping_is_used_instead_of_os_environ(clients, clean_environ):
    clean_environ.setenv("GENESYSCLOUD_REGION", "eu-central-1")
    clean_environ.setenv("GENESYSCLOUD_ACCESS_TOKEN", "process-token")
    client = from_env(clients, {"GENESYSCLOUD_REGION": "eu-west-1", **CREDENTIALS})
    assert client.region.key == "eu-west-1"
    assert isinstance(client.auth, ClientCredentials)


# -- end to end --------------------------------------------------------------------------------


def test_from_env_client_talks_to_an_emulator(clients):
    with GatewayEmulator(client_id="env-client", client_secret=SECRET) as em:
        client = from_env(clients, {"GENESYS_GATEWAY_BASE_URL": em.url,
                                    "GENESYS_GATEWAY_TOKEN_URL": em.token_url,
                                    "GENESYS_GATEWAY_MODEL": "gpt-4o-mini", **CREDENTIALS})
        response = client.complete([{"role": "user", "content": "hi there"}])
        again = client.complete([{"role": "user", "content": "again"}])
        assert response.message.content == "Echo: hi there"
        assert again.message.content == "Echo: again"
        assert em.token_requests == 1  # the token is reused
        assert [r["model"] for r in em.chat_requests] == ["gpt-4o-mini", "gpt-4o-mini"]


def test_from_env_access_token_against_an_emulator(clients):
    with GatewayEmulator() as em:
        client = from_env(clients, {"GENESYS_GATEWAY_BASE_URL": em.url,
                                    "GENESYSCLOUD_ACCESS_TOKEN": em.issue_token()})
        assert client.complete([{"role": "user", "content": "ping"}]).message.content == "Echo: ping"
        assert em.token_requests == 0


def test_from_env_wrong_secret_is_refused_without_showing_it(clients):
    with GatewayEmulator(client_id="env-client", client_secret="the-right-one") as em:
        client = from_env(clients, {"GENESYS_GATEWAY_BASE_URL": em.url, **CREDENTIALS},
                          retry=gg.NoRetry())
        with pytest.raises(gg.AuthenticationError) as info:
            client.complete([{"role": "user", "content": "hi"}])
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


# -- client_from_settings ----------------------------------------------------------------------

BASE = {"BASE_URL": "https://gateway.example.com", "CLIENT_ID": "settings-client", "CLIENT_SECRET": SECRET}


def settings_error(values, **kwargs):
    with pytest.raises(ConfigurationError) as info:
        client_from_settings(values, **kwargs).close()
    assert SECRET not in str(info.value)
    return str(info.value)


def describe(key):
    return f"settings.GENESYS_GATEWAY[{key!r}]"


def test_settings_keys_are_the_environment_keys():
    assert set(ENV_NAMES) == {"CLIENT_ID", "CLIENT_SECRET", "REGION", "ACCESS_TOKEN",
                              "BASE_URL", "TOKEN_URL", "MODEL", "PATH"}


def test_settings_build_a_client(clients):
    client = client_from_settings({**BASE, "MODEL": "gpt-4o-mini", "PATH": "/v1/chat"})
    clients.append(client)
    assert client.url == "https://gateway.example.com/v1/chat"
    assert client.model == "gpt-4o-mini"
    assert client.auth.client_id == "settings-client"


@pytest.mark.parametrize("values, expected", [
    ({}, ["settings.GENESYS_GATEWAY['REGION']", "settings.GENESYS_GATEWAY['BASE_URL']"]),
    ({"REGION": "us-east-1"}, ["settings.GENESYS_GATEWAY['CLIENT_ID']",
                               "settings.GENESYS_GATEWAY['CLIENT_SECRET']",
                               "settings.GENESYS_GATEWAY['ACCESS_TOKEN']"]),
    ({"REGION": "us-east-1", "CLIENT_ID": "x"}, ["settings.GENESYS_GATEWAY['CLIENT_SECRET'] is missing"]),
    ({"REGION": "atlantis", "CLIENT_ID": "x", "CLIENT_SECRET": SECRET}, ["settings.GENESYS_GATEWAY['REGION']"]),
    ({**BASE, "BASE_URL": "ftp://x"}, ["settings.GENESYS_GATEWAY['BASE_URL']"]),
    ({**BASE, "TOKEN_URL": "nowhere"}, ["settings.GENESYS_GATEWAY['TOKEN_URL']"]),
    ({**BASE, "PATH": "chat"}, ["settings.GENESYS_GATEWAY['PATH']"]),
    ({**BASE, "REGION": ["us-east-1"]}, ["settings.GENESYS_GATEWAY['REGION'] must be a string"]),
], ids=["nothing", "no-credentials", "no-secret", "bad-region", "bad-base-url", "bad-token-url",
        "bad-path", "region-not-a-string"])
def test_describe_names_the_setting_in_errors(values, expected):
    message = settings_error(values, describe=describe)
    for text in expected:
        assert text in message


def test_without_describe_errors_name_the_bare_key():
    assert "CLIENT_SECRET is missing" in settings_error({"REGION": "us-east-1", "CLIENT_ID": "x"})


def test_numeric_options_are_coerced_from_strings(clients):
    client = client_from_settings({**BASE, "MAX_ITERATIONS": "7", "TOOL_WORKERS": " 3 ",
                                   "MAX_TOOL_RESULT_CHARS": "1000", "MAX_REPEATED_CALLS": "2",
                                   "TOOL_TIMEOUT": "2.5", "TIMEOUT": "12"})
    clients.append(client)
    assert client.max_iterations == 7 and isinstance(client.max_iterations, int)
    assert client.tool_workers == 3
    assert client.max_tool_result_chars == 1000
    assert client.max_repeated_calls == 2
    assert client.tool_timeout == 2.5
    assert (client.timeout.connect, client.timeout.read) == (12.0, 12.0)


def test_typed_option_values_pass_through(clients):
    client = client_from_settings({**BASE, "MAX_ITERATIONS": 4, "PARAMS": {"temperature": 0.2}})
    clients.append(client)
    assert client.max_iterations == 4
    assert client.params == {"temperature": 0.2}  # model parameters come from PARAMS only


@pytest.mark.parametrize("key, value, expected", [
    ("MAX_ITERATIONS", "seven", "must be a number, got 'seven'"),
    ("MAX_ITERATIONS", "7.5", "must be a number"),
    ("TOOL_TIMEOUT", "soon", "must be a number"),
    ("MAX_ITERATIONS", "0", "must be a positive integer"),
    ("TOOL_WORKERS", -2, "must be a positive integer"),
    ("TIMEOUT", "-1", "must be a positive number"),
    ("TOOL_TIMEOUT", "nan", "must be a positive number"),
])
def test_bad_numbers_name_the_setting(key, value, expected):
    message = settings_error({**BASE, key: value}, describe=describe)
    assert message.startswith(describe(key)), message
    assert expected in message


@pytest.mark.parametrize("value, expected", [
    ("true", True), ("1", True), ("YES", True), ("on", True),
    ("false", False), ("0", False), ("no", False), ("Off", False), ("", False),
    (True, True), (False, False),
])
def test_bool_options(clients, value, expected):
    client = client_from_settings({**BASE, "ALLOW_INSECURE_HTTP": value, "AUDIT_PAYLOADS": value})
    clients.append(client)
    assert client.allow_insecure_http is expected
    assert client.audit_payloads is expected


def test_allow_insecure_http_setting_permits_a_plain_http_base_url(clients):
    values = {**BASE, "BASE_URL": "http://gateway.internal:8080"}
    assert "http://" in settings_error(values)
    client = client_from_settings({**values, "ALLOW_INSECURE_HTTP": "true"})
    clients.append(client)
    assert client.url == "http://gateway.internal:8080" + DEFAULT_PATH


def test_a_bad_bool_names_the_setting():
    message = settings_error({**BASE, "AUDIT_PAYLOADS": "maybe"}, describe=describe)
    assert message == "settings.GENESYS_GATEWAY['AUDIT_PAYLOADS'] must be true or false, got 'maybe'"


def test_token_store_and_tools_are_passed_on(clients):
    store = gg.MemoryTokenStore()
    tools = gg.ToolRegistry()
    client = client_from_settings(BASE, token_store=store, tools=tools)
    clients.append(client)
    assert client.auth.store is store
    assert client.tools is tools


def test_model_parameters_go_in_params_and_typos_are_refused():

    base = {"BASE_URL": "http://127.0.0.1:9", "ACCESS_TOKEN": "t"}
    client = client_from_settings({**base, "PARAMS": '{"temperature": 0.2, "max_tokens": 64}'})
    assert client.params == {"temperature": 0.2, "max_tokens": 64}
    client.close()
    client = client_from_settings({**base, "PARAMS": {"user": "alice"}})
    assert client.params == {"user": "alice"}
    client.close()
    with pytest.raises(gg.ConfigurationError) as info:
        client_from_settings({**base, "CLIENT_SECRT": "typo-secret-value"}, describe=lambda k: "GENESYS_GATEWAY_" + k)
    assert "GENESYS_GATEWAY_CLIENT_SECRT" in str(info.value) and "typo-secret-value" not in str(info.value)
    for bad in ("[1]", "{not json", {"model": "x"}):
        with pytest.raises(gg.ConfigurationError) as info:
            client_from_settings({**base, "PARAMS": bad})
        assert "PARAMS" in str(info.value)


def test_keyword_overrides_combine_with_settings():
    http = {"BASE_URL": "http://gateway.internal:8080", "TOKEN_URL": "http://gateway.internal/t",
            "CLIENT_ID": "i", "CLIENT_SECRET": SECRET}
    client = client_from_settings(http, allow_insecure_http=True)  # the override is seen
    assert client.auth.token_url == "http://gateway.internal/t"
    client.close()
    client = client_from_settings({"REGION": "us-east-1"}, auth=gg.BearerToken("t"))
    assert isinstance(client.auth, gg.BearerToken)  # no credentials needed from settings
    client.close()
    client = client_from_settings({"CLIENT_ID": "i", "CLIENT_SECRET": SECRET},
                                  base_url="http://127.0.0.1:9")
    assert client.base_url == "http://127.0.0.1:9"
    client.close()


def test_bad_keyword_overrides_are_not_blamed_on_a_setting():
    with pytest.raises(ConfigurationError) as info:
        GatewayClient.from_env({"GENESYSCLOUD_REGION": "us-east-1",
                                "GENESYSCLOUD_ACCESS_TOKEN": "t"}, tools="x")
    assert str(info.value).startswith("tools must be a ToolRegistry")
    with pytest.raises(ConfigurationError) as info:
        GatewayClient.from_env({"GENESYSCLOUD_REGION": "us-east-1",
                                "GENESYSCLOUD_ACCESS_TOKEN": "t"}, max_iterations=0)
    assert str(info.value).startswith("max_iterations must be")


def test_a_bad_access_token_names_its_setting_not_its_value():
    message = config_error({"GENESYSCLOUD_REGION": "us-east-1",
                            "GENESYSCLOUD_ACCESS_TOKEN": "a b\r\nc"})
    assert message.startswith("GENESYSCLOUD_ACCESS_TOKEN:") and "a b" not in message


def test_setting_names_must_be_strings():
    with pytest.raises(ConfigurationError, match="setting names must be strings"):
        client_from_settings({"BASE_URL": "http://127.0.0.1:9", "ACCESS_TOKEN": "t", 5: "typo"})
