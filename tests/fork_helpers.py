"""Real ``os.fork()`` children using a client made, and used, before the fork: the harness of
``test_fork.py``. It is also run in a fresh interpreter with the fork hooks disabled, to show
what happens without them, so it imports only the package and the standard library.

Each child answers through a pipe (one JSON document) and ends with ``os._exit``: a forked
copy of the test process never runs pytest's teardown. Every wait is on a pipe, a thread
join or the children's exit, bounded by one generous deadline; a child still running at the
deadline is killed and reported, so a hang fails the test instead of outliving it.
"""

from __future__ import annotations

import functools
import json
import os
import selectors
import signal
import threading
import time
import traceback
from typing import Any, Callable

import genesys_gateway as gg
from genesys_gateway.constants import TOOL_THREAD_NAME_PREFIX
from genesys_gateway.testing import GatewayEmulator, reply, tool_call

from tests.echo_server import EchoServer, sockets_to

__all__ = ["TRANSPORTS", "responder", "make_client", "expected", "call", "fork_children",
           "run_scenario", "tool_threads", "killed_worker_scenario",
           "executor_scenario", "inherited_connection_scenario", "read_report", "write_report"]

TRANSPORTS: dict[str, Callable[[], gg.Transport]] = {
    "urllib3": gg.Urllib3Transport,
    "requests": gg.RequestsTransport,
}

#: A prompt starting with this makes the emulated model call the ``tag`` tool first.
TOOL_PROMPT = "use tool: "


def responder(body: dict[str, Any]) -> dict[str, Any]:
    """Echo the last user message; for a tool prompt, call ``tag`` and then answer with the
    tool's result. Every answer names its prompt, so an answer meant for another process is
    seen."""
    last = body["messages"][-1]
    if last["role"] == "tool":
        return reply("tool said " + last["content"])
    text = last["content"]
    if text.startswith(TOOL_PROMPT):
        return reply(tool_calls=[tool_call("tag", {"text": text})])
    return reply("Echo: " + text)


def make_client(em: GatewayEmulator, transport: str, **kwargs: Any) -> gg.GatewayClient:
    registry = gg.ToolRegistry()

    @registry.tool
    def tag(text: str) -> str:
        """Tag a text with the thread that ran the tool."""
        return f"tagged <{text}> in {threading.current_thread().name}"

    return gg.GatewayClient(base_url=em.url, auth=gg.ClientCredentials("id", "secret", token_url=em.token_url),
                            tools=registry, transport=TRANSPORTS[transport](), **kwargs)


def expected(prompt: str) -> str:
    """The start of the answer that belongs to ``prompt``."""
    if prompt.startswith(TOOL_PROMPT):
        return f"tool said tagged <{prompt}> in {TOOL_THREAD_NAME_PREFIX}"
    return "Echo: " + prompt


def call(client: gg.GatewayClient, kind: int, prompt: str) -> str | None:
    """One call of three kinds: a run with a tool round, a plain ``complete()``, a plain run.
    ``None`` if the answer is the prompt's, else a description of what came back."""
    try:
        if kind % 3 == 0:
            prompt = TOOL_PROMPT + prompt
            answer = client.run(prompt).content
        elif kind % 3 == 1:
            answer = client.complete([{"role": "user", "content": prompt}]).message.content
        else:
            answer = client.run(prompt).content
    except Exception as exc:  # an exchange broken by another process is a failure too
        return f"{prompt!r} raised {type(exc).__name__}: {exc}"
    if answer is None or not answer.startswith(expected(prompt)):
        return f"{prompt!r} got {answer!r}"
    return None


def tool_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(TOOL_THREAD_NAME_PREFIX)]


def calls_in_threads(client: gg.GatewayClient, who: str, threads: int, calls: int) -> list[str]:
    """``threads`` threads (this one included) making ``calls`` calls each, together."""
    failures: list[str] = []

    def work(t: int) -> None:
        for j in range(calls):
            problem = call(client, t + j, f"{who} thread {t} call {j}")
            if problem is not None:
                failures.append(problem)

    others = [threading.Thread(target=work, args=(t,)) for t in range(1, threads)]
    for thread in others:
        thread.start()
    work(0)
    for thread in others:
        thread.join()
    return failures


def fork_children(n: int, child: Callable[[int, int], dict[str, Any]],
                  while_running: Callable[[], None] = lambda: None,
                  deadline_s: float = 30.0) -> list[dict[str, Any]]:
    """Fork ``n`` children running ``child(i, go_fd)`` (which reads one byte from ``go_fd``
    when it is ready to start together with the others); once all are forked, release them
    and run ``while_running()`` here. Returns each child's JSON report, with its exit status
    under ``"exit"`` (a child that crashed or hung reports ``{"error": ...}``)."""
    go_r, go_w = os.pipe()
    children: list[tuple[int, int]] = []
    try:
        for i in range(n):
            out_r, out_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(out_r)
                _child(functools.partial(child, i, go_r), out_w)
            os.close(out_w)
            children.append((pid, out_r))
        os.write(go_w, b"g" * n)
        while_running()
        return _collect(children, deadline_s)
    finally:
        os.close(go_r)
        os.close(go_w)
        for _, out_r in children:
            os.close(out_r)


