"""Genesys Cloud regions: region key, bare domain or API URL -> API host and token URL."""

from __future__ import annotations

from types import MappingProxyType
from urllib.parse import urlsplit

import attrs

from .errors import ConfigurationError

__all__ = ["REGIONS", "Region", "resolve_region"]

REGIONS = MappingProxyType(
    {
        "us-east-1": "mypurecloud.com",
        "us-east-2": "use2.us-gov-pure.cloud",
        "us-west-2": "usw2.pure.cloud",
        "ca-central-1": "cac1.pure.cloud",
        "sa-east-1": "sae1.pure.cloud",
        "mx-central-1": "mxc1.pure.cloud",
        "eu-west-1": "mypurecloud.ie",
        "eu-west-2": "euw2.pure.cloud",
        "eu-central-1": "mypurecloud.de",
        "eu-central-2": "euc2.pure.cloud",
        "eusc-de-east-1": "edee1.eusc-pure.cloud",
        "me-central-1": "mec1.pure.cloud",
        "ap-south-1": "aps1.pure.cloud",
        "ap-southeast-1": "apse1.pure.cloud",
        "ap-southeast-2": "mypurecloud.com.au",
        "ap-northeast-1": "mypurecloud.jp",
        "ap-northeast-2": "apne2.pure.cloud",
        "ap-northeast-3": "apne3.pure.cloud",
    }
)
"""Every Genesys Cloud region key and its domain (a read-only mapping):
``REGIONS["us-east-1"] == "mypurecloud.com"``."""
_DOMAINS = frozenset(REGIONS.values())


@attrs.frozen
class Region:
    """A Genesys Cloud region, as :func:`resolve_region` found it.

    Attributes:
        key: the region key (``"us-east-1"``).
        domain: its domain (``"mypurecloud.com"``).
    """

    key: str
    domain: str

    @property
    def api_url(self) -> str:
        """The API host, ``https://api.<domain>`` (the client's default ``base_url``)."""
        return f"https://api.{self.domain}"

    @property
    def login_url(self) -> str:
        """The login host, ``https://login.<domain>``."""
        return f"https://login.{self.domain}"

    @property
    def token_url(self) -> str:
        """The OAuth token endpoint, ``https://login.<domain>/oauth/token``."""
        return f"{self.login_url}/oauth/token"


def resolve_region(value: str) -> Region:
    """Accept a region key (``us-east-1``, any case), a bare domain (``mypurecloud.com``)
    or an API/login URL (``https://api.mypurecloud.com``).

    Raises:
        ConfigurationError: for anything else, listing the known region keys.
    """
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"region must be a non-empty string, got {value!r}")
    text = value.strip().lower()
    if text in REGIONS:
        return Region(text, REGIONS[text])
    host = text
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
            raise ConfigurationError(
                f"region URL {value!r} must look like https://api.<domain>"
            )
        host = parts.hostname
    for prefix in ("api.", "login.", "apps."):
        if host.startswith(prefix) and host[len(prefix):] in _DOMAINS:
            host = host[len(prefix):]
            break
    if host in _DOMAINS:
        key = next(k for k, d in REGIONS.items() if d == host)
        return Region(key, host)
    raise ConfigurationError(
        f"unknown Genesys Cloud region {value!r}; use a region key such as 'us-east-1', a "
        f"domain such as 'mypurecloud.com', or an API URL (known keys: {', '.join(REGIONS)})"
    )
