"""Streamed answers of :class:`GatewayEmulator`: a chat completion cut into OpenAI
``chat.completion.chunk`` events, written as ``text/event-stream`` with chunked framing, on a connection kept alive for the
next request when the request allows it.

:func:`completion_frames` makes the frames (the answer's text and each tool call's
arguments split into pieces of ``chunk_chars`` characters, a usage chunk when asked for,
then ``data: [DONE]``); :func:`write_frames` writes them, one HTTP chunk per frame, and
honours the test hooks of :class:`StreamHooks`: hold the stream after a number of frames
until an event is set, cut it there (a dropped connection) or send a malformed frame.
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Any, Optional

import attrs

from .http_server import may_keep_alive

__all__ = ["QUIRKS", "StreamHooks", "completion_frames", "write_frames"]


@attrs.define
class StreamHooks:
    """What a test makes the next streamed answers do. ``hold_after`` frames sent, the
    writer waits for ``release`` (set it to go on); ``break_after`` frames sent, it drops
    the connection (``break_kind="drop"``) or sends a malformed frame (``"garbage"``).
    ``client_gone`` is set when a held stream finds that the client went away.

    ``quirks`` makes the stream look like real servers that bend OpenAI's shape:
    ``"repeat_index"`` (the first tool-call chunk repeats its index in a second delta),
    ``"empty_name"`` (argument chunks carry ``name: ""``), ``"arguments_last"`` (the
    arguments come whole in the final chunk), ``"no_done"`` (no ``data: [DONE]`` at the
    end; the finish reason still comes)."""

    hold_after: Optional[int] = None
    release: threading.Event = attrs.field(factory=threading.Event)
    break_after: Optional[int] = None
    break_kind: str = "drop"
    client_gone: threading.Event = attrs.field(factory=threading.Event)
    quirks: frozenset[str] = frozenset()


QUIRKS = frozenset({"repeat_index", "empty_name", "arguments_last", "no_done"})


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _pieces(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def completion_frames(completion: dict[str, Any], chunk_chars: int, include_usage: bool,
                      quirks: frozenset[str] = frozenset()) -> list[bytes]:
    """The SSE frames (``data: ...\\n\\n``) streaming *completion* (a rendered chat
    completion), bent by *quirks* (see :class:`StreamHooks`)."""
    base = {"id": completion.get("id"), "object": "chat.completion.chunk",
            "created": completion.get("created"), "model": completion.get("model")}
    frames: list[bytes] = []

    def chunk(delta: dict[str, Any], finish: Optional[str] = None, index: int = 0) -> None:
        body: dict[str, Any] = dict(base, choices=[{"index": index, "delta": delta, "finish_reason": finish}])
        if include_usage:
            body["usage"] = None
        frames.append(b"data: " + _dumps(body) + b"\n\n")

    for choice in completion.get("choices") or []:
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        chunk({"role": "assistant", "content": ""}, index=index)
        content = message.get("content")
        if isinstance(content, str) and content:
            for piece in _pieces(content, chunk_chars):
                chunk({"content": piece}, index=index)
        last: list[dict[str, Any]] = []
        for n, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function") or {}
            first = {"index": n, "id": call.get("id"), "type": "function",
                     "function": {"name": function.get("name"), "arguments": ""}}
            if "repeat_index" in quirks:
                chunk({"tool_calls": [first, {"index": n, "function": {"arguments": ""}}]},
                      index=index)
            else:
                chunk({"tool_calls": [first]}, index=index)
            arguments = str(function.get("arguments") or "")
            named = {"name": ""} if "empty_name" in quirks else {}
            if "arguments_last" in quirks:
                last.append({"index": n, "function": {**named, "arguments": arguments}})
                continue
            for piece in _pieces(arguments, chunk_chars):
                chunk({"tool_calls": [{"index": n, "function": {**named, "arguments": piece}}]},
                      index=index)
        if last:
            chunk({"tool_calls": last}, choice.get("finish_reason") or "stop", index=index)
        else:
            chunk({}, choice.get("finish_reason") or "stop", index=index)
    if include_usage:
        frames.append(b"data: " + _dumps(dict(base, choices=[], usage=completion.get("usage"))) + b"\n\n")
    if "no_done" not in quirks:
        frames.append(b"data: [DONE]\n\n")
    return frames


def write_frames(head: bytes, frames: list[bytes], hooks: StreamHooks, stopping: threading.Event,
                 sock: socket.socket) -> bool:
    """Write the response head (*head*: the status line and header lines, each ending in
    CRLF, without the blank line that ends the head), then *frames* one HTTP chunk each,
    then the last chunk.

    As a gateway does, the connection stays open for the next request when the request
    allows it (:func:`~.http_server.may_keep_alive`) and no hook is set to hold or cut the
    stream: then ``True`` is returned once the whole answer was written. Otherwise the head
    says ``Connection: close`` and the connection is closed after it (``False``)."""
    keep = may_keep_alive() and hooks.hold_after is None and hooks.break_after is None
    head += b"\r\n" if keep else b"Connection: close\r\n\r\n"
    try:
        sock.sendall(head)
        for n, frame in enumerate(frames):
            if n == hooks.hold_after:
                _hold(hooks, stopping, sock)
            if n == hooks.break_after:
                if hooks.break_kind == "garbage":
                    bad = b"data: {not json\n\n"
                    sock.sendall(b"%x\r\n%s\r\n" % (len(bad), bad))
                    continue
                sock.shutdown(socket.SHUT_RDWR)  # the connection drops mid-stream
                return False
            sock.sendall(b"%x\r\n%s\r\n" % (len(frame), frame))
        sock.sendall(b"0\r\n\r\n")
    except OSError:
        hooks.client_gone.set()  # the client closed the connection
        return False
    return keep


def _hold(hooks: StreamHooks, stopping: threading.Event, sock: socket.socket) -> None:
    """Wait for ``release``; then see whether the client is still there (a closed
    connection reads as the end of the stream, or a reset)."""
    while not (hooks.release.wait(0.05) or stopping.is_set()):
        pass
    sock.settimeout(0.5)
    try:
        if sock.recv(1) == b"":
            hooks.client_gone.set()
    except socket.timeout:
        pass
    except OSError:
        hooks.client_gone.set()
    finally:
        sock.settimeout(None)
