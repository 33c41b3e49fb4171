"""Structured output: a run's final answer as data.

``run(prompt, output_type=T)`` (an attrs class, a dataclass or a ``TypedDict``) or
``output_schema={...}`` (a JSON Schema) makes an :class:`OutputSpec`, built once per
distinct type or schema and cached:

* the schema of ``T`` comes from :func:`~genesys_gateway.tools.schema.annotation_schema`,
  the code that builds tool schemas, so a type that works as a tool parameter works here;
  a type it cannot express is a :class:`ConfigurationError` naming the field;
* its strict form (:func:`~genesys_gateway.strict_schema.strict_form`): every property
  required, the optional ones made nullable, schema defaults dropped. When that form
  meets OpenAI's strict rules (:func:`~genesys_gateway.strict_schema.meets_strict_rules`)
  it is what the model is given, with ``strict: true``, and a ``null`` the model sends
  for an optional field is mapped back (the key is dropped, or set to the schema's
  default) before structuring; otherwise the schema goes as it is, with ``strict: false``;
* the compiled validator, from the tools wing's cache
  (:func:`~genesys_gateway.tools.validation.get_validator`: compiled once per schema), of
  the schema as it is, its optional properties made nullable when the strict form is
  sent: an answer may send null for them or, from a server that does not enforce the
  schema, leave them out;
* for a type, the cattrs structurer that builds ``T`` from the validated JSON.

:meth:`OutputSpec.parse` turns a final answer (JSON text, or the arguments of a
``final_answer`` tool call in ``output_mode="tool"``) into the output, or raises
:class:`OutputInvalid` naming what failed, in words the model can act on.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from typing import Any, Callable, Container, Literal, Mapping

import attrs

from .errors import ConfigurationError, ToolArgumentsError, ToolDefinitionError
from .strict_schema import Fix, no_union_defaults, strict_form
from .tools.schema import annotation_schema
from .tools.structuring import structurer
from .tools.typed_dicts import is_typeddict
from .tools.validation import SchemaValidator, get_validator, parse_arguments

__all__ = ["OutputMode", "OUTPUT_MODES", "FINAL_ANSWER_TOOL", "OutputSpec", "OutputInvalid",
           "Reading", "output_spec"]

OutputMode = Literal["json_schema", "tool"]
"""How the model is asked for the answer: ``"json_schema"`` (``response_format``) or
``"tool"`` (a ``final_answer`` tool whose arguments are the answer)."""
OUTPUT_MODES = ("json_schema", "tool")
#: The name of the tool offered in ``output_mode="tool"``.
FINAL_ANSWER_TOOL = "final_answer"
_FINAL_ANSWER_DESCRIPTION = ("Give your final answer: call this once, on its own, with the "
                             "answer as the arguments, when you have everything you need.")

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")


class OutputInvalid(Exception):
    """A final answer that failed parsing, validation or structuring; ``problem`` says
    what failed, for the model."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


@attrs.frozen
class Reading:
    """What one final answer gave: ``ok`` and the ``output``, or the ``problem``; the
    ``messages`` the history gets for it (the ``final_answer`` calls answered, and when
    a correction is asked for in text, the user message asking for it)."""

    ok: bool
    output: Any
    problem: str | None
    messages: list[dict[str, Any]]


