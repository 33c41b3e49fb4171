"""Server-sent events: an incremental parser of ``text/event-stream`` bytes.

It follows the WHATWG HTML standard, "Interpreting an event stream"
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):

- the stream is UTF-8; one byte order mark at its start is ignored;
- lines end in ``\\r\\n``, ``\\n`` or ``\\r`` (a ``\\r\\n`` split across two chunks is one end);
- a line starting with ``:`` is a comment; ``field: value`` sets a field (one space after
  the colon is dropped); a line without a colon is a field with an empty value; unknown
  fields are ignored;
- ``data`` lines of one event are joined with ``\\n``; ``event`` sets the type (default
  ``"message"``); ``id`` sets the last event id unless it contains NUL, and that id lasts
  until another ``id`` line; ``retry`` is kept only when it is all ASCII digits;
- a blank line dispatches the event, unless no ``data`` line was seen;
- at the end of the stream a partial line and an event not ended by a blank line are
  discarded, never dispatched.

Where the standard tells a browser to repair, this parser refuses instead, because a
stream that breaks these rules is a broken response, not something to show a user:
bytes that are not UTF-8, a line longer than ``max_line_length`` characters and more than
``max_event_size`` characters of data held for an event not yet ended raise
:class:`~genesys_gateway.errors.ResponseFormatError`, so memory stays bounded (by those
limits plus one chunk) whatever the server sends. Whether a stream ended cleanly (say with ``data: [DONE]``) is the caller's
question; :attr:`SSEParser.truncated` tells whether :meth:`SSEParser.close` discarded
anything.
"""

from __future__ import annotations

from typing import Iterable, Iterator, NamedTuple

from ..errors import ResponseFormatError

__all__ = ["Event", "SSEParser", "iter_events", "MAX_LINE_LENGTH", "MAX_EVENT_SIZE"]

#: Default bound of one line, in (decoded) characters.
MAX_LINE_LENGTH = 1024 * 1024
#: Default bound of the data held for an event not yet ended, in (decoded) characters.
MAX_EVENT_SIZE = 16 * 1024 * 1024


class Event(NamedTuple):
    """One dispatched event.

    ``event`` is its type (``"message"`` when the stream named none), ``data`` its data
    lines joined with ``\\n``, ``id`` the last event id seen on the stream so far (``""``
    when none) and ``retry`` the reconnection time in milliseconds the stream last set
    (``None`` when it set none).

    A named tuple rather than an attrs class: a stream of tiny deltas makes thousands of
    these a second, and a tuple is made in half the time.
    """

    event: str = "message"
    data: str = ""
    id: str = ""
    retry: int | None = None


