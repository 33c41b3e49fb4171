"""Save + load of a 50-turn conversation through each store, vs the floor: the same state
through ``json.dumps``/``json.loads`` and the backend's raw write and read.

``python benchmarks/conversation_stores.py`` (``--quick`` for a smoke run). Target: ≤ 1.5×.

One round = ``save(state, version)`` then ``load(id)`` (what a web worker does per turn:
the load of the next request is the same cost). The floor does the same I/O with nothing
else: no version check, no compare-and-swap, no schema check, no lock. For each store:

* memory: a dict assignment and lookup of the JSON text;
* file: the same durable atomic write (temp file, ``fsync``, ``os.replace``, ``fsync`` of
  the directory) and a plain read;
* Redis: ``SET`` and ``GET`` of the JSON text on the same (loopback) redis-server;
* Django (SQLite, and PostgreSQL when it can be started): ``UPDATE ... SET data = %s WHERE
  id = %s`` and ``SELECT data ... WHERE id = %s`` on a raw cursor, same table.

Rounds of all variants are interleaved in a shuffled order; medians are reported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Iterator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import genesys_gateway as gg  # noqa: E402

CONVERSATION_ID = "bench-conversation"


def fifty_turns() -> dict[str, Any]:
    """A state after 50 turns, each a question, a tool call, its result and an answer."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a helpful "
                                       "assistant for an online shop. Answer briefly."}]
    for i in range(50):
        call = f"call_{i:03d}_aBcDeFgHiJkLmNoP"
        messages += [
            {"role": "user", "content": f"Where is my order #{1000 + i}? It was due yesterday "
                                        "and the tracking page says nothing useful."},
            {"role": "assistant", "content": None, "tool_calls": [{
                "id": call, "type": "function", "function": {
                    "name": "track_order", "arguments": json.dumps({"order_id": 1000 + i})}}]},
            {"role": "tool", "tool_call_id": call, "content": json.dumps({
                "order_id": 1000 + i, "status": "in transit", "carrier": "DHL",
                "events": [{"at": "2024-05-0%dT10:00:00Z" % (d + 1), "where": "Leipzig hub"}
                           for d in range(3)]})},
            {"role": "assistant", "content": f"Order #{1000 + i} is in transit with DHL; it "
                                             "left the Leipzig hub this morning and should "
                                             "arrive within two working days."},
        ]
    return {"version": 1, "id": CONVERSATION_ID, "messages": messages, "pending": [],
            "ran": [m["tool_call_id"] for m in messages if m["role"] == "tool"],
            "usage": {"prompt_tokens": 91_234, "completion_tokens": 4_321, "total_tokens": 95_555},
            "system": messages[0]["content"]}


