"""The ``genesys-gateway`` command, run as a user runs it: in a subprocess.

Every run gets an environment without any GENESYSCLOUD_*/GENESYS_GATEWAY_* variable, so the
developer's own credentials can neither leak into nor change a test.
"""

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import threading

import pytest

import genesys_gateway as gg
import genesys_gateway.demo
from genesys_gateway.testing import GatewayEmulator, reply, tool_call
from genesys_gateway.testing.emulator import load_script

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FIXTURES = os.path.join(HERE, "cli_fixtures")
SECRET = "cli-s3cr3t-value"
TIMEOUT = 30


def clean_env(*extra_path, **variables):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GENESYSCLOUD_", "GENESYS_GATEWAY_"))}
    # the subprocess imports the same genesys_gateway as this test process
    env["PYTHONPATH"] = os.pathsep.join([*extra_path, REPO, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(variables)
    return env


def run(*args, env=None, cwd=None, input=None, command=None):
    command = command or [sys.executable, "-m", "genesys_gateway"]
    return subprocess.run(
        [*command, *args], env=env if env is not None else clean_env(), cwd=cwd, input=input,
        capture_output=True, text=True, encoding="utf-8", timeout=TIMEOUT,
    )


def console_script():
    found = shutil.which("genesys-gateway",
                         path=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    if found is None:
        pytest.skip("the genesys-gateway console script is not installed")
    return [found]


def assert_one_line_error(result, *needles):
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def live_env(em, *extra_path, **variables):
    return clean_env(
        *extra_path,
        GENESYS_GATEWAY_BASE_URL=em.url,
        GENESYS_GATEWAY_TOKEN_URL=em.token_url,
        GENESYSCLOUD_OAUTHCLIENT_ID="cli-client",
        GENESYSCLOUD_OAUTHCLIENT_SECRET=SECRET,
        **variables,
    )


# -- demo ----------------------------------------------------------------------------------


def check_demo_transcript(result):
    assert result.returncode == 0, result.stderr
    out = result.stdout
    lines = out.splitlines()
    # arguments and results in one JSON style (the one the model is sent)
    weather = '  tool get_weather({"location":"London","unit":"celsius"})'
    inventory = '  tool check_inventory({"product_id":"SKU-8842","warehouse":"EU-Central"})'
    # printed as the run goes: the first model call, both tools starting, each ending (with
    # what the model is sent), the answer's text, the second model call
    first = lines.index(next(line for line in lines if line.startswith("model call 1: ")))
    assert lines[first].startswith("model call 1: finish reason tool_calls, ")
    assert lines[first].endswith(" tokens (estimated by the emulator)")
    assert lines[first + 1:first + 3] == [weather + " started", inventory + " started"]
    for prefix in (weather + " -> ok in ", inventory + " -> ok in "):
        line = next((line for line in lines if line.startswith(prefix)), None)
        assert line is not None, out
        assert line.endswith(" ms") and line[len(prefix):-3].isdigit(), line  # a duration
        assert lines.index(line) > first + 2 and lines[lines.index(line) + 1].startswith('    {"')
    assert '    {"location":"London","temperature":22,"unit":"celsius","condition":"clear"}' in lines
    streamed = next(i for i, line in enumerate(lines) if line.startswith("assistant: "))
    assert "22°C" in lines[streamed] and "145 units" in lines[streamed]
    assert lines[streamed + 1].startswith("model call 2: finish reason stop, ")
    answer = next(line for line in out.splitlines() if line.startswith("answer: "))
    assert "22°C" in answer and "145 units" in answer, answer
    assert any(line.startswith("usage: ") and line.endswith(
        " tokens (estimated by the emulator); 2 model call(s), stop reason completed") for line in lines), out
    # the wall time beside the tools' own: the two tools (0.1 s and 0.15 s) ran at once
    wall = next(line for line in lines if line.startswith("wall time: "))
    assert " ms; 2 tool call(s) took " in wall and wall.endswith(" ms (in parallel)"), wall
    assert "demo-secret" not in out + result.stderr


def test_demo_runs_on_the_embedded_emulator():
    check_demo_transcript(run("demo"))


def test_demo_through_the_console_script():
    check_demo_transcript(run("demo", command=console_script()))


@pytest.mark.parametrize("variables, names", [
    ({}, ("GENESYSCLOUD_REGION", "GENESYS_GATEWAY_BASE_URL")),
    ({"GENESYSCLOUD_REGION": "mars-1", "GENESYSCLOUD_OAUTHCLIENT_ID": "cli-client",
      "GENESYSCLOUD_OAUTHCLIENT_SECRET": SECRET}, ("GENESYSCLOUD_REGION", "mars-1")),
    ({"GENESYSCLOUD_REGION": "us-east-1", "GENESYSCLOUD_OAUTHCLIENT_ID": "cli-client"},
     ("GENESYSCLOUD_OAUTHCLIENT_SECRET",)),
], ids=["nothing-set", "unknown-region", "no-secret"])
def test_demo_live_misconfigured_reports_one_line(variables, names):
    result = run("demo", "--live", env=clean_env(**variables))
    line = assert_one_line_error(result, "configuration error", *names)
    assert line.startswith("genesys-gateway demo: ")
    assert result.stdout == ""  # it failed before printing a banner
    assert SECRET not in result.stdout + result.stderr


def test_demo_live_against_an_emulator():
    with GatewayEmulator(responder=genesys_gateway.demo.responder) as em:
        result = run("demo", "--live", "--model", "gpt-4o-mini", env=live_env(em))
        token_requests = [r for r in em.requests if r.endpoint == "token"]
        chat_requests = em.chat_requests
    assert result.returncode == 0, result.stderr
    assert f"against a real gateway at {em.chat_url} (from the environment)" in result.stdout
    assert "22°C" in result.stdout and "145 units" in result.stdout
    assert "estimated" not in result.stdout  # the gateway's own counts
    assert len(token_requests) == 1
    expected = "Basic " + base64.b64encode(f"cli-client:{SECRET}".encode()).decode()
    assert token_requests[0].headers["authorization"] == expected
    assert len(chat_requests) == 2 and {r["model"] for r in chat_requests} == {"gpt-4o-mini"}
    assert SECRET not in result.stdout + result.stderr


# -- tools ---------------------------------------------------------------------------------


def definitions_of(result):
    assert result.returncode == 0, result.stderr
    definitions = json.loads(result.stdout)
    assert isinstance(definitions, list)
    for d in definitions:
        assert d["type"] == "function"
        assert set(d["function"]) == {"name", "description", "parameters"}
        assert d["function"]["parameters"]["type"] == "object"
    return {d["function"]["name"]: d["function"] for d in definitions}


def test_tools_module_attribute():
    functions = definitions_of(run("tools", "gg_cli_tools:registry", env=clean_env(FIXTURES)))
    assert list(functions) == ["get_weather", "lookup_sku"]
    weather = functions["get_weather"]
    assert weather["description"] == "Current weather for a city."
    assert weather["parameters"]["required"] == ["location"]
    assert weather["parameters"]["properties"]["unit"]["enum"] == ["celsius", "fahrenheit"]
    assert functions["lookup_sku"]["parameters"]["required"] == ["sku"]


def test_tools_module_name_from_the_working_directory_with_the_console_script():
    # the console script has no script directory on sys.path: the CLI adds the working directory
    result = run("tools", "gg_cli_tools", cwd=FIXTURES, command=console_script())
    assert set(definitions_of(result)) == {"get_weather", "lookup_sku", "add"}
    assert "3 tool(s) valid" in result.stderr


def test_tools_py_file(tmp_path):
    result = run("tools", os.path.join(FIXTURES, "gg_cli_tools.py"), cwd=str(tmp_path))
    functions = definitions_of(result)
    assert set(functions) == {"get_weather", "lookup_sku", "add"}
    assert functions["add"]["parameters"]["properties"] == {"a": {"type": "integer"}, "b": {"type": "integer"}}


@pytest.mark.parametrize("target, needles", [
    ("gg_cli_bad_name", ("invalid tool definition", "'bad name!'", "invalid")),
    ("gg_cli_bad_schema.py", ("invalid tool definition", "'lookup_sku'", "parameters", "'string'")),
    ("gg_cli_import_error", ("RuntimeError", "inventory database unreachable")),
    ("gg_cli_tools:NOT_A_REGISTRY", ("not a ToolRegistry",)),
    ("gg_cli_tools:nothing_here", ("no attribute 'nothing_here'",)),
    ("no_such_tools_module_xyz", ("cannot import", "no_such_tools_module_xyz")),
    ("missing_dir/tools.py", ("no such file", "missing_dir")),
], ids=["bad-name", "bad-schema", "import-error", "not-a-registry", "no-attribute",
        "missing-module", "missing-file"])
def test_tools_errors_are_one_line(target, needles):
    result = run("tools", target, cwd=FIXTURES)
    line = assert_one_line_error(result, *needles)
    assert line.startswith("genesys-gateway tools: error: ")
    assert result.stdout == ""


# -- chat ----------------------------------------------------------------------------------


def test_chat_on_the_embedded_emulator():
    result = run("chat", input="hello\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("chat with http://127.0.0.1:") and lines[1] == "  model: gpt-4o"
    assert "  tools: none (load yours with --tools module:registry)" in lines
    assert any("embedded emulator: a scripted stand-in, not a model" in line for line in lines)
    # no tools: a plain answer saying so, not an echo
    assert "you> hello" in lines
    answer = next(line for line in lines if line.startswith("assistant> "))
    assert "offers no tools" in answer and "hello" not in answer
    assert "Traceback" not in result.stderr


USER_TOOLS = """
import json, pathlib
from genesys_gateway import ToolRegistry

registry = ToolRegistry()


@registry.tool
def track_parcel(tracking_number: str, carrier: str = "dhl") -> dict:
    \"\"\"Where a parcel is now.

    Args:
        tracking_number: The parcel's tracking number.
        carrier: Who carries it.
    \"\"\"
    with open(pathlib.Path(__file__).with_name("calls.jsonl"), "a") as log:
        log.write(json.dumps([tracking_number, carrier]) + "\\n")
    return {"tracking_number": tracking_number, "status": "out for delivery"}
"""


def test_chat_runs_the_users_own_tools_on_the_embedded_emulator(tmp_path):
    (tmp_path / "my_shop_tools.py").write_text(USER_TOOLS, encoding="utf-8")
    result = run("chat", "--tools", "my_shop_tools:registry", cwd=str(tmp_path),
                 input="where is parcel ZX-41-2207?\n/tools\nhello\n/exit\n")
    assert result.returncode == 0, result.stderr
    # the user's tool really ran, with the argument taken from the words
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert calls == [["ZX-41-2207", "dhl"]]
    out = result.stdout
    assert "  tools: track_parcel\n" in out
    line = next(line for line in out.splitlines() if line.startswith("  tool track_parcel("))
    assert line.startswith('  tool track_parcel({"tracking_number":"ZX-41-2207","carrier":"dhl"}) -> ok in ')
    assert line.endswith(' ms: {"tracking_number":"ZX-41-2207","status":"out for delivery"}')
    assert ('assistant> track_parcel returned {"tracking_number":"ZX-41-2207",'
            '"status":"out for delivery"}.\n') in out
    assert "  track_parcel(tracking_number, carrier?): Where a parcel is now.\n" in out  # /tools
    assert "Tools I know: track_parcel (Where a parcel is now)." in out  # "hello" matched nothing
    assert "Traceback" not in result.stderr


def test_chat_with_tools_from_every_registry_of_a_module_on_the_embedded_emulator():
    result = run("chat", "--tools", "gg_cli_tools", "--system", "be brief", cwd=FIXTURES,
                 input="add 2 and 3\nweather in Oslo\n")
    assert result.returncode == 0, result.stderr
    assert "  tools: get_weather, lookup_sku, add\n" in result.stdout
    assert "assistant> add returned 5.\n" in result.stdout
    # the module's converter ran: unit arrived as the Unit enum and went back as its value
    assert 'assistant> get_weather returned {"location":"Oslo","temperature":22,"unit":"celsius"}.' in result.stdout


def test_chat_live_runs_tools_from_every_registry_of_a_module():
    with GatewayEmulator() as em:
        em.script(
            reply(tool_calls=[tool_call("get_weather", {"location": "Oslo", "unit": "fahrenheit"}),
                              tool_call("add", {"a": 2, "b": 3})]),
            reply("Oslo is 72F and 2+3=5"),
        )
        result = run("chat", "--live", "--tools", "gg_cli_tools", cwd=FIXTURES,
                     env=live_env(em), input="weather and sum?\n")  # EOF ends the chat
        requests = em.chat_requests
    assert result.returncode == 0, result.stderr
    assert '  tool get_weather({"location":"Oslo","unit":"fahrenheit"}) -> ok in ' in result.stdout
    assert '  tool add({"a":2,"b":3}) -> ok in ' in result.stdout
    assert " ms: 5\n" in result.stdout
    assert "assistant> Oslo is 72F and 2+3=5" in result.stdout
    assert "embedded emulator" not in result.stdout
    # the model was offered the tools of both registries, and got their results
    assert {t["function"]["name"] for t in requests[0]["tools"]} == {"get_weather", "lookup_sku", "add"}
    tool_results = [m["content"] for m in requests[1]["messages"] if m["role"] == "tool"]
    assert json.loads(tool_results[0]) == {"location": "Oslo", "temperature": 72, "unit": "fahrenheit"}
    assert tool_results[1] == "5"
    assert SECRET not in result.stdout + result.stderr


def test_chat_a_failed_turn_is_one_line_and_the_chat_goes_on():
    with GatewayEmulator() as em:
        # the first turn is answered, and queues a 400 for the second; the third gets an echo
        em.script(lambda body: (em.fail(400), "first answer")[1])
        result = run("chat", "--live", env=live_env(em), input="one\ntwo\nthree\n")
        last = em.chat_requests[-1]["messages"]
    assert result.stderr.startswith("error: BadRequestError: HTTP 400 ") and result.stderr.count("\n") == 1
    assert "assistant> first answer\n" in result.stdout and "assistant> Echo: three\n" in result.stdout
    assert [m["content"] for m in last if m["role"] == "user"] == ["one", "three"]
    assert result.returncode == 1  # piped input: a script whose turn failed
    assert SECRET not in result.stdout + result.stderr


class Terminal:
    """The chat in a pseudo-terminal, as a person runs it: keys in, the screen out."""

    def __init__(self, *args, cwd=None):
        import fcntl  # POSIX-only modules: imported where they are used
        import pty
        import termios

        def controlling_terminal():
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C must reach Python
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.fd, child = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "genesys_gateway", *args], stdin=child, stdout=child, stderr=child,
            env=clean_env(), cwd=cwd, start_new_session=True, preexec_fn=controlling_terminal)
        os.close(child)
        self.screen = self.pending = b""  # what was expected, and what came after it
        self.watchdog = threading.Timer(TIMEOUT, self.proc.kill)  # never hang the suite
        self.watchdog.start()

    def expect(self, text):
        """What the screen shows from the last expected text until ``text`` appears."""
        while text.encode() not in self.pending:
            try:
                data = os.read(self.fd, 4096)
            except OSError:  # the chat ended
                data = b""
            assert data, (self.screen + self.pending).decode(errors="replace")
            self.pending += data
        shown, rest = self.pending.split(text.encode(), 1)
        self.screen += shown + text.encode()
        self.pending = rest
        return shown.decode(errors="replace")

    def type(self, keys):
        os.write(self.fd, keys.encode())

    def close(self):
        self.watchdog.cancel()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        os.close(self.fd)


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX-only")
def test_chat_in_a_terminal_runs_tools_and_ctrl_d_quits():
    # Ctrl-C is tested in process (test_chat.py): in a terminal, readline blocks SIGINT while
    # it redraws the line, so a Ctrl-C sent right after the echo can wait for the next key
    term = Terminal("chat", "--tools", "gg_cli_tools", cwd=FIXTURES)
    try:
        assert "  tools: get_weather, lookup_sku, add" in term.expect("you> ")
        term.type("add 2 and 3\r")
        assert "  tool add(" in term.expect("assistant> add returned 5.")
        term.expect("you> ")
        term.type("\r")  # an empty line does nothing but prompt again
        assert term.expect("you> ").strip() == ""
        term.type("\x04")
        assert term.proc.wait(TIMEOUT) == 0
        assert "Traceback" not in term.screen.decode(errors="replace")
    finally:
        term.close()


class HeldSecondCall:
    """An emulator script: the first model call asks for ``calls``; the second (the answer
    ``text``) is held until the test ``release``s it, so the test can see what the command
    printed while the run was still going."""

    def __init__(self, em, calls, text):
        self.arrived, self.release = threading.Event(), threading.Event()
        em.script(reply(content="Checking. ", tool_calls=calls), self.second)
        self.text = text

    def second(self, body):
        self.arrived.set()
        assert self.release.wait(TIMEOUT)
        return reply(content=self.text)


def read_until(proc, needle, seen):
    """Lines of ``proc``'s stdout until one containing ``needle`` (``seen`` collects them)."""
    while True:
        line = proc.stdout.readline()
        assert line, "".join(seen) + proc.stderr.read()
        seen.append(line)
        if needle in line:
            return line


def streaming_command(em, *args, input=None, cwd=None):
    proc = subprocess.Popen(
        [sys.executable, "-m", "genesys_gateway", *args], env=live_env(em, FIXTURES), cwd=cwd,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        encoding="utf-8")
    if input is not None:
        proc.stdin.write(input)
        proc.stdin.flush()
    proc.stdin.close()
    return proc


def test_demo_prints_the_run_as_it_happens():
    with GatewayEmulator() as em:
        held = HeldSecondCall(em, [
            tool_call("get_weather", {"location": "London", "unit": "celsius"}),
            tool_call("check_inventory", {"product_id": "SKU-8842", "warehouse": "EU-Central"}),
        ], "London: 22°C; SKU-8842: 145 units.")
        proc = streaming_command(em, "demo", "--live")
        watchdog = threading.Timer(TIMEOUT, proc.kill)
        watchdog.start()
        try:
            seen = []
            read_until(proc, "tool get_weather(", seen)  # a tool started...
            read_until(proc, "-> ok in", seen)  # ...and ended, with the model still to answer
            assert held.arrived.wait(TIMEOUT)
            assert any(line.startswith("assistant: Checking.") for line in seen), seen
            assert not any(line.startswith("answer: ") for line in seen)
            held.release.set()
            rest = proc.stdout.read()
            assert proc.wait(TIMEOUT) == 0, proc.stderr.read()
        finally:
            held.release.set()
            watchdog.cancel()
    assert "assistant: London: 22°C; SKU-8842: 145 units.\n" in rest
    assert "\nanswer: London: 22°C; SKU-8842: 145 units.\n" in rest
    assert "usage: " in rest and "2 model call(s), stop reason completed" in rest


def test_chat_prints_tools_as_they_start_and_end_before_the_answer():
    with GatewayEmulator() as em:
        held = HeldSecondCall(em, [tool_call("add", {"a": 2, "b": 3})], "2+3=5")
        proc = streaming_command(em, "chat", "--live", "--tools", "gg_cli_tools", cwd=FIXTURES,
                                 input="sum?\n")
        watchdog = threading.Timer(TIMEOUT, proc.kill)
        watchdog.start()
        try:
            seen = []
            assert "assistant> Checking." in read_until(proc, "assistant> ", seen)
            line = read_until(proc, "  tool add(", seen)
            assert line.startswith('  tool add({"a":2,"b":3}) -> ok in ') and line.endswith(" ms: 5\n")
            assert held.arrived.wait(TIMEOUT)  # the answer is not there yet
            held.release.set()
            rest = proc.stdout.read()
            assert proc.wait(TIMEOUT) == 0, proc.stderr.read()
        finally:
            held.release.set()
            watchdog.cancel()
    assert "assistant> 2+3=5\n" in rest


def test_chat_reports_a_run_that_did_not_complete():
    with GatewayEmulator() as em:
        em.script(reply(content="cut sho", finish_reason="length"))
        result = run("chat", "--live", env=live_env(em), input="long story\n")
    assert result.returncode == 0, result.stderr
    assert "assistant> cut sho\nassistant> (the run stopped: length)\n" in result.stdout


# -- emulator ------------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery is POSIX-only here")
def test_emulator_serves_a_script_until_interrupted():
    proc = subprocess.Popen(
        [sys.executable, "-m", "genesys_gateway", "emulator", "--port", "0",
         "--script", os.path.join(FIXTURES, "script.json")],
        env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
        # Python turns SIGINT into KeyboardInterrupt only if SIGINT is not ignored at startup
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    watchdog = threading.Timer(TIMEOUT, proc.kill)  # never hang the suite on a stuck child
    watchdog.start()
    try:
        first = proc.stdout.readline()
        assert first.startswith("GatewayEmulator serving at http://127.0.0.1:"), first + proc.stderr.read()
        url = first.split()[-1]
        auth = gg.ClientCredentials("a", "b", token_url=url + "/oauth/token")
        with gg.GatewayClient(base_url=url, auth=auth) as client:
            response = client.complete([{"role": "user", "content": "hi"}])
            after = client.complete([{"role": "user", "content": "hi"}])
        assert response.message.content == "Scripted reply from the emulator script"
        assert "rule-based responder" in after.message.content  # the script used up: --responder rules
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        rest = proc.stdout.read()
        assert "stopped" in rest
        assert "Traceback" not in proc.stderr.read()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_emulator_bad_script_files(tmp_path):
    not_json = tmp_path / "not_json.json"
    not_json.write_text("{not json", encoding="utf-8")
    not_a_list = tmp_path / "object.json"
    not_a_list.write_text('{"content": "hi"}', encoding="utf-8")
    bad_call = tmp_path / "bad_call.json"
    bad_call.write_text('[{"tool_calls": ["get_weather"]}]', encoding="utf-8")
    cases = [
        (str(not_json), "not_json.json"),
        (str(not_a_list), "JSON list"),
        (os.path.join(FIXTURES, "bad_script.json"), "script item 1"),
        (str(bad_call), "script item 0: a tool call must be a mapping"),
        (str(tmp_path / "missing.json"), "missing.json"),
    ]
    for path, needle in cases:
        result = run("emulator", "--port", "0", "--script", path)
        line = assert_one_line_error(result, "genesys-gateway emulator: error: cannot read script", needle)
        assert "serving" not in result.stdout, line



@pytest.mark.parametrize("item, needle", [
    ({"contents": "hi"}, "unknown key 'contents'; a reply's keys are content, tool_calls"),
    ({"usage": "many"}, "'usage' must be an object of token counts"),
    ({"usage": {"prompt_tokens": "ten"}}, "'usage' must be an object of token counts"),
    ({"content": 5}, "'content' must be a string or null, got int"),
    ({"finish_reason": 3}, "'finish_reason' must be a string, got int"),
    ({"tool_calls": "get_weather"}, "'tool_calls' must be a list, got str"),
    ({"tool_calls": [{"name": "f", "arguments": [1, 2]}]}, "'arguments' must be an object"),
    ({"choices": 1}, "'choices' must be a list"),
], ids=["typo-key", "usage-string", "usage-not-counts", "content-int", "finish-int", "calls-string",
        "arguments-list", "choices-int"])
def test_a_malformed_script_reply_says_what_is_wrong(item, needle):
    # a newcomer's typo was served silently (an empty message) or failed with Python's own
    # words ("dictionary update sequence element #0 has length 1; 2 is required")
    with pytest.raises(ValueError) as info:
        load_script(["fine", item])
    assert str(info.value).startswith("script item 1: ") and needle in str(info.value)


def test_the_emulator_command_names_an_unknown_script_key(tmp_path):
    script = tmp_path / "typo.json"
    script.write_text('[{"tool_call": [{"name": "get_weather"}]}]', encoding="utf-8")
    result = run("emulator", "--port", "0", "--script", str(script))
    assert_one_line_error(result, "cannot read script", "script item 0: unknown key 'tool_call'")
    assert "serving" not in result.stdout


# -- help ----------------------------------------------------------------------------------


@pytest.mark.parametrize("args, needle", [
    ([], "demo"),
    (["demo"], "--live"),
    (["chat"], "--tools"),
    (["tools"], "TARGET"),
    (["emulator"], "--script"),
])
def test_help(args, needle):
    result = run(*args, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: genesys-gateway")
    assert needle in result.stdout


def test_version():
    result = run("--version")
    assert result.returncode == 0 and result.stdout == f"genesys-gateway {gg.__version__}\n"


def test_emulator_help_shows_defaults_and_the_script_format():
    out = run("emulator", "--help").stdout
    assert "(default: 127.0.0.1)" in out and "(default: 8080)" in out and "(default: rules)" in out
    assert "script file (--script FILE):" in out and '{"replies": [...]}' in out
    assert '"tool_calls": [{"name": "get_weather", "arguments": {"location": "London"}}]' in out
    # the example in the help is a script the emulator loads
    example = out.split("Example: a tool call, then an answer from its result:")[1]
    assert len(load_script(json.loads(example))) == 2


def test_tools_piped_into_head_stops_quietly(tmp_path):
    # more definitions than a pipe holds, so the CLI is still writing when head exits
    many = "\n".join(f"registry.register('tool_{i}', 'Tool number {i}. ' + 'x' * 200, "
                     f"{{'type': 'object', 'properties': {{}}}}, lambda: {i})" for i in range(400))
    (tmp_path / "many.py").write_text("from genesys_gateway import ToolRegistry\n"
                                      "registry = ToolRegistry()\n" + many + "\n", encoding="utf-8")
    cli = subprocess.Popen([sys.executable, "-m", "genesys_gateway", "tools", str(tmp_path / "many.py")],
                           env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.Popen(["head", "-1"], stdin=cli.stdout, stdout=subprocess.PIPE)
    cli.stdout.close()  # head alone reads the pipe: when it exits, the CLI's writes fail
    first, _ = head.communicate(timeout=TIMEOUT)
    stderr = cli.communicate(timeout=TIMEOUT)[1].decode()
    assert first == b"[\n"
    assert cli.returncode == 1
    assert stderr == "", stderr  # no "Broken pipe", no traceback, no "Exception ignored"


def test_no_subcommand_is_a_usage_error():
    result = run()
    assert result.returncode == 2
    assert "usage: genesys-gateway" in result.stderr
    assert "Traceback" not in result.stderr


def test_tools_from_a_file_that_exits_is_reported_not_silent():
    result = run("tools", os.path.join(FIXTURES, "gg_cli_exits.py"))
    assert_one_line_error(result, "gg_cli_exits.py", "sys.exit(3)")
    assert result.returncode == 1  # the CLI's own error status, not the script's 3


def test_tools_from_a_module_that_exits_is_reported_not_silent():
    result = run("tools", "gg_cli_exits:registry", env=clean_env(FIXTURES))
    assert_one_line_error(result, "gg_cli_exits", "sys.exit(3)")


@pytest.mark.parametrize("command", ["demo", "chat"])
def test_an_empty_model_name_is_refused(command):
    result = run(command, "--model", " ")
    assert result.returncode == 2 and "--model" in result.stderr and "must not be empty" in result.stderr