class SSEParser:
    """Feed it bytes as they arrive (any chunk boundaries); it returns complete events.

    >>> parser = SSEParser()
    >>> parser.feed(b"data: hel")
    []
    >>> parser.feed(b"lo\\n\\n")
    [Event(event='message', data='hello', id='', retry=None)]
    >>> parser.close()
    """

    __slots__ = ("_tail", "_bom", "_max_line", "_max_event", "_pending", "_pending_size", "_skip_lf",
                 "_data", "_data_size", "_type", "_id", "_last_id", "_retry", "_closed", "truncated")

    def __init__(self, *, max_line_length: int = MAX_LINE_LENGTH,
                 max_event_size: int = MAX_EVENT_SIZE) -> None:
        for name, value in (("max_line_length", max_line_length), ("max_event_size", max_event_size)):
            if type(value) is not int or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self._tail = b""  # the first bytes of a UTF-8 sequence the last chunk cut
        self._bom = True  # no text yet: a byte order mark may still come (and is dropped)
        self._max_line = max_line_length
        self._max_event = max_event_size
        self._pending: list[str] = []  # pieces of a line not yet ended
        self._pending_size = 0
        self._skip_lf = False  # the last chunk ended in "\r": a "\n" next is part of that end
        self._data: list[str] = []  # data lines of the event being read
        self._data_size = 0  # characters of ``_data`` counted so far (checked once per feed)
        self._type = ""
        self._id = ""  # the last event id buffer
        self._last_id = ""  # the id as of the last blank line: what a reconnection would send
        self._retry: int | None = None
        self._closed = False
        #: True once :meth:`close` discarded a partial line or an event without its blank line.
        self.truncated = False

    @property
    def last_event_id(self) -> str:
        """The last event id as of the last blank line (``""`` when none): what a
        reconnection would send as ``Last-Event-ID``."""
        return self._last_id

    @property
    def retry(self) -> int | None:
        """The reconnection time (ms) the stream last set, or ``None``."""
        return self._retry

    def feed(self, chunk: bytes) -> list[Event]:
        """Parse the next bytes of the stream; return the events they complete, in order."""
        if self._closed:
            raise ValueError("feed() after close()")
        if self._tail:
            chunk = self._tail + chunk
            self._tail = b""
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError as e:
            text = self._decode_split(chunk, e)
        if not text:
            return []
        if self._bom:
            self._bom = False
            if text[0] == "\ufeff":
                text = text[1:]
                if not text:
                    return []
        if self._skip_lf:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
                if not text:
                    return []
        if "\r" in text:
            self._skip_lf = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" not in text:
            self._pending.append(text)
            self._pending_size += len(text)
            if self._pending_size > self._max_line:
                raise self._too_long()
            return []
        if self._pending:
            text = "".join(self._pending) + text
            self._pending = []
            self._pending_size = 0
        cut = text.rfind("\n") + 1
        rest = text[cut:]  # the start of a line not yet ended
        if cut < len(text):
            text = text[:cut]
        if len(text) + len(rest) > self._max_line and (
                len(rest) > self._max_line or max(map(len, text.split("\n"))) > self._max_line):
            raise self._too_long()
        if rest:
            self._pending = [rest]
            self._pending_size = len(rest)
        # ``text`` is whole lines. Split at blank lines: each block but the last is the lines
        # of one event, and a block that is a single "data: " line (what chat-completion
        # servers send) is an event without looking at lines at all.
        blocks = text.split("\n\n")
        last = blocks.pop()  # "" or lines ending in "\n" with no blank line yet
        events: list[Event] = []
        for block in blocks:
            if "\n" in block or block[:6] != "data: " or self._data:
                lines = block.split("\n")
                lines.append("")
                self._lines(lines, events)
            else:
                events.append(Event(self._type or "message", block[6:], self._id, self._retry))
                self._last_id = self._id
                if self._type:
                    self._type = ""
        if last:
            self._lines(last[:-1].split("\n"), events)
        return events

    def _lines(self, lines: list[str], events: list[Event]) -> None:
        data = self._data
        counted = len(data)  # data lines already in ``_data_size``
        for line in lines:
            if line[:6] == "data: ":  # the common case first
                data.append(line[6:])
                continue
            if not line:  # dispatch
                self._last_id = self._id
                if data:
                    events.append(Event(self._type or "message",
                                        data[0] if len(data) == 1 else "\n".join(data),
                                        self._id, self._retry))
                    data = self._data = []
                    self._data_size = counted = 0
                self._type = ""
                continue
            if line[0] == ":":  # a comment
                continue
            name, colon, value = line.partition(":")
            if colon and value[:1] == " ":
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                self._type = value
            elif name == "id":
                if "\0" not in value:
                    self._id = value
            elif name == "retry":
                if value.isascii() and value.isdigit():
                    self._retry = int(value)
        if len(data) > counted:
            # Bound memory for an event that never ends: count what this chunk added.
            self._data_size += sum(map(len, data[counted:])) + len(data) - counted
            if self._data_size > self._max_event:
                raise ResponseFormatError(
                    f"event stream: an event has more than {self._max_event} characters of data")

    def _decode_split(self, chunk: bytes, error: UnicodeDecodeError) -> str:
        # A sequence cut by the chunk's end waits for the next chunk; anything else is bad.
        if error.reason != "unexpected end of data" or error.end != len(chunk):
            raise ResponseFormatError(f"event stream is not valid UTF-8 ({error.reason} at byte "
                                      f"{error.start} of a chunk)") from None
        self._tail = chunk[error.start:]
        return chunk[:error.start].decode("utf-8")

    def _too_long(self) -> ResponseFormatError:
        return ResponseFormatError(f"event stream: a line is longer than {self._max_line} characters")

    def close(self) -> None:
        """End of stream: discard a partial line or event (never dispatched). Idempotent."""
        if self._closed:
            return
        self._closed = True
        # A sequence cut by the end can only be part of a partial line: discarded with it.
        self.truncated = bool(self._tail or self._pending or self._data)
        self._tail = b""
        self._pending = []
        self._data = []


def iter_events(chunks: Iterable[bytes], *, max_line_length: int = MAX_LINE_LENGTH,
                max_event_size: int = MAX_EVENT_SIZE) -> Iterator[Event]:
    """The events of a whole stream given as byte chunks (a partial last event is dropped)."""
    parser = SSEParser(max_line_length=max_line_length, max_event_size=max_event_size)
    for chunk in chunks:
        yield from parser.feed(chunk)
    parser.close()
