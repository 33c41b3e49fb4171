"""Tools for the approval tests, importable by a child process (a second "worker").

``refund`` needs approval and records every call it gets (in the process's list, and, when
``REFUND_LOG`` names a file, one JSON line per call there, for calls made in a child
process) with its arguments and ``ToolContext.idempotency_key``.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import genesys_gateway as gg

CALLS: list[dict[str, Any]] = []
_lock = threading.Lock()


def build_registry(calls: list[dict[str, Any]] | None = None) -> gg.ToolRegistry:
    """``lookup`` (no approval), ``refund`` and ``send_mail`` (approval), recording calls in
    ``calls`` (default: the module's ``CALLS``)."""
    record = CALLS if calls is None else calls
    registry = gg.ToolRegistry()

    @registry.tool
    def lookup(order: int) -> dict[str, Any]:
        """Look an order up."""
        return {"order": order, "total": 42.5}

    @registry.tool(requires_approval=True)
    def refund(order: int, ctx: gg.ToolContext, amount: float = 10.0,
               reason: str = "customer request") -> str:
        """Refund an order (side effect: needs approval)."""
        entry = {"tool": "refund", "order": order, "amount": amount, "reason": reason,
                 "call_id": ctx.call_id, "key": ctx.idempotency_key, "pid": os.getpid()}
        with _lock:
            record.append(entry)
        log = os.environ.get("REFUND_LOG")
        if log:
            with open(log, "a") as f:
                f.write(json.dumps(entry) + "\n")
        return f"refunded {amount} on order {order}"

    def send_mail(to: str, ctx: gg.ToolContext) -> str:
        with _lock:
            record.append({"tool": "send_mail", "to": to, "key": ctx.idempotency_key,
                           "call_id": ctx.call_id})
        return "sent"

    registry.register("send_mail", "Send an email.",
                      {"type": "object", "properties": {"to": {"type": "string"}},
                       "required": ["to"], "additionalProperties": False},
                      send_mail, requires_approval=True)
    return registry


def main() -> None:
    """A second worker in its own process: load the conversation from the file store, resume
    it approving the call ids given, print the result as JSON."""
    import sys

    base_url, token, directory, conversation_id, *approve = sys.argv[1:]
    client = gg.GatewayClient(base_url=base_url, auth=gg.BearerToken(token),
                              tools=build_registry())
    with client:
        conversation = client.conversation(id=conversation_id,
                                           store=gg.FileConversationStore(directory))
        result = conversation.resume(approve=approve)
        print(json.dumps({"stop_reason": result.stop_reason, "content": result.content,
                          "version": conversation.version, "pid": os.getpid()}))


if __name__ == "__main__":
    main()
