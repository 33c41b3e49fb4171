"""Token bookkeeping and HTTP Basic parsing for the emulator's OAuth token endpoint."""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
from typing import Callable, Optional

__all__ = ["TokenBook", "parse_basic", "same_secret"]


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
