"""Who is measured: this SDK, the baselines and the peers, how each is started, and which
peers can run here (installed in this interpreter, or in a venv made on request)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass, field, replace
from typing import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class Contestant:
    key: str
    label: str
    driver: str  # the module benchmarks.worker imports
    kind: str  # "sdk" | "baseline" | "peer"
    imports: str  # the statement the import row times in a fresh process
    parallel_tools: str
    validates_args: str
    idiom: str = ""  # how it is driven, for the notes under the table
    needs: tuple[str, ...] = ()  # top-level modules that must be importable
    pip: tuple[str, ...] = ()  # what a venv for it installs
    thread_calls: int | None = None  # calls per thread in the throughput test, if not the plan's
    no_stream: str = ""  # why it has no streaming figure (its "stream" cell says so), if it has none
    not_measured: dict[str, str] = field(default_factory=dict)  # other measures it has no figure for, and why
    alt_threads: str = ""  # a second threads idiom its driver has (thread_caller_alt), measured for a footnote
    env: dict[str, str] = field(default_factory=dict)
    python: str = sys.executable

    @property
    def is_peer(self) -> bool:
        return self.kind == "peer"

    def na(self, measure: str) -> str:
        """Why this contestant has no figure for *measure* ("" if it has one)."""
        if measure == "stream" and self.no_stream:
            return self.no_stream
        return self.not_measured.get(measure, "")


SDK = Contestant(
    "sdk", "genesys_gateway", "benchmarks.this_sdk", "sdk",
    # what a user's first lines touch: lazy names only help by not loading what they skip
    "import genesys_gateway as gg; gg.GatewayClient; gg.ToolRegistry",
    parallel_tools="yes (thread pool)", validates_args="yes (fastjsonschema)")
FLOOR = Contestant(
    "floor", "http.client floor", "benchmarks.baselines.floor", "baseline", "pass",
    parallel_tools="sleeping tools: a thread each", validates_args="no")
#: informational: the same request bytes over a plain socket (no target is set against it)
SOCKET = Contestant(
    "socket", "raw socket", "benchmarks.baselines.raw_socket", "baseline", "pass",
    parallel_tools="sleeping tools: a thread each", validates_args="no",
    no_stream="no SSE reader written",
    not_measured={m: "same as the http.client floor's" for m in ("import", "rss", "memory")})
TUTORIAL = Contestant(
    "tutorial", "tutorial loop", "benchmarks.baselines.tutorial", "baseline",
    "import benchmarks.baselines.tutorial",
    parallel_tools="no (one after another)", validates_args="yes (jsonschema.validate)",
    needs=("jsonschema",), thread_calls=4, no_stream="does not stream")
PEERS = (
    Contestant("openai", "openai (manual loop)", "benchmarks.peers.openai_loop", "peer", "import openai",
               parallel_tools="no (one after another)", validates_args="no",
               idiom="OpenAI(...).chat.completions.create; the function-calling guide's loop; "
                     "create(..., stream=True) for streaming",
               needs=("openai",), pip=("openai",)),
    Contestant("pydantic-ai", "pydantic-ai", "benchmarks.peers.pydantic_ai_agent", "peer",
               "from pydantic_ai import Agent; from pydantic_ai.models.openai import OpenAIChatModel; "
               "from pydantic_ai.providers.openai import OpenAIProvider",
               parallel_tools="yes (asyncio + threads)", validates_args="yes (pydantic)",
               idiom="Agent(OpenAIChatModel(...), tools=[...]).run_sync(prompt), a plain turn too; "
                     "run_stream_sync(prompt).stream_text(delta=True, debounce_by=None) for streaming",
               needs=("pydantic_ai", "openai"), pip=("pydantic-ai-slim[openai]",),
               alt_threads="one Agent (and its OpenAI client) per thread"),
    Contestant("litellm", "litellm (manual loop)", "benchmarks.peers.litellm_loop", "peer", "import litellm",
               parallel_tools="no (one after another)", validates_args="no",
               idiom="litellm.completion(model='openai/...', api_base=...); its docs' loop; "
                     "completion(..., stream=True) for streaming",
               needs=("litellm",), pip=("litellm",), env={"LITELLM_LOCAL_MODEL_COST_MAP": "True"}),
    Contestant("langgraph", "langgraph", "benchmarks.peers.langgraph_agent", "peer",
               "from langgraph.prebuilt import create_react_agent; from langchain_openai import ChatOpenAI",
               parallel_tools="yes (thread pool)", validates_args="yes (pydantic)",
               idiom="ChatOpenAI(...).invoke for a plain turn; create_react_agent(model, tools).invoke; "
                     "ChatOpenAI(...).stream for streaming",
               needs=("langgraph", "langchain_openai"), pip=("langgraph", "langchain-openai")),
)
ALL = (SDK, FLOOR, SOCKET, TUTORIAL) + PEERS
PEER_KEYS = tuple(p.key for p in PEERS)


def child_env(contestant: Contestant, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a contestant's processes: the repository first on the path (for
    ``benchmarks`` and this checkout's ``genesys_gateway``) and what the contestant needs set."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(contestant.env)
    env.update(extra or {})
    return env


def missing_modules(contestant: Contestant, python: str = sys.executable) -> list[str]:
    """The modules of ``contestant.needs`` that *python* cannot import (not imported here:
    finding a spec costs nothing, importing litellm costs seconds)."""
    if python == sys.executable:
        return [m for m in contestant.needs if importlib.util.find_spec(m) is None]
    code = ("import importlib.util, sys; "
            f"print(' '.join(m for m in {list(contestant.needs)!r} if importlib.util.find_spec(m) is None))")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    return out.stdout.split() if out.returncode == 0 else list(contestant.needs)


def venv_python(directory: str, key: str) -> str:
    return os.path.join(directory, key, "Scripts" if os.name == "nt" else "bin", "python")


def make_venv(directory: str, contestant: Contestant, log: Callable[[str], None]) -> str:
    """A venv for *contestant* under *directory* (made, and its packages installed from the
    package index, unless it exists already); returns its interpreter."""
    python = venv_python(directory, contestant.key)
    if os.path.exists(python) and not missing_modules(contestant, python):
        return python
    log(f"creating a venv for {contestant.label} in {os.path.dirname(os.path.dirname(python))} "
        f"(pip install {' '.join(contestant.pip)})")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", os.path.dirname(os.path.dirname(python))], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", *contestant.pip], check=True,
                   stdout=sys.stderr)
    return python


def select(peers: bool, venv_dir: str | None, log: Callable[[str], None]) -> tuple[list[Contestant], dict[str, str]]:
    """The contestants to run, and ``{key: why it is skipped}`` for the others."""
    chosen: list[Contestant] = [SDK, FLOOR, SOCKET]
    skipped: dict[str, str] = {}
    missing = missing_modules(TUTORIAL)
    if missing:
        skipped[TUTORIAL.key] = f"not installed: {', '.join(missing)} (pip install -e '.[test]')"
    else:
        chosen.append(TUTORIAL)
    for peer in PEERS:
        if not peers:
            skipped[peer.key] = "not run (add --peers)"
            continue
        if venv_dir:
            try:
                chosen.append(replace(peer, python=make_venv(venv_dir, peer, log)))
            except (OSError, subprocess.CalledProcessError) as exc:
                skipped[peer.key] = f"its venv could not be made: {exc}"
            continue
        missing = missing_modules(peer)
        if missing:
            skipped[peer.key] = (f"not installed: {', '.join(missing)} "
                                 f"(pip install -e '.[bench]', or --peer-venvs DIR)")
        else:
            chosen.append(peer)
    return chosen, skipped
