"""The emulator's OAuth client-credentials token endpoint: token bookkeeping, HTTP Basic
parsing and what the endpoint answers a request."""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
from typing import Any, Callable, Optional
from urllib.parse import parse_qs

from .faults import oauth_error
from .http_server import Incoming

__all__ = ["TokenBook", "parse_basic", "same_secret", "token_response"]


class TokenBook:
    """Issued access tokens and their expiry on an injectable monotonic clock (thread-safe)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}

    def issue(self, ttl: float) -> str:
        """A new random opaque token valid for *ttl* seconds (expired ones are forgotten)."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
            self._tokens[token] = now + ttl
        return token

    def is_valid(self, token: str) -> bool:
        expiry = self._tokens.get(token)
        return expiry is not None and expiry > self.clock()

    def revoke_all(self) -> None:
        with self._lock:
            self._tokens = {}


def parse_basic(header: str) -> Optional[tuple[str, str]]:
    """``(client_id, secret)`` from an ``Authorization: Basic ...`` header, else ``None``."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    if ":" not in decoded:
        return None
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


def same_secret(given: str, expected: Optional[str]) -> bool:
    """Constant-time comparison; ``expected is None`` accepts anything."""
    return expected is None or secrets.compare_digest(given.encode(), expected.encode())


def token_response(inc: Incoming, client_id: Optional[str], client_secret: Optional[str],
                   max_body_bytes: int, ttl: float,
                   issue: Callable[[float], str]) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
    """``(status, JSON body, extra headers)`` the token endpoint answers *inc* with.

    Credentials are checked with :func:`same_secret` (``None`` accepts any); a token is
    minted with ``issue(ttl)`` only for a valid ``client_credentials`` grant.
    """

    def oauth(status: int, error: str, description: str) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        return status, oauth_error(error, description), []

    if inc.body_too_large or len(inc.body) > max_body_bytes:
        return oauth(413, "invalid_request", "request body too large")
    credentials = parse_basic(inc.headers.get("authorization", ""))
    if credentials is None:
        return oauth(401, "invalid_client",
                     "Client authentication is required: send the client id and secret as HTTP Basic")
    if not (same_secret(credentials[0], client_id) and same_secret(credentials[1], client_secret)):
        return oauth(401, "invalid_client", "Invalid client credentials")
    ctype = inc.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return oauth(400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
    form = parse_qs(inc.body.decode("utf-8", "replace"))
    grant = form.get("grant_type", [None])[0]
    if grant != "client_credentials":
        return oauth(400, "unsupported_grant_type",
                     f"grant_type must be client_credentials, got {grant!r}")
    token = issue(ttl)
    return 200, {"access_token": token, "token_type": "bearer", "expires_in": ttl}, [
        ("Cache-Control", "no-store")]
