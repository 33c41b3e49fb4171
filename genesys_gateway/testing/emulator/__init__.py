"""The :class:`GatewayEmulator`: a real loopback HTTP server that plays a Genesys Cloud LLM
Gateway and its OAuth token endpoint, with scripted replies, faults and a request log.

Modules: ``server`` (the emulator itself), ``http_server`` (the loopback HTTP/1.1
server), ``auth`` (the token endpoint), ``replies`` (scripts and responders), ``faults``
(fault injection and the request log), ``validation`` (strict chat-request checks),
``rate_limit`` (requests per second per token).
"""

from .faults import Fault, RecordedRequest
from .replies import Responder, ScriptItem, load_script, reply, tool_call
from .server import GatewayEmulator

__all__ = [
    "Fault",
    "GatewayEmulator",
    "RecordedRequest",
    "Responder",
    "ScriptItem",
    "load_script",
    "reply",
    "tool_call",
]
