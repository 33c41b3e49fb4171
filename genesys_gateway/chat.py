"""The ``chat`` command's session: read a line, run a turn, print it; commands; Ctrl-C.

:class:`ChatSession` takes the client, an input function and an output stream, so tests
drive it with lines, ``KeyboardInterrupt`` (Ctrl-C) and ``EOFError`` (Ctrl-D).
"""

from __future__ import annotations

import json
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any, Callable, TextIO
from urllib.parse import urlsplit, urlunsplit

from .console import Transcript, compact_json, shorten

if TYPE_CHECKING:
    from .client import GatewayClient
    from .conversation import Conversation

__all__ = ["COMMANDS", "ChatSession", "LineCleared", "terminal_input"]

#: The chat's commands and what they do.
COMMANDS = {
    "/help": "list these commands",
    "/tools": "list the loaded tools and their arguments",
    "/history": "show the conversation so far",
    "/reset": "forget the conversation and start again",
    "/exit": "end the chat (also Ctrl-D, or Ctrl-C twice)",
}
_HINT = "(Ctrl-C again, Ctrl-D or /exit to quit)"


class LineCleared(KeyboardInterrupt):
    """Ctrl-C on a line holding text: the line is dropped and the chat goes on (a second
    Ctrl-C, on the now empty line, is the one that counts toward quitting)."""


def terminal_input(prompt: str) -> str:
    """``input(prompt)`` with readline's line editing; Ctrl-C on a line holding text raises
    :class:`LineCleared`, on an empty line ``KeyboardInterrupt``. Without readline, or off
    the main thread, plain ``input``."""
    try:
        import readline
    except ImportError:  # pragma: no cover - Windows without pyreadline
        return input(prompt)
    if threading.current_thread() is not threading.main_thread():
        return input(prompt)
    typed: list[str] = []

    def on_ctrl_c(signum: int, frame: FrameType | None) -> None:
        typed.append(readline.get_line_buffer())  # readline still holds the line here
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        return input(prompt)
    except KeyboardInterrupt:
        if typed and typed[-1].strip():
            raise LineCleared from None
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
_LINE_WIDTH = 100


