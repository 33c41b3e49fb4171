"""The chat session, driven in process: lines, Ctrl-C (``KeyboardInterrupt``) and Ctrl-D
(``EOFError``) are injected; the client talks to a real loopback emulator playing the model
with its rule-based responder."""

from __future__ import annotations

import io
from typing import Literal

import pytest

import genesys_gateway as gg
from genesys_gateway.chat import COMMANDS, ChatSession, LineCleared
from genesys_gateway.testing.emulator import GatewayEmulator, reply, rule_based_responder

SECRET = "chat-s3cr3t-value"


class Keys:
    """An input function: returns the given lines in order, raises the exceptions given
    (``KeyboardInterrupt`` for Ctrl-C), then ``EOFError`` (Ctrl-D) at the end."""

    def __init__(self, *items):
        self.items = list(items)
        self.prompts = []

    def __call__(self, prompt):
        self.prompts.append(prompt)
        if not self.items:
            raise EOFError
        item = self.items.pop(0)
        if isinstance(item, type) and issubclass(item, BaseException):
            raise item
        return item


def weather_tools(ran=None):
    registry = gg.ToolRegistry()

    @registry.tool
    def get_weather(location: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict:
        """Current weather for a city.

        Args:
            location: City name.
            unit: Temperature unit.
        """
        if ran is not None:
            ran.append((location, unit))
        return {"location": location, "temperature": 22 if unit == "celsius" else 72}

    return registry


@pytest.fixture
def em():
    with GatewayEmulator(responder=rule_based_responder) as emulator:
        yield emulator


def connect(em, tools=None, **kwargs):
    auth = gg.ClientCredentials("chat-client", SECRET, token_url=em.token_url)
    return gg.GatewayClient(base_url=em.url, auth=auth, tools=tools, **kwargs)


@pytest.fixture
def client(em):
    with connect(em, weather_tools(), model="gpt-4o-mini") as c:
        yield c


def session(client, *keys, **kwargs):
    out = io.StringIO()
    return ChatSession(client, out, Keys(*keys), **kwargs), out


def test_the_banner_names_endpoint_model_tools_and_the_stand_in(client, em):
    chat, out = session(client, emulated=True)
    chat.banner()
    text = out.getvalue()
    assert f"chat with {em.chat_url}\n" in text
    assert "  model: gpt-4o-mini\n" in text and "  tools: get_weather\n" in text
    assert "embedded emulator: a scripted stand-in, not a model" in text
    assert SECRET not in text


def test_the_banner_without_tools_or_emulator(em):
    with connect(em) as plain:
        chat, out = session(plain)
        chat.banner()
    assert "tools: none (load yours with --tools module:registry)" in out.getvalue()
    assert "emulator" not in out.getvalue()


def test_a_turn_runs_the_tool_with_arguments_from_the_words(em):
    ran = []
    with connect(em, weather_tools(ran)) as c:
        chat, out = session(c, "What's the weather in Oslo, in fahrenheit?", echo_input=True)
        assert chat.run() == 0
    assert ran == [("Oslo", "fahrenheit")]
    lines = out.getvalue().splitlines()
    assert lines[0] == "What's the weather in Oslo, in fahrenheit?"  # echoed input
    head = '  tool get_weather({"location":"Oslo","unit":"fahrenheit"}) -> ok in '
    assert lines[1].startswith(head) and lines[1].endswith(' ms: {"location":"Oslo","temperature":72}')
    assert lines[1][len(head):].split(" ms:")[0].isdigit()
    assert lines[2] == 'assistant> get_weather returned {"location":"Oslo","temperature":72}.'


def test_a_long_tool_result_is_cut_on_its_line(em):
    registry = gg.ToolRegistry()
    registry.register("get_report", "A long report.", {"type": "object", "properties": {}},
                      lambda: "x" * 500)
    with connect(em, registry) as c:
        chat, out = session(c)
        chat.turn("the report please")
    line = out.getvalue().splitlines()[0]
    assert line.endswith(": " + "x" * 77 + "...")


def test_a_failed_turn_keeps_the_history(client, em):
    chat, out = session(client)
    chat.turn("weather in Oslo")
    kept = list(chat.conversation.messages)
    em.echo_credentials(400)  # the next request fails; its body quotes the Authorization header
    chat.turn("weather in Lima")
    errors = [line for line in out.getvalue().splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: BadRequestError: HTTP 400")
    assert chat.failed_turns == 1
    assert chat.conversation.messages == kept
    chat.turn("and in Paris?")  # a follow-up of the kept history
    assert "assistant> get_weather returned {\"location\":\"Paris\"" in out.getvalue()
    sent = em.chat_requests[-2]["messages"]  # the third turn's first model call
    assert [m["content"] for m in sent if m["role"] == "user"] == ["weather in Oslo", "and in Paris?"]
    tokens = {r.headers["authorization"].split()[-1] for r in em.requests if r.endpoint == "chat"}
    assert tokens and not any(t in out.getvalue() for t in tokens) and SECRET not in out.getvalue()


def test_a_run_that_stops_early_says_why(client, em):
    em.script(reply(content="cut sho", finish_reason="length"))
    chat, out = session(client)
    chat.turn("tell me a long story")
    assert out.getvalue() == "assistant> cut sho\nassistant> (the run stopped: length)\n"


def test_an_empty_line_does_nothing(client, em):
    chat, out = session(client, "", "   ", "\t")
    assert chat.run() == 0
    assert em.chat_requests == [] and out.getvalue() == "\n"  # only Ctrl-D's newline


def test_ctrl_d_exits_0_on_a_new_line(client):
    chat, out = session(client, EOFError, "never read")
    assert chat.run() == 0
    assert out.getvalue() == "\n" and chat.read_line.items == ["never read"]


def test_ctrl_c_clears_the_line_and_twice_in_a_row_exits_0(client, em):
    chat, out = session(client, KeyboardInterrupt, "weather in Oslo", KeyboardInterrupt,
                        KeyboardInterrupt, "never read")
    assert chat.run() == 0
    assert chat.read_line.items == ["never read"]
    text = out.getvalue()
    assert text.count("(Ctrl-C again, Ctrl-D or /exit to quit)") == 2  # one hint per first Ctrl-C
    assert "assistant> get_weather returned" in text  # the line between them ran
    assert len(em.chat_requests) == 2


def test_ctrl_c_over_typed_text_only_clears_the_line(client, em):
    # LineCleared: Ctrl-C while the line held text; it neither hints nor counts toward quitting
    chat, out = session(client, LineCleared, LineCleared, KeyboardInterrupt, LineCleared,
                        KeyboardInterrupt, KeyboardInterrupt, "never read")
    assert chat.run() == 0
    assert chat.read_line.items == ["never read"]
    assert out.getvalue().count("(Ctrl-C again, Ctrl-D or /exit to quit)") == 2
    assert em.chat_requests == []


def test_ctrl_c_during_a_turn_abandons_it_and_the_chat_goes_on(client, em):
    class CtrlCOnAnswer(io.StringIO):
        armed = True

        def write(self, text):
            if self.armed and text.startswith("assistant> "):
                self.armed = False
                raise KeyboardInterrupt
            return super().write(text)

    out = CtrlCOnAnswer()
    chat = ChatSession(client, out, Keys("weather in Oslo", "weather in Rome"))
    assert chat.run() == 0
    text = out.getvalue()
    # on a line of its own after the terminal's "^C" (it was "^C(interrupted: ...")
    assert "\n\n(interrupted: the turn was abandoned; the history is as before it)\n" in text
    assert 'assistant> get_weather returned {"location":"Rome"' in text
    users = [m["content"] for m in chat.conversation.messages if m["role"] == "user"]
    assert users == ["weather in Rome"]


def test_commands(client, em):
    chat, out = session(client, "/help", "/tools", "weather in Oslo", "/history", "/reset",
                        "/history", "/nope", "/exit", "never read", system="be brief")
    assert chat.run() == 0
    assert chat.read_line.items == ["never read"]
    text = out.getvalue()
    for command in COMMANDS:
        assert f"  {command} " in text
    assert "  get_weather(location, unit?): Current weather for a city.\n" in text
    history = text.split("assistant> get_weather returned")[1].split("(history cleared)")[0]
    assert history.splitlines()[1:] == [
        "  system: be brief",
        "  user: weather in Oslo",
        '  assistant: calls get_weather({"location":"Oslo","unit":"celsius"})',
        '  tool get_weather: {"location":"Oslo","temperature":22}',
        '  assistant: get_weather returned {"location":"Oslo","temperature":22}.',
    ]
    assert chat.conversation.messages == [{"role": "system", "content": "be brief"}]
    assert "(history cleared)\n  system: be brief\n" in text
    assert "unknown command /nope; /help lists the commands\n" in text
    assert len(em.chat_requests) == 2


def test_a_message_may_start_with_a_slash_when_doubled(client, em):
    chat, out = session(client)
    assert chat.handle("//usr/bin is where?") is True
    assert em.chat_requests[0]["messages"][-1]["content"] == "/usr/bin is where?"
    assert chat.handle("/EXIT") is False


def test_tools_and_history_when_empty(em):
    with connect(em) as plain:
        chat, out = session(plain)
        chat.command("/tools")
        chat.command("/history")
    assert out.getvalue() == ("no tools loaded (start the chat with --tools module:registry)\n"
                              "(no history yet)\n")


def test_history_shows_arguments_the_model_sent_as_they_were(client, em):
    em.script(reply(tool_calls=[{"name": "get_weather", "arguments": "{not json"}]), reply("sorry"))
    chat, out = session(client)
    chat.turn("weather?")
    chat.show_history()
    assert "  assistant: calls get_weather({not json)\n" in out.getvalue()