def _collect(children: list[tuple[int, int]], deadline_s: float) -> list[dict[str, Any]]:
    chunks: dict[int, list[bytes]] = {fd: [] for _, fd in children}
    deadline = time.monotonic() + deadline_s
    with selectors.DefaultSelector() as selector:
        for _, fd in children:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=max(0.0, deadline - time.monotonic())):
                data = os.read(key.fd, 65536)
                if data:
                    chunks[key.fd].append(data)
                else:
                    selector.unregister(key.fd)
        hung = {key.fd for key in selector.get_map().values()}
    reports = []
    for pid, fd in children:
        if fd in hung:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        try:
            report = json.loads(b"".join(chunks[fd])) if fd not in hung else {"error": "hung: killed"}
        except ValueError:
            report = {"error": f"no report (exit status {status})"}
        report["exit"] = os.waitstatus_to_exitcode(status)
        reports.append(report)
    return reports


def run_scenario(transport: str, *, children: int = 8, threads: int = 3, calls: int = 3,
                 timeout: gg.Timeout | None = None) -> dict[str, Any]:
    """The parent makes calls (kept-alive connections in its pool, tool threads in its
    executor), forks ``children`` children and keeps calling while each child makes
    ``threads`` x ``calls`` calls of its own, then calls again once they have exited.

    Returns what the tests assert on: the children's reports, the parent's failures, and the
    connections the parent used before the fork and after the children exited."""
    with GatewayEmulator(responder=responder) as em:
        client = make_client(em, transport, **({"timeout": timeout} if timeout else {}))
        parent_failures = [p for k in range(3) if (p := call(client, k, f"parent before {k}"))]
        before = _connections(em, "parent before")
        parent_threads = len(tool_threads())

        def child(i: int, go: int) -> dict[str, Any]:
            os.read(go, 1)
            report: dict[str, Any] = {"threads_at_start": len(tool_threads()),
                                      "executor_threads_at_start": client.executor().stats["threads"]}
            report["failures"] = calls_in_threads(client, f"child {i}", threads, calls)
            report["tool_threads"] = len(tool_threads())
            report["executor_threads"] = client.executor().stats["threads"]
            workers = tool_threads()
            client.close()
            for worker in workers:
                worker.join(10)
            report["threads_after_close"] = [t.name for t in threading.enumerate()
                                             if t is not threading.current_thread()]
            return report

        def parent_calls() -> None:
            parent_failures.extend(calls_in_threads(client, "parent during", 1, calls * 2))

        reports = fork_children(children, child, parent_calls)
        parent_failures.extend(p for k in range(3) if (p := call(client, k, f"parent after {k}")))
        after = _connections(em, "parent after")
        client.close()
    return {"children": reports, "parent_failures": parent_failures,
            "parent_threads": parent_threads, "connections_before": before,
            "connections_after": after}


def _connections(em: GatewayEmulator, prefix: str) -> list[int]:
    """The emulator's connection ids of the chat requests whose last message starts with
    ``prefix`` (tool prompts included)."""
    found = []
    for request in em.requests:
        messages = (request.json or {}).get("messages") or [{}]
        text = next((m.get("content") or "" for m in messages if m.get("role") == "user"), "")
        if text.removeprefix(TOOL_PROMPT).startswith(prefix):
            found.append(request.connection_id)
    return found


def write_report(fd: int, report: dict[str, Any]) -> None:
    os.write(fd, json.dumps(report).encode())


def read_report(fd: int) -> dict[str, Any]:
    """One child's JSON report: everything until the child closed the pipe (its exit)."""
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return json.loads(b"".join(chunks)) if chunks else {"error": "no report"}


def _child(body: Callable[[], dict[str, Any]], out: int) -> None:
    """Run ``body`` in a forked child, write its report to ``out`` and exit (never returns)."""
    status = 1
    try:
        report = body()
        status = 0
    except BaseException:
        report = {"error": traceback.format_exc()}
    try:
        write_report(out, report)
    finally:
        os._exit(status)


