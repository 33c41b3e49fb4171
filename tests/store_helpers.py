"""Helpers shared by the token-store tests."""

import time

from genesys_gateway.http.tokens import Token, single_flight


def fresh_token(name: str, lifetime: float = 3600.0) -> Token:
    now = time.time()
    return Token(name, now + lifetime, now + lifetime - 60)


def get_token(store, key, fetch):
    """The SDK's own refresh path (what ClientCredentials runs) with a test fetch function."""
    return single_flight(store, key, fetch)
