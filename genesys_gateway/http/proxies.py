"""Which proxy a request of the urllib3 transport goes through, and the urllib3 manager
that sends through one: the explicit proxy, else the environment's (``HTTPS_PROXY``,
``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, either case) unless ``trust_env`` is off."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ..errors import ConfigurationError
from .transport import check_proxy

if TYPE_CHECKING:
    import urllib3

__all__ = ["no_proxy_matches", "proxy_for", "proxy_manager", "socks_module"]


def proxy_for(url: str, explicit: str | None, trust_env: bool) -> str | None:
    """The proxy for ``url``: *explicit*, else the environment's unless ``NO_PROXY`` names
    the host (or *trust_env* is off)."""
    if explicit is not None or not trust_env:
        return explicit
    import urllib.request

    proxies = urllib.request.getproxies_environment()
    parts = urlsplit(url)
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if not proxy or no_proxy_matches(proxies.get("no", ""), parts.hostname or "", port):
        return None
    return check_proxy(proxy if "://" in proxy else "http://" + proxy,
                       what=f"the environment's proxy for {parts.scheme}:// URLs")


def no_proxy_matches(no_proxy: str, host: str, port: int | None) -> bool:
    """Whether ``NO_PROXY`` (comma-separated: ``*``, host names that match themselves and
    their subdomains, with or without a leading dot, IP addresses, CIDR blocks, each with
    an optional ``:port``) names *host* (and *port*)."""
    host = host.lower()
    for entry in no_proxy.replace(" ", ",").split(","):
        entry = entry.strip().lower()
        if entry == "*":
            return True
        name, entry_port = entry, None
        if entry.startswith("[") and "]:" in entry:
            name, entry_port = entry[1:].split("]:", 1)
        elif entry.count(":") == 1:
            name, entry_port = entry.split(":")
        name = name.strip("[]").lstrip(".")
        if not name or (entry_port is not None and entry_port != str(port)):
            continue
        if host == name or host.endswith("." + name) or _in_network(host, name):
            return True
    return False


def _in_network(host: str, network: str) -> bool:
    if "/" not in network:
        return False
    try:
        return ipaddress.ip_address(host) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


def socks_module() -> Any:
    """urllib3's SOCKS support; a ``ConfigurationError`` without PySocks."""
    import importlib.util

    if importlib.util.find_spec("socks") is None:  # urllib3's module warns, then fails
        raise ConfigurationError("a socks:// proxy needs the PySocks package (pip install pysocks)",
                                 option="proxy")
    from urllib3.contrib import socks

    return socks


def proxy_manager(proxy: str, kwargs: dict[str, Any]) -> urllib3.PoolManager:
    """A urllib3 manager sending through *proxy*, its credentials (if the URL has any) sent
    as ``Proxy-Authorization`` (http/https) or in the SOCKS handshake."""
    import urllib3

    if proxy.startswith("socks"):
        return socks_module().SOCKSProxyManager(proxy, **kwargs)  # type: ignore[no-any-return]
    parts = urlsplit(proxy)
    headers = None
    if parts.username is not None:
        headers = urllib3.make_headers(
            proxy_basic_auth=f"{unquote(parts.username)}:{unquote(parts.password or '')}")
    return urllib3.ProxyManager(proxy, proxy_headers=headers, **kwargs)
