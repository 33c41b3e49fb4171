"""The tools the model may call. ``refund`` moves money: it waits for a person.

``REFUNDS`` stands in for a payment API that deduplicates by idempotency key (Stripe's
``Idempotency-Key`` header, a unique column in your own table): a refund run twice with the
same key (a worker that crashed after the refund and before saving the conversation, then a
retried approval) refunds once.
"""

from __future__ import annotations

import threading
from typing import Any

import genesys_gateway as gg

registry = gg.ToolRegistry()

ORDERS = {7: {"total": 42.5, "customer": "ada@example.com"}}
REFUNDS: dict[str, dict[str, Any]] = {}  # idempotency key -> the refund made
_lock = threading.Lock()


@registry.tool
def get_order(order: int) -> dict[str, Any]:
    """Look an order up by its number."""
    found = ORDERS.get(order)
    if found is None:
        raise gg.ToolError(f"there is no order {order}")
    return {"order": order, **found}


@registry.tool(requires_approval=True)
def refund(order: int, amount: float, ctx: gg.ToolContext) -> dict[str, Any]:
    """Refund part of an order to the customer.

    Args:
        order: the order number.
        amount: how much to refund.
    """
    assert ctx.idempotency_key is not None  # always set when a conversation runs the call
    with _lock:
        made = REFUNDS.setdefault(ctx.idempotency_key, {"order": order, "amount": amount})
    return {"refunded": made["amount"], "order": made["order"]}
