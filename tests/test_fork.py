"""Fork safety, with real ``os.fork()`` children: a client made and used before the fork
(gunicorn ``--preload``, Celery's prefork pool) works in every child, and no process ever
reads another's answer.

The harness is in ``fork_helpers``. The claim that the fork hooks are what makes this work
is tested too: the same scenarios run in a fresh interpreter where ``os.register_at_fork``
does nothing, and fail there (the ``xfail(strict=True)`` cases).
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import genesys_gateway as gg
from genesys_gateway import at_fork
from genesys_gateway.http.tokens import single_flight
from tests.fork_helpers import (executor_scenario, fork_children, inherited_connection_scenario,
                                killed_worker_scenario, read_report, run_scenario)

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="no fork() here"),
    # Python 3.12+ warns that forking a process with threads may deadlock the child: that
    # is the situation under test.
    pytest.mark.filterwarnings("ignore:This process .* fork:DeprecationWarning"),
]

ROOT = Path(__file__).resolve().parent.parent
TRANSPORTS = ["urllib3", "requests"]

NO_HOOKS = pytest.param("off", marks=pytest.mark.xfail(
    strict=True, reason="without the fork hooks, a child uses the parent's connections and "
    "believes in the parent's threads"))

# Runs the scenarios in a fresh interpreter in which os.register_at_fork does nothing (the
# package registers nothing on import, so stubbing it afterwards disables its hooks only).
_WITHOUT_HOOKS = """
import json, os
from tests import fork_helpers
os.register_at_fork = lambda **hooks: None
print(json.dumps({
    "killed_worker": {t: fork_helpers.killed_worker_scenario(t) for t in ("urllib3", "requests")},
    "executor": fork_helpers.executor_scenario(),
}))
"""


@pytest.fixture(scope="module")
def without_hooks():
    done = subprocess.run([sys.executable, "-c", _WITHOUT_HOOKS], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# -- the whole client, 8 children --------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_child_gets_its_own_answers(transport):
    """8 children x 3 threads x 3 calls (runs with a tool round, complete(), plain runs)
    while the parent keeps calling: every answer is the asker's own."""
    result = run_scenario(transport, children=8, threads=3, calls=3)
    children = result["children"]
    assert [c.get("error") for c in children] == [None] * 8
    assert [c["exit"] for c in children] == [0] * 8
    assert [c["failures"] for c in children] == [[]] * 8, "a child got another's answer"
    assert result["parent_failures"] == [], "the parent got a child's answer"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_parent_connections_survive_the_children(transport):
    """The parent's kept-alive connection carried its calls before the fork and carries
    them after its children have used the client and exited: no child closed it."""
    result = run_scenario(transport, children=8, threads=2, calls=2)
    assert result["connections_before"], "the parent made calls before the fork"
    assert set(result["connections_after"]) <= set(result["connections_before"])
    assert result["parent_failures"] == []


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_child_executor_starts_its_own_threads_and_close_leaves_none(transport):
    result = run_scenario(transport, children=2, threads=2, calls=3)
    assert result["parent_threads"] >= 1, "the parent's executor had a worker at the fork"
    for child in result["children"]:
        assert child["threads_at_start"] == 0
        assert child["executor_threads_at_start"] == 0, "the child counted the parent's workers"
        assert child["tool_threads"] >= 1 and child["executor_threads"] >= 1
        assert child["threads_after_close"] == []


# -- deterministic: no timing decides these ---------------------------------------------


@pytest.mark.parametrize("hooks", ["on", NO_HOOKS])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_killed_worker_answer_never_reaches_another_process(transport, hooks, without_hooks):
    """A child killed while its request is in flight; another child's request comes next.
    Had they shared the parent's connection, the second child would read the first's answer
    (and the parent the second's): the ``off`` case shows exactly that."""
    result = (killed_worker_scenario(transport) if hooks == "on"
              else without_hooks["killed_worker"][transport])
    assert result["answer_b"] == "Echo: child B"
    assert result["after"] == "Echo: parent after"
    connections = result["connections"]
    assert connections["parent after"] == connections["parent before"]
    assert connections["parent before"] not in (connections["child A"], connections["child B"])


@pytest.mark.parametrize("hooks", ["on", NO_HOOKS])
def test_a_child_executor_forgets_the_parent_workers_and_hung_calls(hooks, without_hooks):
    """One worker, busy in the parent with a call that timed out (hung): in the child that
    worker does not exist, so the child's call must start a thread of its own rather than
    be rejected as "all workers hung"."""
    result = executor_scenario() if hooks == "on" else without_hooks["executor"]
    assert result["parent"] == {"status": "timeout", "hung": 1, "threads": 1}
    child = result["child"]
    assert (child["hung"], child["threads"]) == (0, 0)
    assert child["status"] == "ok"
    assert child["own_threads"] == 1
    assert child["threads_after_close"] == 0


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (made with the openssl command)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=30)
    return cert, key


