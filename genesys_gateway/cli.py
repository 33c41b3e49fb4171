"""The ``genesys-gateway`` command (also ``python -m genesys_gateway``).

Subcommands: ``demo``, ``chat``, ``tools``, ``emulator``. Errors print one line and exit
non-zero; secrets are never printed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys
import threading
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterator, TextIO

from .errors import ConfigurationError, GatewayError, ToolDefinitionError
from .tools.loading import import_tools_module, load_registry
from .tools.registry import ToolRegistry

if TYPE_CHECKING:
    from .client import GatewayClient
    from .events import Event
    from .result import RunResult
    from .stream import RunStream
    from .testing.emulator import Responder

EXIT_ERROR = 1
EXIT_USAGE = 2


class CLIError(Exception):
    """A failure to report as one line."""


def _out(text: str = "", stream: TextIO | None = None) -> None:
    print(text, file=stream or sys.stdout, flush=True)


# -- tools loading ---------------------------------------------------------------------


def load_registries(target: str) -> list[ToolRegistry]:
    """``module:attribute`` (a ToolRegistry), a module name (its ToolRegistry instances),
    or a path to a ``.py`` file (its ToolRegistry instances)."""
    try:
        if target.endswith(".py") or os.sep in target:
            module = _load_file(target)
        elif ":" in target:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            return [load_registry(target, what=target)]
        else:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = import_tools_module(target, what=target)
    except ToolDefinitionError as e:
        raise CLIError(f"invalid tool definition in {target}: {e}") from None
    except ConfigurationError as e:
        raise CLIError(str(e)) from None
    registries = [v for v in vars(module).values() if isinstance(v, ToolRegistry)]
    if not registries:
        raise CLIError(f"{target} defines no ToolRegistry")
    return registries


def _load_file(path: str) -> ModuleType:
    """Execute the ``.py`` file at ``path`` as a module."""
    if not os.path.isfile(path):
        raise CLIError(f"no such file: {path}")
    name = "_genesys_gateway_tools_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CLIError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except ToolDefinitionError:
        raise
    except Exception as e:  # the user's file failed while running: one line, no traceback
        raise CLIError(f"error importing {path}: {type(e).__name__}: {e}") from None
    except SystemExit as e:  # a script, not a module of tools
        raise CLIError(f"{path} called sys.exit({e.code!r}) while being loaded") from None
    return module


def cmd_tools(args: argparse.Namespace) -> int:
    definitions = []
    for registry in load_registries(args.target):
        definitions.extend(registry.definitions())
    _out(json.dumps(definitions, indent=2, ensure_ascii=False))
    _out(f"{len(definitions)} tool(s) valid", sys.stderr)
    return 0


# -- demo and chat ---------------------------------------------------------------------


@contextlib.contextmanager
def _client(live: bool, tools: ToolRegistry | None, responder: Responder | None = None,
            model: str | None = None) -> Iterator[GatewayClient]:
    from .client import GatewayClient
    from .http.auth import ClientCredentials

    overrides: dict[str, Any] = {"tools": tools}
    if model:
        overrides["model"] = model
    if live:
        with GatewayClient.from_env(**overrides) as client:
            yield client
        return
    from .testing import GatewayEmulator

    with GatewayEmulator(responder=responder) as emulator:
        auth = ClientCredentials("demo-client", "demo-secret", token_url=emulator.token_url)
        with GatewayClient(base_url=emulator.url, auth=auth, **overrides) as client:
            yield client


class _Transcript:
    """Prints a run's events as they happen: the model's text as it arrives (after
    ``prefix``), a line per model call (``model_calls``) and two per tool call (when it
    starts and when it ends, with ``details``: its arguments and what the model is sent)."""

    def __init__(self, out: TextIO, prefix: str, *, model_calls: bool, details: bool) -> None:
        self.out, self.prefix = out, prefix
        self.model_calls, self.details = model_calls, details
        self.in_text = False  # a line of the model's text is open
        self.arguments: dict[str, str] = {}

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def end_text(self) -> None:
        if self.in_text:
            self.write("\n")
            self.in_text = False

    def line(self, text: str) -> None:
        self.end_text()
        self.write(text + "\n")

    def show(self, event: Event) -> RunResult | None:
        """Print ``event``; the result when it is the last one."""
        from .events import ModelCallFinished, RunFinished, TextDelta, ToolCallFinished, ToolCallStarted

        if isinstance(event, TextDelta):
            if not self.in_text:
                self.write(self.prefix)
                self.in_text = True
            self.write(event.text)
        elif isinstance(event, ToolCallStarted):
            args = json.dumps(event.arguments, ensure_ascii=False) if event.arguments is not None else "-"
            self.arguments[event.call_id] = args
            self.line(f"  tool {event.name}({args}) started" if self.details
                      else f"  [tool {event.name} started]")
        elif isinstance(event, ToolCallFinished):
            run, ms = event.run, event.run.duration_s * 1000
            if self.details:
                args = self.arguments.get(run.call_id) or (
                    json.dumps(run.arguments, ensure_ascii=False) if run.arguments is not None else "-")
                self.line(f"  tool {run.name}({args}) -> {run.status} in {ms:.0f} ms")
                self.line(f"    {run.content[:200]}")
            else:
                self.line(f"  [tool {run.name} -> {run.status}, {ms:.0f} ms]")
        elif isinstance(event, ModelCallFinished):
            if self.model_calls:
                self.line(f"model call {event.iteration}: finish reason {event.finish_reason}, "
                          f"{event.usage.total_tokens} tokens")
        elif isinstance(event, RunFinished):
            self.end_text()
            return event.result
        return None

    def follow(self, stream: RunStream) -> RunResult:
        """Print every event of ``stream``; its result. Interrupted, the run is closed."""
        result = None
        with stream:
            for event in stream:
                result = self.show(event) or result
        self.end_text()
        assert result is not None, "a run always ends with RunFinished"
        return result


def _print_summary(result: RunResult, stream: TextIO) -> None:
    if result.content is not None:
        _out(f"\nanswer: {result.content}", stream)
    else:
        _out(f"\nno answer: stopped by {result.stop_reason}", stream)
    u = result.usage
    _out(f"usage: {u.prompt_tokens} prompt + {u.completion_tokens} completion = {u.total_tokens} tokens; "
         f"{result.iterations} model call(s), stop reason {result.stop_reason}", stream)


def cmd_demo(args: argparse.Namespace) -> int:
    from . import demo

    registry = demo.build_registry()
    where = "a real gateway (from the environment)" if args.live else "the embedded GatewayEmulator"
    _out(f"running the weather + inventory scenario against {where}")
    _out(f"user: {demo.PROMPT}\n")
    with _client(args.live, registry, demo.responder, args.model) as client:
        transcript = _Transcript(sys.stdout, "assistant: ", model_calls=True, details=True)
        result = transcript.follow(client.stream(demo.PROMPT))
    _print_summary(result, sys.stdout)
    return 0 if result.stop_reason == "completed" else EXIT_ERROR


def cmd_chat(args: argparse.Namespace) -> int:
    try:
        import readline  # noqa: F401  (line editing where available)
    except ImportError:  # pragma: no cover
        pass
    registry = None
    if args.tools:
        registries = load_registries(args.tools)
        registry = registries[0] if len(registries) == 1 else ToolRegistry()
        if len(registries) > 1:
            for r in registries:
                for tool in r:
                    registry.add(tool)  # keeps each tool as built (argument converter included)
    with _client(args.live, registry, None, args.model) as client:
        conversation = client.conversation(system=args.system)
        _out("type a message; an empty line or Ctrl-D ends the chat", sys.stderr)
        while True:
            try:
                text = input("you> ")
            except EOFError:
                break
            if not text.strip():
                break
            transcript = _Transcript(sys.stdout, "assistant> ", model_calls=False, details=False)
            result = transcript.follow(conversation.stream(text))
            if result.stop_reason != "completed":
                _out(f"assistant> ({result.stop_reason})")
    return 0


# -- emulator --------------------------------------------------------------------------


def cmd_emulator(args: argparse.Namespace) -> int:
    from .testing import GatewayEmulator

    kwargs = dict(host=args.host, port=args.port)
    if args.client_id:
        kwargs["client_id"] = args.client_id
    secret = os.environ.get("GENESYS_GATEWAY_EMULATOR_SECRET")
    if secret:
        kwargs["client_secret"] = secret
    emulator = GatewayEmulator(**kwargs)
    if args.script:
        from .testing.emulator import load_script

        try:
            emulator.script(*load_script(args.script))
        except (OSError, ValueError, TypeError) as e:
            raise CLIError(f"cannot read script {args.script}: {e}") from None
    stop = threading.Event()
    with emulator:
        try:  # the banner inside: a Ctrl-C right after it still stops cleanly
            _out(f"GatewayEmulator serving at {emulator.url}")
            _out(f"  token URL: {emulator.token_url}")
            _out(f"  chat URL:  {emulator.chat_url}")
            _out("press Ctrl-C to stop")
            while not stop.wait(3600):
                pass
        except KeyboardInterrupt:
            _out("stopped")
    return 0


# -- entry point -----------------------------------------------------------------------


def _non_empty(text: str) -> str:
    """An argparse type: the text, which must not be empty or blank."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genesys-gateway",
        description="Tool-calling with the Genesys Cloud AI Builder LLM Gateway.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("demo", help="run the weather + inventory scenario end to end",
                       description="Run the tutorial's weather + inventory scenario on the embedded "
                                   "emulator (no credentials), or on a real gateway with --live.")
    p.add_argument("--live", action="store_true", help="use a real gateway configured by GENESYSCLOUD_* variables")
    p.add_argument("--model", type=_non_empty, help="model name (default gpt-4o)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("chat", help="chat interactively", description="An interactive chat with optional tools.")
    p.add_argument("--tools", metavar="TARGET", help="module:attribute, module or .py file with a ToolRegistry")
    p.add_argument("--live", action="store_true", help="use a real gateway configured by GENESYSCLOUD_* variables")
    p.add_argument("--model", type=_non_empty, help="model name")
    p.add_argument("--system", help="system prompt")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("tools", help="validate tools and print their definitions",
                       description="Load tools, validate every definition and print them as the model sees them.")
    p.add_argument("target", metavar="TARGET", help="module:attribute, module name, or path to a .py file")
    p.set_defaults(func=cmd_tools)

    p = sub.add_parser("emulator", help="serve the GatewayEmulator",
                       description="Serve the GatewayEmulator until interrupted. Set "
                                   "GENESYS_GATEWAY_EMULATOR_SECRET to require a client secret.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--client-id", help="require this client id")
    p.add_argument("--script", metavar="FILE", help="JSON list of scripted replies")
    p.set_defaults(func=cmd_emulator)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
        return status
    except CLIError as e:
        _out(f"genesys-gateway {args.command}: error: {e}", sys.stderr)
    except ConfigurationError as e:
        _out(f"genesys-gateway {args.command}: configuration error: {e}", sys.stderr)
    except GatewayError as e:
        _out(f"genesys-gateway {args.command}: {type(e).__name__}: {e}", sys.stderr)
    except OSError as e:
        _out(f"genesys-gateway {args.command}: error: {e}", sys.stderr)
    except KeyboardInterrupt:
        _out("interrupted", sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