def killed_worker_scenario(transport: str) -> dict[str, Any]:
    """A worker killed in the middle of a request (gunicorn's worker timeout), then another
    worker's request: deterministic, no timing involved.

    The parent's pool holds one kept-alive connection. Children A and B are forked. A sends
    its request, which the server holds (as a slow model would); A is killed. B sends its
    request. Had both inherited the parent's connection, B's request follows A's on it, the
    server answers A's first, and B reads A's answer. Returns B's answer and the connections
    each request arrived on."""
    with EchoServer(hold=("child A",)) as server:
        client = gg.GatewayClient(base_url=server.url, path="/chat", auth=None,
                                  transport=TRANSPORTS[transport](), retry=gg.NoRetry())
        before = client.complete([{"role": "user", "content": "parent before"}]).message.content
        pids = []
        pipes = [os.pipe() for _ in range(4)]  # go A, go B, report A, report B
        (go_a, go_a_w), (go_b, go_b_w), (out_a_r, out_a), (out_b_r, out_b) = pipes

        def ask(go: int, prompt: str) -> Callable[[], dict[str, Any]]:
            def body() -> dict[str, Any]:
                os.read(go, 1)
                message = client.complete([{"role": "user", "content": prompt}]).message
                return {"answer": message.content}
            return body

        try:
            for go, out, prompt in ((go_a, out_a, "child A"), (go_b, out_b, "child B")):
                pid = os.fork()
                if pid == 0:
                    _child(ask(go, prompt), out)
                pids.append(pid)
            os.close(out_a)
            os.close(out_b)
            os.write(go_a_w, b"g")
            server.wait_for("child A")
            os.kill(pids[0], signal.SIGKILL)
            os.waitpid(pids[0], 0)
            os.write(go_b_w, b"g")
            with _killed_on_timeout(pids[1]):
                report = read_report(out_b_r)
            os.waitpid(pids[1], 0)
        finally:
            for fd in (go_a, go_a_w, go_b, go_b_w, out_a_r, out_b_r):
                os.close(fd)
        after = client.complete([{"role": "user", "content": "parent after"}]).message.content
        client.close()
        return {"before": before, "after": after, "answer_b": report.get("answer", report),
                "connections": {p: server.connection_of(p) for p in
                                ("parent before", "child A", "child B", "parent after")}}


def inherited_connection_scenario(transport: gg.Transport, tls: tuple[str, str] | None = None
                                  ) -> dict[str, Any]:
    """The parent's pool holds one kept-alive connection (TCP, or TLS with ``tls``); a child
    is forked, makes a call and exits; the parent calls again. Returns what the child saw of
    the inherited connection, and everything the server received on it."""
    with EchoServer(tls=tls) as server:
        client = gg.GatewayClient(base_url=server.url, path="/chat", auth=None,
                                  transport=transport, retry=gg.NoRetry())
        before = client.complete([{"role": "user", "content": "parent before"}]).message.content
        parent_sockets = len(sockets_to(server.address))
        out_r, out = os.pipe()
        pid = os.fork()
        if pid == 0:
            def body() -> dict[str, Any]:
                inherited = len(sockets_to(server.address))
                message = client.complete([{"role": "user", "content": "child"}]).message
                client.close()
                return {"inherited_sockets": inherited, "answer": message.content}
            _child(body, out)
        os.close(out)
        with _killed_on_timeout(pid):
            child = read_report(out_r)
        os.close(out_r)
        _, status = os.waitpid(pid, 0)  # every descriptor of the child is closed now
        after = client.complete([{"role": "user", "content": "parent after"}]).message.content
        client.close()
        connection = server.connection_of("parent before")
        return {"before": before, "after": after, "parent_sockets": parent_sockets,
                "child": child, "child_exit": os.waitstatus_to_exitcode(status),
                "parent_connection_events": server.events(connection or 0),
                "child_connection": server.connection_of("child"),
                "after_connection": server.connection_of("parent after"),
                "parent_connection": connection}


class _killed_on_timeout:
    """Kill ``pid`` if the block has not finished after ``timeout`` seconds (a hung child
    then fails the test instead of hanging it)."""

    def __init__(self, pid: int, timeout: float = 20.0) -> None:
        self._timer = threading.Timer(timeout, os.kill, (pid, signal.SIGKILL))

    def __enter__(self) -> None:
        self._timer.start()

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        self._timer.join()


def executor_scenario() -> dict[str, Any]:
    """A parent whose executor has a worker thread and a hung call (a tool that timed out
    and still runs), then a child using the same executor, with one worker."""
    from genesys_gateway.tools.calls import ToolCallRequest

    release = threading.Event()
    registry = gg.ToolRegistry()
    registry.register("hang", "Wait.", {"type": "object", "properties": {}},
                      lambda: release.wait(30), timeout=0.1)
    registry.register("quick", "Answer.", {"type": "object", "properties": {}}, lambda: "done")
    executor = gg.ToolExecutor(max_workers=1)
    try:
        [hung] = executor.run(registry.snapshot(), [ToolCallRequest("c1", "hang", "{}")])
        parent = {"status": hung.status, "hung": executor.hung_count,
                  "threads": executor.stats["threads"]}
        out_r, out = os.pipe()
        pid = os.fork()
        if pid == 0:
            def body() -> dict[str, Any]:
                believed = {"hung": executor.hung_count, "threads": executor.stats["threads"]}
                [run] = executor.run(registry.snapshot(), [ToolCallRequest("c2", "quick", "{}")])
                workers = tool_threads()
                executor.close()
                for worker in workers:
                    worker.join(10)
                return {**believed, "status": run.status, "own_threads": len(workers),
                        "threads_after_close": threading.active_count() - 1}
            _child(body, out)
        os.close(out)
        with _killed_on_timeout(pid):
            child = read_report(out_r)
        os.close(out_r)
        os.waitpid(pid, 0)
    finally:
        release.set()
        executor.wait_for_hung(10)
        executor.close()
    return {"parent": parent, "child": child}