@pytest.mark.parametrize("scheme", ["tcp", "tls"])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_child_closes_its_copies_of_the_parent_connections_without_ending_them(
        transport, scheme, certificate, monkeypatch):
    """In the child, no descriptor of the parent's connection is left open (so the server
    sees the parent close it when the parent does), yet the server receives nothing on that
    connection from the child: no FIN, no TLS close_notify, no request; and the parent's
    next call travels on it."""
    tls = certificate if scheme == "tls" else None
    if transport == "urllib3":
        made = gg.Urllib3Transport(ca_certs=certificate[0])
    else:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", certificate[0])
        made = gg.RequestsTransport()
    result = inherited_connection_scenario(made, tls=tls)
    assert result["child_exit"] == 0, result["child"]
    assert result["parent_sockets"] >= 1, "the check sees the parent's connection"
    assert result["child"]["inherited_sockets"] == 0
    assert result["child"]["answer"] == "Echo: child"
    assert result["child_connection"] != result["parent_connection"]
    assert result["parent_connection_events"] == ["parent before", "parent after"]
    assert result["after"] == "Echo: parent after"


# -- locks held by a parent thread at the moment of the fork ----------------------------


@pytest.fixture
def held():
    """``hold(lock)``: a parent thread holds the context manager ``lock`` until the test
    ends (or ``release()``); returns once it holds it."""
    release = threading.Event()
    threads = []

    def hold(lock):
        entered = threading.Event()

        def run():
            with lock:
                entered.set()
                release.wait(30)

        thread = threading.Thread(target=run)
        thread.start()
        threads.append(thread)
        assert entered.wait(10)

    hold.release = lambda: (release.set(), [t.join(10) for t in threads])
    yield hold
    hold.release()


def test_memory_store_refresh_lock_held_at_the_fork_is_free_in_the_child(held):
    store = gg.MemoryTokenStore()
    held(store.lock("key"))
    fresh = gg.Token("child-token", 4e9, 4e9)
    [report] = fork_children(1, lambda i, go: {
        "token": single_flight(store, "key", lambda: fresh).access_token}, deadline_s=10)
    assert report == {"token": "child-token", "exit": 0}


def test_file_store_lock_held_at_the_fork_is_not_kept_by_the_child(tmp_path, held):
    """A parent thread holds the token file's lock when the child is forked. Once the
    parent releases it, it is free for every process although the child lives on (its copy
    of the descriptor, which shares the flock, was closed); and the child takes it too."""
    store = gg.FileTokenStore(tmp_path / "tokens.json", lock_timeout=10)
    held(store.lock("key"))
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(ready_w, b"r")  # the fork hooks have run
            os.read(go_r, 1)
            with store.lock("key"):
                os.write(out_w, b'{"locked": true}')
        finally:
            os._exit(0)
    for fd in (ready_w, go_r, out_w):  # the child's ends: a child that died gives EOF
        os.close(fd)
    try:
        assert os.read(ready_r, 1) == b"r"
        held.release()
        fd = os.open(store.lock_path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError if a copy holds it
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
            os.write(go_w, b"g")
        assert read_report(out_r) == {"locked": True}
    finally:
        os.waitpid(pid, 0)
        for fd in (ready_r, go_w, out_r):
            os.close(fd)


# -- the registry ------------------------------------------------------------------------

_REGISTRATIONS = """
import gc, json, os
calls = []
real = os.register_at_fork
def spy(**hooks):
    calls.append(getattr(hooks.get("after_in_child"), "__module__", None) or "")
    real(**hooks)
os.register_at_fork = spy
import genesys_gateway as gg
import genesys_gateway.testing
from genesys_gateway import at_fork
report = {"at_import": [c for c in calls if c.startswith("genesys_gateway")],
          "registered_at_import": at_fork.registered_count()}
clients = [gg.GatewayClient(base_url="http://127.0.0.1:1", tools=gg.ToolRegistry(),
                            auth=gg.ClientCredentials("id", "secret")) for _ in range(3)]
for client in clients:
    client.executor()
report["hooks_after_clients"] = [c for c in calls if c.startswith("genesys_gateway")]
report["registered"] = at_fork.registered_count()
for client in clients:
    client.close()
del clients, client
gc.collect()
report["registered_after_collect"] = at_fork.registered_count()
print(json.dumps(report))
"""


def test_nothing_registers_at_import_one_hook_in_all_and_only_weak_references():
    done = subprocess.run([sys.executable, "-c", _REGISTRATIONS], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["at_import"] == [] and report["registered_at_import"] == 0
    assert report["hooks_after_clients"] == ["genesys_gateway.at_fork"]
    # per client: itself, its transport, executor, credentials (and their copy bound to the
    # token URL) with their two memory stores each
    assert report["registered"] >= 3 * 4
    assert report["registered_after_collect"] == 0


class _Resettable:
    def __init__(self, fail: bool) -> None:
        self.fail, self.reset = fail, False

    def reinit(self) -> None:
        if self.fail:
            raise RuntimeError("cannot")
        self.reset = True


def test_a_failing_reinit_is_logged_and_the_others_still_run(caplog):
    first, failing, last = _Resettable(False), _Resettable(True), _Resettable(False)
    for obj in (first, failing, last):
        at_fork.reinit_in_child(obj, _Resettable.reinit)
        at_fork.reinit_in_child(obj, _Resettable.reinit)  # again: still once

    def child(i, go):
        return {"reset": [first.reset, failing.reset, last.reset],
                "logged": [r.getMessage() for r in caplog.records if "_Resettable" in r.getMessage()]}

    [report] = fork_children(1, child, deadline_s=10)
    assert report["reset"] == [True, False, True]
    assert report["logged"] == ["could not re-create the _Resettable in a forked child process"]
    assert (first.reset, last.reset) == (False, False), "only the child re-creates"
