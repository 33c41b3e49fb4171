"""The :class:`GatewayEmulator`: a real loopback HTTP server that plays a Genesys Cloud LLM
Gateway and its OAuth token endpoint, with scripted replies, faults and a request log.

Modules: ``server`` (the emulator itself), ``http_server`` (the loopback HTTP/1.1
server), ``auth`` (the token endpoint), ``replies`` (scripts and responders), ``faults``
(fault injection and the request log), ``validation`` (strict chat-request checks),
``rate_limit`` (requests per second per token), ``responder`` and ``text_values`` (a
rule-based stand-in for a model that calls the tools a message names).
"""

from .faults import Fault, RecordedRequest
from .replies import Responder, ScriptItem, load_script, reply, tool_call
from .responder import build_arguments, rule_based_responder
from .server import GatewayEmulator

__all__ = [
    "Fault",
    "GatewayEmulator",
    "RecordedRequest",
    "Responder",
    "ScriptItem",
    "build_arguments",
    "load_script",
    "reply",
    "rule_based_responder",
    "tool_call",
]
