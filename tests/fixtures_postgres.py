"""A real PostgreSQL server for the Django conversation-store tests.

``postgres_server`` (session) creates a throwaway cluster with ``initdb`` in a temporary
directory (trust authentication, no fsync: the data is thrown away), runs ``postgres`` on
a free loopback port, waits until it accepts connections and stops it (fast shutdown) at
teardown. The binaries are found on PATH or, as Debian installs them, under
``/usr/lib/postgresql/<version>/bin``. PostgreSQL refuses to run as root, so as root the
server runs as the ``postgres`` user the Debian package creates.

Without PostgreSQL or ``psycopg`` the tests are skipped, except when the ``CI``
environment variable is set: then they fail, because CI must run them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Iterator

import pytest

try:
    from tests.fixtures_redis import free_port
except ImportError:  # pragma: no cover
    from fixtures_redis import free_port

__all__ = ["postgres_server", "PostgresServer", "PostgresUnavailable", "postgres_binary",
           "running_postgres"]

START_TIMEOUT = 30.0
USER = "postgres"


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str = USER
    setup_seconds: float = 0.0  # initdb + start, as measured


def postgres_binary(name: str) -> str | None:
    """``name`` on PATH, else the newest Debian install's (``/usr/lib/postgresql/15/bin``)."""
    found = shutil.which(name)
    if found:
        return found

    def version(path: str) -> int:
        match = re.search(r"/postgresql/(\d+)/", path)
        return int(match.group(1)) if match else 0

    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=version)
    return candidates[-1] if candidates else None


def _skip_or_fail(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message + "; CI must run the PostgreSQL tests", pytrace=False)
    pytest.skip(message)


def _run_as() -> dict:
    """Popen keywords that drop root to the ``postgres`` user ({} when not root)."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root and there is no {USER!r} user to run PostgreSQL as") from None
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _wait_until_ready(proc: subprocess.Popen, port: int) -> bool:
    import psycopg

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            psycopg.connect(host="127.0.0.1", port=port, user=USER, dbname="postgres",
                            connect_timeout=2).close()
            return True
        except psycopg.OperationalError:
            time.sleep(0.02)  # between connection attempts, bounded by the deadline
    return False


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # "fast" shutdown: disconnect clients, exit
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class PostgresUnavailable(Exception):
    """PostgreSQL cannot be run here (not installed, no psycopg, no user to run it as)."""


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the duration of the block (also used by
    benchmarks/conversation_stores.py). Raises :class:`PostgresUnavailable` when it cannot
    be run here, ``RuntimeError`` when it was installed but did not start."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise PostgresUnavailable("psycopg is not installed (pip install 'psycopg[binary]')") from None
    initdb, postgres = postgres_binary("initdb"), postgres_binary("postgres")
    if initdb is None or postgres is None:
        raise PostgresUnavailable("PostgreSQL is not installed (apt-get install postgresql)")
    run_as = _run_as()
    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="genesys-gateway-pg-")  # not under pytest's 0700 dirs
    try:
        if run_as:
            os.chown(workdir, run_as["user"], run_as["group"])
        data = os.path.join(workdir, "data")
        init = subprocess.run(
            [initdb, "-D", data, "-U", USER, "-A", "trust", "-E", "UTF8", "--locale=C",
             "--no-sync"],
            capture_output=True, text=True, timeout=120, **run_as)
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{init.stdout[-2000:]}{init.stderr[-2000:]}")
        last_output = ""
        for _attempt in range(3):  # a free port can be taken between the probe and the bind
            port = free_port()
            log_path = os.path.join(workdir, f"postgres-{port}.log")
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(
                    [postgres, "-D", data, "-p", str(port), "-k", workdir,
                     "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                     "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                     "-c", "shared_buffers=16MB", "-c", "max_connections=50"],
                    stdout=log, stderr=subprocess.STDOUT, **run_as)
            if _wait_until_ready(proc, port):
                try:
                    yield PostgresServer("127.0.0.1", port,
                                         setup_seconds=time.monotonic() - started)
                finally:
                    _stop(proc)
                return
            _stop(proc)
            with open(log_path, errors="replace") as log_file:
                last_output = log_file.read()[-2000:]
        raise RuntimeError(f"PostgreSQL did not start:\n{last_output}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    try:
        with running_postgres() as server:
            yield server
    except PostgresUnavailable as exc:
        _skip_or_fail(str(exc))
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
