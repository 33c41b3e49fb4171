"""``contrib.flask.stream_response``: a run streamed by a real Flask app, read through Flask's
test client and through a real WSGI server (werkzeug's) on loopback; a reader that goes
away stops the run at once."""

from __future__ import annotations

import queue
import threading
import time

import pytest

flask = pytest.importorskip("flask")

from genesys_gateway.contrib.flask import GenesysGateway, stream_response  # noqa: E402
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


@pytest.fixture
def scenario(emulator):
    s = Scenario(emulator)
    yield s
    s.finish()


@pytest.fixture
def app(emulator, scenario):
    """The README's Flask endpoint, with the streams it made kept for the assertions."""
    app = flask.Flask(__name__)
    app.config.update({
        "GENESYS_GATEWAY_BASE_URL": emulator.url,
        "GENESYS_GATEWAY_TOKEN_URL": emulator.token_url,
        "GENESYS_GATEWAY_CLIENT_ID": "flask-client",
        "GENESYS_GATEWAY_CLIENT_SECRET": "s3cr3t-flask-stream",
    })
    gateway = GenesysGateway(app, tools=scenario.registry)
    app.streams, app.closed, app.closed_at = [], threading.Event(), []

    def closed():
        app.closed_at.append(time.monotonic())
        app.closed.set()

    @app.get("/stream")
    def stream():
        run = gateway.client.stream(flask.request.args["prompt"])
        app.streams.append(run)
        response = stream_response(run)
        response.call_on_close(closed)  # after the body (and so the run) was closed
        return response

    yield app
    for run in app.streams:
        run.close()
    app.extensions["genesys_gateway"].close()


def test_the_response_streams_server_sent_events(app, scenario):
    scenario.release.set()
    response = app.test_client().get("/stream", query_string={"prompt": "look it up"})
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert "Content-Length" not in response.headers
    frames = parse_frames(response.get_data())
    assert [name for name, _ in frames].count("tool_call_started") == 3
    assert frames[-1] == ("run_finished", {
        "stop_reason": "completed", "content": "All done.", "output": None,
        "usage": frames[-1][1]["usage"], "conversation_id": app.streams[0].result.conversation_id,
        "pending": []})
    assert sorted(scenario.topics()) == ["a", "b", "c"]


def test_test_client_reading_only_the_first_event_then_closing(app, scenario):
    response = app.test_client().get("/stream", query_string={"prompt": "look it up"},
                                     buffered=False)
    first = next(iter(response.response))
    assert parse_frames(first) == [("text_delta", {"text": "Let me look that up."})]
    started = time.monotonic()
    response.close()  # what the WSGI server does when the browser has gone
    check_cancelled_after_first_event(scenario, app.streams[0], time.monotonic() - started)


def test_test_client_gone_while_a_model_call_is_in_flight(app, scenario):
    response = app.test_client().get("/stream", query_string={"prompt": "look it up"},
                                     buffered=False)
    frames, gone, closed_at = queue.Queue(), threading.Event(), []
    server = serve_like_wsgi(iter(response.response), response.close, frames, gone, closed_at)
    seen = next_frames(frames, "text_delta")  # the reader gets the first event...
    assert seen == [("text_delta", {"text": "Let me look that up."})]
    seen = next_frames(frames, "tool_call_finished")
    seen += next_frames(frames, "tool_call_finished")
    assert scenario.arrived.wait(WAIT)  # ...the second model call is in flight...
    gone_at = time.monotonic()
    gone.set()  # ...and the browser goes away
    scenario.release.set()
    server.join(WAIT)
    assert not server.is_alive()
    check_cancelled_in_flight(scenario, app.streams[0], gone_at, closed_at[0])


def test_a_real_server_closes_the_run_when_the_browser_disconnects(app, scenario):
    """werkzeug's WSGI server on loopback and a raw socket as the browser: the server sees
    the disconnect when it next writes, closes the response, and the run stops there."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        gone_at = disconnect_during_second_call(server.server_port, scenario)
        assert app.closed.wait(WAIT), "the server never closed the response"
        check_cancelled_in_flight(scenario, app.streams[0], gone_at, app.closed_at[0])
    finally:
        server.shutdown()
        thread.join(WAIT)


def test_stream_response_body_is_the_sse_body(emulator, make_client):
    stream = make_client().stream("go")
    response = stream_response(stream)
    assert response.is_streamed
    response.close()
    assert stream.result.stop_reason == "cancelled"
    assert emulator.chat_requests == []
