"""Every Python snippet of the README and of the documentation's guide pages runs as pasted.

Each fenced ``python`` block of ``README.md`` and ``docs/*.md`` is written to a file in a
fresh directory and run in its own interpreter (``PYTHONPATH`` = this checkout, no
``GENESYSCLOUD_*``/``GENESYS_GATEWAY_*`` variables: a fresh machine), and must exit 0 within
a timeout. Conventions, in the Markdown just above a block's fence:

* ``<!-- not-run: reason -->``: the block is not run (a settings fragment...). The test
  counts these, so nothing is dropped silently, and keeps the list short.
* ``<!-- run-as: pytest -->``: the block is a test module: it is written as
  ``test_snippet.py`` and run with ``python -m pytest``, and every test in it must pass.

Inside a block, ``# prints: TEXT`` comments state its output: each must match one line of
what the block printed, in order (``…`` in TEXT stands for any text). A block that reads
``REDIS_URL`` is given a real ``redis-server`` (skipped without one, failing under ``CI``).

The examples under ``examples/`` are compiled here; the streaming app is driven through
Flask's test client, and the Django example runs its own tests in ``test_examples.py``.
"""

from __future__ import annotations

import os
import pathlib
import py_compile
import re
import subprocess
import sys
from dataclasses import dataclass

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
TIMEOUT = 120  # a generous bound for one block on a busy 2-CPU machine
MAX_NOT_RUN = 4  # keep the list of blocks that are not run tiny

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\s]*)")
MARKER = re.compile(r"^\s*<!--\s*(?P<kind>not-run|run-as)\s*:\s*(?P<value>.*?)\s*-->\s*$")
PRINTS = re.compile(r"#\s*prints:\s?(?P<text>.*?)\s*$")


@dataclass(frozen=True)
class Block:
    path: pathlib.Path
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    not_run: str | None = None  # the reason, when marked not-run
    run_as: str = "script"

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def fenced_blocks(path: pathlib.Path) -> list[Block]:
    """Every fenced block of a Markdown file, with the marker just above it, if any."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        if j == len(lines):
            raise AssertionError(f"{path.name}:{i + 1}: a fence that is never closed")
        previous = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        marker = MARKER.match(previous)
        options: dict[str, str] = {}
        if marker is not None:
            options = {"not_run" if marker["kind"] == "not-run" else "run_as": marker["value"]}
        blocks.append(Block(path, i + 1, opening["info"].lower(), "\n".join(body) + "\n", **options))
        i = j + 1
    return blocks


def python_blocks() -> list[Block]:
    return [b for path in [README, *PAGES] for b in fenced_blocks(path) if b.language in ("python", "py")]


BLOCKS = python_blocks()
RUN = [b for b in BLOCKS if b.not_run is None]
NOT_RUN = [b for b in BLOCKS if b.not_run is not None]


def fresh_env(**extra: str) -> dict[str, str]:
    """The environment of a fresh machine with this checkout importable."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("GENESYSCLOUD_", "GENESYS_GATEWAY_", "FLASK_GENESYS_GATEWAY_",
                                  "DJANGO_", "REDIS_URL", "PYTEST_"))}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def expected_lines(code: str) -> list[str]:
    return [m["text"] for line in code.splitlines() if (m := PRINTS.search(line))]


def check_printed(expected: list[str], stdout: str) -> None:
    """Each expected line matches a later line of ``stdout`` than the one before."""
    printed = [line.rstrip() for line in stdout.splitlines()]
    position = 0
    for text in expected:
        pattern = re.compile(".*".join(re.escape(part) for part in text.split("…")) + r"\Z")
        for index in range(position, len(printed)):
            if pattern.match(printed[index]):
                position = index + 1
                break
        else:
            raise AssertionError(f"no line printed matches {text!r} (after line {position}) in:\n{stdout}")


