"""The one emulator of a benchmark run, in its own process (a real gateway is remote: in the
client's process, its threads would take a share of the client's GIL and CPU).

``python -m benchmarks.server`` serves :class:`GatewayEmulator` with the chat path OpenAI-style
clients use (``/v1/chat/completions``) and the stateless replies of
:func:`benchmarks.scenarios.respond`, prints one JSON line (``url``, ``token_url``,
``chat_path``, ``token``: a static bearer token every contestant sends) and serves until its
standard input closes, so it never outlives the run that started it; each line it reads
there is answered with one JSON line, ``{"cpu": seconds}``: the CPU time (user + system, all
threads) the process has used so far, so the runner can tell what each phase cost it. A request with
``"stream": true`` gets :data:`~benchmarks.scenarios.STREAM_ANSWER` as server-sent events,
one HTTP chunk (one socket write) per ``STREAM_CHUNK_CHARS``-character text delta; the
emulator keeps an HTTP/1.1 connection alive after a streamed answer, so every contestant
streams on a warm keep-alive connection.

:class:`ServerProcess` starts and stops it from the runner.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def serve() -> int:
    sys.path.insert(0, ROOT)
    from genesys_gateway.testing import GatewayEmulator
    from genesys_gateway.testing.emulator.http_server import EmulatorServer

    from benchmarks.scenarios import CHAT_PATH, STREAM_CHUNK_CHARS, respond

    # socketserver listens with a backlog of 5: when 16 threads connect at once, the kernel
    # drops the SYNs beyond it and the clients resend them a second later, which measured
    # the backlog, not the client. A real gateway's backlog is hundreds.
    EmulatorServer.request_queue_size = 128

    closed = threading.Event()

    def watch_stdin() -> None:
        for _ in sys.stdin:  # each line asks for the CPU the process has used so far
            print(json.dumps({"cpu": time.process_time()}), flush=True)
        closed.set()  # EOF: the runner closed the pipe or died

    with GatewayEmulator(path=CHAT_PATH, responder=respond, stream_chunk_chars=STREAM_CHUNK_CHARS) as emulator:
        info = {"url": emulator.url, "token_url": emulator.token_url, "chat_path": CHAT_PATH,
                "token": emulator.issue_token(ttl=7 * 24 * 3600), "pid": os.getpid()}
        print(json.dumps(info), flush=True)
        threading.Thread(target=watch_stdin, daemon=True).start()
        # The emulator logs every request; a run sends tens of thousands. Forget them.
        while not closed.wait(2.0):
            emulator.reset()
    return 0


class ServerProcess:
    """``with ServerProcess() as info:`` the emulator process and its JSON line."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> dict[str, Any]:
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.server"], cwd=ROOT, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.__exit__()
            raise RuntimeError("the emulator process did not start (see its error above)")
        self.info = json.loads(line)
        return self.info

    def cpu(self) -> float | None:
        """The server process's CPU seconds so far (user + system), or None once it is gone."""
        proc = self.proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            return None
        try:
            proc.stdin.write("cpu\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        except OSError:
            return None
        return float(json.loads(line)["cpu"]) if line else None

    def __exit__(self, *exc: object) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.stdin:
                proc.stdin.close()
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    raise SystemExit(serve())
