"""What importing the package costs: a user's first lines load no optional extra and none of
the machinery a plain client does not use; every public name still resolves."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

import genesys_gateway as gg
import genesys_gateway.tools as gg_tools

ROOT = pathlib.Path(__file__).resolve().parents[1]

FIRST_LINES = "import genesys_gateway as gg; gg.GatewayClient; gg.ToolRegistry"

#: Never loaded by the first lines: the extras, and what only some paths need.
NOT_LOADED = (
    "opentelemetry", "redis", "django", "flask", "requests", "urllib3", "jsonschema",
    "asyncio",  # async def handlers only
    "concurrent",  # the tool pool hands work over without concurrent.futures
    "ssl", "http.client",  # with the default transport, when the first client is made
    "email",  # Retry-After as an HTTP date
    "uuid",  # the first run's conversation id
    "fastjsonschema",  # the first tool schema compiled
    "typing_extensions",  # looked up in sys.modules: its TypedDicts exist only once imported
    "genesys_gateway.conversation", "genesys_gateway.state", "genesys_gateway.stream",
    "genesys_gateway.loop", "genesys_gateway.output", "genesys_gateway.testing",
    "genesys_gateway.tools.executor", "genesys_gateway.http.urllib3_transport",
    "genesys_gateway.streamed", "genesys_gateway.http.sse", "genesys_gateway.deltas",
    "genesys_gateway.tools.schema",  # schemas from type hints: with the first @tool
    "genesys_gateway.tools.validation", "genesys_gateway.tools.draft07",  # the first tool
)


def loaded_after(code: str) -> set[str]:
    script = (f"import json, sys; {code}; "
              "print(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=str(ROOT), timeout=60)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


def test_first_lines_load_nothing_optional_or_unused():
    modules = loaded_after(FIRST_LINES)
    assert "genesys_gateway.client" in modules and "genesys_gateway.tools.registry" in modules
    loaded = sorted(name for name in NOT_LOADED
                    if name in modules or any(m.startswith(name + ".") for m in modules))
    assert loaded == []


def test_a_run_loads_what_it_needs_on_first_use():
    code = (f"{FIRST_LINES}; from genesys_gateway.testing import GatewayEmulator; "
            "emulator = GatewayEmulator().start(); "  # it echoes the user's message
            "client = gg.GatewayClient(base_url=emulator.url, auth=gg.BearerToken(emulator.issue_token())); "
            "assert 'hello' in client.run('hello').content; client.close(); emulator.close()")
    modules = loaded_after(code)
    assert {"urllib3", "uuid", "genesys_gateway.loop", "genesys_gateway.tools.executor"} <= modules


@pytest.mark.parametrize("module", [gg, gg_tools], ids=["genesys_gateway", "tools"])
def test_every_public_name_resolves_and_is_listed(module):
    for name in module.__all__:
        assert getattr(module, name) is not None
    assert set(module.__all__) <= set(dir(module))
    namespace: dict[str, object] = {}
    exec(f"from {module.__name__} import *", namespace)
    assert set(module.__all__) <= set(namespace)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        gg.NoSuchThing  # noqa: B018
    with pytest.raises(ImportError):
        exec("from genesys_gateway import NoSuchThing", {})
