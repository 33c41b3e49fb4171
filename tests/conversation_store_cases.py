"""The conversation stores under test, each on a real backend, and their fixtures.

The session fixtures (``django_sqlite``, ``django_postgres``) are imported by conftest.py,
so that each is defined once for the whole run. Import ``case`` into a test module::

    from tests.conversation_store_cases import case  # noqa: F401

and parametrise it indirectly with store names (:func:`stores`):

* ``memory`` - :class:`MemoryConversationStore` (shared by handing out the one instance)
* ``file`` - :class:`FileConversationStore` on a temporary directory
* ``redis`` - :class:`RedisConversationStore` on a real redis-server (tests/fixtures_redis.py)
* ``django`` - ``DjangoConversationStore`` on Django's SQLite test database (a file, so
  threads and child processes share it), created by Django's test machinery (migrations)
* ``postgres`` - the same store on a real PostgreSQL server (tests/fixtures_postgres.py)
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from genesys_gateway.state import FileConversationStore, MemoryConversationStore, RedisConversationStore

try:
    from tests.fixtures_redis import free_port
except ImportError:  # pragma: no cover
    from fixtures_redis import free_port

try:
    import django  # noqa: F401
except ImportError:  # pragma: no cover - Django is in the test extra
    HAVE_DJANGO = False
else:
    HAVE_DJANGO = True

ALL = ["memory", "file", "redis", "django", "postgres"]
SHARED = ["file", "redis", "django", "postgres"]  # backends other processes reach too
PLANTABLE = SHARED  # backends a raw entry can be put in behind the store's back
DJANGO = ["django", "postgres"]
REDIS_KEY = "test:conv"
PATIENCE = 30.0  # bound on waiting for what must happen; reached only by a failing test


def stores(*names: str) -> pytest.MarkDecorator:
    """Run the test once per store named."""
    return pytest.mark.parametrize("case", names, indirect=True)


def make_state(conversation_id: str = "conv-1", *, turns: int = 1, text: str = "hello",
               pending: bool = True) -> dict[str, Any]:
    """A realistic state: a system message, ``turns`` tool-using turns and, when
    ``pending``, a last call waiting for approval (a call without its result)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are terse."}]
    ran = []
    for i in range(turns):
        call = f"call_{i}"
        messages += [
            {"role": "user", "content": f"{text} {i}: ünïcödé ✓ \"quoted\" \\ 🎉"},
            {"role": "assistant", "content": None, "tool_calls": [{
                "id": call, "type": "function",
                "function": {"name": "get_weather", "arguments": json.dumps({"city": "Zürich"})}}]},
            {"role": "tool", "tool_call_id": call, "content": '{"temp": 12.5}'},
            {"role": "assistant", "content": f"It is 12.5 °C ({i})."},
        ]
        ran.append(call)
    state: dict[str, Any] = {
        "version": 1, "id": conversation_id, "messages": messages, "pending": [], "ran": ran,
        "usage": {"prompt_tokens": 120 * turns, "completion_tokens": 30 * turns,
                  "total_tokens": 150 * turns},
        "system": "You are terse.",
    }
    if pending:
        messages += [
            {"role": "user", "content": "refund order 7"},
            {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_refund", "type": "function",
                "function": {"name": "refund", "arguments": '{"order": 7}'}}]},
        ]
        state["pending"] = [{"call_id": "call_refund", "name": "refund",
                             "arguments": {"order": 7, "lines": [1, {"sku": None, "ok": True}]}}]
    return state


class StoreCase:
    """One kind of store: handles on one shared backend, as separate workers would have
    them, and access to that backend behind the store's back."""

    def store(self) -> Any:
        """A new store on the shared backend (a worker's own handle)."""
        raise NotImplementedError

    def plant(self, conversation_id: str, text: str, version: int = 1) -> None:
        """Put ``text`` (the state's JSON text, or garbage) where the store keeps
        ``conversation_id``, with ``version``."""
        raise NotImplementedError

    def raw(self, conversation_id: str) -> object:
        """Everything the backend holds for ``conversation_id``, as stored."""
        raise NotImplementedError

    def broken(self) -> Any:
        """A store whose backend cannot be reached or used."""
        raise NotImplementedError

    def thread_done(self) -> None:
        """Called at the end of every thread or child process that used a store."""

    def before_fork(self) -> None:
        """Called in the parent before child processes are started."""

    def close(self) -> None:
        pass


class MemoryCase(StoreCase):
    def __init__(self) -> None:
        self._store = MemoryConversationStore()

    def store(self) -> Any:
        return self._store  # what a memory store shares is the instance itself


