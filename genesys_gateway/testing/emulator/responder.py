"""A rule-based stand-in for a model: :func:`rule_based_responder`.

It is not a model and does not pretend to be one. Given a chat request, it:

- calls the offered tools whose name parts (split on ``_``, ``-`` and case) or description
  words appear in the latest user message, several at once as parallel tool calls when
  each is named by words of its own (not only words the best match shares), with
  arguments built from each tool's JSON schema (:func:`build_arguments`);
- once the tool results are back, answers with a short summary quoting them;
- when no tool matches, answers plainly and names the tools it was offered.

It is deterministic (the same request gets the same reply, tool-call ids aside) and never
raises on odd schemas (``anyOf``, ``$ref``, no properties): arguments it cannot build are
``{}``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, Mapping

from .replies import reply, tool_call
from .text_values import TextValues, words_of

__all__ = ["build_arguments", "rule_based_responder"]

_MAX_CALLS = 4
_QUOTE_CHARS = 160


def rule_based_responder(request: dict[str, Any]) -> dict[str, Any]:
    """Play a model by rules (a :data:`~genesys_gateway.testing.emulator.Responder`).

    New user message: call the matching tools (or answer plainly when none matches).
    Tool results after the last user message: answer from them.
    """
    messages = [m for m in request.get("messages") or () if isinstance(m, dict)]
    results = _latest_tool_results(messages)
    if results:
        return reply(content=" ".join(f"{name} returned {_quote(content)}." for name, content in results))
    tools = _offered_tools(request.get("tools"))
    users = [_text_of(m.get("content")) for m in messages if m.get("role") == "user"]
    text = users[-1] if users else ""
    choice = request.get("tool_choice")
    if not tools or choice == "none":
        return reply(content=_no_tools_answer())
    chosen = _choose(tools, text, choice)
    if not chosen and len(users) > 1 and TextValues(text).has_values():
        chosen = _choose(tools, users[-2], None)  # "and in Paris?" follows up the last question
    if not chosen:
        return reply(content=_unmatched_answer(tools))
    return reply(tool_calls=[
        tool_call(name, build_arguments(schema, text, exclude=_name_parts(name) | set(words_of(description))))
        for name, description, schema in chosen])


def build_arguments(schema: object, text: str, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """Arguments for a tool's JSON ``schema`` taken from ``text``.

    Required properties always get a value, optional ones only when they have a default,
    the text names one of their enum values or states a number next to their name: an
    enum value mentioned in the text (else the default, else the first); a number next to
    the property's name ("for 2 passengers"), else the default; numbers found in the text
    for ``number``/``integer``; quoted strings, capitalised words or the word after
    "in/for/of/at" for strings (the words next to the property's name first, "from X" for
    an origin and "to X" for a destination; free text such as a ``query`` or ``title``:
    a quoted string, else the text after a colon, else the whole message); ``false``;
    ``[]`` (one item when the items are objects the text offers values for); objects
    recursively. ``{}`` when the schema is not an object schema this can read. Words in
    ``exclude`` (the tool's own name and description) are never taken as string values.
    """
    if not isinstance(schema, Mapping):
        return {}
    try:
        built = TextValues(text, exclude).object_for(schema, schema)
    except (RecursionError, TypeError, ValueError, AttributeError, KeyError):
        return {}  # an odd schema: the tool still gets called, with no arguments
    return built if isinstance(built, dict) else {}


# -- choosing tools -----------------------------------------------------------------------


def _offered_tools(tools: object) -> list[tuple[str, str, object]]:
    """(name, description, parameters) of each well-formed function tool offered."""
    offered = []
    for item in tools if isinstance(tools, list) else ():
        fn = item.get("function") if isinstance(item, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str) and fn["name"]:
            description = fn.get("description")
            offered.append((fn["name"], description if isinstance(description, str) else "",
                            fn.get("parameters")))
    return offered


def _name_parts(name: str) -> set[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return set(words_of(re.sub(r"[_\-.]+", " ", spaced)))


def _said(text: str) -> set[str]:
    """Every lower-case word of ``text``, stop words included, and each two adjacent words
    written as one ("look up" is also "lookup")."""
    said = re.findall(r"[^\W_]+", text.lower())
    return set(said) | {a + b for a, b in zip(said, said[1:])}


def _score(tool: tuple[str, str, object], words: set[str], text: str) -> tuple[int, int, set[str]]:
    """How well ``text`` names ``tool``: a score, a tie-break (the name's words said,
    stop words such as "look" and "get" included) and the words that matched."""
    name, description, _ = tool
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    said = set(re.findall(r"[^\W_]+", spaced.lower())) & _said(text)
    parts, described = _name_parts(name) & words, set(words_of(description)) & words
    score = 3 * len(parts) + len(described)
    if not name.isalpha() and re.search(r"(?<!\w)" + re.escape(name.lower()) + r"(?!\w)", text.lower()):
        score += 5  # the identifier itself, e.g. "get_weather"
        parts.add(name.lower())
    return score, len(said), parts | described | said


def _choose(tools: list[tuple[str, str, object]], text: str,
            choice: object) -> list[tuple[str, str, object]]:
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name") if isinstance(choice.get("function"), dict) else None
        return [t for t in tools if t[0] == wanted][:1]
    words = set(words_of(text))
    scored = [(*_score(tool, words, text), i) for i, tool in enumerate(tools)]
    best = max(score for score, _, _, _ in scored)
    if best == 0:
        return tools[:1] if choice == "required" else []
    # the best tool, then each other good one that some word of its own names: "look up the
    # user" must not also call delete_user for sharing the word "user"
    chosen: list[int] = []
    covered: set[str] = set()
    for score, _, matched, i in sorted(scored, key=lambda s: (-s[0], -s[1], s[3])):
        if score * 2 >= best and len(chosen) < _MAX_CALLS and (not chosen or matched - covered):
            chosen.append(i)
            covered |= matched
    return [tools[i] for i in sorted(chosen)]


# -- answering ----------------------------------------------------------------------------


def _latest_tool_results(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(tool name, content) of the tool messages that end the history, in call order."""
    tail: list[dict[str, Any]] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        tail.insert(0, message)
    if not tail or len(tail) == len(messages):
        return []
    names = {}
    for call in messages[-len(tail) - 1].get("tool_calls") or ():
        if isinstance(call, dict) and isinstance(call.get("function"), dict):
            names[call.get("id")] = str(call["function"].get("name", "tool"))
    return [(names.get(m.get("tool_call_id"), "tool"), _text_of(m.get("content"))) for m in tail]


def _quote(content: str) -> str:
    content = " ".join(content.split())
    return content if len(content) <= _QUOTE_CHARS else content[:_QUOTE_CHARS - 3] + "..."


def _no_tools_answer() -> str:
    return ("I am the emulator's rule-based responder, not a model, and this request offers "
            "no tools, so there is nothing for me to run. Offer tools and mention one by "
            "name, or by a word of its description, to see it called.")


def _unmatched_answer(tools: Iterable[tuple[str, str, object]]) -> str:
    known = "; ".join(f"{name} ({_first_sentence(description)})" if description else name
                      for name, description, _ in tools)
    return ("I am the emulator's rule-based responder, not a model: I call a tool when your "
            "message mentions its name or words of its description, and none matched. "
            f"Tools I know: {known}.")


def _first_sentence(text: str) -> str:
    first = " ".join(text.split()).split(". ")[0].rstrip(".")
    return first if len(first) <= 60 else first[:57] + "..."


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content
                       if isinstance(p, dict) and isinstance(p.get("text"), str))
    if content is None:
        return ""
    return json.dumps(content, ensure_ascii=False)
