"""Authentication: Genesys Cloud OAuth client credentials, or a fixed bearer token.

``ClientCredentials`` fetches a token from the region's login host (credentials as HTTP
Basic, body ``grant_type=client_credentials``, no scope), keeps it in a token store until
shortly before ``expires_in``, lets exactly one thread (or process, or fleet, depending
on the store) refresh it, and is told by the client when the gateway answered 401.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import threading
import time
from typing import Callable, Protocol, runtime_checkable
from urllib.parse import urlencode, urlsplit

import attrs

from ..at_fork import fresh_locks, reinit_in_child
from ..constants import TOKEN_EXPIRY_FRACTION, TOKEN_EXPIRY_MARGIN, USER_AGENT
from ..errors import AuthenticationError, ConfigurationError, ResponseFormatError, TokenStoreError
from .error_responses import api_error, credential_forms
from .retry import RetryPolicy, call_with_retry
from .tokens import MemoryTokenStore, Token, TokenStore, single_flight, store_key, token_problem
from .transport import HTTPRequest, Timeout, Transport, check_url

__all__ = ["Auth", "HTTPContext", "ClientCredentials", "BearerToken"]

logger = logging.getLogger("genesys_gateway.auth")

_REMEMBERED_REFUSALS = 8  # tokens the gateway refused, kept to recognise them in the store


@attrs.frozen
class HTTPContext:
    """What an auth needs to make its own requests: the client's transport and policy."""

    transport: Transport
    retry: RetryPolicy
    timeout: Timeout = Timeout()
    clock: Callable[[], float] = time.monotonic
    deadline_at: float | None = None
    allow_insecure_http: bool = False


@runtime_checkable
class Auth(Protocol):
    """What the client asks for the ``Authorization`` header of each model call:
    :class:`ClientCredentials`, :class:`BearerToken`, or any object with these two
    methods (the protocol is ``runtime_checkable``)."""

    def authorization(self, http: HTTPContext) -> str:
        """The ``Authorization`` header value to send."""
        ...

    def invalidate(self, authorization: str) -> bool:
        """The gateway refused ``authorization`` (401). Return True if a retry with a
        fresh :meth:`authorization` may succeed."""
        ...


class BearerToken:
    """A fixed access token (``GENESYSCLOUD_ACCESS_TOKEN``); never refreshed.

    Args:
        token: the access token (surrounding whitespace is stripped); an empty one, or
            one that cannot be sent in a header, is a ``ConfigurationError``. Its
            ``repr`` never shows it.
    """

    def __init__(self, token: str) -> None:
        if not isinstance(token, str) or not token.strip():
            raise ConfigurationError("BearerToken needs a non-empty token string")
        problem = token_problem(token.strip())
        if problem is not None:
            raise ConfigurationError(f"BearerToken: the token {problem}")
        self._header = f"Bearer {token.strip()}"

    def authorization(self, http: HTTPContext) -> str:
        """``Bearer <token>``, always the same."""
        return self._header

    def invalidate(self, authorization: str) -> bool:
        """Always ``False``: a fixed token cannot be refreshed, so a 401 is final."""
        return False

    def __repr__(self) -> str:
        return "BearerToken(<redacted>)"


def _has_userinfo(url: str) -> bool:
    try:
        return "@" in urlsplit(url).netloc
    except ValueError:  # not a URL: check_url says so when a token is first needed
        return False


