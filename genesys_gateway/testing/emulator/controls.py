"""The emulator's fault-injection controls: what tests call to make the next requests fail,
stall, drop, answer garbage, echo credentials or hit a rate limit (a mixin of
:class:`~genesys_gateway.testing.emulator.GatewayEmulator`; the faults themselves are
applied by the server)."""

from __future__ import annotations

import collections
import threading
from typing import TypeVar

from .faults import STREAM_FAULTS, Fault, HeadersLike, normalize_headers
from .rate_limit import RequestRateLimit

__all__ = ["FaultControls", "ENDPOINTS"]

#: The endpoints a fault can be injected into.
ENDPOINTS = ("chat", "token")
_JSON = "application/json"
Self = TypeVar("Self", bound="FaultControls")


class FaultControls:
    """Queue faults for the next requests to an endpoint; set a rate limit."""

    _lock: threading.Lock
    _faults: dict[str, collections.deque[Fault]]
    _rate: RequestRateLimit

    def inject(self: Self, fault: Fault, times: int = 1, endpoint: str = "chat") -> Self:
        """Queue *fault* for the next *times* requests to *endpoint* (``"chat"``/``"token"``)."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be 'chat' or 'token', got {endpoint!r}")
        with self._lock:
            self._faults[endpoint].extend([fault] * times)
        return self

    def fail(self: Self, status: int, body: object = None, headers: HeadersLike | None = None, times: int = 1,
             endpoint: str = "chat") -> Self:
        """Answer *status*; *body* a dict (JSON), bytes/str (raw) or ``None`` (a Genesys-style
        error; a 429 also gets ``Retry-After: 1``)."""
        return self.inject(Fault("fail", status, body, normalize_headers(headers)), times, endpoint)

    def delay(self: Self, seconds: float, times: int = 1, endpoint: str = "chat") -> Self:
        """Wait *seconds* before answering normally."""
        return self.inject(Fault("delay", seconds=seconds), times, endpoint)

    def drop_connection(self: Self, times: int = 1, endpoint: str = "chat") -> Self:
        """Read the request, then close the connection without sending a byte."""
        return self.inject(Fault("drop"), times, endpoint)

    def garbage(self: Self, body: object, status: int = 200, times: int = 1, endpoint: str = "chat",
                content_type: str = _JSON) -> Self:
        """Answer *status* with *body* (bytes/str raw, dict/list as JSON) that is not a valid
        chat completion, e.g. ``b"{not json"``, ``b""`` or ``{"choices": []}``."""
        return self.inject(Fault("garbage", status, body, content_type=content_type), times, endpoint)

    def misbehave(self: Self, kind: str, *, seconds: float = 0.0, size: int = 0, times: int = 1,
                  endpoint: str = "chat") -> Self:
        """Answer as a hostile server: ``"slow_headers"``, ``"slow_body"`` (a byte every
        *seconds*), ``"endless_body"``, ``"oversized_body"`` (*size* bytes), ``"gzip_bomb"``
        (expands to *size* bytes) or ``"reset_mid_body"`` (see :class:`Fault`)."""
        if kind not in STREAM_FAULTS:
            raise ValueError(f"kind must be one of {', '.join(STREAM_FAULTS)}, got {kind!r}")
        return self.inject(Fault(kind, seconds=seconds, size=size), times, endpoint)

    def echo_credentials(self: Self, status: int, times: int = 1, endpoint: str = "chat",
                         content_type: str = _JSON) -> Self:
        """Answer *status* with an error body that quotes the request's ``Authorization``
        header (a server that leaks credentials into its errors)."""
        return self.inject(Fault("echo", status, content_type=content_type), times, endpoint)

    def limit_rate(self: Self, per_second: float | None, burst: float | None = None) -> Self:
        """Allow *per_second* chat requests per second per bearer token, in bursts of at most
        *burst* (default one second's worth); beyond, answer Genesys's normalized 429 with
        ``Retry-After`` (counted by :attr:`rate_limited`). ``None`` lifts the limit."""
        self._rate.configure(per_second, burst)
        return self

    @property
    def rate_limited(self) -> int:
        """How many 429s :meth:`limit_rate` answered since start (or the last reset)."""
        return self._rate.refused

    def pending_faults(self, endpoint: str = "chat") -> int:
        """How many injected faults for *endpoint* are not yet consumed."""
        return len(self._faults[endpoint])
