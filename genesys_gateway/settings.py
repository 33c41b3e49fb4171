"""Client keyword arguments from settings: environment variables, Flask config, Django
settings.

One code path for all three, so that a missing or malformed value gets the same clear
message everywhere, naming the setting (and never showing a secret's value). This module
turns settings into ``GatewayClient(**kwargs)`` arguments and never imports the client:
the client validates its options once, and :func:`settings_errors` renames the option in
its :class:`ConfigurationError` to the setting it came from.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping

import attrs

from .errors import ConfigurationError
from .http.auth import BearerToken, ClientCredentials
from .http.tokens import TokenStore
from .http.transport import check_url
from .options import CLIENT_ARGUMENTS, ClientOptions
from .params import MODEL_PARAMETERS

__all__ = ["client_kwargs", "env_settings", "settings_errors", "ENV_NAMES"]

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
#: Client options a setting may give (``MAX_ITERATIONS`` -> ``max_iterations``), with the
#: type a text value is read as; ``transport``/``retry`` only as objects.
_TEXT_OPTIONS: dict[str, type] = {
    field.name: {"int": int, "float": float, "bool": bool}.get(str(field.type), float)
    for field in attrs.fields(ClientOptions)
    if field.name in ("timeout", "max_iterations", "tool_timeout", "tool_workers",
                      "max_tool_result_chars", "max_repeated_calls", "allow_insecure_http",
                      "audit_payloads", "expose_tool_errors")
}
_OBJECT_OPTIONS = frozenset({"transport", "retry"})
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def client_kwargs(
    values: Mapping[str, Any],
    *,
    describe: Callable[[str], str] = lambda key: key,
    token_store: TokenStore | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``GatewayClient`` keyword arguments from upper-case keys: ``BASE_URL``/``REGION``,
    ``TOKEN_URL``, ``CLIENT_ID``, ``CLIENT_SECRET`` or ``ACCESS_TOKEN``, ``MODEL``,
    ``PATH``, ``PARAMS`` (model parameters), and client options (``MAX_ITERATIONS`` ->
    ``max_iterations``). Any other key is refused, so a typo is never a silent no-op.

    ``describe(key)`` names a key in error messages (``GENESYS_GATEWAY_CLIENT_ID``,
    ``settings.GENESYS_GATEWAY['CLIENT_ID']``...). ``overrides`` are the keyword arguments
    the caller will pass besides: what they provide (``auth=``, ``base_url=``...) is not
    required from the settings, and they are not included in the result."""
    overrides = overrides or {}
    for key in values:
        if not isinstance(key, str):
            raise ConfigurationError(f"setting names must be strings, got {key!r}")

    def get(key: str) -> str | None:
        value = values.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ConfigurationError(f"{describe(key)} must be a string")
        return value.strip() or None  # whitespace only counts as unset

    region, base_url = get("REGION"), get("BASE_URL")
    if region is None and base_url is None and not {"region", "base_url"} & overrides.keys():
        raise ConfigurationError(f"set {describe('REGION')} or {describe('BASE_URL')}")
    kwargs: dict[str, Any] = {}
    for key in ("REGION", "BASE_URL", "MODEL", "PATH"):
        if get(key) is not None:
            kwargs[key.lower()] = get(key)

    access_token = get("ACCESS_TOKEN")
    client_id, client_secret = get("CLIENT_ID"), values.get("CLIENT_SECRET") or None
    token_url = get("TOKEN_URL")
    if token_url is not None:  # named here, before ClientCredentials refuses credentials in it
        check_url(token_url, allow_insecure_http=True, what=describe("TOKEN_URL"))
    if "auth" in overrides:
        pass  # the caller's own auth: no credentials needed from the settings
    elif access_token is not None:
        try:
            kwargs["auth"] = BearerToken(access_token)
        except ConfigurationError as e:
            raise ConfigurationError(f"{describe('ACCESS_TOKEN')}: {e}") from None
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
        kwargs["auth"] = ClientCredentials(client_id, client_secret, token_url, store=token_store)

    for key, value in values.items():
        if key in _KNOWN or value is None:
            continue
        option = key.lower()
        if option == "params":
            kwargs.update(_model_parameters(value, describe(key)))
        elif option in _TEXT_OPTIONS:
            kwargs[option] = _coerce(_TEXT_OPTIONS[option], value, describe(key))
        elif option in _OBJECT_OPTIONS:
            kwargs[option] = value
        else:  # a typo must not become a parameter posted to the model endpoint
            raise ConfigurationError(
                f"{describe(key)} is not a known setting (model parameters such as temperature "
                f"go in {describe('PARAMS')})")
    if token_url is not None:  # the client checks it only when a token is first needed
        insecure = {**kwargs, **overrides}.get("allow_insecure_http") is True
        check_url(token_url, allow_insecure_http=insecure, what=describe("TOKEN_URL"))
    return {key: value for key, value in kwargs.items() if key not in overrides}


@contextmanager
def settings_errors(describe: Callable[[str], str], from_settings: set[str]) -> Iterator[None]:
    """Re-raise the client's :class:`ConfigurationError` about an option that came from
    settings (``from_settings``: the keyword names) as one naming the setting."""
    try:
        yield
    except ConfigurationError as e:
        if e.option is not None and e.option in from_settings:
            raise ConfigurationError(f"{describe(e.option.upper())}: {e}", option=e.option) from None
        raise


def _coerce(kind: type, value: Any, name: str) -> Any:
    """A setting's value as ``kind``: text is parsed, other values are left to the client."""
    if not isinstance(value, str):
        return value
    if kind is bool:
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ConfigurationError(f"{name} must be true or false, got {value!r}")
    try:
        return kind(value)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {value!r}") from None


def _model_parameters(value: Any, name: str) -> dict[str, Any]:
    """``PARAMS``: model parameters sent with every call, as a mapping or a JSON object text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigurationError(f"{name} must be a JSON object of model parameters") from None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigurationError(f"{name} must be a mapping of model parameters, got {type(value).__name__}")
    options = sorted(set(value) & CLIENT_ARGUMENTS)
    if options:
        raise ConfigurationError(f"{name} holds client options, not model parameters: "
                                 f"{', '.join(options)} (each has a setting of its own)")
    unknown = sorted(set(value) - MODEL_PARAMETERS)
    if unknown:
        raise ConfigurationError(f"{name}: {', '.join(map(repr, unknown))} "
                                 f"{'is not a model parameter' if len(unknown) == 1 else 'are not model parameters'} "
                                 "(client options have settings of their own; others go in extra_body)")
    return dict(value)


def env_settings(environ: Mapping[str, str]) -> tuple[dict[str, Any], Callable[[str], str]]:
    """The settings in ``environ`` (``GENESYSCLOUD_OAUTHCLIENT_ID``/``_SECRET``,
    ``GENESYSCLOUD_REGION``, ``GENESYSCLOUD_ACCESS_TOKEN`` and
    ``GENESYS_GATEWAY_BASE_URL``/``_TOKEN_URL``/``_MODEL``/``_PATH``), and how errors name
    them (by their variable)."""
    values = {key: environ.get(var) for key, var in ENV_NAMES.items()}
    return values, lambda key: ENV_NAMES.get(key, key)
