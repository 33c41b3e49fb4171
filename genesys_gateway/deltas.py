"""Streamed chat completions: merge ``chat.completion.chunk`` deltas into one answer.

Feed a :class:`ChunkMerger` the ``data`` of each server-sent event (:meth:`~ChunkMerger.feed_data`,
which understands ``[DONE]``) or already-parsed chunks (:meth:`~ChunkMerger.feed`); each call
returns the text it added to the answer, for showing as it is written. At the end,
:meth:`~ChunkMerger.response` gives the same :class:`~genesys_gateway.models.ChatResponse` a
whole (non-streamed) answer would have given, so the loop treats both alike.

What real OpenAI-compatible servers send, and how it is merged:

- Tool-call deltas are merged by ``index``; a delta without one (Ollama, Gemini, some
  proxies) takes its position in the chunk's list. The id, type and name usually come in
  the first delta of a call and are kept; ``name: ""`` and ``id: ""`` on later deltas are
  ignored, a name repeated on every delta is kept once, a name sent in pieces is joined.
  A delta with an index already in use but a different id *and* a name starts a new call
  (servers that send every parallel call at index 0, or at no index). The merged calls are
  in index order, calls sharing an index in order of arrival.
- Two deltas with the same index in one chunk are two pieces of the same call; arguments
  may come in any number of pieces, or whole in the last chunk. An object given as
  arguments is serialised to JSON. Arguments are passed on as they are: arguments that never
  form valid JSON are the tool executor's to report to the model, not a stream error.
- Usage comes from the last chunk that carries one (with ``stream_options.include_usage``,
  a last chunk with ``choices: []``); servers that send running usage on every chunk are
  covered by the same rule.
- A UTF-16 surrogate pair split across two chunks (``"\\ud83d"`` then ``"\\ude00"``) is
  joined; a lone surrogate becomes U+FFFD, so the text can always be encoded as UTF-8.
- ``[DONE]`` may be missing: :attr:`ChunkMerger.ended` is true after ``[DONE]`` or once
  every choice has a ``finish_reason``; telling a stream cut short from a finished one is the
  caller's decision (a ``TransportError``), made with that property.

A chunk that is not JSON, not an object, or has ``choices``, ``delta``, ``content`` or
``finish_reason`` of the wrong type raises :class:`~genesys_gateway.errors.ResponseFormatError`,
as does a chunk carrying an ``error`` object (servers report failures mid-stream that way);
nothing else is raised.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

from .errors import ResponseFormatError
from .models import ChatResponse, Choice, FunctionCall, Message, ToolCall, Usage, parse_usage

__all__ = ["ChunkMerger", "merge_chunks"]

_SURROGATE = re.compile("[\ud800-\udfff]")


def _fix_surrogates(text: str) -> str:
    """Pairs of surrogates joined into their character; lone ones replaced by U+FFFD."""
    if text.isascii() or not _SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _bad(message: str) -> ResponseFormatError:
    return ResponseFormatError(f"stream chunk: {message}")


class _Call:
    __slots__ = ("index", "id", "type", "name", "arguments")

    def __init__(self, index: int) -> None:
        self.index = index
        self.id: str | None = None
        self.type = "function"
        self.name: str | None = None
        self.arguments: list[str] = []

    def tool_call(self) -> ToolCall:
        arguments = _fix_surrogates("".join(self.arguments)) if self.arguments else None
        return ToolCall(self.id, self.type, FunctionCall(self.name, arguments))


class _Choice:
    __slots__ = ("index", "role", "parts", "held", "calls", "by_index", "finish_reason")

    def __init__(self, index: int) -> None:
        self.index = index
        self.role = "assistant"
        self.parts: list[str] = []
        self.held = ""  # a high surrogate that ended the last piece, waiting for its pair
        self.calls: list[_Call] = []  # in order of first appearance
        self.by_index: dict[int, _Call] = {}
        self.finish_reason: str | None = None

    def text(self, piece: str) -> str:
        """``piece`` made safe to emit: surrogate pairs split across pieces rejoined."""
        piece = self.held + piece
        self.held = ""
        if "\ud800" <= piece[-1:] <= "\udbff":
            self.held, piece = piece[-1], piece[:-1]
        return _fix_surrogates(piece)

    def merge_calls(self, items: object) -> None:
        if type(items) is not list:
            raise _bad("delta.tool_calls must be a list")
        for position, item in enumerate(items):
            if type(item) is not dict:
                raise _bad("each tool call delta must be an object")
            index = item.get("index", position)
            if type(index) is not int:
                index = position
            fn = item.get("function")
            if type(fn) is not dict:
                fn = {}
            name = fn.get("name")
            if type(name) is not str or not name:
                name = None
            call_id = item.get("id")
            if type(call_id) is not str or not call_id:
                call_id = None
            call = self.by_index.get(index)
            if call is None or (call_id is not None and name is not None
                                and call.id is not None and call.id != call_id):
                call = self.by_index[index] = _Call(index)
                self.calls.append(call)
            if call_id is not None and call.id is None:
                call.id = call_id
            kind = item.get("type")
            if type(kind) is str and kind:
                call.type = kind
            if name is not None and name != call.name:
                call.name = name if call.name is None else call.name + name
            arguments = fn.get("arguments")
            if arguments is not None:
                call.arguments.append(arguments if type(arguments) is str else _serialise(arguments))

    def choice(self) -> Choice:
        content = "".join(self.parts) + ("\ufffd" if self.held else "") if self.parts else None
        # In index order; calls sharing an index (sent one after another) in order of arrival.
        calls = tuple(call.tool_call() for call in sorted(self.calls, key=_index)) or None
        return Choice(Message(self.role, content, calls), self.index, self.finish_reason)


def _index(call: _Call) -> int:
    return call.index


def _serialise(value: Any) -> str:
    if isinstance(value, (dict, list)):
        try:
            return json.dumps(value, ensure_ascii=False)
        except (ValueError, TypeError, RecursionError) as e:
            raise _bad(f"tool call arguments cannot be serialised ({e.__class__.__name__})") from None
    return str(value)


class ChunkMerger:
    """Merges the chunks of one streamed chat completion; see the module's documentation."""

    __slots__ = ("_choices", "_by_index", "_primary", "_usage", "_meta", "_done")

    def __init__(self) -> None:
        self._choices: list[_Choice] = []  # in order of first appearance
        self._by_index: dict[int, _Choice] = {}
        self._primary: _Choice | None = None  # the first choice seen: its text is returned
        self._usage: dict[str, Any] | None = None
        self._meta: dict[str, Any] = {}
        self._done = False

    @property
    def done(self) -> bool:
        """``data: [DONE]`` was seen."""
        return self._done

    @property
    def ended(self) -> bool:
        """The stream said it was over: ``[DONE]``, or every choice has a finish reason."""
        return self._done or (bool(self._choices)
                              and all(c.finish_reason is not None for c in self._choices))

    @property
    def finish_reason(self) -> str | None:
        """The first choice's finish reason so far."""
        return self._primary.finish_reason if self._primary is not None else None

    @property
    def usage(self) -> Usage | None:
        """Usage from the last chunk that carried it, or ``None``."""
        return None if self._usage is None else parse_usage(self._usage)

    @property
    def text(self) -> str:
        """The first choice's content so far."""
        return "".join(self._primary.parts) if self._primary is not None else ""

    def feed_data(self, data: str) -> str:
        """Feed one event's ``data``: a JSON chunk, ``[DONE]`` (or a blank keep-alive)."""
        if data[:1] != "{":
            stripped = data.strip()
            if stripped == "[DONE]":
                self._done = True
                return ""
            if not stripped:
                return ""
        try:
            chunk = json.loads(data)
        except RecursionError:
            raise _bad("nested too deeply") from None
        except ValueError as e:
            raise _bad(f"not valid JSON ({e}): {data[:60]!r}") from None
        return self.feed(chunk)

    def feed(self, chunk: object) -> str:
        """Merge one parsed chunk; return the text it adds to the first choice (maybe ``""``).

        Chunks after ``[DONE]`` are ignored.
        """
        if type(chunk) is not dict:
            raise _bad(f"expected a JSON object, got {type(chunk).__name__}")
        if self._done:
            return ""
        if len(self._meta) < 3:
            self._take_meta(chunk)
        usage = chunk.get("usage")
        if type(usage) is dict:
            self._usage = usage
        choices = chunk.get("choices")
        if not choices:
            error = chunk.get("error")
            if error is not None:
                message = error.get("message") if type(error) is dict else error
                raise ResponseFormatError(f"the server reported an error mid-stream: {str(message)[:300]}")
            if choices is None or choices == []:
                return ""
        if type(choices) is not list:
            raise _bad("'choices' must be a list")
        text = ""
        for position, item in enumerate(choices):
            if type(item) is not dict:
                raise _bad("each choice must be an object")
            index = item.get("index", position)
            if type(index) is not int:
                index = position
            choice = self._by_index.get(index)
            if choice is None:
                choice = self._by_index[index] = _Choice(index)
                self._choices.append(choice)
                if self._primary is None:
                    self._primary = choice
            delta = item.get("delta")
            if type(delta) is dict:
                content = delta.get("content")
                if content is not None:
                    if type(content) is not str:
                        raise _bad(f"delta.content must be a string, got {type(content).__name__}")
                    if choice.held or not content.isascii():
                        content = choice.text(content)
                    choice.parts.append(content)
                    if choice is self._primary:
                        text += content
                role = delta.get("role")
                if type(role) is str and role:
                    choice.role = role
                calls = delta.get("tool_calls")
                if calls is not None:
                    choice.merge_calls(calls)
            elif delta is not None:
                raise _bad(f"'delta' must be an object, got {type(delta).__name__}")
            finish = item.get("finish_reason")
            if finish is not None:
                if type(finish) is not str:
                    raise _bad(f"finish_reason must be a string, got {type(finish).__name__}")
                choice.finish_reason = finish
        return text

    def _take_meta(self, chunk: dict[str, Any]) -> None:
        # The first real value of each: Azure's first chunk has "id": "", "created": 0.
        for key, kind in (("id", str), ("model", str), ("created", int)):
            value = chunk.get(key)
            if key not in self._meta and type(value) is kind and value:
                self._meta[key] = value

    def response(self) -> ChatResponse:
        """The answer merged so far, as a whole chat completion.

        :raises ResponseFormatError: the stream carried no choice at all.
        """
        if not self._choices:
            raise ResponseFormatError("the stream carried no choices")
        meta = self._meta
        return ChatResponse(
            choices=tuple(choice.choice() for choice in self._choices),
            id=meta.get("id"), model=meta.get("model"), created=meta.get("created"),
            object="chat.completion", usage=self.usage or Usage())


def merge_chunks(chunks: Iterable[object]) -> ChatResponse:
    """The :class:`ChatResponse` of a whole sequence of parsed chunks."""
    merger = ChunkMerger()
    for chunk in chunks:
        merger.feed(chunk)
    return merger.response()
