"""A tool snapshot's definitions are encoded once and spliced into each request body: the
body must be byte for byte what encoding the whole payload gives."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

import genesys_gateway as gg
from genesys_gateway.payload import json_body
from genesys_gateway.tools.definitions import EncodedDefinitions

TEXT = st.text(max_size=8)
JSON = st.recursive(st.none() | st.booleans() | st.integers() | TEXT,
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                    max_leaves=8)


def plain(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")


@settings(max_examples=300, deadline=None)
@given(before=st.dictionaries(TEXT.filter(lambda k: k != "tools"), JSON, max_size=3),
       after=st.dictionaries(TEXT.filter(lambda k: k != "tools"), JSON, max_size=3),
       definitions=st.lists(st.dictionaries(TEXT, JSON, max_size=3), min_size=1, max_size=3))
def test_a_spliced_body_is_the_whole_payload_encoded(before, after, definitions):
    payload = {**before, "tools": EncodedDefinitions(definitions)}
    payload.update({k: v for k, v in after.items() if k not in before})
    expected = plain({k: (list(v) if k == "tools" else v) for k, v in payload.items()})
    assert json_body(payload) == expected
    json.loads(json_body(payload))  # and it is JSON


def test_a_toolset_offers_its_definitions_encoded_once():
    registry = gg.ToolRegistry()

    @registry.tool
    def echo(text: str) -> str:
        """Say it back."""
        return text

    snapshot = registry.snapshot()
    assert type(snapshot.definitions) is EncodedDefinitions
    assert json.loads(snapshot.definitions.encoded) == list(snapshot.definitions)
    assert registry.definitions() == list(snapshot.definitions)


def test_the_request_the_server_receives_is_unchanged():
    """A run offering a registry's tools sends them as the definitions say."""
    from genesys_gateway.testing import GatewayEmulator, reply

    registry = gg.ToolRegistry()

    @registry.tool
    def echo(text: str) -> str:
        """Say it back."""
        return text

    with GatewayEmulator() as emulator:
        emulator.script(reply(content="done"))
        with gg.GatewayClient(base_url=emulator.url, tools=registry, temperature=0.5,
                              auth=gg.ClientCredentials("id", "secret", token_url=emulator.token_url)) as client:
            assert client.run("hi").content == "done"
        body = emulator.requests[-1].json
    assert list(body) [:3] == ["model", "messages", "tools"]
    assert body["tools"] == registry.definitions() and body["temperature"] == 0.5
