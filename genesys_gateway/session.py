"""What a conversation keeps besides its messages, as one run reads and changes it: the
calls waiting for approval, the ids of the calls that have run, and the measure of the
last request that history trimming starts from.

A conversation hands each run a copy (:meth:`Session.copy`) and keeps it only when the
run finishes, so a failed or cancelled run changes nothing.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Iterable, Mapping

from .result import PendingCall
from .tools.calls import ToolCallRequest, ToolRun
from .tools.registry import ToolSet
from .tools.validation import parse_arguments
from .errors import ToolArgumentsError
from .trimming import Measured, trim_history

__all__ = ["Session", "Decisions", "RAN_STATUSES", "request_of"]

logger = logging.getLogger("genesys_gateway")

#: Statuses of a call whose handler was (or may have been) started: the call "has run".
RAN_STATUSES = frozenset({"ok", "error", "timeout", "invalid_output"})

Decisions = tuple[list[PendingCall], list[tuple[PendingCall, str]]]
"""``(approved calls, [(denied call, reason)])``, each in the order of the calls."""


def request_of(call: PendingCall) -> ToolCallRequest:
    """The executor's request for an approved call: exactly its stored arguments."""
    return ToolCallRequest(call.call_id, call.name, json.dumps(call.arguments))


class Session:
    """Pending calls, ids of calls that ran, and history trimming, for one conversation."""

    __slots__ = ("pending", "ran", "_ran", "max_history_tokens", "measured")

    def __init__(self, pending: Iterable[PendingCall] = (), ran: Iterable[str] = (),
                 max_history_tokens: int | None = None, measured: Measured | None = None) -> None:
        self.pending: list[PendingCall] = list(pending)
        self.ran: list[str] = list(ran)
        self._ran = set(self.ran)
        self.max_history_tokens = max_history_tokens
        self.measured = measured

    def copy(self) -> Session:
        return Session(self.pending, self.ran, self.max_history_tokens, self.measured)

    # -- calls that ran -----------------------------------------------------------------------

    def has_run(self, call_id: str) -> bool:
        return call_id in self._ran

    def mark_ran(self, call_id: str) -> None:
        """Note that the handler of ``call_id`` was started."""
        if call_id not in self._ran:
            self._ran.add(call_id)
            self.ran.append(call_id)

    def record(self, run: ToolRun) -> None:
        """Note ``run`` if its handler was started."""
        if run.status in RAN_STATUSES and run.call_id not in self._ran:
            self._ran.add(run.call_id)
            self.ran.append(run.call_id)

    def fresh_ids(self, ids: list[str | None]) -> list[str | None]:
        """The ids of a new turn's calls, an id that already ran or is pending in this
        conversation renamed (``<id>_<n>``): some servers number calls per response, and a
        call id must name one call for the life of the conversation (its idempotency key
        is derived from it)."""
        used = self._ran | {call.call_id for call in self.pending}
        if not used or not any(i in used for i in ids):
            return ids
        taken = used | {i for i in ids if i}
        out: list[str | None] = []
        for call_id in ids:
            if call_id and call_id in used:
                n = 2
                while f"{call_id}_{n}" in taken:
                    n += 1
                call_id = f"{call_id}_{n}"
                taken.add(call_id)
            out.append(call_id)
        return out

    # -- approval ------------------------------------------------------------------------------

    def hold(self, toolset: ToolSet | None,
             requests: list[ToolCallRequest]) -> tuple[list[ToolCallRequest], list[PendingCall]]:
        """Take out the calls of ``requires_approval`` tools whose arguments are valid
        (an invalid call is answered at once, so the model can correct it) and add them
        to :attr:`pending`. Returns the calls to run now and those held."""
        if toolset is None or not any(t.requires_approval for t in toolset):
            return requests, []
        run: list[ToolCallRequest] = []
        held: list[PendingCall] = []
        for request in requests:
            tool = toolset.get(request.name) if request.problem is None else None
            if tool is not None and tool.requires_approval:
                arguments, problem = parse_arguments(request.arguments_json)
                if problem is None:
                    try:
                        held.append(PendingCall(request.call_id, request.name,
                                                tool.validate_arguments(arguments)))
                        continue
                    except ToolArgumentsError:
                        pass
            run.append(request)
        self.pending.extend(held)
        return run, held

    def decide(self, approve: Iterable[str], deny: Mapping[str, str] | None) -> Decisions:
        """Check a resume's decisions against :attr:`pending`: ``ValueError`` (and nothing
        changes) when nothing is pending or a call named is not pending."""
        if isinstance(approve, (str, bytes)):
            raise TypeError("approve must be a list of call ids, not a single string")
        approved = list(approve)
        denied: dict[str, str] = {} if deny is None else dict(_check_deny(deny))
        for call_id in approved:
            if not isinstance(call_id, str):
                raise TypeError(f"approve must hold call ids (strings), got {call_id!r}")
        both = set(approved) & set(denied)
        if both:
            raise ValueError(f"call {sorted(both)[0]!r} is both approved and denied")
        by_id = {call.call_id: call for call in self.pending}
        for call_id in [*approved, *denied]:
            if call_id in self._ran:
                raise ValueError(f"call {call_id!r} has already run; nothing was run")
            if call_id not in by_id and by_id:
                raise ValueError(f"call {call_id!r} is not pending (pending: "
                                 f"{', '.join(sorted(by_id))}); nothing was run")
        if not by_id:
            raise ValueError("nothing is pending: resume() continues a run that stopped with "
                             "'approval_required'; use send() for a new message")
        chosen = set(approved)
        return ([call for call in self.pending if call.call_id in chosen],
                [(call, denied[call.call_id]) for call in self.pending if call.call_id in denied])

    def settle(self, decided: Iterable[str]) -> None:
        """Remove the calls ``decided`` from :attr:`pending`."""
        gone = set(decided)
        self.pending = [call for call in self.pending if call.call_id not in gone]

    # -- history trimming ---------------------------------------------------------------------

    def trim(self, messages: list[dict[str, Any]], protect_from: int) -> int:
        """Trim ``messages`` before a model call (when ``max_history_tokens`` is set); how
        many messages were removed."""
        if self.max_history_tokens is None:
            return 0
        removed, self.measured = trim_history(messages, self.max_history_tokens,
                                              protect_from=protect_from, measured=self.measured)
        if removed:
            logger.debug("dropped the %d oldest messages to stay under %d tokens", removed,
                         self.max_history_tokens)
        return removed

    def measure(self, prompt_tokens: int, messages: int) -> None:
        """Note the ``prompt_tokens`` the server reported for the first ``messages``."""
        self.measured = Measured(prompt_tokens, messages) if prompt_tokens > 0 else None


def _check_deny(deny: Mapping[str, str]) -> Iterable[tuple[str, str]]:
    if not isinstance(deny, Mapping):
        raise TypeError(f"deny must map call ids to reasons, got {type(deny).__name__}")
    for call_id, reason in deny.items():
        if not isinstance(call_id, str) or not isinstance(reason, str):
            raise TypeError(f"deny must map call ids to reasons (strings), got "
                            f"{call_id!r}: {reason!r}")
        yield call_id, reason
