"""Helpers for the streaming web tests: a browser-like event-stream parser, and the
cancellation scenario shared by the Flask, Django and real-server tests."""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time

import genesys_gateway as gg
from genesys_gateway.testing import reply, tool_call

WAIT = 10  # generous: a deadline for things that happen at once, never a sleep
STOP_WITHIN = 0.5  # what "at once" means for the upstream request after a close

LINE_BREAK = re.compile(r"\r\n|\r|\n")


def parse_frames(raw):
    """``(event, data)`` pairs of an event stream, parsed as the WHATWG rules say a browser
    does (fields per line, ``data`` lines joined with ``\\n``, a blank line dispatches)."""
    text = raw.decode("utf-8")
    frames, name, data = [], "message", []
    for line in LINE_BREAK.split(text):
        if line == "":
            if data:
                frames.append((name, json.loads("\n".join(data))))
            name, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    return frames


class Scenario:
    """A run whose first model call asks for two ``lookup`` calls and whose second model
    call (held by the test: ``arrived`` when it reaches the emulator, answered only after
    ``release``) asks for a third; the tool records when each call starts."""

    def __init__(self, emulator):
        self.emulator = emulator
        self.lock = threading.Lock()
        self.starts = []  # (time.monotonic(), topic) of every tool call that started
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.answered_at = None
        self.registry = gg.ToolRegistry()

        @self.registry.tool(timeout=5)
        def lookup(topic: str) -> str:
            """Look a topic up.

            Args:
                topic: what to look up.
            """
            with self.lock:
                self.starts.append((time.monotonic(), topic))
            return f"facts about {topic}"

        emulator.script(
            reply(content="Let me look that up.",
                  tool_calls=[tool_call("lookup", {"topic": "a"}), tool_call("lookup", {"topic": "b"})]),
            self.second_call,
            reply(content="All done."),
        )

    def second_call(self, body):
        self.arrived.set()
        assert self.release.wait(WAIT), "the test never released the second model call"
        self.answered_at = time.monotonic()
        return reply(tool_calls=[tool_call("lookup", {"topic": "c"})])

    def topics(self):
        with self.lock:
            return [topic for _, topic in self.starts]

    def started_after(self, moment):
        with self.lock:
            return [topic for at, topic in self.starts if at >= moment]

    def finish(self):
        self.release.set()  # never leave an emulator thread waiting


def serve_like_wsgi(chunks, close, frames, gone, closed_at):
    """What a WSGI server does with a streamed body, in a thread: write each chunk (here:
    put it in ``frames``) until a write fails because the browser has gone (``gone`` is
    set: a server only notices when it next writes), then ``close()`` the response."""
    def serve():
        try:
            for chunk in chunks:
                if gone.is_set():
                    break
                frames.put(chunk)
        finally:
            close()
            closed_at.append(time.monotonic())
            frames.put(None)

    thread = threading.Thread(target=serve, name="wsgi-like-server", daemon=True)
    thread.start()
    return thread


def disconnect_during_second_call(port, scenario, path="/stream?prompt=hi"):
    """A browser on a raw socket: read the stream until both tools of the first turn
    finished, wait until the second model call is in flight, then go away (an RST, so the
    server's next write fails) and let that model call answer. Returns when it went away."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as browser:
        browser.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n"
                        "Accept: text/event-stream\r\n\r\n".encode())
        received = b""
        while received.count(b"event: tool_call_finished") < 2:
            chunk = browser.recv(65536)
            assert chunk, received
            received += chunk
        assert b"text/event-stream" in received.split(b"\r\n\r\n", 1)[0]
        assert scenario.arrived.wait(WAIT)  # the second model call is in flight
        browser.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    gone_at = time.monotonic()
    scenario.release.set()
    return gone_at


def next_frames(frames, until):
    """Frames from the queue until one whose event name is ``until`` (inclusive)."""
    seen = []
    while True:
        chunk = frames.get(timeout=WAIT)
        assert chunk is not None, f"the body ended before {until!r}: {seen}"
        seen.extend(parse_frames(chunk))
        if seen and seen[-1][0] == until:
            return seen


def check_cancelled_after_first_event(scenario, stream, close_s):
    """The assertions of "stop reading after the first event": see the callers."""
    em = scenario.emulator
    assert close_s < STOP_WITHIN, f"closing took {close_s:.3f} s"
    assert stream.result is not None and stream.result.stop_reason == "cancelled"
    assert scenario.topics() == []  # the turn's tool calls were never started
    # one model call, answered (the upstream request ended before close() returned): the
    # run is over, so there is no further call, now or later
    chat = [r for r in em.requests if r.endpoint == "chat"]
    assert len(chat) == 1 and chat[0].status == 200
    assert len(em.chat_requests) == 1


def check_cancelled_in_flight(scenario, stream, gone_at, closed_at):
    """The assertions when the browser went away during the second model call."""
    em = scenario.emulator
    assert scenario.answered_at is not None
    # the response was closed as soon as the in-flight model call returned
    assert closed_at - scenario.answered_at < STOP_WITHIN, closed_at - scenario.answered_at
    assert stream.result is not None and stream.result.stop_reason == "cancelled"
    assert sorted(scenario.topics()) == ["a", "b"]  # "c", asked for by that call, never ran
    assert scenario.started_after(gone_at) == []
    chat = [r for r in em.requests if r.endpoint == "chat"]
    assert len(chat) == 2 and all(r.status == 200 for r in chat)  # no third model call
    assert len(em.chat_requests) == 2


__all__ = ["WAIT", "STOP_WITHIN", "parse_frames", "Scenario", "serve_like_wsgi", "next_frames",
           "disconnect_during_second_call",
           "check_cancelled_after_first_event", "check_cancelled_in_flight"]