class ChatSession:
    """An interactive chat on ``client``: each line is a turn of one conversation.

    Args:
        client: the client (its tools are the chat's tools).
        out: where the chat is printed.
        read_line: reads a line after showing a prompt (``input``, :func:`terminal_input`);
            raises ``EOFError`` at the end of input (Ctrl-D), ``KeyboardInterrupt`` on
            Ctrl-C and :class:`LineCleared` on Ctrl-C over typed text.
        system: the conversation's system prompt.
        echo_input: print each line read after the prompt (for input that is not a
            terminal, so the transcript shows what was sent).
        emulated: the client talks to the embedded emulator (the banner says so).
        err: where a failed turn's line goes (default ``out``).

    A turn that fails prints one line (``error: <type>: <message>``, to ``err``) and the
    chat goes on with its history as before that turn; :attr:`failed_turns` counts them. An empty line does nothing. Ctrl-C during a turn
    abandons the turn; at the prompt it clears the line, on an empty line it prints a hint,
    and a second Ctrl-C there ends the chat, as does Ctrl-D.
    """

    def __init__(self, client: GatewayClient, out: TextIO, read_line: Callable[[str], str] = input, *,
                 system: str | None = None, echo_input: bool = False, emulated: bool = False,
                 err: TextIO | None = None) -> None:
        self.client, self.out, self.read_line = client, out, read_line
        self.err = err if err is not None else out
        self.failed_turns = 0
        self.system, self.echo_input, self.emulated = system, echo_input, emulated
        self.conversation: Conversation = client.conversation(system=system)

    # -- output ---------------------------------------------------------------------------

    def say(self, text: str = "") -> None:
        """Print ``text`` on a line of its own."""
        self.out.write(text + "\n")
        self.out.flush()

    def banner(self) -> None:
        """Print where the chat goes, with which model and tools, and how to use it."""
        parts = urlsplit(self.client.url)
        endpoint = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        self.say(f"chat with {endpoint}")
        self.say(f"  model: {self.client.options.model}")
        names = [tool.name for tool in self.client.tools] if self.client.tools is not None else []
        self.say(f"  tools: {', '.join(names)}" if names
                 else "  tools: none (load yours with --tools module:registry)")
        if self.emulated:
            self.say("  embedded emulator: a scripted stand-in, not a model; it calls the tools "
                     "your words name, with arguments taken from them")
        self.say("type a message; /help for commands; Ctrl-D or /exit to quit")

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> int:
        """Chat until the input ends, ``/exit``, or Ctrl-C twice in a row; the exit status (0)."""
        interrupted = False
        while True:
            try:
                text = self.read_line("you> ")
            except EOFError:
                self.say()
                return 0
            except LineCleared:
                self.say()
                interrupted = False
                continue
            except KeyboardInterrupt:
                self.say()
                if interrupted:
                    return 0
                self.say(_HINT)
                interrupted = True
                continue
            interrupted = False
            if self.echo_input:
                self.say(text)
            if not self.handle(text):
                return 0

    def handle(self, text: str) -> bool:
        """Act on one line: a command, or a turn; ``False`` when the chat should end."""
        stripped = text.strip()
        if not stripped:
            return True
        if stripped.startswith("/") and not stripped.startswith("//"):
            return self.command(stripped)
        self.turn(text[1:] if stripped.startswith("//") else text)
        return True

    def command(self, text: str) -> bool:
        """Run a ``/command``; ``False`` for ``/exit``."""
        name = text.split()[0].lower()
        if name in ("/exit", "/quit"):
            return False
        if name == "/help":
            for command, what in COMMANDS.items():
                self.say(f"  {command:<9} {what}")
            self.say("  (start a message with // to send one beginning with /)")
        elif name == "/tools":
            self.show_tools()
        elif name == "/history":
            self.show_history()
        elif name == "/reset":
            self.conversation = self.client.conversation(system=self.system)
            self.say("(history cleared)")
        else:
            self.say(f"unknown command {name}; /help lists the commands")
        return True

    def turn(self, text: str) -> None:
        """Send ``text`` and print the turn as it happens. A failure prints one line and
        keeps the history as it was before the turn."""
        transcript = Transcript(self.out, "assistant> ")
        try:
            result = transcript.follow(self.conversation.stream(text))
        except KeyboardInterrupt:
            transcript.end_text()
            self.say()  # a terminal echoed "^C" where the cursor was: a line of its own, as at the prompt
            self.say("(interrupted: the turn was abandoned; the history is as before it)")
            return
        except Exception as e:  # any failure of one turn: one line, and the chat goes on
            transcript.end_text()
            self.failed_turns += 1
            message = " ".join(str(e).split()) or "(no message)"
            self.err.write(f"error: {type(e).__name__}: {message}\n")
            self.err.flush()
            return
        if not result.completed:
            self.say(f"assistant> (the run stopped: {result.stop_reason})")

    # -- commands -------------------------------------------------------------------------

    def show_tools(self) -> None:
        """Print each loaded tool with its arguments and description."""
        tools = list(self.client.tools) if self.client.tools is not None else []
        if not tools:
            self.say("no tools loaded (start the chat with --tools module:registry)")
            return
        for tool in tools:
            properties = tool.parameters.get("properties")
            required = tool.parameters.get("required") or ()
            args = ", ".join(name if name in required else f"{name}?" for name in properties or {})
            self.say(f"  {tool.name}({args}): {shorten(tool.description, 70)}")

    def show_history(self) -> None:
        """Print the conversation's messages, one line each."""
        messages = self.conversation.messages
        if not messages:
            self.say("(no history yet)")
            return
        names: dict[Any, str] = {}
        for message in messages:
            role = message.get("role")
            content = message.get("content")
            text = content if isinstance(content, str) else compact_json(content) if content else ""
            if role == "tool":
                name = names.get(message.get("tool_call_id"), "tool")
                self.say("  " + shorten(f"tool {name}: {text}", _LINE_WIDTH))
                continue
            calls = []
            for call in message.get("tool_calls") or ():
                fn = call.get("function") or {}
                names[call.get("id")] = str(fn.get("name"))
                calls.append(f"{fn.get('name')}({_compact(fn.get('arguments'))})")
            if calls:
                text = (text + " " if text else "") + "calls " + ", ".join(calls)
            self.say("  " + shorten(f"{role}: {text}", _LINE_WIDTH))


def _compact(arguments: object) -> str:
    """A tool call's arguments (a JSON string on the wire) in the transcript's JSON style."""
    if isinstance(arguments, str):
        try:
            return compact_json(json.loads(arguments))
        except ValueError:
            return arguments
    return compact_json(arguments)
