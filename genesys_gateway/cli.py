"""The ``genesys-gateway`` command (also ``python -m genesys_gateway``).

Subcommands: ``demo``, ``chat``, ``tools``, ``emulator``; ``--version``. This module parses
arguments, loads tools and makes the client; the chat session is :mod:`.chat`, the demo
:mod:`.demo`, and both print runs with :mod:`.console`. Errors print one line and exit
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


def cmd_demo(args: argparse.Namespace) -> int:
    from . import demo

    registry = demo.build_registry()
    # the client first: a live demo without configuration fails before printing anything
    with _client(args.live, registry, demo.responder, args.model) as client:
        return demo.run_demo(client, sys.stdout, emulated=not args.live)


def _tools_of(target: str | None) -> ToolRegistry | None:
    """The chat's tools: every registry ``target`` names, as one registry."""
    if not target:
        return None
    registries = load_registries(target)
    if len(registries) == 1:
        return registries[0]
    registry = ToolRegistry()
    for r in registries:
        for tool in r:
            registry.add(tool)  # keeps each tool as built (argument converter included)
    return registry


def cmd_chat(args: argparse.Namespace) -> int:
    from .chat import ChatSession, terminal_input
    from .testing.emulator import rule_based_responder

    interactive = sys.stdin.isatty()
    registry = _tools_of(args.tools)
    with _client(args.live, registry, rule_based_responder, args.model) as client:
        session = ChatSession(client, sys.stdout, terminal_input if interactive else input,
                              system=args.system, err=sys.stderr,
                              echo_input=not interactive, emulated=not args.live)
        session.banner()
        status = session.run()
    # piped input is a script: it failed if a turn did (a person at a terminal saw each line)
    return EXIT_ERROR if session.failed_turns and not interactive else status


# -- emulator --------------------------------------------------------------------------


SCRIPT_FORMAT = """\
script file (--script FILE):
  A JSON list of replies, sent one per chat request in order (or {"replies": [...]});
  once it is used up, the --responder answers. A reply is one of:
    "text"                       the assistant answers with this text
    {"content": "text" or null,  an assistant message; every key is optional
     "tool_calls": [{"name": "get_weather", "arguments": {"location": "London"}}],
     "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
     "finish_reason": "stop"}    (default: "tool_calls" with tool calls, else "stop")
    {"choices": [...], ...}      a whole chat completion, sent as is
  Example: a tool call, then an answer from its result:
    [{"tool_calls": [{"name": "get_weather", "arguments": {"location": "London"}}]},
     "It is 22 degrees and clear in London."]
"""


def cmd_emulator(args: argparse.Namespace) -> int:
    from .testing import GatewayEmulator

    kwargs: dict[str, Any] = dict(host=args.host, port=args.port)
    if args.client_id:
        kwargs["client_id"] = args.client_id
    secret = os.environ.get("GENESYS_GATEWAY_EMULATOR_SECRET")
    if secret:
        kwargs["client_secret"] = secret
    if args.responder == "rules":
        from .testing.emulator import rule_based_responder

        kwargs["responder"] = rule_based_responder
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
            if args.script:
                _out(f"  replies: {emulator.pending_replies} from {args.script}, then the {args.responder} responder")
            else:
                _out(f"  replies: the {args.responder} responder")
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
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="genesys-gateway",
        description="Tool-calling with the Genesys Cloud AI Builder LLM Gateway.",
    )
    parser.add_argument("--version", action="version", version=f"genesys-gateway {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("demo", help="run the weather + inventory scenario end to end",
                       description="Run the tutorial's weather + inventory scenario on the embedded "
                                   "emulator (no credentials), or on a real gateway with --live.")
    p.add_argument("--live", action="store_true", help="use a real gateway configured by GENESYSCLOUD_* variables")
    p.add_argument("--model", type=_non_empty, help="model name (default gpt-4o)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("chat", help="chat interactively",
                       description="An interactive chat with optional tools. Without --live it talks to "
                                   "the embedded emulator, a rule-based stand-in that calls the tools "
                                   "your words name. Commands: /help, /tools, /history, /reset, /exit; "
                                   "Ctrl-C clears the line, twice (or Ctrl-D) ends the chat.")
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
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Serve the GatewayEmulator until interrupted. Set\n"
                                   "GENESYS_GATEWAY_EMULATOR_SECRET to require a client secret.",
                       epilog=SCRIPT_FORMAT)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on; 0 picks a free one (default: %(default)s)")
    p.add_argument("--client-id", help="require this client id (default: accept any)")
    p.add_argument("--script", metavar="FILE", help="JSON file of replies to send first, in order (format below)")
    p.add_argument("--responder", choices=("rules", "echo"), default="rules",
                   help="how to answer once the script is used up: 'rules' calls the tools a "
                        "message names, 'echo' repeats the last user message (default: %(default)s)")
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
    except BrokenPipeError:
        # the reader left (`... | head`): stop quietly. Python flushes stdout at exit, so
        # point it at devnull first (the Python docs' recipe for SIGPIPE)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError as e:
        _out(f"genesys-gateway {args.command}: error: {e}", sys.stderr)
    except KeyboardInterrupt:
        _out("interrupted", sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
