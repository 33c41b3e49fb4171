"""The chat endpoints. Any worker may serve any request: each loads the conversation from
the database, runs one turn, and saves it (expecting the version it loaded).

* ``POST conversations/<id>/messages`` ``{"text": "..."}``: one user turn. When the model asks
  for a refund, the answer has ``"stop_reason": "approval_required"`` and the ``pending``
  calls to show a person.
* ``POST conversations/<id>/decisions`` ``{"approve": [call ids], "deny": {call id: reason}}``:
  carry the person's decisions out and let the model go on. (Check in your own code that the
  user may approve refunds.)
* ``GET conversations/<id>``: the history's text and the pending calls.

Status codes: 409 when the request does not fit the conversation's state (a message while a
refund waits, a decision on a call that is not pending or already ran, another request of the
same conversation saved first: reload and retry); 400 for a malformed body; 502 when the
gateway cannot be reached.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

import genesys_gateway as gg
from genesys_gateway.contrib.django import DjangoConversationStore, get_client

SYSTEM = ("You are a support agent. Look an order up before refunding it, and never refund "
          "more than its total.")
LIMITS = gg.Limits(max_requests=4, max_tool_calls=4, per_tool={"refund": 1})
DEADLINE = 60.0


class BadRequest(Exception):
    pass


def _conversation(conversation_id: str) -> gg.Conversation:
    try:
        return get_client().conversation(
            SYSTEM, id=conversation_id, store=DjangoConversationStore(),
            max_history_tokens=settings.REFUNDS_MAX_HISTORY_TOKENS)
    except (TypeError, ValueError) as error:  # an id the store cannot keep
        raise BadRequest(str(error)) from None


def _body(request: HttpRequest) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        raise BadRequest("the body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _turn(conversation: gg.Conversation, result: gg.RunResult) -> JsonResponse:
    return JsonResponse({
        "conversation": conversation.id,
        "stop_reason": result.stop_reason,
        "content": result.content,
        "pending": [{"call_id": c.call_id, "tool": c.name, "arguments": c.arguments}
                    for c in result.pending],
        "version": conversation.version,
    })


def _errors(view: Any) -> Any:
    def wrapped(request: HttpRequest, conversation_id: str) -> JsonResponse:
        try:
            return view(request, conversation_id)
        except BadRequest as error:
            return JsonResponse({"error": str(error)}, status=400)
        except gg.ConflictError:
            return JsonResponse({"error": "another request of this conversation was saved "
                                          "first: reload it and try again"}, status=409)
        except (gg.TransportError, gg.APIError) as error:
            return JsonResponse({"error": f"the gateway failed: {type(error).__name__}"},
                                status=502)
    wrapped.__name__ = view.__name__
    return wrapped


@csrf_exempt
@require_POST
@_errors
def send(request: HttpRequest, conversation_id: str) -> JsonResponse:
    text = _body(request).get("text")
    if not isinstance(text, str) or not text.strip():
        raise BadRequest('send {"text": "..."}')
    conversation = _conversation(conversation_id)
    if conversation.pending:
        return JsonResponse({"error": "a refund is waiting for a decision",
                             "pending": [c.call_id for c in conversation.pending]}, status=409)
    return _turn(conversation, conversation.send(text, limits=LIMITS, deadline=DEADLINE))


@csrf_exempt
@require_POST
@_errors
def decide(request: HttpRequest, conversation_id: str) -> JsonResponse:
    body = _body(request)
    approve, deny = body.get("approve", []), body.get("deny", {})
    if not isinstance(approve, list) or not isinstance(deny, dict):
        raise BadRequest('send {"approve": [call ids], "deny": {call id: reason}}')
    conversation = _conversation(conversation_id)
    try:
        result = conversation.resume(approve=approve, deny=deny, limits=LIMITS, deadline=DEADLINE)
    except TypeError as error:
        raise BadRequest(str(error)) from None
    except ValueError as error:  # nothing pending, not pending, already run: nothing ran
        return JsonResponse({"error": str(error)}, status=409)
    return _turn(conversation, result)


@require_GET
@_errors
def conversation(request: HttpRequest, conversation_id: str) -> JsonResponse:
    found = _conversation(conversation_id)
    return JsonResponse({
        "conversation": found.id,
        "version": found.version,
        "messages": [{"role": m["role"], "content": m["content"]} for m in found.messages
                     if m["role"] in ("user", "assistant") and m.get("content")],
        "pending": [{"call_id": c.call_id, "tool": c.name, "arguments": c.arguments}
                    for c in found.pending],
    })
