"""What only one conversation store does: file names, modes, locks and atomic writes;
Redis types, TTL, a stopped or stalled server; the Django migration, transactions and
row locks on PostgreSQL. The shared contract is in tests/test_conversation_stores.py."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import stat
import subprocess
import threading
import time

import pytest

from genesys_gateway.constants import MAX_STATE_BYTES
from genesys_gateway.errors import (
    ConfigurationError,
    ConflictError,
    ConversationStoreError,
    StateError,
)
from genesys_gateway.state import FileConversationStore, RedisConversationStore
from genesys_gateway.state.redis_store import error_table as redis_error_table
from tests.conversation_store_cases import (  # noqa: F401  (fixtures)
    DJANGO,
    PATIENCE,
    REDIS_KEY,
    case,
    make_state,
    stores,
)
from tests.fixtures_redis import free_port

# -- files -------------------------------------------------------------------------------------

HASHED = re.compile(r"[0-9a-f]{64}\.(json|lock)")


def _entries(directory) -> list[str]:
    return sorted(os.listdir(directory))


@stores("file")
def test_files_are_private_and_named_by_hash_inside_the_directory(case):
    old_umask = os.umask(0)  # the modes must not depend on the umask
    try:
        store = case.store()
        assert not os.path.exists(case.directory)  # created on the first save, not before
        for conversation_id in ("../../escape", "/etc/passwd", "a/b", ".."):
            store.save(make_state(conversation_id), None)
            path = store.path_for(conversation_id)
            assert os.path.dirname(path) == case.directory
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(case.directory).st_mode) == 0o700
    names = _entries(case.directory)
    assert len(names) == 8 and all(HASHED.fullmatch(name) for name in names)
    for name in names:
        assert stat.S_IMODE(os.stat(os.path.join(case.directory, name)).st_mode) == 0o600
    assert not os.path.exists(os.path.join(os.path.dirname(case.directory), "escape"))


@stores("file")
def test_a_failed_write_leaves_the_old_state_and_no_temporary_file(case, monkeypatch):
    store = case.store()
    store.save(make_state(), None)
    before = case.raw("conv-1")

    def disk_full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(ConversationStoreError, match=r"cannot save it: cannot write .*No space left"):
        store.save(make_state(turns=2), 1)
    monkeypatch.undo()
    assert case.raw("conv-1") == before
    assert all(HASHED.fullmatch(name) for name in _entries(case.directory))
    assert store.save(make_state(turns=2), 1) == 2  # nothing is left locked


@stores("file")
def test_a_save_waiting_for_another_saver_times_out_and_writes_nothing(case):
    store = case.store()
    store.save(make_state(), None)
    before = case.raw("conv-1")
    lock_path = store.path_for("conv-1")[: -len(".json")] + ".lock"
    fd = os.open(lock_path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another saver is in the middle of its save
        with pytest.raises(ConversationStoreError, match=r"timed out after 0 s waiting"):
            case.store(lock_timeout=0).save(make_state(turns=2), 1)
    finally:
        os.close(fd)
    assert case.raw("conv-1") == before
    assert case.store(lock_timeout=0).save(make_state(turns=2), 1) == 2


@stores("file")
def test_a_symbolic_link_is_refused_and_left_alone(case, tmp_path):
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps({"version": 1, "state": make_state()}))
    os.makedirs(case.directory)
    link = case.store().path_for("conv-1")
    os.symlink(elsewhere, link)
    with pytest.raises(StateError, match="is a symbolic link"):
        case.store().load("conv-1")
    with pytest.raises(StateError, match="is a symbolic link"):
        case.store().save(make_state(turns=2), 1)
    assert os.readlink(link) == str(elsewhere)
    assert json.loads(elsewhere.read_text())["state"] == make_state()


@stores("file")
def test_a_file_larger_than_the_limit_is_refused_without_reading_it(case):
    case.plant("conv-1", json.dumps(make_state()))
    path = case.store().path_for("conv-1")
    os.truncate(path, MAX_STATE_BYTES + 1024)  # sparse: costs no disk and no reading
    with pytest.raises(StateError, match=r"conversation 'conv-1': the file .* is larger than"):
        case.store().load("conv-1")
    assert os.path.getsize(path) == MAX_STATE_BYTES + 1024


@stores("file")
def test_a_save_over_a_file_whose_version_cannot_be_read_is_refused(case):
    for garbage in ('{"version":1,"sta', '{"version": "1", "state": {}}', "\x00" * 100):
        path = case.store().path_for("conv-1")
        os.makedirs(case.directory, exist_ok=True)
        with open(path, "w") as f:
            f.write(garbage)
        with pytest.raises(StateError, match="not valid JSON|not a conversation file"):
            case.store().save(make_state(turns=2), 1)
        with open(path) as f:
            assert f.read() == garbage


@stores("file")
def test_a_save_expecting_the_stored_version_replaces_a_state_that_no_longer_loads(case):
    case.plant("conv-1", json.dumps(make_state())[:-10])  # the version is still readable
    with pytest.raises(StateError):
        case.store().load("conv-1")
    assert case.store().save(make_state(turns=2), 1) == 2
    assert case.store().load("conv-1") == (make_state(turns=2), 2)


@pytest.mark.parametrize("options, option", [
    ({"lock_timeout": -1}, "lock_timeout"), ({"lock_timeout": float("nan")}, "lock_timeout"),
    ({"poll_interval": 0}, "poll_interval"),
])
def test_file_store_options_are_checked(tmp_path, options, option):
    with pytest.raises(ConfigurationError) as info:
        FileConversationStore(tmp_path, **options)
    assert info.value.option == option


# -- Redis -------------------------------------------------------------------------------------


@stores("redis")
def test_ttl_is_set_and_renewed_by_every_save(case):
    store = case.store(ttl=60)
    key = store.key_for("conv-1")
    store.save(make_state(), None)
    assert 0 < case.admin.pttl(key) <= 60_000
    case.admin.pexpire(key, 5_000)
    store.save(make_state(turns=2), 1)
    assert 5_000 < case.admin.pttl(key) <= 60_000
    case.store().save(make_state("forever"), None)
    assert case.admin.pttl(case.store().key_for("forever")) == -1


@stores("redis")
def test_a_key_of_another_type_is_refused_and_left_alone(case):
    key = f"{REDIS_KEY}:conv-1"
    case.admin.rpush(key, "not", "a", "conversation")
    for attempt in (lambda s: s.load("conv-1"), lambda s: s.save(make_state(), None),
                    lambda s: s.save(make_state(), 1)):
        with pytest.raises(StateError, match=r"conversation 'conv-1': the Redis key .* holds a"):
            attempt(case.store())
    assert case.admin.lrange(key, 0, -1) == [b"not", b"a", b"conversation"]


@pytest.mark.parametrize("fields", [{"version": "abc", "state": "{}"}, {"state": "{}"},
                                    {"version": "0", "state": "{}"}, {"version": "3"}])
@stores("redis")
def test_a_hash_without_a_usable_version_is_refused_and_left_alone(case, fields):
    key = f"{REDIS_KEY}:conv-1"
    case.admin.hset(key, mapping=fields)
    with pytest.raises(StateError, match=r"conversation 'conv-1': the Redis key .* is not a conversation"):
        case.store().load("conv-1")
    if "version" not in fields or not fields["version"].isdigit() or fields["version"] == "0":
        with pytest.raises(StateError, match="is not a conversation"):
            case.store().save(make_state(), 3)
    assert case.admin.hgetall(key) == {k.encode(): v.encode() for k, v in fields.items()}


@stores("redis")
def test_a_client_decoding_responses_works_the_same(case):
    store = case.store(client_options={"decode_responses": True})
    store.save(make_state(), None)
    assert store.load("conv-1") == (make_state(), 1)
    with pytest.raises(ConflictError) as info:
        store.save(make_state(), None)
    assert info.value.stored_version == 1


@stores("redis")
def test_a_flushed_script_cache_is_reloaded(case):
    store = case.store()
    store.save(make_state(), None)
    case.admin.script_flush()
    assert store.save(make_state(turns=2), 1) == 2


def _client(port: int, **options):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    options.setdefault("socket_timeout", 2)
    return redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=2,
                       retry=Retry(NoBackoff(), 0), **options)


def test_a_stopped_redis_server_is_a_conversation_store_error(redis_server, tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = _client(port)
    try:
        deadline = time.monotonic() + PATIENCE
        while True:  # until the private server answers (bounded)
            try:
                client.ping()
                break
            except Exception:
                assert time.monotonic() < deadline and proc.poll() is None, "redis-server did not start"
                time.sleep(0.02)
        store = RedisConversationStore(client)
        assert store.save(make_state(), None) == 1  # connected and working, then...
        proc.terminate()
        proc.wait(timeout=PATIENCE)
        with pytest.raises(ConversationStoreError,
                           match=r"conversation 'conv-1': cannot save it: Redis cannot be reached"):
            store.save(make_state(turns=2), 1)
        with pytest.raises(ConversationStoreError, match=r"cannot load it: Redis cannot be reached"):
            store.load("conv-1")
    finally:
        client.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@stores("redis")
def test_a_redis_server_that_does_not_answer_in_time_is_a_conversation_store_error(case, redis_server):
    slow = _client(redis_server.port, socket_timeout=0.2)  # the timeout is the feature tested
    case.clients.append(slow)
    store = RedisConversationStore(slow, key=REDIS_KEY)
    case.admin.client_pause(60_000, all=False)  # WRITE: scripts wait; the admin can unpause
    try:
        with pytest.raises(ConversationStoreError, match="Redis did not answer in time"):
            store.save(make_state(), None)
    finally:
        case.admin.client_unpause()


def test_the_redis_error_table_puts_the_specific_before_the_general():
    table = redis_error_table()
    for index, (kind, _meaning) in enumerate(table):
        first = next(i for i, (other, _) in enumerate(table) if issubclass(kind, other))
        assert first == index, f"{kind.__name__} is shadowed by {table[first][0].__name__}"


def test_the_redis_store_repr_names_no_host_or_password():
    import redis

    store = RedisConversationStore(redis.Redis(host="cache.internal", password="s3cr3t-redis"),
                                   ttl=30)
    assert "s3cr3t" not in repr(store) and "cache.internal" not in repr(store)
    assert repr(store) == "RedisConversationStore(key='genesys_gateway:conv', ttl=30)"


@pytest.mark.parametrize("ttl", [0, -1, float("inf"), "60"])
def test_redis_ttl_is_checked(ttl):
    with pytest.raises(ConfigurationError) as info:
        RedisConversationStore(_client(free_port()), ttl=ttl)
    assert info.value.option == "ttl"


# -- Django --------------------------------------------------------------------------------------


def test_the_migration_matches_the_model(django_sqlite):
    from django.core.management import call_command

    call_command("makemigrations", "genesys_gateway", check=True, dry_run=True, verbosity=0)


def test_an_unknown_database_alias_is_a_configuration_error(django_sqlite):
    from genesys_gateway.contrib.django.conversations import DjangoConversationStore

    with pytest.raises(ConfigurationError, match="'nope'") as info:
        DjangoConversationStore("nope")
    assert info.value.option == "using"


def test_a_database_without_the_table_says_to_migrate(django_sqlite):
    from genesys_gateway.contrib.django.conversations import DjangoConversationStore

    with pytest.raises(ConversationStoreError, match=r"cannot save it: .*no such table"):
        DjangoConversationStore("no_tables").save(make_state(), None)


@stores(*DJANGO)
def test_a_conflict_inside_a_transaction_leaves_the_transaction_usable(case):
    from django.db import transaction

    store = case.store()
    with transaction.atomic(using=case.alias):  # as under ATOMIC_REQUESTS
        store.save(make_state(), None)
        with pytest.raises(ConflictError):
            store.save(make_state(text="again"), None)
        assert store.save(make_state(turns=2), 1) == 2  # PostgreSQL: not "transaction aborted"
    assert case.store().load("conv-1") == (make_state(turns=2), 2)


@stores(*DJANGO)
def test_a_row_with_an_impossible_version_is_refused(case):
    case.plant("conv-1", json.dumps(make_state()), version=0)
    with pytest.raises(StateError, match=r"conversation 'conv-1': the database row has version 0"):
        case.store().load("conv-1")


def _waiting_for_a_lock(alias: str) -> bool:
    from django.db import connections

    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # statistics are cached per transaction
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        return cursor.fetchone()[0] > 0


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
@stores("postgres")
def test_a_save_waits_for_a_transaction_holding_the_row_then_loses_or_wins(case, outcome):
    """Worker A saves inside a transaction (ATOMIC_REQUESTS); worker B's save of the same
    version blocks on the row lock, then loses if A commits and wins if A rolls back."""
    from django.db import transaction

    case.store().save(make_state(), None)
    results: list = []

    def worker_b() -> None:
        try:
            results.append(("won", case.store().save(make_state(text="B"), 1)))
        except ConflictError as error:
            results.append(("lost", error.stored_version))
        finally:
            case.thread_done()

    b = threading.Thread(target=worker_b)
    try:
        with transaction.atomic(using=case.alias):
            assert case.store().save(make_state(text="A"), 1) == 2
            b.start()
            deadline = time.monotonic() + PATIENCE
            while not _waiting_for_a_lock(case.alias):  # until B is blocked on A's row lock
                assert time.monotonic() < deadline and b.is_alive(), results
                time.sleep(0.005)
            if outcome == "rollback":
                transaction.set_rollback(True, using=case.alias)
    finally:
        b.join(PATIENCE)
    assert not b.is_alive()
    if outcome == "commit":
        assert results == [("lost", 2)]
        assert case.store().load("conv-1") == (make_state(text="A"), 2)
    else:
        assert results == [("won", 2)]
        assert case.store().load("conv-1") == (make_state(text="B"), 2)


def test_the_django_error_table_puts_the_specific_before_the_general(django_sqlite):
    from genesys_gateway.contrib.django.conversations import error_table

    table = error_table()
    for index, (kind, _meaning) in enumerate(table):
        first = next(i for i, (other, _) in enumerate(table) if issubclass(kind, other))
        assert first == index, f"{kind.__name__} is shadowed by {table[first][0].__name__}"


def test_the_django_store_is_importable_from_the_app_package(django_sqlite):
    import genesys_gateway.contrib.django as app
    from genesys_gateway.contrib.django.conversations import DjangoConversationStore

    assert app.DjangoConversationStore is DjangoConversationStore
    assert repr(app.DjangoConversationStore()) == "DjangoConversationStore(using='default')"
    with pytest.raises(AttributeError):
        app.NoSuchThing  # noqa: B018


@stores("file")
def test_a_child_forked_while_a_thread_saves_can_save(case):
    """A pre-forking server may fork while another thread is in the middle of a save: the
    child must not inherit that thread's lock."""
    from tests.store_helpers import MP, run_processes

    store = case.store()
    store.save(make_state(), None)
    lock_path = store.path_for("conv-1")[: -len(".json")] + ".lock"
    saving, release = threading.Event(), threading.Event()
    real_flock = fcntl.flock

    def slow_flock(fd, operation):  # the thread holds its thread lock while "saving"
        saving.set()
        release.wait(PATIENCE)
        return real_flock(fd, operation)

    outcome: list = []

    def parent_save() -> None:
        try:
            outcome.append(store.save(make_state(turns=2), 1))
        except ConflictError as error:
            outcome.append(error.stored_version)

    fcntl.flock = slow_flock
    try:
        thread = threading.Thread(target=parent_save)
        thread.start()
        assert saving.wait(PATIENCE)
        fcntl.flock = real_flock
        results = run_processes(MP, _save_in_fresh_child, (case.directory,), n=1, timeout=PATIENCE)
    finally:
        fcntl.flock = real_flock
        release.set()
        thread.join(PATIENCE)
    assert results == [2]  # the child saved; the parent's thread then lost to it
    assert outcome == [2] and os.path.exists(lock_path)


def _save_in_fresh_child(directory, barrier, results) -> None:
    store = FileConversationStore(directory, lock_timeout=5)
    barrier.wait(PATIENCE)
    try:
        results.put(store.save(make_state(text="child"), 1))
    except Exception as error:  # reported to the parent
        results.put(repr(error))
