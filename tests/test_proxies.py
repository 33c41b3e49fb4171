"""Proxies, through a real loopback forward proxy: the environment's ``HTTP_PROXY`` /
``ALL_PROXY`` / ``NO_PROXY`` (either case) when ``trust_env``, an explicit ``proxy=`` that
wins, and ``trust_env=False`` that ignores the environment. Both transports alike."""

import base64

import pytest

import genesys_gateway as gg
from genesys_gateway.http.urllib3_transport import no_proxy_matches
from tests.net_helpers import free_port
from tests.proxy_helpers import ForwardProxy

HI = [{"role": "user", "content": "hi"}]
PROXY_VARIABLES = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"]


@pytest.fixture
def env(monkeypatch):
    """A clean proxy environment: none of the variables, in either case."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("REQUEST_METHOD", raising=False)  # CGI: urllib would ignore HTTP_PROXY
    return monkeypatch


@pytest.fixture
def proxy():
    with ForwardProxy() as p:
        yield p


@pytest.fixture
def dead_proxy():
    """A proxy URL nothing listens on: a request sent there fails."""
    return f"http://127.0.0.1:{free_port()}"


def complete(emulator, transport):
    with gg.GatewayClient(base_url=emulator.url, auth=gg.BearerToken(emulator.issue_token()),
                          transport=transport, retry=gg.NoRetry()) as client:
        return client.complete(HI).message.content


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"])
def test_environment_proxy_is_used(env, proxy, emulator, transport_factory, variable):
    env.setenv(variable, proxy.url)
    assert complete(emulator, transport_factory()) == "Echo: hi"
    assert proxy.seen == [("POST", emulator.chat_url)]
    assert emulator.requests[-1].status == 200  # the gateway answered, through the proxy


def test_https_proxy_is_not_used_for_http_targets(env, dead_proxy, emulator, transport_factory):
    env.setenv("HTTPS_PROXY", dead_proxy)
    assert complete(emulator, transport_factory()) == "Echo: hi"


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "localhost,127.0.0.1", "*"])
@pytest.mark.parametrize("case", [str.upper, str.lower])
def test_no_proxy_is_honoured(env, proxy, emulator, transport_factory, no_proxy, case):
    env.setenv(case("HTTP_PROXY"), proxy.url)
    env.setenv(case("NO_PROXY"), no_proxy)
    assert complete(emulator, transport_factory()) == "Echo: hi"
    assert proxy.seen == []


def test_no_proxy_for_another_host_still_proxies(env, proxy, emulator, transport_factory):
    env.setenv("HTTP_PROXY", proxy.url)
    env.setenv("NO_PROXY", "example.com,10.0.0.1")
    assert complete(emulator, transport_factory()) == "Echo: hi"
    assert proxy.seen == [("POST", emulator.chat_url)]


def test_explicit_proxy_wins_over_the_environment(env, proxy, dead_proxy, emulator, transport_factory):
    env.setenv("HTTP_PROXY", dead_proxy)
    env.setenv("ALL_PROXY", dead_proxy)
    assert complete(emulator, transport_factory(proxy=proxy.url)) == "Echo: hi"
    assert proxy.seen == [("POST", emulator.chat_url)]


def test_explicit_proxy_is_used_without_trusting_the_environment(env, proxy, emulator, transport_factory):
    env.setenv("NO_PROXY", "*")
    assert complete(emulator, transport_factory(proxy=proxy.url, trust_env=False)) == "Echo: hi"
    assert proxy.seen == [("POST", emulator.chat_url)]


def test_trust_env_false_ignores_the_environment(env, dead_proxy, emulator, transport_factory):
    env.setenv("HTTP_PROXY", dead_proxy)
    env.setenv("ALL_PROXY", dead_proxy)
    assert complete(emulator, transport_factory(trust_env=False)) == "Echo: hi"


def test_environment_proxy_that_is_down_is_a_refused_transport_error(env, dead_proxy, emulator,
                                                                     transport_factory):
    env.setenv("HTTP_PROXY", dead_proxy)
    with pytest.raises(gg.TransportError) as info:
        complete(emulator, transport_factory())
    assert info.value.kind == "refused" and info.value.retryable
    assert str(info.value).startswith("proxy error:")


def test_proxy_credentials_are_sent_and_never_shown(env, proxy, emulator, transport_factory):
    port = proxy.url.rsplit(":", 1)[1]
    transport = transport_factory(proxy=f"http://user:pa%40ss@127.0.0.1:{port}")
    assert "pa%40ss" not in repr(transport) and "pa@ss" not in repr(transport)
    assert complete(emulator, transport) == "Echo: hi"
    expected = "Basic " + base64.b64encode(b"user:pa@ss").decode()
    assert proxy.proxy_authorization == [expected]


@pytest.mark.parametrize("bad", ["ftp://proxy:21", "proxy:3128", "http://", "", 3128])
def test_explicit_proxy_must_be_an_http_url(transport_factory, bad):
    with pytest.raises(gg.ConfigurationError) as info:
        transport_factory(proxy=bad)
    assert info.value.option == "proxy"


@pytest.mark.parametrize("bad", [None, "yes", 1])
def test_trust_env_must_be_a_bool(transport_factory, bad):
    with pytest.raises(gg.ConfigurationError) as info:
        transport_factory(trust_env=bad)
    assert info.value.option == "trust_env"


@pytest.mark.parametrize("no_proxy, host, port, expected", [
    ("*", "gw.example.com", 443, True),
    ("", "gw.example.com", 443, False),
    ("example.com", "gw.example.com", 443, True),
    (".example.com", "gw.example.com", 443, True),
    ("example.com", "example.com", 443, True),
    ("example.com", "badexample.com", 443, False),
    ("other.com, example.com", "gw.example.com", 443, True),
    ("EXAMPLE.com", "gw.example.com", 443, True),
    ("gw.example.com:443", "gw.example.com", 443, True),
    ("gw.example.com:8443", "gw.example.com", 443, False),
    ("127.0.0.1", "127.0.0.1", 8080, True),
    ("127.0.0.0/8", "127.0.0.2", 8080, True),
    ("10.0.0.0/8", "127.0.0.2", 8080, False),
    ("::1", "::1", 80, True),
    ("[::1]:80", "::1", 80, True),
    ("localhost", "127.0.0.1", 80, False),  # names are not resolved
])
def test_no_proxy_matching(no_proxy, host, port, expected):
    assert no_proxy_matches(no_proxy, host, port) is expected


def test_socks_proxy_needs_pysocks():
    try:
        import socks  # noqa: F401
    except ImportError:
        with pytest.raises(gg.ConfigurationError, match="PySocks") as info:
            gg.Urllib3Transport(proxy="socks5://127.0.0.1:1080")
        assert info.value.option == "proxy"
    else:
        assert repr(gg.Urllib3Transport(proxy="socks5://u:p@127.0.0.1:1080")) == \
            "Urllib3Transport(proxy='socks5://127.0.0.1:1080')"
