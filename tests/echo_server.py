"""A loopback echo server that shows which connection carried what (TCP or TLS), and a way
to list the sockets a process holds to it."""

from __future__ import annotations

import json
import os
import selectors
import socket
import ssl
import threading
from typing import Any

__all__ = ["EchoServer", "sockets_to"]


class EchoServer:
    """A loopback HTTP/1.1 chat-completions server (``auth=None``) answering ``"Echo: "`` +
    the last user message, over TCP or TLS (``tls=(certfile, keyfile)``).

    It records, per connection (numbered from 1 in accepting order), every request's prompt
    and ``"eof"`` when the client side ended the connection (a TCP FIN, or a TLS
    ``close_notify``): :meth:`events`. A prompt in ``hold`` is answered only once the next
    request on the same connection has arrived (then both, in order): what a server does
    with two requests written to one connection by two processes.
    """

    def __init__(self, tls: tuple[str, str] | None = None, hold: tuple[str, ...] = ()) -> None:
        self.hold = hold
        self._tls = None
        if tls is not None:
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(*tls)
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.address = self._listener.getsockname()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.address[1]}"
        self._events: dict[int, list[str]] = {}
        self._changed = threading.Condition()
        self._wake_r, self._wake_w = socket.socketpair()
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def __enter__(self) -> "EchoServer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._wake_w.send(b"x")
        self._threads[0].join(10)
        for sock in list(self._sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads[1:]:
            thread.join(10)
        for sock in (self._listener, self._wake_r, self._wake_w, *self._sockets):
            sock.close()

    def events(self, connection: int) -> list[str]:
        with self._changed:
            return list(self._events.get(connection, ()))

    def connection_of(self, prompt: str) -> int | None:
        with self._changed:
            return next((c for c, evs in self._events.items() if prompt in evs), None)

    def wait_for(self, prompt: str, timeout: float = 10.0) -> int:
        """The connection ``prompt`` arrived on, once it has."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.connection_of(prompt) is not None, timeout):
                raise AssertionError(f"{prompt!r} never reached the server")
        return self.connection_of(prompt)  # type: ignore[return-value]

    def _record(self, connection: int, event: str) -> None:
        with self._changed:
            self._events.setdefault(connection, []).append(event)
            self._changed.notify_all()

    def _accept(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = selector.select()
                if any(key.fileobj is self._wake_r for key, _ in ready):
                    return
                sock, _ = self._listener.accept()
                self._sockets.append(sock)
                thread = threading.Thread(target=self._serve, args=(len(self._sockets), sock),
                                          daemon=True)
                self._threads.append(thread)
                thread.start()

    def _serve(self, connection: int, raw: socket.socket) -> None:
        try:
            sock = raw
            if self._tls:  # the wrapped socket takes over the descriptor: close that one
                sock = self._sockets[connection - 1] = self._tls.wrap_socket(raw, server_side=True)
            reader = sock.makefile("rb")
            held = None
            while True:
                prompt = _read_prompt(reader)
                if prompt is None:
                    self._record(connection, "eof")
                    return
                self._record(connection, prompt)
                if held is not None:
                    sock.sendall(_completion(held))
                    held = None
                if prompt in self.hold:
                    held = prompt
                else:
                    sock.sendall(_completion(prompt))
        except OSError:  # the server closing, a reset
            return


def _read_prompt(reader: Any) -> str | None:
    """The last user message of the next request, or ``None`` at the end of the stream."""
    if not reader.readline(65536):  # the request line
        return None
    length = 0
    while (line := reader.readline(65536)) not in (b"\r\n", b"\n"):
        if not line:
            return None
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    body = json.loads(reader.read(length))
    return [m for m in body["messages"] if m["role"] == "user"][-1]["content"]


def _completion(prompt: str) -> bytes:
    body = json.dumps({
        "id": "chatcmpl-echo", "object": "chat.completion", "created": 0, "model": "echo",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "Echo: " + prompt}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }).encode()
    head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head + body


def sockets_to(address: tuple[str, int]) -> list[int]:
    """This process's descriptors of sockets connected to ``address`` (Linux ``/proc``)."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                continue
            with socket.socket(fileno=os.dup(fd)) as sock:
                if sock.getpeername() == address:
                    found.append(fd)
        except OSError:  # gone meanwhile, not connected, not INET
            continue
    return found
