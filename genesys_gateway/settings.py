"""Build a client from settings: environment variables, Flask config, Django settings.

One code path for all three, so that a missing or malformed value gets the same clear
message everywhere, naming the setting (and never showing a secret's value).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Callable, Mapping

from .http.auth import BearerToken, ClientCredentials
from .errors import ConfigurationError
from .http.transport import check_url

if TYPE_CHECKING:
    from .client import GatewayClient
    from .http.tokens import TokenStore
    from .tools.registry import ToolRegistry

__all__ = ["client_from_settings", "client_from_env", "ENV_NAMES"]

# settings key -> environment variable (Genesys's own tools' names where they exist)
ENV_NAMES = {
    "CLIENT_ID": "GENESYSCLOUD_OAUTHCLIENT_ID",
    "CLIENT_SECRET": "GENESYSCLOUD_OAUTHCLIENT_SECRET",
    "REGION": "GENESYSCLOUD_REGION",
    "ACCESS_TOKEN": "GENESYSCLOUD_ACCESS_TOKEN",
    "BASE_URL": "GENESYS_GATEWAY_BASE_URL",
    "TOKEN_URL": "GENESYS_GATEWAY_TOKEN_URL",
    "MODEL": "GENESYS_GATEWAY_MODEL",
    "PATH": "GENESYS_GATEWAY_PATH",
}

_KNOWN = frozenset(ENV_NAMES)
_INT_OPTIONS = frozenset({"max_iterations", "tool_workers", "max_tool_result_chars", "max_repeated_calls"})
_FLOAT_OPTIONS = frozenset({"tool_timeout", "timeout"})
_BOOL_OPTIONS = frozenset({"allow_insecure_http", "audit_payloads"})
_OBJECT_OPTIONS = frozenset({"transport", "retry"})
_OPTIONS = _INT_OPTIONS | _FLOAT_OPTIONS | _BOOL_OPTIONS | _OBJECT_OPTIONS


def client_from_settings(
    values: Mapping[str, Any],
    *,
    describe: Callable[[str], str] = lambda key: key,
    token_store: "TokenStore | None" = None,
    tools: "ToolRegistry | None" = None,
    **overrides: Any,
) -> "GatewayClient":
    """A client from upper-case keys (``BASE_URL``/``REGION``, ``TOKEN_URL``, ``CLIENT_ID``,
    ``CLIENT_SECRET`` or ``ACCESS_TOKEN``, ``MODEL``, ``PATH``; any other key is a client
    option, lower-cased: ``MAX_ITERATIONS`` -> ``max_iterations``).

    ``describe(key)`` names a key in error messages (``GENESYS_GATEWAY_CLIENT_ID``,
    ``settings.GENESYS_GATEWAY['CLIENT_ID']``...)."""
    from .client import GatewayClient

    def get(key: str) -> str | None:
        value = values.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ConfigurationError(f"{describe(key)} must be a string")
        return value.strip() or None  # whitespace only counts as unset

    region, base_url = get("REGION"), get("BASE_URL")
    if region is None and base_url is None:
        raise ConfigurationError(f"set {describe('REGION')} or {describe('BASE_URL')}")
    kwargs: dict[str, Any] = {}
    try:
        if region is not None:
            kwargs["region"] = region
            from .regions import resolve_region

            resolve_region(region)
    except ConfigurationError as e:
        raise ConfigurationError(f"{describe('REGION')}: {e}") from None
    if base_url is not None:
        kwargs["base_url"] = base_url
    for key in ("MODEL", "PATH"):
        if get(key) is not None:
            kwargs[key.lower()] = get(key)

    access_token = get("ACCESS_TOKEN")
    client_id, client_secret = get("CLIENT_ID"), values.get("CLIENT_SECRET") or None
    if access_token is not None:
        kwargs["auth"] = BearerToken(access_token)
    elif client_id is None and client_secret is None:
        raise ConfigurationError(
            f"set {describe('CLIENT_ID')} and {describe('CLIENT_SECRET')} (or {describe('ACCESS_TOKEN')})"
        )
    elif client_id is None:
        raise ConfigurationError(f"{describe('CLIENT_ID')} is missing")
    elif client_secret is None:
        raise ConfigurationError(f"{describe('CLIENT_SECRET')} is missing")
    elif not isinstance(client_secret, str):
        raise ConfigurationError(f"{describe('CLIENT_SECRET')} must be a string")
    else:
        kwargs["auth"] = ClientCredentials(client_id, client_secret, get("TOKEN_URL"), store=token_store)

    for key, value in values.items():
        if key in _KNOWN or not isinstance(key, str) or value is None:
            continue
        option = key.lower()
        if option == "params":
            kwargs.update(_model_parameters(value, describe(key)))
        elif option in _OPTIONS:
            kwargs[option] = _coerce(option, value, describe(key))
        else:  # a typo must not become a parameter posted to the model endpoint
            raise ConfigurationError(
                f"{describe(key)} is not a known setting (model parameters such as temperature "
                f"go in {describe('PARAMS')})")
    if tools is not None:
        kwargs["tools"] = tools
    kwargs.update(overrides)
    # check the values that came from settings here, so that errors name the setting
    insecure = kwargs.get("allow_insecure_http") is True
    for key, value in (("BASE_URL", base_url if "base_url" not in overrides else None),
                       ("TOKEN_URL", get("TOKEN_URL"))):
        if value is not None:
            check_url(value, allow_insecure_http=insecure, what=describe(key))
    path = get("PATH")
    if "path" not in overrides and path is not None and not path.startswith("/"):
        raise ConfigurationError(f"{describe('PATH')} must start with '/', got {path!r}")
    try:
        return GatewayClient(**kwargs)
    except ConfigurationError as e:
        raise ConfigurationError(f"invalid settings: {e}") from None
    except TypeError as e:
        raise ConfigurationError(f"invalid settings: {e}") from None


def _coerce(option: str, value: Any, name: str) -> Any:
    if option in _INT_OPTIONS or option in _FLOAT_OPTIONS:
        number = value
        if isinstance(value, str):
            try:
                number = int(value) if option in _INT_OPTIONS else float(value)
            except ValueError:
                raise ConfigurationError(f"{name} must be a number, got {value!r}") from None
        if isinstance(number, (int, float)) and not isinstance(number, bool) and not number > 0:
            raise ConfigurationError(f"{name} must be a positive number, got {value!r}")
        return number
    if not isinstance(value, str):
        return value
    if option in _BOOL_OPTIONS:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ConfigurationError(f"{name} must be true or false, got {value!r}")
    return value


def _model_parameters(value: Any, name: str) -> dict:
    """``PARAMS``: model parameters sent with every call, as a mapping or a JSON object text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigurationError(f"{name} must be a JSON object of model parameters") from None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigurationError(f"{name} must be a mapping of model parameters, got {type(value).__name__}")
    from .client import GatewayClient
    import inspect

    reserved = set(inspect.signature(GatewayClient).parameters) - {"params"}
    clash = sorted(set(value) & reserved)
    if clash:
        raise ConfigurationError(f"{name} holds client options, not model parameters: {', '.join(clash)}")
    return dict(value)


def client_from_env(environ: Mapping[str, str] | None = None, **overrides: Any) -> "GatewayClient":
    """A client from ``GENESYSCLOUD_OAUTHCLIENT_ID``/``_SECRET``, ``GENESYSCLOUD_REGION``,
    ``GENESYSCLOUD_ACCESS_TOKEN`` and ``GENESYS_GATEWAY_BASE_URL``/``_TOKEN_URL``/``_MODEL``/
    ``_PATH``. ``GENESYSCLOUD_REGION`` may be a key, a domain or an API URL."""
    env = os.environ if environ is None else environ
    values = {key: env.get(var) for key, var in ENV_NAMES.items()}
    return client_from_settings(values, describe=lambda key: ENV_NAMES.get(key, key), **overrides)
