"""The http.client floor (the issue's floor, the targets' reference): what the job costs with
the standard library's HTTP client. (``benchmarks.baselines.raw_socket`` is the lower, raw-socket
floor, shown for information.)

* a plain turn: one ``http.client`` keep-alive connection (``TCP_NODELAY``), the same compact
  UTF-8 JSON and the same headers the SDK sends (fresh ``Idempotency-Key`` included),
  ``json.loads`` of the answer;
* the tool loop: a hand loop on that connection — ``json.loads`` of the arguments, the
  handler called directly, ``json.dumps`` of its result; instant tools inline, one after
  another (the least work), sleeping tools on one bare ``threading.Thread`` each (the least
  wall time): no validation, no timeouts, no pool;
* the throughput test: each thread its own raw connection;
* streaming: a keep-alive ``http.client`` connection of its own, so the other measures keep
  theirs (kept from one streamed answer to the next, as the emulator keeps it alive; reopened
  only if the server closed it), a POST
  of the SDK's streamed body (``"stream": true``, ``stream_options.include_usage``) and
  ``Accept: text/event-stream``, then ``readline()`` (``http.client`` undoes the chunked
  framing) until the first ``data:`` line whose chunk has content; the rest read by lines
  to ``data: [DONE]`` and the body drained.
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import socket
import threading
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

from benchmarks.scenarios import MODEL, PLAIN_MESSAGES, TOOL_DEFINITIONS, TOOL_PROMPT, TOOL_SCENARIOS, handlers

#: genesys_gateway.constants.USER_AGENT, spelt out: the floor must not import the SDK.
USER_AGENT = "genesys-gateway-python/0.1.0"


def versions() -> dict[str, str]:
    return {}


def run_tool(fns: dict[str, Callable[..., Any]], call: dict[str, Any], results: list[str], i: int) -> None:
    """One tool call by hand: parse the arguments, call, encode the result into ``results[i]``."""
    fn = call["function"]
    results[i] = json.dumps(fns[fn["name"]](**json.loads(fn["arguments"])), ensure_ascii=False)


def request_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def hand_loop(post: Callable[[dict[str, Any]], dict[str, Any]], fns: dict[str, Callable[..., Any]],
              scenario: str) -> str:
    """The tool loop by hand on ``post`` (a payload -> the answer's message): instant tools
    inline, the others a ``threading.Thread`` each; no validation, no timeouts."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": TOOL_PROMPT}]
    while True:
        message = post({"model": MODEL, "messages": messages, "tools": TOOL_DEFINITIONS})
        calls = message.get("tool_calls")
        if not calls:
            return str(message["content"])
        messages.append(message)
        results: list[str] = [""] * len(calls)
        if scenario == "instant":
            for i, call in enumerate(calls):
                run_tool(fns, call, results, i)
        else:
            threads = [threading.Thread(target=run_tool, args=(fns, c, results, i)) for i, c in enumerate(calls)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        messages.extend({"role": "tool", "tool_call_id": call["id"], "content": content}
                        for call, content in zip(calls, results))


class Driver:
    def __init__(self, env: dict[str, Any]) -> None:
        parts = urlsplit(env["url"])
        self.host, self.port = parts.hostname, parts.port
        self.path = env["chat_path"]
        self.headers = {"Content-Type": "application/json", "Accept": "application/json",
                        "User-Agent": USER_AGENT, "Authorization": f"Bearer {env['token']}"}
        self.conn = self.connect()
        self.stream_conn: http.client.HTTPConnection | None = None  # its own: see stream()
        self.handlers = {scenario: handlers(scenario) for scenario in TOOL_SCENARIOS}

    def connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        conn.connect()
        assert conn.sock is not None
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def post(self, conn: http.client.HTTPConnection, payload: dict[str, Any]) -> dict[str, Any]:
        headers = dict(self.headers)
        headers["Idempotency-Key"] = os.urandom(16).hex()
        conn.request("POST", self.path, request_body(payload), headers)
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {data[:200]!r}")
        message: dict[str, Any] = json.loads(data)["choices"][0]["message"]
        return message

    def plain(self, conn: http.client.HTTPConnection | None = None) -> Any:
        return self.post(conn or self.conn, {"model": MODEL, "messages": PLAIN_MESSAGES})["content"]

    def tools(self, scenario: str) -> str:
        return hand_loop(functools.partial(self.post, self.conn), self.handlers[scenario], scenario)

    def stream(self) -> Iterator[str]:
        conn = self.stream_conn
        if conn is None or conn.sock is None:  # the server closed it after the last streamed answer
            conn = self.stream_conn = self.connect()
        headers = dict(self.headers, Accept="text/event-stream")
        headers["Idempotency-Key"] = os.urandom(16).hex()
        conn.request("POST", self.path, request_body({"model": MODEL, "messages": PLAIN_MESSAGES, "stream": True,
                                               "stream_options": {"include_usage": True}}), headers)
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {response.read()[:200]!r}")
        try:
            for line in iter(response.readline, b""):
                if not line.startswith(b"data: "):
                    continue
                if line.startswith(b"data: [DONE]"):
                    break
                choices = json.loads(line[6:])["choices"]
                if choices and choices[0]["delta"].get("content"):
                    yield choices[0]["delta"]["content"]
            response.read()  # to the end of the body: the connection is free again
        finally:
            response.close()

    def thread_caller(self) -> Callable[[], Any]:
        conn = self.connect()  # one raw connection per thread
        return lambda: self.plain(conn)

    def close(self) -> None:
        self.conn.close()
        if self.stream_conn is not None:
            self.stream_conn.close()