def next_turns(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Two versions of ``state`` that differ (in their usage), to save in turn: a backend
    may skip writing bytes it already holds (SQLite does)."""
    return [{**state, "usage": {**state["usage"], "total_tokens": state["usage"]["total_tokens"] + n}}
            for n in (0, 1)]


class Pair:
    """A store and its floor on the same backend: ``store_round()`` and ``floor_round()``,
    each saving the next of two differing states and loading it back."""

    def __init__(self, label: str, store: Any, write: Callable[[str], None],
                 read: Callable[[], str | bytes], state: dict[str, Any]) -> None:
        self.label, self.store, self.write, self.read = label, store, write, read
        self.states = next_turns(state)
        self.version = store.save(state, None)
        self.store_turn = self.floor_turn = 0

    def store_round(self) -> None:
        self.store_turn += 1
        self.version = self.store.save(self.states[self.store_turn % 2], self.version)
        loaded = self.store.load(CONVERSATION_ID)
        assert loaded is not None and loaded.version == self.version

    def floor_round(self) -> None:
        self.floor_turn += 1
        self.write(json.dumps(self.states[self.floor_turn % 2]))
        json.loads(self.read())


def memory_pair(state: dict[str, Any]) -> Pair:
    slot: dict[str, str] = {}

    def write(text: str) -> None:
        slot[CONVERSATION_ID] = text

    return Pair("memory", gg.MemoryConversationStore(), write, lambda: slot[CONVERSATION_ID], state)


def file_pair(state: dict[str, Any], directory: str) -> Pair:
    store = gg.FileConversationStore(os.path.join(directory, "store"))
    raw_dir = os.path.join(directory, "raw")
    os.makedirs(raw_dir, mode=0o700)
    path = os.path.join(raw_dir, "conversation.json")

    def write(text: str) -> None:  # the same durable atomic write, without lock or checks
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(raw_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def read() -> bytes:
        with open(path, "rb") as f:
            return f.read()

    return Pair("file", store, write, read, state)


@contextlib.contextmanager
def redis_server(directory: str) -> Iterator[Any]:
    import redis

    from tests.fixtures_redis import free_port

    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", directory],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        yield client
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)


def redis_pair(state: dict[str, Any], client: Any) -> Pair:
    key = "bench:raw"
    return Pair("Redis", gg.RedisConversationStore(client, key="bench:conv"),
                lambda text: client.set(key, text), lambda: client.get(key), state)


def django_pairs(state: dict[str, Any], directory: str,
                 postgres: Any | None) -> list[Pair]:
    import django
    from django.conf import settings

    databases = {"default": {"ENGINE": "django.db.backends.sqlite3",
                             "NAME": os.path.join(directory, "bench.sqlite3")}}
    if postgres is not None:
        databases["postgres"] = {"ENGINE": "django.db.backends.postgresql", "NAME": "postgres",
                                 "USER": postgres.user, "HOST": postgres.host,
                                 "PORT": str(postgres.port)}
    settings.configure(
        INSTALLED_APPS=["genesys_gateway.contrib.django"], DATABASES=databases, USE_TZ=True,
        GENESYS_GATEWAY={"BASE_URL": "http://127.0.0.1:9", "CLIENT_ID": "b", "CLIENT_SECRET": "b"})
    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from genesys_gateway.contrib.django.conversations import DjangoConversationStore
    from genesys_gateway.contrib.django.models import ConversationState

    pairs = []
    for alias, label in (("default", "Django, SQLite"), ("postgres", "Django, PostgreSQL")):
        if alias not in databases:
            continue
        call_command("migrate", database=alias, verbosity=0)
        table = connections[alias].ops.quote_name(ConversationState._meta.db_table)
        with connections[alias].cursor() as cursor:
            cursor.execute(f"INSERT INTO {table} (id, version, data, updated_at) "
                           "VALUES (%s, 1, %s, CURRENT_TIMESTAMP)", ["raw", "{}"])

        def write(text: str, alias: str = alias, table: str = table) -> None:
            with connections[alias].cursor() as cursor:
                cursor.execute(f"UPDATE {table} SET data = %s WHERE id = %s", [text, "raw"])

        def read(alias: str = alias, table: str = table) -> str:
            with connections[alias].cursor() as cursor:
                cursor.execute(f"SELECT data FROM {table} WHERE id = %s", ["raw"])
                return str(cursor.fetchone()[0])

        pairs.append(Pair(label, DjangoConversationStore(alias), write, read, state))
    return pairs


def measure(pairs: list[Pair], rounds: int) -> list[tuple[str, str, str, str, str]]:
    variants = [(pair, kind) for pair in pairs for kind in ("store", "floor")]
    samples: dict[tuple[str, str], list[float]] = {(p.label, k): [] for p, k in variants}
    for _ in range(max(3, rounds // 10)):  # warm-up: connections, compiled validator
        for pair, _kind in variants:
            pair.store_round()
            pair.floor_round()
    rng = random.Random(11)
    clock = time.perf_counter
    for _ in range(rounds):
        rng.shuffle(variants)
        for pair, kind in variants:
            fn = pair.store_round if kind == "store" else pair.floor_round
            start = clock()
            fn()
            samples[(pair.label, kind)].append(clock() - start)
    rows = []
    for pair in pairs:
        store = statistics.median(samples[(pair.label, "store")])
        floor = statistics.median(samples[(pair.label, "floor")])
        rows.append((pair.label, f"{store * 1e6:,.0f} µs", f"{floor * 1e6:,.0f} µs",
                     f"{store / floor:.2f}×", "≤ 1.5×"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few rounds (smoke run)")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    args = parser.parse_args(argv)
    rounds = 10 if args.quick else args.rounds
    state = fifty_turns()
    size = len(json.dumps(state, separators=(",", ":")))
    print(f"state: {len(state['messages'])} messages, {size:,} bytes of JSON; "
          f"{rounds} rounds of save + load each, medians")
    with contextlib.ExitStack() as stack:
        directory = stack.enter_context(tempfile.TemporaryDirectory())
        pairs = [memory_pair(state), file_pair(state, directory)]
        try:
            pairs.append(redis_pair(state, stack.enter_context(redis_server(directory))))
        except Exception as exc:  # report what could not run, measure the rest
            print(f"Redis skipped: {exc}")
        postgres = None
        if not args.no_postgres:
            from tests.fixtures_postgres import running_postgres

            try:
                postgres = stack.enter_context(running_postgres())
                print(f"PostgreSQL: initdb + start took {postgres.setup_seconds:.2f} s")
            except Exception as exc:
                print(f"PostgreSQL skipped: {exc}")
        try:
            pairs += django_pairs(state, directory, postgres)
        except ImportError as exc:
            print(f"Django skipped: {exc}")
        rows = measure(pairs, rounds)
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()  # before the PostgreSQL server stops
    header = ("store", "save + load", "dumps/loads + raw I/O", "ratio", "target")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
