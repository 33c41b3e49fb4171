"""Flask extension: one shared :class:`~genesys_gateway.GatewayClient` per process.

::

    from genesys_gateway.contrib.flask import GenesysGateway

    gateway = GenesysGateway(tools=registry)      # module level

    def create_app():
        app = Flask(__name__)
        app.config.from_prefixed_env()            # FLASK_GENESYS_GATEWAY_* variables
        gateway.init_app(app)
        return app

    @bp.post("/ask")
    def ask():
        return gateway.client.run(request.json["prompt"]).content

Configuration keys: ``GENESYS_GATEWAY_BASE_URL`` or ``GENESYS_GATEWAY_REGION``,
``GENESYS_GATEWAY_CLIENT_ID`` and ``GENESYS_GATEWAY_CLIENT_SECRET`` (or
``GENESYS_GATEWAY_ACCESS_TOKEN``), and optionally ``GENESYS_GATEWAY_TOKEN_URL``,
``GENESYS_GATEWAY_MODEL``, ``GENESYS_GATEWAY_PATH``, ``GENESYS_GATEWAY_TOOLS``
(``"module:attribute"`` naming a ``ToolRegistry``, used when ``tools=`` is not given) and
any other ``GENESYS_GATEWAY_<OPTION>`` as a client option (``GENESYS_GATEWAY_MAX_ITERATIONS``
becomes ``max_iterations=``). Keyword arguments given to :class:`GenesysGateway` (a
``transport=``, ``retry=``, ``token_store=``...) are passed to the client as they are.

The client is built in :meth:`GenesysGateway.init_app` (construction does no network I/O,
so this is safe before a server forks its workers), stored as
``app.extensions["genesys_gateway"]`` and closed when the process exits. It is
thread-safe: every request of every thread shares its connection pool and its token.
A bad setting raises :class:`~genesys_gateway.errors.ConfigurationError` naming the
configuration key, at start-up rather than on the first request.
"""

from __future__ import annotations

import atexit
import logging
import weakref
from typing import TYPE_CHECKING, Any

from ..tools.loading import load_registry

if TYPE_CHECKING:
    from flask import Flask, Response

    from ..stream import RunStream

    from ..client import GatewayClient
    from ..tools.registry import ToolRegistry

__all__ = ["GenesysGateway", "stream_response", "CONFIG_PREFIX", "EXTENSION_NAME"]

logger = logging.getLogger("genesys_gateway.contrib")

#: The prefix of the extension's keys in ``app.config``.
CONFIG_PREFIX = "GENESYS_GATEWAY_"
#: The client's key in ``app.extensions``.
EXTENSION_NAME = "genesys_gateway"


class GenesysGateway:
    """The extension. ``GenesysGateway(app)`` or ``GenesysGateway()`` + ``init_app(app)``.

    Args:
        app: the Flask app to initialise now, or ``None`` (call :meth:`init_app` later).
        tools: the ``ToolRegistry`` for the client (else ``GENESYS_GATEWAY_TOOLS``).
        **client_kwargs: passed to the client unchanged, after the configuration
            (``token_store=`` picks where OAuth tokens are kept; default: in memory).
    """

    def __init__(self, app: "Flask | None" = None, *, tools: "ToolRegistry | None" = None,
                 **client_kwargs: Any) -> None:
        self._tools = tools
        self._client_kwargs = client_kwargs
        self._apps: list[weakref.ref[Flask]] = []
        if app is not None:
            self.init_app(app)

    def init_app(self, app: "Flask") -> None:
        """Build the app's client from its configuration and register it."""
        values = {
            key[len(CONFIG_PREFIX):]: value
            for key, value in app.config.items()
            if isinstance(key, str) and key.startswith(CONFIG_PREFIX)
        }
        tools_spec = values.pop("TOOLS", None)
        tools = self._tools
        if tools is None and tools_spec not in (None, ""):
            tools = load_registry(tools_spec, what=CONFIG_PREFIX + "TOOLS")
        kwargs = dict(self._client_kwargs)
        token_store = kwargs.pop("token_store", None)
        from ..client import GatewayClient

        client = GatewayClient.from_settings(
            values,
            describe=lambda key: CONFIG_PREFIX + key,
            token_store=token_store,
            tools=tools,
            **kwargs,
        )
        previous = app.extensions.get(EXTENSION_NAME)
        app.extensions[EXTENSION_NAME] = client
        if previous is not None and previous is not client:
            previous.close()  # init_app called again for the same app (tests, reloads)
        _close_at_exit(client)
        self._apps = [ref for ref in self._apps if ref() is not None and ref() is not app]
        self._apps.append(weakref.ref(app))
        logger.debug("genesys_gateway client ready for app %s: %r", app.name, client)

    @property
    def client(self) -> "GatewayClient":
        """The shared client of the current app (or of the only app initialised)."""
        from flask import current_app, has_app_context

        if has_app_context():
            client: GatewayClient | None = current_app.extensions.get(EXTENSION_NAME)
            if client is not None:
                return client
        apps = [app for app in (ref() for ref in self._apps) if app is not None]
        if len(apps) == 1:
            only: GatewayClient = apps[0].extensions[EXTENSION_NAME]
            return only
        if not apps:
            raise RuntimeError("GenesysGateway.init_app(app) has not been called")
        raise RuntimeError(
            "GenesysGateway is used by several apps: access .client inside an app context"
        )

    def __repr__(self) -> str:
        return f"GenesysGateway(apps={len(self._apps)})"


def _close_at_exit(client: "GatewayClient") -> None:
    """Close ``client`` when the interpreter exits, without keeping it alive until then."""
    ref = weakref.ref(client)

    def close() -> None:
        c = ref()
        if c is not None:
            c.close()

    atexit.register(close)


def stream_response(stream: "RunStream") -> "Response":
    """A streaming ``flask.Response`` of the run's events as server-sent events
    (:func:`genesys_gateway.sse`), with ``Cache-Control: no-cache`` and
    ``X-Accel-Buffering: no``::

        @app.get("/stream")
        def stream():
            return stream_response(gateway.client.stream(request.args["prompt"]))

    When the response is closed (the server closes it when the browser goes away) the run
    stops and ends ``"cancelled"``. The body runs after the view has returned, outside its
    request context: read what the run needs from ``request`` before."""
    from flask import Response

    from ..web import CONTENT_TYPE, HEADERS, sse

    return Response(sse(stream), headers=dict(HEADERS), content_type=CONTENT_TYPE)