def run_block(block: Block, cwd: pathlib.Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if block.run_as == "pytest":
        (cwd / "test_snippet.py").write_text(block.code, encoding="utf-8")
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                   "test_snippet.py"]
    else:
        (cwd / "snippet.py").write_text(block.code, encoding="utf-8")
        command = [sys.executable, "snippet.py"]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("block", RUN, ids=lambda b: b.id)
def test_snippet_runs_as_pasted(block, tmp_path, request):
    extra = {}
    if "REDIS_URL" in block.code:
        server = request.getfixturevalue("redis_server")
        redis_client = server.client()
        redis_client.flushdb()  # the token store starts empty: the token counts printed hold
        redis_client.close()
        extra["REDIS_URL"] = server.url
    done = run_block(block, tmp_path, fresh_env(**extra))
    output = f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert done.returncode == 0, f"{block.id} exited {done.returncode}\n{output}"
    if block.run_as == "pytest":
        assert re.search(r"\b\d+ passed\b", done.stdout) and " failed" not in done.stdout, output
        assert " skipped" not in done.stdout, output
    else:
        check_printed(expected_lines(block.code), done.stdout)


def test_every_block_is_run_or_marked_with_a_reason():
    fences = sum(1 for path in [README, *PAGES]
                 for line in path.read_text(encoding="utf-8").splitlines()
                 if re.match(r"^\s*(`{3,}|~{3,})\s*(python|py)\s*$", line, re.IGNORECASE))
    assert fences == len(BLOCKS) == len(RUN) + len(NOT_RUN)
    assert len(RUN) >= 15
    assert all(b.not_run for b in NOT_RUN), [b.id for b in NOT_RUN if not b.not_run]
    assert len(NOT_RUN) <= MAX_NOT_RUN, [(b.id, b.not_run) for b in NOT_RUN]
    assert {b.run_as for b in RUN} <= {"script", "pytest"}
    markers = sum(len(re.findall(r"<!--\s*(not-run|run-as)\s*:", path.read_text(encoding="utf-8")))
                  for path in [README, *PAGES])
    assert markers == len(NOT_RUN) + sum(b.run_as == "pytest" for b in RUN), "a marker not above a block"


def test_the_output_checker_fails_on_output_that_differs():
    check_printed(["completed It is …", "ok"], "x\ncompleted It is 22 °C\nok\n")
    with pytest.raises(AssertionError):
        check_printed(["ok", "completed …"], "completed It is 22\nok\n")
    with pytest.raises(AssertionError):
        check_printed(["completed"], "completed!\n")


