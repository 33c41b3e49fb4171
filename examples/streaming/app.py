"""A page that streams a tool-calling run to the browser with server-sent events.

    pip install 'genesys_gateway[flask]'
    python examples/streaming/app.py            # the embedded GatewayEmulator plays the model
    python examples/streaming/app.py --live     # a real gateway, from GENESYSCLOUD_* variables

then open http://127.0.0.1:5000/. The page (``index.html``) opens an ``EventSource`` on
``/stream?prompt=...``, shows the answer's text as it arrives and one line per tool call
as it runs and finishes. Closing the tab closes the response, which stops the run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import time
from typing import Any, Iterator

from flask import Flask, Response, request, send_from_directory

import genesys_gateway as gg
from genesys_gateway.contrib.flask import stream_response

HERE = os.path.dirname(os.path.abspath(__file__))

tools = gg.ToolRegistry()


@tools.tool(timeout=5)
def get_weather(city: str) -> dict[str, Any]:
    """Current weather for a city.

    Args:
        city: the city's name.
    """
    time.sleep(0.3)  # a backend call
    return {"city": city, "temperature_c": 18, "sky": "sunny"}


def responder(body: dict[str, Any]) -> dict[str, Any]:
    """Play the model on the emulator: ask for the weather, then answer from the result."""
    from genesys_gateway.testing import reply, tool_call

    messages = body["messages"]
    last = messages[-1]
    if last["role"] != "tool":
        words = re.findall(r"[A-Z][\w-]+", str(last.get("content") or ""))
        city = words[-1] if len(words) > 1 else "Oslo"
        return reply(content=f"Let me check the weather in {city}. ",
                     tool_calls=[tool_call("get_weather", {"city": city})])
    weather = json.loads(last["content"])
    return reply(content=f"In {weather['city']} it is {weather['temperature_c']}°C and "
                         f"{weather['sky']}: a fine day for a walk.")


def create_app(client: gg.GatewayClient) -> Flask:
    """The page at ``/`` and the event stream at ``/stream?prompt=...``."""
    app = Flask(__name__)

    @app.get("/")
    def index() -> Response:
        return send_from_directory(HERE, "index.html")

    @app.get("/stream")
    def stream() -> Response | tuple[str, int]:
        prompt = request.args.get("prompt", "").strip()
        if not prompt:
            return "a prompt is required", 400
        return stream_response(client.stream(prompt))

    return app


@contextlib.contextmanager
def emulated_client() -> Iterator[gg.GatewayClient]:
    """A client of an embedded GatewayEmulator that plays the model with :func:`responder`."""
    from genesys_gateway.testing import GatewayEmulator

    with GatewayEmulator(responder=responder) as emulator:
        auth = gg.ClientCredentials("demo", "demo-secret", token_url=emulator.token_url)
        with gg.GatewayClient(base_url=emulator.url, auth=auth, tools=tools) as client:
            yield client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live", action="store_true", help="use a real gateway (GENESYSCLOUD_*)")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    if args.live:
        with gg.GatewayClient.from_env(tools=tools) as client:
            create_app(client).run(port=args.port, threaded=True)
        return
    with emulated_client() as client:
        create_app(client).run(port=args.port, threaded=True)


if __name__ == "__main__":
    main()