@attrs.frozen
class OutputSpec:
    """What a run with structured output gives the model and how it reads the answer.

    Attributes:
        name: the ``json_schema`` name (the type's name, or the schema's ``title``).
        schema: the schema the model is given (the strict form when ``strict``).
        strict: whether ``schema`` meets OpenAI's strict rules (sent as ``strict``).
        mode: ``"json_schema"`` or ``"tool"``.
        validator: the compiled validator of the answer: ``schema`` where it is not strict;
            where it is, the original schema with its optional properties nullable (an
            answer may leave them out or send null).
        fix_nulls: maps a strict answer's nulls for optional fields back (in place).
        structure: builds the output type from validated JSON; ``None`` for a schema.
    """

    name: str
    schema: dict[str, Any]
    strict: bool
    mode: OutputMode
    validator: SchemaValidator = attrs.field(eq=False, repr=False)
    fix_nulls: Fix | None = attrs.field(default=None, eq=False, repr=False)
    structure: Callable[[Any], Any] | None = attrs.field(default=None, eq=False, repr=False)

    def request_params(self) -> dict[str, Any]:
        """Model parameters for every call of the run (``response_format``, or none)."""
        if self.mode != "json_schema":
            return {}
        return {"response_format": {"type": "json_schema", "json_schema": {
            "name": self.name, "schema": self.schema, "strict": self.strict}}}

    def tool_definition(self) -> dict[str, Any]:
        """The ``final_answer`` tool offered in ``output_mode="tool"``."""
        function: dict[str, Any] = {"name": FINAL_ANSWER_TOOL,
                                    "description": _FINAL_ANSWER_DESCRIPTION,
                                    "parameters": self.schema}
        if self.strict:
            function["strict"] = True
        return {"type": "function", "function": function}

    def tools(self, definitions: list[dict[str, Any]] | None, names: Container[str],
              ) -> list[dict[str, Any]] | None:
        """A model call's tool definitions: the tools' (their ``names``), and in ``"tool"``
        mode the ``final_answer`` tool (a registered tool of that name is a
        :class:`ConfigurationError`)."""
        if self.mode != "tool":
            return definitions
        if FINAL_ANSWER_TOOL in names:
            raise ConfigurationError(f"output_mode='tool' offers a tool named "
                                     f"{FINAL_ANSWER_TOOL!r}: a registered tool has that name",
                                     option="output_mode")
        return [*(definitions or ()), self.tool_definition()]

    def read(self, raw: str | None, call_ids: list[str] | None, *, retry: bool) -> Reading:
        """Read a final answer: text (``call_ids`` is ``None``), or the arguments of the
        first of the ``final_answer`` calls ``call_ids``; ``retry`` says whether an
        invalid answer gets a correction."""
        try:
            output = self.parse(raw, arguments=call_ids is not None)
        except OutputInvalid as invalid:
            problem = invalid.problem
        else:
            return Reading(True, output, None, [_tool_message(call_id, (
                "Answer received." if index == 0 else "Error: not accepted: only one final "
                "answer is taken.")) for index, call_id in enumerate(call_ids or ())])
        if call_ids is not None:
            again = f" Call {FINAL_ANSWER_TOOL} again with corrected arguments." if retry else ""
            return Reading(False, None, problem, [_tool_message(call_id, f"Error: {problem}.{again}")
                                                  for call_id in call_ids])
        how = (f"call the {FINAL_ANSWER_TOOL} tool with the answer as its arguments"
               if self.mode == "tool" else "reply with only the corrected JSON")
        return Reading(False, None, problem, [{"role": "user", "content": (
            f"Your answer was not accepted: {problem}. Please {how}.")}] if retry else [])

    @staticmethod
    def not_taken(call_id: str) -> dict[str, Any]:
        """The answer to a ``final_answer`` call made beside other tool calls."""
        return _tool_message(call_id, f"Error: not accepted: call {FINAL_ANSWER_TOOL} on its "
                             "own, once the other tools have answered.")

    def parse(self, raw: str | None, *, arguments: bool = False) -> Any:
        """The output from an answer's JSON text (``arguments``: a ``final_answer`` call's
        arguments); :class:`OutputInvalid` when it is not JSON, fails validation or
        cannot be structured."""
        if arguments:
            value, problem = parse_arguments(raw)
            if problem is not None:
                raise OutputInvalid(problem)
        else:
            value = _loads(raw or "")
        try:
            value = self.validator.validate(value, label="answer")
        except ToolArgumentsError as error:
            raise OutputInvalid(str(error).replace("invalid answer: ", "the answer does not "
                                                   "match the schema: ", 1)) from None
        if self.fix_nulls is not None:
            self.fix_nulls(value)
        if self.structure is None:
            return value
        try:
            return self.structure(value)
        except Exception as error:  # cattrs' errors; validation makes them rare
            raise OutputInvalid(f"the answer could not be read as {self.name}: "
                                f"{type(error).__name__}: {error}"[:300]) from None


