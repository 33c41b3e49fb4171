"""A real loopback HTTP forward proxy for the proxy tests: it takes absolute-form requests
(``POST http://host:port/path HTTP/1.1``) for ``http://`` targets, records them and
forwards them with ``http.client``."""

from __future__ import annotations

import http.client
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["ForwardProxy"]

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authorization", "proxy-connection", "te",
               "trailer", "transfer-encoding", "upgrade", "content-length"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _forward(self) -> None:
        proxy: ForwardProxy = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        with proxy.lock:
            proxy.seen.append((self.command, self.path))
            proxy.proxy_authorization.append(self.headers.get("Proxy-Authorization"))
        target = urlsplit(self.path)
        if target.scheme != "http" or not target.hostname:
            self.send_error(400, "absolute-form http:// URL expected")
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=10)
        try:
            upstream.request(self.command, target.path + (f"?{target.query}" if target.query else ""),
                             body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            self.send_response(answer.status, answer.reason)
            for name, value in answer.getheaders():
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        finally:
            upstream.close()

    do_GET = do_POST = _forward


class ForwardProxy:
    """Use as a context manager; :attr:`url` is ``http://127.0.0.1:PORT``; :attr:`seen`
    lists ``(method, absolute URL)`` of every request that passed through, and
    :attr:`proxy_authorization` the ``Proxy-Authorization`` header of each (or ``None``)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.proxy_authorization: list[str | None] = []
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.owner = self  # type: ignore[attr-defined]
        self._connections: list[socket.socket] = []
        original = self._server.process_request

        def track(request: socket.socket, address: object) -> None:
            with self.lock:
                self._connections.append(request)
            original(request, address)

        self._server.process_request = track  # type: ignore[method-assign]
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def __enter__(self) -> ForwardProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        with self.lock:
            connections = list(self._connections)
        for conn in connections:  # wake handlers waiting on a kept-alive connection
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        self._thread.join(5)
