"""The Django app config: checks ``settings.GENESYS_GATEWAY`` once at start-up."""

from __future__ import annotations

from django.apps import AppConfig


class GenesysGatewayConfig(AppConfig):  # type: ignore[misc]  # Django ships no types
    """``INSTALLED_APPS += ["genesys_gateway.contrib.django"]``.

    :meth:`ready` validates ``settings.GENESYS_GATEWAY`` and raises
    ``ImproperlyConfigured`` naming the missing or invalid key, so a misconfigured
    deployment fails when it starts rather than on its first request. The client itself
    is created lazily by :func:`genesys_gateway.contrib.django.get_client` (in each worker,
    after any fork).
    """

    name = "genesys_gateway.contrib.django"
    label = "genesys_gateway"
    verbose_name = "Genesys Cloud LLM Gateway"

    def ready(self) -> None:
        from . import validate_settings

        validate_settings()