def _tool_message(call_id: str, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # NaN, Infinity: not JSON


def _loads(text: str) -> Any:
    """The JSON value of an answer; a fenced block (```json ... ```) is read inside."""
    text = text.strip()
    if text.startswith("```") and text.endswith("```") and "\n" in text:
        text = text[text.index("\n") + 1:-3]
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as error:
        raise OutputInvalid(f"the answer is not valid JSON: {error.msg} at char {error.pos}") from None
    except (ValueError, RecursionError) as error:
        raise OutputInvalid(f"the answer is not valid JSON: {error}") from None


def output_spec(output_type: Any = None, output_schema: Any = None,
                output_mode: Any = "json_schema") -> OutputSpec | None:
    """The spec of one run's structured output (``None`` without ``output_type`` or
    ``output_schema``); :class:`ConfigurationError` naming the option at fault."""
    if output_type is not None and output_schema is not None:
        raise ConfigurationError("give output_type or output_schema, not both",
                                 option="output_schema")
    if output_mode not in OUTPUT_MODES:
        raise ConfigurationError(f"output_mode must be 'json_schema' or 'tool', got "
                                 f"{output_mode!r}", option="output_mode")
    if output_type is not None:
        if not (isinstance(output_type, type) and (
                attrs.has(output_type) or dataclasses.is_dataclass(output_type)
                or is_typeddict(output_type))):
            raise ConfigurationError(f"output_type must be an attrs class, a dataclass or a "
                                     f"TypedDict, got {output_type!r}", option="output_type")
        return _type_spec(output_type, output_mode)
    if output_schema is None:
        return None
    if not isinstance(output_schema, Mapping):
        raise ConfigurationError(f"output_schema must be a JSON Schema (a dict), got "
                                 f"{type(output_schema).__name__}", option="output_schema")
    try:  # not canonical: the order of properties is the order the model writes them in
        key = json.dumps(output_schema, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:
        raise ConfigurationError(f"output_schema is not JSON data: {error}"[:300],
                                 option="output_schema") from None
    return _schema_spec(key, output_mode)


@functools.lru_cache(maxsize=256)
def _type_spec(output_type: type[Any], mode: OutputMode) -> OutputSpec:
    where = f"output_type {output_type.__qualname__}"
    try:
        schema = annotation_schema(output_type, where)
        structure = structurer(output_type, where)
    except ToolDefinitionError as error:
        raise ConfigurationError(str(error), option="output_type") from None
    return _spec(output_type.__name__, schema, mode, structure, "output_type")


@functools.lru_cache(maxsize=256)
def _schema_spec(key: str, mode: OutputMode) -> OutputSpec:
    schema = json.loads(key)
    if mode == "tool" and schema.get("type") != "object":
        raise ConfigurationError("output_mode='tool' needs an object schema "
                                 "(\"type\": \"object\"): the answer is a tool's arguments",
                                 option="output_schema")
    title = schema.get("title")
    return _spec(title if isinstance(title, str) else "output", schema, mode, None,
                 "output_schema")


def _spec(name: str, schema: dict[str, Any], mode: OutputMode,
          structure: Callable[[Any], Any] | None, option: str) -> OutputSpec:
    strict = strict_form(schema)
    sent, lenient, fix = strict if strict is not None else (schema, schema, None)
    try:
        validator = get_validator(no_union_defaults(lenient), label=option)
    except ToolDefinitionError as error:
        raise ConfigurationError(str(error), option=option) from None
    name = _NAME_CHARS.sub("_", name)[:64] or "output"
    return OutputSpec(name, sent, strict is not None, mode, validator, fix, structure)