class ClientCredentials:
    """OAuth 2.0 client credentials against a Genesys Cloud login host.

    ``token_url`` defaults to the client's region (``https://login.<domain>/oauth/token``).
    ``store`` is a :class:`~genesys_gateway.tokens.TokenStore` (``None``: in memory, this
    object only). A store that fails is logged and bypassed, never a failed request.

    Waiting for another refresher is bounded by the request's deadline (a
    ``TransportError(kind="deadline")`` when it passes). A stored token that cannot be
    sent in a header, or that the gateway refused (401), is discarded from the store and
    replaced. Credentials a server echoes in an error are redacted from the exception.

    Args:
        client_id: the OAuth client's id.
        client_secret: the OAuth client's secret (never in a ``repr``, log or error).
        token_url: the token endpoint; ``None``: the client's region's.
        store: where tokens are kept (``None``: in memory, this object only); share a
            :class:`~genesys_gateway.FileTokenStore` or
            :class:`~genesys_gateway.RedisTokenStore` between processes.
        now: the wall clock token expiry is measured on (injectable for tests).

    Attributes:
        client_id: the OAuth client's id.
        token_url: the token endpoint (``None`` until a client binds its region's).
        store: the token store in use.
        token_requests: token requests this object has made (for tests and metrics).
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        token_url: str | None = None,
        store: TokenStore | None = None,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(client_id, str) or not client_id.strip():
            raise ConfigurationError("ClientCredentials needs a non-empty client_id")
        if not isinstance(client_secret, str) or not client_secret:
            raise ConfigurationError("ClientCredentials needs a non-empty client_secret")
        if isinstance(token_url, str) and _has_userinfo(token_url):  # before any repr shows it
            raise ConfigurationError("token_url must not contain credentials")
        self.client_id = client_id.strip()
        self._basic = "Basic " + base64.b64encode(
            f"{self.client_id}:{client_secret}".encode()
        ).decode("ascii")
        self._secret = client_secret
        self._credentials = credential_forms(self._basic)  # what an echo may contain
        self.token_url = token_url
        self.store: TokenStore = store if store is not None else MemoryTokenStore()
        self._fallback = MemoryTokenStore()
        self._now = now
        self._cached: Token | None = None  # this process's last token (skips the store)
        self._key = store_key(token_url, self.client_id) if token_url else None
        self.token_requests = 0
        self._count_lock = threading.Lock()
        self._refused: list[str] = []  # the last access tokens the gateway answered 401
        reinit_in_child(self, fresh_locks("_count_lock"))  # the cached token stays valid

    def with_token_url(self, token_url: str) -> "ClientCredentials":
        """A copy bound to ``token_url`` (sharing the store)."""
        return ClientCredentials(self.client_id, self._secret, token_url, self.store, now=self._now)

    # -- Auth protocol ---------------------------------------------------------------

    def authorization(self, http: HTTPContext) -> str:
        """``Bearer <access token>``: the cached token while it is usable, else the
        store's, else a new one fetched under the store's refresh lock."""
        token = self._cached
        if token is None or not token.usable(self._now()):
            token = self._get_token(http)
        return "Bearer " + token.access_token

    def invalidate(self, authorization: str) -> bool:
        """Remember the refused token; the next :meth:`authorization` discards it from the
        store under the refresh lock (within the caller's deadline) and fetches a new one,
        unless another refresher has replaced it meanwhile."""
        self._require_key()
        access_token = authorization[len("Bearer "):]
        with self._count_lock:
            if access_token not in self._refused:
                self._refused = [*self._refused, access_token][-_REMEMBERED_REFUSALS:]
        if self._cached is not None and self._cached.access_token == access_token:
            self._cached = None
        return True

    # -- internals -------------------------------------------------------------------

    def _require_key(self) -> str:
        if self._key is None:
            raise ConfigurationError(
                "ClientCredentials has no token_url: give token_url=, or a region to the client"
            )
        return self._key

    def _get_token(self, http: HTTPContext) -> Token:
        key = self._require_key()
        try:
            token = self._single_flight(self.store, key, http)
        except TokenStoreError as e:
            logger.warning("token store unavailable, fetching a token directly: %s", e)
            token = self._single_flight(self._fallback, key, http)
        self._cached = token
        return token

    def _single_flight(self, store: TokenStore, key: str, http: HTTPContext) -> Token:
        remaining = None if http.deadline_at is None else http.deadline_at - http.clock()
        return single_flight(store, key, lambda: self._fetch(http), self._now,
                             timeout=remaining, problem=self._problem)

    def _problem(self, token: Token) -> str | None:
        """Why a stored token must not be used (see :func:`single_flight`), or ``None``."""
        with self._count_lock:
            refused = token.access_token in self._refused
        return "was refused by the gateway" if refused else token_problem(token)

    def _fetch(self, http: HTTPContext) -> Token:
        url = check_url(self._require_token_url(), allow_insecure_http=http.allow_insecure_http,
                        what="token_url")
        request_body = urlencode({"grant_type": "client_credentials"}).encode()
        headers = {
            "Authorization": self._basic,
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }

        def attempt(_n: int) -> Token:
            remaining = None if http.deadline_at is None else http.deadline_at - http.clock()
            request = HTTPRequest("POST", url, headers, request_body, http.timeout.clip(remaining))
            with self._count_lock:
                self.token_requests += 1
            response = http.transport.send(request)
            if response.status >= 400:
                error = api_error(response, token_endpoint=True, now=self._now,
                                  secrets=self._credentials)
                if error.status in (400, 401) and error.code in ("invalid_client", "unauthorized_client"):
                    error = AuthenticationError(
                        error.status, "the OAuth client id or secret was refused", error.code,
                        error.correlation_id, error.body,
                    )
                raise error
            token = self._parse(response.body)
            with self._count_lock:  # vouched for again by the token endpoint
                self._refused = [t for t in self._refused if t != token.access_token]
            return token

        return call_with_retry(http.retry, attempt, clock=http.clock, deadline_at=http.deadline_at)

    def _require_token_url(self) -> str:
        self._require_key()
        return self.token_url  # type: ignore[return-value]

    def _parse(self, body: bytes) -> Token:
        try:
            data = json.loads(body)
            access_token = data["access_token"]
            expires_in = float(data.get("expires_in", 3600))
        except (ValueError, TypeError, KeyError, UnicodeDecodeError, RecursionError, AttributeError):
            raise ResponseFormatError("token endpoint answered without a usable access_token") from None
        if not isinstance(access_token, str) or not access_token or not math.isfinite(expires_in) \
                or expires_in <= 0:
            raise ResponseFormatError("token endpoint answered without a usable access_token")
        problem = token_problem(access_token)
        if problem is not None:
            raise ResponseFormatError(f"token endpoint answered with an access_token that {problem}")
        now = self._now()
        if expires_in > 2 * TOKEN_EXPIRY_MARGIN:
            refresh_in = expires_in - TOKEN_EXPIRY_MARGIN
        else:
            refresh_in = expires_in * TOKEN_EXPIRY_FRACTION
        return Token(access_token, now + expires_in, now + refresh_in,
                     str(data.get("token_type") or "bearer"))

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self.client_id!r}, token_url={self.token_url!r}, client_secret=<redacted>)"

