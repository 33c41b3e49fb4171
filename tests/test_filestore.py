"""FileTokenStore specifics: cross-process single flight, file mode, atomic replace, distrust.

The TokenStore contract (round trip, compare-and-delete, the lock, single flight across
threads, malformed entries) is tested for every store in test_token_stores.py."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import stat
import threading
import time

import pytest

from genesys_gateway.errors import TokenStoreError
from genesys_gateway.http.file_store import FileTokenStore
from genesys_gateway.http.tokens import Token, store_key
from tests.store_helpers import MP, fresh_token, get_token, run_processes

KEY = store_key("https://login.example.test/oauth/token", "client-1")
OTHER = store_key("https://login.example.test/oauth/token", "client-2")


def _count_fetch(counter_path: str) -> int:
    """Append one line per fetch (O_APPEND writes are atomic); return how many so far."""
    fd = os.open(counter_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, b"x\n")
    finally:
        os.close(fd)
    with open(counter_path) as fh:
        return len(fh.read().splitlines())


def _process_worker(path, counter_path, barrier, results):
    store = FileTokenStore(path)

    def fetch():
        n = _count_fetch(counter_path)
        time.sleep(0.3)  # a slow token endpoint, while holding the lock
        return fresh_token(f"token-{n}")

    barrier.wait(timeout=30)
    results.put(get_token(store, KEY, fetch).access_token)


def test_eight_processes_refresh_once(tmp_path):
    path = str(tmp_path / "tokens.json")
    counter = str(tmp_path / "fetches")
    tokens = run_processes(MP, _process_worker, (path, counter), 8, timeout=30)
    assert tokens == ["token-1"] * 8
    with open(counter) as fh:
        assert fh.read() == "x\n"


def test_one_file_holds_every_clients_entry(tmp_path):
    path = tmp_path / "tokens.json"
    a, b = fresh_token("a"), fresh_token("b")
    FileTokenStore(path).set(KEY, a)
    FileTokenStore(path).set(OTHER, b)  # a second client sharing the file
    assert json.loads(path.read_text()) == {KEY: a.to_dict(), OTHER: b.to_dict()}


def test_missing_file_and_directory_are_created_private(tmp_path):
    path = tmp_path / "deep" / "er" / "tokens.json"
    store = FileTokenStore(path)
    assert store.get(KEY) is None  # no file yet: no error, nothing created
    assert not path.parent.exists()
    store.set(KEY, fresh_token("a"))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(str(path) + ".lock").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


def test_mode_is_0600_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        store = FileTokenStore(tmp_path / "tokens.json")
        store.set(KEY, fresh_token("a"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "tokens.json").st_mode) == 0o600


def test_write_is_an_atomic_replace(tmp_path, monkeypatch):
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path)
    store.set(KEY, fresh_token("a"))
    inode = os.stat(path).st_ino
    store.set(OTHER, fresh_token("b"))
    assert os.stat(path).st_ino != inode  # a new file renamed over the old one
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []

    # A failure between writing the temp file and the rename leaves the old file intact.
    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(TokenStoreError, match="No space left"):
        store.set(KEY, fresh_token("c"))
    monkeypatch.undo()
    assert store.get(KEY).access_token == "a"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_concurrent_readers_never_see_a_partial_file(tmp_path):
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path)
    store.set(KEY, fresh_token("t0"))
    stop = threading.Event()
    bad = []

    def reader():
        reader_store = FileTokenStore(path)
        while not stop.is_set():
            if reader_store.get(KEY) is None:
                bad.append(1)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(200):
        store.set(KEY, fresh_token(f"t{i}" * 50))
    stop.set()
    for t in threads:
        t.join()
    assert bad == []


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[1, 2]", b"\xff\xfe", b'{"k": "not a token dict"}'],
)
def test_corrupt_file_is_ignored_with_warning_and_replaced(tmp_path, caplog, content):
    path = tmp_path / "tokens.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, content)
    os.close(fd)
    store = FileTokenStore(path)
    with caplog.at_level(logging.WARNING, logger="genesys_gateway.auth"):
        assert store.get(KEY) is None
        assert store.get("k") is None
    assert str(path) in caplog.text
    store.set(KEY, fresh_token("a"))
    assert json.loads(path.read_text()).keys() == {KEY}


def test_group_or_other_permissions_are_distrusted(tmp_path, caplog):
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path)
    store.set(KEY, fresh_token("a"))
    os.chmod(path, 0o644)
    with caplog.at_level(logging.WARNING, logger="genesys_gateway.auth"):
        assert store.get(KEY) is None
    assert "644" in caplog.text
    store.set(KEY, fresh_token("b"))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert store.get(KEY).access_token == "b"


@pytest.mark.skipif(os.getuid() != 0, reason="chown to another uid needs root")
def test_foreign_owned_file_is_distrusted_and_replaced(tmp_path, caplog):
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path)
    store.set(KEY, fresh_token("planted"))
    os.chown(path, 65534, 65534)
    with caplog.at_level(logging.WARNING, logger="genesys_gateway.auth"):
        assert store.get(KEY) is None
    assert "uid 65534" in caplog.text
    store.set(KEY, fresh_token("mine"))
    assert os.stat(path).st_uid == os.getuid()
    assert store.get(KEY).access_token == "mine"


def test_symlink_is_not_followed(tmp_path, caplog):
    target = tmp_path / "elsewhere.json"
    target.write_text("keep me")
    path = tmp_path / "tokens.json"
    path.symlink_to(target)
    store = FileTokenStore(path)
    with caplog.at_level(logging.WARNING, logger="genesys_gateway.auth"):
        assert store.get(KEY) is None
    assert "symbolic link" in caplog.text
    store.set(KEY, fresh_token("a"))
    assert target.read_text() == "keep me"
    assert not path.is_symlink()


def test_unwritable_location_raises_token_store_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    store = FileTokenStore(blocker / "tokens.json")  # parent "directory" is a file
    with pytest.raises(TokenStoreError):
        store.get(KEY)
    with pytest.raises(TokenStoreError):
        store.set(KEY, fresh_token("a"))
    with pytest.raises(TokenStoreError):
        with store.lock(KEY):
            pass


def test_lock_timeout_raises_token_store_error(tmp_path):
    path = tmp_path / "tokens.json"
    holder = FileTokenStore(path)
    waiter = FileTokenStore(path, lock_timeout=0.2)
    entered = threading.Event()
    release = threading.Event()

    def hold():
        with holder.lock(KEY):
            entered.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    assert entered.wait(5)
    started = time.monotonic()
    with pytest.raises(TokenStoreError, match="timed out"):
        with waiter.lock(KEY):
            pass
    assert time.monotonic() - started < 2
    release.set()
    t.join()
    with waiter.lock(KEY):  # free again
        pass


def test_expired_entries_are_pruned_on_write(tmp_path):
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path)
    store.set(OTHER, Token("old", time.time() - 10, time.time() - 70))
    store.set(KEY, fresh_token("a"))
    assert json.loads(path.read_text()).keys() == {KEY}


def test_tilde_expanded_and_repr_shows_only_the_path(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HOME", str(tmp_path))
    store = FileTokenStore("~/.genesys/tokens.json")
    assert store.path == str(tmp_path / ".genesys" / "tokens.json")
    with caplog.at_level(logging.DEBUG):
        store.set(KEY, fresh_token("secret-token-value"))
        store.get(KEY)
    assert repr(store) == f"FileTokenStore({store.path!r})"
    assert "secret-token-value" not in caplog.text


# -- with the SDK's ClientCredentials and the emulator's token endpoint --------------------


def _cron_run(path, base_url, token_url, barrier, results):
    """One "cron job": a fresh client whose token comes from the shared file."""
    import genesys_gateway as gg

    auth = gg.ClientCredentials("cron-client", "cron-secret", token_url=token_url,
                                store=gg.FileTokenStore(path))
    with gg.GatewayClient(base_url=base_url, auth=auth, retry=gg.NoRetry()) as client:
        if barrier is not None:
            barrier.wait(timeout=60)
        content = client.complete([{"role": "user", "content": "hi"}]).message.content
    if results is not None:
        results.put(content)
    return content


def test_sdk_runs_reuse_the_token_across_runs_and_processes(tmp_path):
    from genesys_gateway.testing import GatewayEmulator

    path = str(tmp_path / "tokens.json")
    spawn = multiprocessing.get_context("spawn")  # the emulator's threads live in this process
    with GatewayEmulator() as em:
        assert _cron_run(path, em.url, em.token_url, None, None) == "Echo: hi"
        assert _cron_run(path, em.url, em.token_url, None, None) == "Echo: hi"
        assert em.token_requests == 1  # the second run reused the stored token

        os.unlink(path)  # start over, now with 8 concurrent processes
        em.delay(0.3, times=8, endpoint="token")
        contents = run_processes(spawn, _cron_run, (path, em.url, em.token_url), 8, timeout=60)
        assert contents == ["Echo: hi"] * 8
        assert em.token_requests == 2
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "cron-secret" not in open(path).read()
