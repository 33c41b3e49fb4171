"""The streaming example page (``examples/streaming/``) in a real headless Chromium, driven
by Selenium, against the example's Flask app served by a real WSGI server on loopback.

Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them): without them the
test is skipped, except under ``CI``, where it fails. Nothing is downloaded at run time.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import select
import socket
import shutil
import threading
import time

import pytest

import genesys_gateway as gg

pytestmark = pytest.mark.browser

flask = pytest.importorskip("flask")

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(os.path.dirname(HERE), "examples", "streaming")
SCREENSHOT_COPY = "/tmp/streaming_page.png"
WAIT = 30  # generous: a cold Chromium start on a busy CI machine
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--window-size=1000,700")


def skip_or_fail(message):
    if os.environ.get("CI"):
        pytest.fail(message + "; CI must run the browser test", pytrace=False)
    pytest.skip(message)


def find(names, paths):
    for path in paths:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
def browser(tmp_path):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        skip_or_fail("selenium is not installed (pip install -e '.[test]')")
    chromium = find(["chromium", "chromium-browser"], ["/usr/bin/chromium"])
    driver_path = find(["chromedriver"], ["/usr/bin/chromedriver"])
    if chromium is None or driver_path is None:
        skip_or_fail("Chromium or its driver is missing (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def example():
    spec = importlib.util.spec_from_file_location("streaming_example_app",
                                                  os.path.join(EXAMPLE, "app.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def gate():
    event = threading.Event()
    yield event
    event.set()


@dataclasses.dataclass
class Served:
    url: str
    streams: list  # the RunStreams the app made
    closed: threading.Event  # set once the server closed a /stream response (and its run)
    sockets: list  # the server's side of each /stream connection


def peer_closed(sock, timeout):
    """Whether the other end closed ``sock`` within ``timeout`` (read without consuming)."""
    if not select.select([sock], [], [], timeout)[0]:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except ConnectionError:
        return True


@pytest.fixture
def served(example, emulator, make_client, gate):
    """The example's app on werkzeug's server (port 0), its client on the emulator playing
    the example's model; the tool is the example's, held until the test opens ``gate``.
    Yields the page's URL, the streams the app made, and an event set once the server has
    closed a ``/stream`` response (and so its run)."""
    from werkzeug.serving import make_server

    tools = gg.ToolRegistry()

    @tools.tool(timeout=WAIT)
    def get_weather(city: str) -> dict:
        """Current weather for a city.

        Args:
            city: the city's name.
        """
        assert gate.wait(WAIT)
        return example.get_weather(city)

    emulator.responder = example.responder
    streams, closed, sockets = [], threading.Event(), []
    client = make_client(tools=tools)

    class Recording:  # the client, recording the streams the app makes
        def stream(self, prompt, **kwargs):
            streams.append(client.stream(prompt, **kwargs))
            return streams[-1]

    app = example.create_app(Recording())

    @app.after_request
    def watch(response):
        if flask.request.path == "/stream":
            response.call_on_close(closed.set)  # runs after the body's close()
            sockets.append(flask.request.environ["werkzeug.socket"])
        return response

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_port}/", streams, closed, sockets)
    finally:
        gate.set()
        server.shutdown()
        thread.join(WAIT)


def test_the_page_shows_text_and_tool_calls_as_they_arrive(browser, served, gate, emulator,
                                                           tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    page_url, streams, closed = served.url, served.streams, served.closed
    started = time.monotonic()
    wait = WebDriverWait(browser, WAIT)
    browser.get(page_url)
    prompt = browser.find_element(By.ID, "prompt")
    prompt.clear()
    prompt.send_keys("What is the weather in Zürich?")
    browser.find_element(By.ID, "send").click()

    # while the tool runs (held by the test), the page already shows the first text and the
    # tool's line: nothing between the run and the browser buffers the stream
    running = wait.until(ec.presence_of_element_located(
        (By.CSS_SELECTOR, '#tools li[data-status="running"]')))
    assert running.text == 'get_weather({"city":"Zürich"}) running…'
    wait.until(ec.text_to_be_present_in_element((By.ID, "answer"), "Let me check the weather"))
    assert browser.find_element(By.ID, "status").text == "streaming…"
    assert len(emulator.chat_requests) == 1
    assert browser.save_screenshot(str(tmp_path / "streaming_page_running.png"))

    gate.set()
    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "done: completed"))
    answer = browser.find_element(By.ID, "answer").text
    assert answer == ("Let me check the weather in Zürich. "
                      "In Zürich it is 18°C and sunny: a fine day for a walk.")
    lines = browser.find_elements(By.CSS_SELECTOR, "#tools li")
    assert len(lines) == 1 and lines[0].get_attribute("data-status") == "ok"
    assert lines[0].text.startswith('get_weather({"city":"Zürich"}) → ok in ') and lines[0].text.endswith(" ms")
    assert closed.wait(WAIT) and streams[0].result.stop_reason == "completed"
    assert len(emulator.chat_requests) == 2 and len(streams) == 1  # no reconnection

    shot = tmp_path / "streaming_page.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes().startswith(b"\x89PNG")
    try:
        shutil.copyfile(shot, SCREENSHOT_COPY)
        shutil.copyfile(tmp_path / "streaming_page_running.png",
                        SCREENSHOT_COPY.replace(".png", "_running.png"))
    except OSError:  # a copy for people to look at; the test does not depend on it
        pass
    print(f"browser test took {time.monotonic() - started:.2f} s; screenshot {shot}")


def test_closing_the_tab_stops_the_run(browser, served, gate, emulator):
    """The browser closes the page's tab mid-run (while a tool runs); the run ends
    "cancelled", without an answer.

    A WSGI server learns that the browser has gone only when a write fails: after a
    graceful close the first bytes written may still be accepted (the browser's machine
    answers them with a reset), the next write fails. So the run stops at the first or
    second frame after the tab closed, and never gets to ``run_finished``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT)
    first = browser.current_window_handle
    browser.switch_to.new_window("tab")
    browser.get(served.url)
    browser.find_element(By.ID, "send").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, '#tools li[data-status="running"]')))
    browser.close()  # the tab, its page and its EventSource go away
    browser.switch_to.window(first)
    # (leaving the page for another one is not enough: Chromium may keep the page, and its
    # connection, for a while in its back/forward cache)
    assert peer_closed(served.sockets[0], WAIT), "the browser kept the connection open"
    gate.set()  # the tool ends; the server writes its frame and fails
    assert served.closed.wait(WAIT), "the server never closed the response"
    assert served.streams[0].result.stop_reason == "cancelled"
    assert len(emulator.chat_requests) <= 2  # at most the call in flight; never a third
    print(f"model calls after the tab closed: {len(emulator.chat_requests) - 1}")