class FileCase(StoreCase):
    def __init__(self, directory: Any) -> None:
        self.directory = str(directory)

    def store(self, **options: Any) -> Any:
        return FileConversationStore(self.directory, **options)

    def plant(self, conversation_id: str, text: str, version: int = 1) -> None:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        with open(self.store().path_for(conversation_id), "w") as f:
            f.write(f'{{"version":{version},"state":{text}}}')  # as the store writes it

    def raw(self, conversation_id: str) -> object:
        try:
            with open(self.store().path_for(conversation_id), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def broken(self) -> Any:
        blocker = os.path.join(os.path.dirname(self.directory), "a-regular-file")
        with open(blocker, "w") as f:
            f.write("not a directory")
        return FileConversationStore(os.path.join(blocker, "conversations"))


class RedisCase(StoreCase):
    def __init__(self, server: Any) -> None:
        self.server = server
        self.admin = server.client()
        self.admin.flushdb()
        self.clients = [self.admin]

    def store(self, **options: Any) -> Any:
        client = self.server.client(**options.pop("client_options", {}))
        self.clients.append(client)
        return RedisConversationStore(client, key=REDIS_KEY, **options)

    def plant(self, conversation_id: str, text: str, version: int = 1) -> None:
        self.admin.hset(f"{REDIS_KEY}:{conversation_id}",
                        mapping={"version": str(version), "state": text})

    def raw(self, conversation_id: str) -> object:
        key = f"{REDIS_KEY}:{conversation_id}"
        kind = self.admin.type(key)
        return kind, self.admin.dump(key)

    def broken(self) -> Any:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=2,
                             socket_timeout=2, retry=Retry(NoBackoff(), 0))
        self.clients.append(client)
        return RedisConversationStore(client, key=REDIS_KEY)

    def close(self) -> None:
        for client in self.clients:
            client.close()


class DjangoCase(StoreCase):
    def __init__(self, alias: str, down_alias: str) -> None:
        from genesys_gateway.contrib.django.models import ConversationState

        self.alias, self.down_alias = alias, down_alias
        self.rows = ConversationState.objects.using(alias)
        self.rows.all().delete()

    def store(self) -> Any:
        from genesys_gateway.contrib.django.conversations import DjangoConversationStore

        return DjangoConversationStore(self.alias)

    def plant(self, conversation_id: str, text: str, version: int = 1) -> None:
        from django.utils import timezone

        self.rows.update_or_create(id=conversation_id, defaults={
            "version": version, "data": text, "updated_at": timezone.now()})

    def raw(self, conversation_id: str) -> object:
        return list(self.rows.filter(id=conversation_id).values_list("version", "data", "updated_at"))

    def broken(self) -> Any:
        from genesys_gateway.contrib.django.conversations import DjangoConversationStore

        return DjangoConversationStore(self.down_alias)

    def thread_done(self) -> None:
        from django.db import connections

        connections.close_all()  # this thread's (or child's) own connections

    before_fork = thread_done  # children must open their own connections

    def close(self) -> None:
        self.rows.all().delete()


def _test_database(alias: str) -> Any:
    from django.db import connections

    connection = connections[alias]
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    return connection, old_name


@pytest.fixture(scope="session")
def django_sqlite(tmp_path_factory):
    """Django's SQLite test database for ``default``, migrated: a file, so that threads
    and child processes share it."""
    if not HAVE_DJANGO:
        pytest.skip("Django is not installed")
    from django.db import connections

    from tests.django_env import configure

    configure()
    connections.settings["default"]["TEST"]["NAME"] = str(
        tmp_path_factory.mktemp("django-db") / "conversations.sqlite3")
    connection, old_name = _test_database("default")
    try:
        yield "default"
    finally:
        connections.close_all()
        connection.creation.destroy_test_db(old_name, verbosity=0)


@pytest.fixture(scope="session")
def django_postgres(postgres_server):
    """Django's test database on the real PostgreSQL server, migrated, as ``postgres``;
    ``postgres_down`` points at a port nobody listens on."""
    if not HAVE_DJANGO:
        pytest.skip("Django is not installed")
    from django.db import connections

    from tests.django_env import configure

    configure()
    connections.settings["postgres"].update(HOST=postgres_server.host, PORT=str(postgres_server.port))
    connections.settings["postgres_down"].update(HOST="127.0.0.1", PORT=str(free_port()))
    connection, old_name = _test_database("postgres")
    assert connection.vendor == "postgresql"
    try:
        yield "postgres"
    finally:
        connections.close_all()
        connection.creation.destroy_test_db(old_name, verbosity=0)


@pytest.fixture
def case(request, tmp_path):
    name = request.param
    if name == "memory":
        made: StoreCase = MemoryCase()
    elif name == "file":
        made = FileCase(tmp_path / "conversations")
    elif name == "redis":
        made = RedisCase(request.getfixturevalue("redis_server"))
    elif name == "django":
        made = DjangoCase(request.getfixturevalue("django_sqlite"), "broken")
    else:
        made = DjangoCase(request.getfixturevalue("django_postgres"), "postgres_down")
    try:
        yield made
    finally:
        made.close()
