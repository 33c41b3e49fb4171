"""Test doubles: a real loopback :class:`GatewayEmulator` and a :class:`MockTransport`."""

from .emulator import GatewayEmulator, RecordedRequest, reply, tool_call
from .mock import MockTransport, json_response

__all__ = ["GatewayEmulator", "RecordedRequest", "reply", "tool_call", "MockTransport", "json_response"]
