"""``Conversation``: a multi-turn conversation that keeps its history across ``send`` calls,
and across requests and processes through a state (``to_dict``) or a store.

A conversation owns its messages; each ``send`` runs the tool-calling loop
(:mod:`genesys_gateway.loop`) on a copy and keeps the result only when the run returns
(and, with a store, only once it is saved). Its persisted form is
:mod:`genesys_gateway.conversation_state`.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any, Generator, Iterable, Mapping

from .checks import check_positive_int
from .conversation_state import build_state, check_key, restore, sign
from .events import Event, RunFinished
from .limits import Limits
from .loop import Loop, RunOptions, drain
from .models import Usage
from .output import OutputMode
from .result import PendingCall, RunResult
from .session import Session
from .state import ConversationStore
from .state.schema import check_conversation_id
from .stream import RunStream

__all__ = ["Conversation"]

_PENDING = ("calls are waiting for approval ({ids}): resume() them (approve=[...], "
            "deny={{...}}) before sending a new message")


class Conversation:
    """A multi-turn conversation; keeps its history (including tool rounds) across turns.

    Create one with :meth:`GatewayClient.conversation`. Turns of one conversation object
    run one at a time. A failed model call (an exception) or a stream closed early leaves
    the conversation as it was before that turn.

    With a ``store``, the conversation is loaded when it is created (if it exists) and
    saved after every ``send``, ``resume`` and finished ``stream``, expecting the version it
    loaded: when another worker saved it first, :class:`~genesys_gateway.ConflictError`
    is raised and this turn is neither saved nor kept (load the conversation again).

    Args:
        loop: the client's tool-calling loop (the client passes it).
        system: the system message that starts a new conversation.
        state: restore a conversation from ``to_dict()``'s output (checked: a
            :class:`~genesys_gateway.StateError` when it cannot be used); not with
            ``store`` or ``system``.
        key: an HMAC key: verify the state's signature (and sign what is stored).
        id: the conversation's id (default a new UUID); with ``store``, the stored
            conversation to load, or the id a new one is saved under.
        store: a :class:`~genesys_gateway.ConversationStore` to load from now and save
            to after every turn.
        max_history_tokens: drop the oldest whole turns before each model call to stay
            under an estimate of that many tokens (``None``: keep everything).

    Attributes:
        id: the conversation id (a UUID string unless given), reported in results, audit
            events and tool calls' idempotency keys.
        messages: the history in OpenAI wire format (system message first, if any).
        usage: tokens used by every model call of the conversation, summed.
    """

    def __init__(self, loop: Loop, system: str | None = None, *,
                 state: Mapping[str, Any] | None = None, key: bytes | None = None,
                 id: str | None = None, store: ConversationStore | None = None,
                 max_history_tokens: int | None = None) -> None:
        self._loop = loop
        self._key = check_key(key)
        if max_history_tokens is not None:
            max_history_tokens = check_positive_int("max_history_tokens", max_history_tokens)
        if id is not None:
            check_conversation_id(id, name="id")
        if system is not None and not isinstance(system, str):
            raise TypeError("system must be a string")
        if store is not None and not isinstance(store, ConversationStore):
            raise TypeError(f"store must be a ConversationStore (load and save), got "
                            f"{type(store).__name__}")
        if state is not None and (store is not None or system is not None):
            raise ValueError("give state= or store= (which loads it), not both; the system "
                             "message of a restored conversation is in its state")
        self._store = store
        self._version: int | None = None
        self._lock = threading.Lock()
        restored = None
        if state is not None:
            restored = restore(state, key=self._key, conversation_id=id,
                               max_history_tokens=max_history_tokens)
        elif store is not None and id is not None:
            loaded = store.load(id)
            if loaded is not None:
                restored = restore(loaded.state, key=self._key, conversation_id=id,
                                   from_store=True, max_history_tokens=max_history_tokens)
                self._version = loaded.version
        if restored is not None:
            self.id = restored.id
            self.messages: list[dict[str, Any]] = restored.messages
            self._session = restored.session
            self.usage = restored.usage
        else:
            self.id = id if id is not None else str(uuid.uuid4())
            self.messages = [] if system is None else [{"role": "system", "content": system}]
            self._session = Session(max_history_tokens=max_history_tokens)
            self.usage = Usage()

    # -- state --------------------------------------------------------------------------------

    @property
    def pending(self) -> tuple[PendingCall, ...]:
        """The calls waiting for approval (see :meth:`resume`)."""
        return tuple(self._session.pending)

    @property
    def version(self) -> int | None:
        """The version of the state in the store as this conversation last loaded or saved
        it (``None``: not stored yet, or no store)."""
        return self._version

    def to_dict(self, key: bytes | None = None) -> dict[str, Any]:
        """The conversation as a JSON-ready, versioned state (a copy):
        ``{"version": 1, "id", "messages", "pending", "ran", "usage", ...}``. Restore it
        with ``client.conversation(state=...)``. With ``key``, the state carries an
        HMAC-SHA256 ``"signature"`` that restoring with the same key verifies (keep a
        state that leaves the server, in a browser or a cookie, signed)."""
        state = build_state(self.id, self.messages, self._session, self.usage)
        key = check_key(key)
        return sign(state, key) if key is not None else state

    # -- turns --------------------------------------------------------------------------------

    def send(self, text: str, *, deadline: float | None = None, max_iterations: int | None = None,
             extra_body: Mapping[str, Any] | None = None,
             extra_headers: Mapping[str, str] | None = None, limits: Limits | None = None,
             output_type: type[Any] | None = None, output_schema: Mapping[str, Any] | None = None,
             output_mode: OutputMode = "json_schema", output_retries: int | None = None,
             **params: Any) -> RunResult:
        """Send ``text`` as the user and run tools until the model answers or a bound is hit.

        ``deadline`` (seconds) bounds the whole turn; ``max_iterations`` overrides the
        client's; other keywords are model parameters for this turn (a misspelt one is a
        ``TypeError``); ``extra_body``/``extra_headers`` go into each request verbatim;
        ``output_type``/``output_schema``/``output_mode``/``output_retries`` ask for a
        structured answer in ``result.output`` (see :meth:`GatewayClient.run`).
        While calls wait for approval, ``send`` is a ``ValueError``: :meth:`resume` first.
        """
        if not isinstance(text, str):
            raise TypeError(f"the prompt must be a string, got {type(text).__name__}")
        run = RunOptions.build("send", deadline=deadline, max_iterations=max_iterations,
                               extra_body=extra_body, extra_headers=extra_headers,
                               limits=limits, output_type=output_type,
                               output_schema=output_schema, output_mode=output_mode,
                               output_retries=output_retries, **params)
        self._refuse_pending()
        return drain(self._turn(text, run))

    def stream(self, text: str, *, deadline: float | None = None,
               max_iterations: int | None = None, extra_body: Mapping[str, Any] | None = None,
               extra_headers: Mapping[str, str] | None = None, limits: Limits | None = None,
               output_type: type[Any] | None = None, output_schema: Mapping[str, Any] | None = None,
               output_mode: OutputMode = "json_schema", output_retries: int | None = None,
               **params: Any) -> RunStream:
        """Like :meth:`send`, as a :class:`RunStream` of events. The history gets the turn
        (and a store saves it) only when the run finishes; closed early, it stays as it was
        before. While calls wait for approval, ``stream`` is a ``ValueError``."""
        if not isinstance(text, str):
            raise TypeError(f"the prompt must be a string, got {type(text).__name__}")
        run = RunOptions.build("stream", deadline=deadline, max_iterations=max_iterations,
                               extra_body=extra_body, extra_headers=extra_headers,
                               limits=limits, output_type=output_type,
                               output_schema=output_schema, output_mode=output_mode,
                               output_retries=output_retries, **params)
        self._refuse_pending()
        return RunStream(self._turn(text, run), self._cancelled)

    def resume(self, approve: Iterable[str] = (), deny: Mapping[str, str] | None = None,
               **run_kwargs: Any) -> RunResult:
        """Continue a run that stopped with ``"approval_required"``.

        The calls named in ``approve`` run with exactly the arguments stored when the model
        made them; those in ``deny`` (``{call_id: reason}``) are answered with a tool
        message giving the reason; calls named in neither stay pending. Then the model is
        called again, unless calls are still pending (the result is then
        ``"approval_required"`` again, without a model call). ``run_kwargs`` are those of
        :meth:`send` (``deadline``, ``limits``, model parameters...).

        ``ValueError``, and nothing runs, when nothing is pending or a call named is not
        pending (unknown, already run, already decided).
        """
        approve = _call_ids(approve)
        run = RunOptions.build("resume", **run_kwargs)
        self._session.decide(approve, deny)  # checked now: a ValueError runs nothing
        return drain(self._resumed(approve, deny, run))

    def resume_stream(self, approve: Iterable[str] = (), deny: Mapping[str, str] | None = None,
                      **run_kwargs: Any) -> RunStream:
        """:meth:`resume` as a :class:`RunStream` of events."""
        approve = _call_ids(approve)
        run = RunOptions.build("resume_stream", **run_kwargs)
        self._session.decide(approve, deny)
        return RunStream(self._resumed(approve, deny, run), self._cancelled)

    def _refuse_pending(self) -> None:
        if self._session.pending:
            raise ValueError(_PENDING.format(
                ids=", ".join(call.call_id for call in self._session.pending)))

    def _cancelled(self) -> RunResult:
        return self._loop.cancelled(self.id, list(self.messages), self.pending)

    def _turn(self, text: str, run: RunOptions) -> Generator[Event, None, None]:
        """One turn as events; turns of one conversation run one at a time."""
        with self._lock:
            self._refuse_pending()
            session = self._session.copy()
            messages = [*self.messages, {"role": "user", "content": text}]
            yield from self._drive(self._loop.events(self.id, messages, run, session), session)

    def _resumed(self, approve: list[str], deny: Mapping[str, str] | None,
                 run: RunOptions) -> Generator[Event, None, None]:
        with self._lock:
            decisions = self._session.decide(approve, deny)  # again: a turn may have ended
            session = self._session.copy()
            events = self._loop.resume_events(self.id, list(self.messages), run, session,
                                              *decisions)
            yield from self._drive(events, session)

    def _drive(self, events: Generator[Event, None, None],
               session: Session) -> Generator[Event, None, None]:
        committed = False
        try:
            for event in events:
                if isinstance(event, RunFinished):
                    self._commit(event.result, session)
                    committed = True
                yield event
        finally:
            events.close()
            if not committed:
                self._keep_what_ran(session)

    def _keep_what_ran(self, session: Session) -> None:
        """A turn that failed or was closed is not kept, except the record of the tools
        it ran: none may run again. An approved call that ran is answered in the history
        (its result was lost with the turn) and is no longer pending."""
        ran_now = [call_id for call_id in session.ran if not self._session.has_run(call_id)]
        if not ran_now:
            return
        for call_id in ran_now:
            self._session.mark_ran(call_id)
        lost = [call.call_id for call in self._session.pending if call.call_id in set(ran_now)]
        if lost:
            self._session.settle(lost)
            self.messages = [*self.messages, *(
                {"role": "tool", "tool_call_id": call_id, "content": _INTERRUPTED}
                for call_id in lost)]

    def _commit(self, result: RunResult, session: Session) -> None:
        """Keep the finished turn: save it first (a ``ConflictError`` or a store error
        propagates and nothing is kept), then adopt it."""
        usage = self.usage + result.usage
        if self._store is not None:
            state = build_state(self.id, result.messages, session, usage, copied=False)
            if self._key is not None:
                sign(state, self._key)
            self._version = self._store.save(state, self._version)
        self.messages = result.messages
        self._session = session
        self.usage = usage

    def __repr__(self) -> str:
        pending = f", {len(self._session.pending)} pending" if self._session.pending else ""
        return f"Conversation(id={self.id!r}, {len(self.messages)} messages{pending})"


_INTERRUPTED = ("Error: the tool ran, but the turn was interrupted before its result was "
                "kept; do not call it again for the same request")


def _call_ids(approve: Iterable[str]) -> list[str]:
    if isinstance(approve, (str, bytes)):
        raise TypeError("approve must be a list of call ids, not a single string")
    return list(approve)
