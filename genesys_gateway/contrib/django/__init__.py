"""Django integration: ``settings.GENESYS_GATEWAY``, :func:`get_client`, cache token store.

::

    INSTALLED_APPS += ["genesys_gateway.contrib.django"]
    GENESYS_GATEWAY = {
        "REGION": "us-east-1",                 # or "BASE_URL": "https://..."
        "CLIENT_ID": os.environ["GENESYSCLOUD_OAUTHCLIENT_ID"],
        "CLIENT_SECRET": os.environ["GENESYSCLOUD_OAUTHCLIENT_SECRET"],
        "MODEL": "gpt-4o",                     # optional, like TOKEN_URL and PATH
        "TOOLS": "myapp.tools:registry",       # optional "module:attribute" of a ToolRegistry
        "CACHE_ALIAS": "default",              # where OAuth tokens are kept
        "MAX_ITERATIONS": 5,                   # any other key: a client option, lower-cased
    }

    from genesys_gateway.contrib.django import get_client
    answer = get_client().run(prompt).content

Conversations that outlive a request: ``DjangoConversationStore(using="default")`` keeps
them in the database (``python manage.py migrate genesys_gateway`` creates its table).

``ACCESS_TOKEN`` may replace ``CLIENT_ID``/``CLIENT_SECRET``. OAuth tokens live in the
Django cache ``CACHE_ALIAS`` (:class:`~genesys_gateway.contrib.django.cache.DjangoCacheTokenStore`),
so every worker sharing that cache uses one token and only one of them refreshes it.

:func:`get_client` returns one client per process, created on first use (after a
pre-forking server forked its workers), closed at interpreter exit, and replaced when
``GENESYS_GATEWAY`` or ``CACHES`` change (``override_settings`` in tests). Invalid
settings raise ``ImproperlyConfigured`` naming the key, never showing a secret's value.
"""

from __future__ import annotations

import atexit
import logging
import threading
from typing import TYPE_CHECKING, Any, Mapping

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from ...errors import ConfigurationError
from ...tools.loading import load_registry

if TYPE_CHECKING:
    from django.http import StreamingHttpResponse

    from ...client import GatewayClient
    from ...stream import RunStream
    from .conversations import DjangoConversationStore

__all__ = ["get_client", "reset_client", "validate_settings", "stream_response", "SETTING",
           "DjangoConversationStore"]

logger = logging.getLogger("genesys_gateway.contrib")

#: The name of the Django setting read (``settings.GENESYS_GATEWAY``).
SETTING = "GENESYS_GATEWAY"
_RESET_ON = frozenset({SETTING, "CACHES"})

_lock = threading.Lock()
_client: "GatewayClient | None" = None
_atexit_registered = False


def stream_response(stream: "RunStream") -> "StreamingHttpResponse":
    """A ``StreamingHttpResponse`` of the run's events as server-sent events
    (:func:`genesys_gateway.sse`), with ``Cache-Control: no-cache`` and
    ``X-Accel-Buffering: no``::

        def ask(request):
            return stream_response(get_client().stream(request.GET["prompt"]))

    Closing the response (a WSGI server does when the browser goes away) stops the run,
    which ends ``"cancelled"``. Serve it with WSGI: under ASGI Django consumes a
    synchronous iterator in a thread and cannot close it when the client disconnects."""
    from django.http import StreamingHttpResponse

    from ...web import CONTENT_TYPE, HEADERS, sse

    response = StreamingHttpResponse(sse(stream), content_type=CONTENT_TYPE)
    for name, value in HEADERS.items():
        response[name] = value
    return response


def describe(key: str) -> str:
    """How an error message names a key of ``settings.GENESYS_GATEWAY``."""
    return f"settings.{SETTING}['{key}']"


def get_client() -> "GatewayClient":
    """The process-wide client built from ``settings.GENESYS_GATEWAY`` (thread-safe)."""
    global _client, _atexit_registered
    client = _client
    if client is not None:
        return client
    with _lock:
        if _client is None:
            _client = _build_client()
            if not _atexit_registered:
                atexit.register(reset_client)
                _atexit_registered = True
            logger.debug("genesys_gateway client created: %r", _client)
        return _client


def reset_client() -> None:
    """Close the shared client; the next :func:`get_client` builds a new one."""
    global _client
    with _lock:
        client, _client = _client, None
    if client is not None:
        client.close()


def validate_settings() -> None:
    """Check ``settings.GENESYS_GATEWAY`` the way :func:`get_client` uses it (building a
    client does no network I/O), raising ``ImproperlyConfigured`` naming the key."""
    _build_client().close()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in _RESET_ON:
        reset_client()


setting_changed.connect(_on_setting_changed, dispatch_uid="genesys_gateway.reset_client")


def __getattr__(name: str) -> Any:
    """``DjangoConversationStore``, imported on first use: its module imports the model,
    which Django allows only once the app registry is ready (this package is imported
    before that, as the app's config module)."""
    if name == "DjangoConversationStore":
        from .conversations import DjangoConversationStore

        return DjangoConversationStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _build_client() -> "GatewayClient":
    from django.conf import settings

    from ...client import GatewayClient
    from .cache import DjangoCacheTokenStore

    raw = getattr(settings, SETTING, None)
    if raw is None:
        raise ImproperlyConfigured(
            f"settings.{SETTING} is missing: set it to a dict with REGION or BASE_URL and "
            "CLIENT_ID/CLIENT_SECRET (or ACCESS_TOKEN)"
        )
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(f"settings.{SETTING} must be a dict, got {type(raw).__name__}")
    values = {key.upper() if isinstance(key, str) else key: value for key, value in raw.items()}

    alias = values.pop("CACHE_ALIAS", None) or "default"
    if not isinstance(alias, str) or alias not in settings.CACHES:
        raise ImproperlyConfigured(
            f"{describe('CACHE_ALIAS')} is {alias!r}, which is not a key of settings.CACHES"
        )
    try:
        spec = values.pop("TOOLS", None)
        tools = None if spec in (None, "") else load_registry(spec, what=describe("TOOLS"))
        return GatewayClient.from_settings(
            values, describe=describe, token_store=DjangoCacheTokenStore(alias), tools=tools
        )
    except ConfigurationError as e:
        raise ImproperlyConfigured(str(e)) from e
