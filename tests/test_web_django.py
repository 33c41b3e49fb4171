"""``contrib.django.stream_response``: a run streamed by a Django view, read through Django's
test client and through Django's own development WSGI server on loopback; a reader that
goes away stops the run at once."""

from __future__ import annotations

import queue
import threading
import time

import pytest

django = pytest.importorskip("django")

from django.urls import path  # noqa: E402

from tests.django_env import configure  # noqa: E402

configure()  # the settings every Django test module shares; this module's URLs via override

from django.core.cache import caches  # noqa: E402
from django.core.signals import request_finished  # noqa: E402
from django.http import StreamingHttpResponse  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

from genesys_gateway.contrib.django import get_client, reset_client, stream_response  # noqa: E402
from tests.web_helpers import (  # noqa: E402
    WAIT,
    Scenario,
    check_cancelled_after_first_event,
    check_cancelled_in_flight,
    disconnect_during_second_call,
    next_frames,
    parse_frames,
    serve_like_wsgi,
)

REGISTRY = None  # the current test's tools, named by settings.GENESYS_GATEWAY["TOOLS"]
STREAMS = []  # the streams the view made, for the assertions
CLOSED = []  # (threading.Event, closed_at list) of the current test


# -- the "project": the README's view; this module is the URLconf ---------------------------


def stream(request):
    run = get_client().stream(request.GET["prompt"])
    STREAMS.append(run)
    return stream_response(run)


def on_request_finished(**kwargs):
    """Django sends request_finished from response.close(), after closing the body."""
    event, closed_at = CLOSED[-1]
    closed_at.append(time.monotonic())
    event.set()


urlpatterns = [path("stream", stream)]


@pytest.fixture
def scenario(emulator):
    global REGISTRY
    s = Scenario(emulator)
    REGISTRY = s.registry
    STREAMS.clear()
    CLOSED[:] = [(threading.Event(), [])]
    caches["default"].clear()
    request_finished.connect(on_request_finished)
    with override_settings(ROOT_URLCONF=__name__, GENESYS_GATEWAY={
            "BASE_URL": emulator.url, "TOKEN_URL": emulator.token_url,
            "CLIENT_ID": "django-client", "CLIENT_SECRET": "s3cr3t-django-stream",
            "TOOLS": f"{__name__}:REGISTRY"}):
        yield s
        s.finish()
        for run in STREAMS:
            run.close()
    request_finished.disconnect(on_request_finished)
    reset_client()


def test_the_response_streams_server_sent_events(scenario):
    scenario.release.set()
    response = Client().get("/stream", {"prompt": "look it up"})
    assert isinstance(response, StreamingHttpResponse) and response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    assert response["Cache-Control"] == "no-cache"
    assert response["X-Accel-Buffering"] == "no"
    assert not response.has_header("Content-Length")
    frames = parse_frames(b"".join(response.streaming_content))
    assert [name for name, _ in frames].count("tool_call_started") == 3
    assert frames[-1][0] == "run_finished"
    assert frames[-1][1]["stop_reason"] == "completed" and frames[-1][1]["content"] == "All done."
    assert sorted(scenario.topics()) == ["a", "b", "c"]


def test_test_client_reading_only_the_first_event_then_closing(scenario):
    response = Client().get("/stream", {"prompt": "look it up"})
    first = next(iter(response.streaming_content))
    assert parse_frames(first) == [("text_delta", {"text": "Let me look that up."})]
    started = time.monotonic()
    response.close()  # what the WSGI server does when the browser has gone
    check_cancelled_after_first_event(scenario, STREAMS[0], time.monotonic() - started)
    assert CLOSED[0][0].is_set()


def test_test_client_gone_while_a_model_call_is_in_flight(scenario):
    response = Client().get("/stream", {"prompt": "look it up"})
    frames, gone, closed_at = queue.Queue(), threading.Event(), []
    server = serve_like_wsgi(iter(response.streaming_content), response.close, frames, gone,
                             closed_at)
    assert next_frames(frames, "text_delta") == [("text_delta", {"text": "Let me look that up."})]
    next_frames(frames, "tool_call_finished")
    next_frames(frames, "tool_call_finished")
    assert scenario.arrived.wait(WAIT)  # the second model call is in flight...
    gone_at = time.monotonic()
    gone.set()  # ...and the browser goes away
    scenario.release.set()
    server.join(WAIT)
    assert not server.is_alive()
    check_cancelled_in_flight(scenario, STREAMS[0], gone_at, closed_at[0])


def test_djangos_development_server_closes_the_run_when_the_browser_disconnects(scenario):
    """``runserver``'s WSGI server (wsgiref underneath) sees the disconnect when it next
    writes and closes the response; the run stops there."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    with override_settings(ALLOWED_HOSTS=["localhost"]):
        server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler)
        server.set_app(WSGIHandler())
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            gone_at = disconnect_during_second_call(server.server_address[1], scenario)
            event, closed_at = CLOSED[0]
            assert event.wait(WAIT), "the server never closed the response"
            check_cancelled_in_flight(scenario, STREAMS[0], gone_at, closed_at[0])
        finally:
            server.shutdown()
            server.server_close()
            thread.join(WAIT)