def test_a_marker_applies_to_the_block_right_below_it(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- not-run: a fragment -->\n\n```python\nx = 1\n```\n\ntext\n\n```python\n"
                    "import sys  # prints: 1\n```\n\n<!-- run-as: pytest -->\n```py\ndef test_x(): pass\n```\n")
    first, second, third = fenced_blocks(page)
    assert (first.not_run, second.not_run, third.run_as) == ("a fragment", None, "pytest")
    assert expected_lines(second.code) == ["1"]


def test_the_readme_starts_with_install_demo_and_tests():
    first_shell = next(b for b in fenced_blocks(README) if b.language in ("bash", "sh", "console"))
    assert first_shell.code.split("\n")[:3] == ["pip install -e '.[test]'", "genesys-gateway demo",
                                                "python -m pytest"]
    # the demo the README promises runs here without credentials or network
    done = subprocess.run([sys.executable, "-m", "genesys_gateway", "demo"], cwd=ROOT, env=fresh_env(),
                          capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "stop reason completed" in done.stdout and "145 units" in done.stdout


def test_the_readmes_chat_runs_the_readmes_own_tools(tmp_path):
    """"Chat with your own tools" as a reader follows it: the README's shop_tools.py, the
    `tools` check, then `chat --tools shop_tools:registry` on the embedded emulator."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Chat with your own tools"):]
    module = next(b for b in fenced_blocks(README) if b.language == "python"
                  and b.code in section and "def track_parcel" in b.code)
    (tmp_path / "shop_tools.py").write_text(module.code, encoding="utf-8")
    command = [sys.executable, "-m", "genesys_gateway"]
    assert "genesys-gateway tools shop_tools:registry" in section
    checked = subprocess.run([*command, "tools", "shop_tools:registry"], cwd=tmp_path,
                             env=fresh_env(PYTHONPATH=f"{ROOT}{os.pathsep}{tmp_path}"),
                             capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert checked.returncode == 0 and "track_parcel" in checked.stdout, checked.stdout + checked.stderr
    assert "genesys-gateway chat --tools shop_tools:registry" in section
    chat = subprocess.run([*command, "chat", "--tools", "shop_tools:registry"], cwd=tmp_path,
                          env=fresh_env(PYTHONPATH=f"{ROOT}{os.pathsep}{tmp_path}"),
                          input="where is parcel ZX-41-2207 with ups?\n\nrefund order A-1009 by 12.50\n/exit\n",
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert chat.returncode == 0, chat.stdout + chat.stderr
    # the README's session, line for line where it does not vary
    assert 'tool track_parcel({"tracking_number":"ZX-41-2207","carrier":"ups"}) -> ok' in chat.stdout
    assert "assistant> refund_order returned refunded 12.50 EUR on A-1009." in chat.stdout
    assert "tools: track_parcel, refund_order" in chat.stdout


def test_the_readme_links_to_the_docs_and_says_how_to_build_them():
    text = README.read_text(encoding="utf-8")
    assert "pip install -e '.[docs]'" in text and "mkdocs build --strict" in text and "mkdocs serve" in text


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_at_files_that_exist(path):
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", text)
               if not re.match(r"[a-z][a-z0-9+.-]*:|#", t)]
    base = path.parent
    # the docs helper copies the benchmark chart into docs/assets/ when it builds the site
    missing = [t for t in targets if t and not (base / t).exists()
               and not (path in PAGES and t.startswith("assets/") and (ROOT / "benchmarks" / "results" / pathlib.Path(t).name).exists())]
    assert missing == []


EXAMPLES = sorted((ROOT / "examples").rglob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_example_compiles(path, tmp_path):
    py_compile.compile(str(path), cfile=str(tmp_path / "out.pyc"), doraise=True)


STREAMING_APP_CHECK = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("streaming_app", sys.argv[1])
app_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app_module)
with app_module.emulated_client() as client:
    http = app_module.create_app(client).test_client()
    assert http.get("/").status_code == 200
    body = http.get("/stream", query_string={"prompt": "Weather in Lisbon?"}).get_data(as_text=True)
    print(body)
"""


def test_the_streaming_example_serves_its_page_and_a_run(tmp_path):
    pytest.importorskip("flask")
    app = ROOT / "examples" / "streaming" / "app.py"
    done = subprocess.run([sys.executable, "-c", STREAMING_APP_CHECK, str(app)], cwd=tmp_path,
                          env=fresh_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "event: tool_call_finished" in done.stdout and "Lisbon it is 18°C" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1].startswith("data: ")
    assert "event: run_finished" in done.stdout and '"stop_reason":"completed"' in done.stdout


def test_every_object_the_pages_name_by_its_import_path_is_in_the_api_reference():
    # the README sent a newcomer to genesys_gateway.testing.emulator.rule_based_responder and
    # genesys_gateway.params.MODEL_PARAMETERS, and the API reference had neither
    import importlib

    documented = {line.split()[1].rsplit(".", 1)[-1]
                  for page in (ROOT / "docs" / "reference").glob("*.md")
                  for line in page.read_text(encoding="utf-8").splitlines() if line.startswith("::: ")}
    named = {name for page in [README, *PAGES]
             for name in re.findall(r"`(genesys_gateway(?:\.\w+)+)`", page.read_text(encoding="utf-8"))}
    missing = []
    for name in sorted(named):
        module_name, _, attribute = name.rpartition(".")
        try:
            value = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError):
            continue  # a module, a logger's name ("genesys_gateway.audit"), a placeholder
        if not isinstance(value, type(importlib)) and attribute not in documented:
            missing.append(name)
    assert len(named) >= 3 and not missing, missing
