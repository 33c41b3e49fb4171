"""Wire models for OpenAI-compatible chat completions, and the one cattrs converter (built on first use).

Unknown fields are ignored; a missing ``usage`` is tolerated. Tool calls are parsed
leniently (a missing id or name is the loop's business: it answers the model with an
error rather than failing the whole response), everything else strictly: a body that is
not a chat completion raises :class:`ResponseFormatError`.
"""

from __future__ import annotations

import json
from typing import Any, Callable, TypeVar, Union, cast

import functools
from typing import TYPE_CHECKING

import attrs

from .errors import ResponseFormatError

if TYPE_CHECKING:  # cattrs loads on the first get_converter(): the hot path never needs it
    import cattrs

__all__ = [
    "FunctionCall",
    "ToolCall",
    "Message",
    "Choice",
    "Usage",
    "ChatResponse",
    "MessageContent",
    "get_converter",
    "parse_usage",
    "parse_chat_response",
    "message_to_dict",
]

T = TypeVar("T")

#: ``Message.content`` on the wire: text, a list of content parts (objects such as
#: ``{"type": "text", "text": ...}``) or ``None``. Also the key of its structure hook.
MessageContent = Union[str, list[dict[str, Any]], None]

#: A cattrs structure hook: ``hook(value, type) -> structured value``.
_Hook = Callable[[Any, Any], T]


@attrs.frozen
class FunctionCall:
    """The function part of a tool call, as the model sent it.

    Attributes:
        name: the tool's name (``None`` if the model sent none).
        arguments: the arguments as JSON text (possibly invalid JSON; an object the
            server sent instead of a string is re-encoded as text), or ``None``.
    """

    name: str | None = None
    arguments: str | None = None


@attrs.frozen
class ToolCall:
    """One tool call of an assistant message (parsed leniently: a missing id or name is
    the loop's business, answered to the model, not an error).

    Attributes:
        id: the call's id (``None`` if the model sent none).
        type: the call's type (``"function"``).
        function: the function's name and arguments.
    """

    id: str | None = None
    type: str = "function"
    function: FunctionCall = FunctionCall()

    @property
    def name(self) -> str | None:
        """``function.name``."""
        return self.function.name

    @property
    def arguments(self) -> str | None:
        """``function.arguments`` (JSON text)."""
        return self.function.arguments

    def to_dict(self) -> dict[str, Any]:
        """The call in OpenAI wire format."""
        return {
            "id": self.id,
            "type": self.type,
            "function": {"name": self.function.name, "arguments": self.function.arguments},
        }


@attrs.frozen
class Message:
    """A chat message (what ``complete()`` accepts besides OpenAI-format dicts, and what
    a response's choices carry).

    Attributes:
        role: ``"system"``, ``"user"``, ``"assistant"`` or ``"tool"``.
        content: text, a list of content parts (``{"type": "text", "text": ...}``...),
            or ``None`` (an assistant message that only calls tools).
        tool_calls: an assistant message's tool calls, or ``None``.
        tool_call_id: a ``"tool"`` message's answer to that call id, or ``None``.
        name: an optional participant name.
    """

    role: str
    content: MessageContent = None
    tool_calls: tuple[ToolCall, ...] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The message in OpenAI wire format, without empty optional fields."""
        return message_to_dict(self)


@attrs.frozen
class Choice:
    """One choice of a chat completion (the loop reads the first).

    Attributes:
        message: the assistant's message.
        index: the choice's index (0 for the first).
        finish_reason: why the model stopped (``"stop"``, ``"tool_calls"``,
            ``"length"``, ``"content_filter"``), or ``None`` when the server sent none.
    """

    message: Message
    index: int = 0
    finish_reason: str | None = None


@attrs.frozen
class Usage:
    """Token counts, as the server reported them (a missing or malformed ``usage`` counts
    0). Usages add up with ``+``.

    Attributes:
        prompt_tokens: tokens of the request's messages and tool definitions.
        completion_tokens: tokens of the answer.
        total_tokens: the server's total (normally the sum of the two).
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
        )


@attrs.frozen
class ChatResponse:
    """One chat-completions response, what :meth:`GatewayClient.complete
    <genesys_gateway.GatewayClient.complete>` returns. Unknown fields are ignored.

    Attributes:
        choices: the response's choices (at least one).
        id: the completion's id, or ``None``.
        model: the model that answered, as the server named it, or ``None``.
        created: the Unix time the server created it, or ``None``.
        object: the object type (``"chat.completion"``), or ``None``.
        usage: the call's token counts (zeros when the server sent none).
    """

    choices: tuple[Choice, ...]
    id: str | None = None
    model: str | None = None
    created: int | None = None
    object: str | None = None
    usage: Usage = Usage()

    @property
    def message(self) -> Message:
        """``choices[0].message``."""
        return self.choices[0].message

    @property
    def finish_reason(self) -> str | None:
        """``choices[0].finish_reason``."""
        return self.choices[0].finish_reason


def message_to_dict(message: Message) -> dict[str, Any]:
    """The OpenAI wire form of a message, without empty optional fields."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [call.to_dict() for call in message.tool_calls]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        out["name"] = message.name
    return out


def _strict(kind: type[T], label: str) -> _Hook[T]:
    def hook(value: Any, _type: Any) -> T:
        if type(value) is kind or (kind is int and isinstance(value, int) and not isinstance(value, bool)):
            return cast(T, value)  # the int branch passes only when T is int
        raise ResponseFormatError(f"{label} expected, got {type(value).__name__}")

    return hook


def _optional_str(value: Any, _type: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ResponseFormatError(f"string expected, got {type(value).__name__}")


def _arguments(value: Any, _type: Any) -> str | None:
    # Some servers send arguments as an object; the wire format says string.
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _content(value: Any, _type: Any) -> MessageContent:
    if value is None or isinstance(value, (str, list)):
        return value
    raise ResponseFormatError(f"message content must be a string, a list or null, got {type(value).__name__}")


def _tool_calls(value: Any, _type: Any) -> tuple[ToolCall, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ResponseFormatError("message.tool_calls must be a list")
    calls: list[ToolCall] = []
    for item in value:
        if not isinstance(item, dict):
            raise ResponseFormatError("each tool call must be an object")
        fn = item.get("function")
        if not isinstance(fn, dict):
            fn = {}
        call_id = item.get("id")
        kind = item.get("type")
        calls.append(
            ToolCall(
                id=call_id if isinstance(call_id, str) and call_id else None,
                type=kind if isinstance(kind, str) else "function",
                function=FunctionCall(
                    name=fn.get("name") if isinstance(fn.get("name"), str) else None,
                    arguments=_arguments(fn.get("arguments"), None),
                ),
            )
        )
    return tuple(calls)


def _count(value: Any) -> int:
    return value if type(value) is int else 0


def _usage(value: Any, _type: Any) -> Usage:
    if type(value) is not dict:
        return Usage()
    get = value.get
    return Usage(_count(get("prompt_tokens", 0)), _count(get("completion_tokens", 0)),
                 _count(get("total_tokens", 0)))


def _non_empty_tuple(item_type: type[T]) -> _Hook[tuple[T, ...]]:
    def hook(value: Any, _type: Any) -> tuple[T, ...]:
        if not isinstance(value, list) or not value:
            raise ResponseFormatError("'choices' must be a non-empty list")
        return tuple(get_converter().structure(v, item_type) for v in value)

    return hook


def parse_usage(value: Any) -> Usage:
    """``usage`` from the wire: a non-object is an empty :class:`Usage`, a bad count is 0."""
    return _usage(value, None)


@functools.lru_cache(maxsize=None)
def get_converter() -> cattrs.Converter:
    """The one cattrs converter with the wire models' structure hooks, built on first use."""
    import cattrs
    from cattrs.gen import make_dict_structure_fn

    conv = cattrs.Converter(detailed_validation=False, forbid_extra_keys=False)
    conv.register_structure_hook(str, _strict(str, "string"))
    conv.register_structure_hook(int, _strict(int, "integer"))
    conv.register_structure_hook(str | None, _optional_str)
    conv.register_structure_hook(MessageContent, _content)
    conv.register_structure_hook_func(lambda t: t == (tuple[ToolCall, ...] | None), _tool_calls)
    conv.register_structure_hook(Usage, _usage)
    conv.register_structure_hook_func(lambda t: t == tuple[Choice, ...], _non_empty_tuple(Choice))
    conv.register_structure_hook(
        int | None,
        lambda v, _t: v if v is None or (isinstance(v, int) and not isinstance(v, bool)) else None,
    )

    def _object_hook(cls: type[T]) -> _Hook[T]:
        fn = make_dict_structure_fn(cls, conv)

        def hook(value: Any, _type: Any) -> T:
            if not isinstance(value, dict):
                raise ResponseFormatError(f"{cls.__name__.lower()} must be an object")
            return fn(value, _type)

        return hook

    for cls in (Message, Choice, ChatResponse):
        conv.register_structure_hook(cls, _object_hook(cls))
    return conv



def parse_chat_response(body: bytes) -> ChatResponse:
    """Decode and structure a chat-completion body; any defect -> :class:`ResponseFormatError`.

    Structured by hand (:func:`_response`): the same checks, in the same order and with the
    same errors, as ``get_converter().structure(data, ChatResponse)``, at a fraction of its cost
    on every model call."""
    if not body:
        raise ResponseFormatError("empty response body where a chat completion was expected")
    try:
        data = json.loads(body.decode("utf-8"))
    except RecursionError:
        raise ResponseFormatError("response body is nested too deeply to be a chat completion") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ResponseFormatError(f"response body is not valid JSON ({e.__class__.__name__}: {e})") from None
    if not isinstance(data, dict):
        raise ResponseFormatError("response body is not a JSON object")
    if "choices" not in data:
        raise ResponseFormatError("response has no 'choices'")
    try:
        return _response(data)
    except ResponseFormatError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ResponseFormatError(f"response is not a valid chat completion: {e!r}"[:300]) from None


# --- the hot path: converter.structure(data, ChatResponse), by hand -----------------------
# (in the converter's order: the fields with a default first, then the required one)

def _response(data: dict[str, Any]) -> ChatResponse:
    get = data.get
    id_, model = _optional_str(get("id"), None), _optional_str(get("model"), None)
    created = get("created")
    if created is not None and (not isinstance(created, int) or isinstance(created, bool)):
        created = None
    object_, usage = _optional_str(get("object"), None), _usage(get("usage"), None)
    choices = data["choices"]
    if not isinstance(choices, list) or not choices:
        raise ResponseFormatError("'choices' must be a non-empty list")
    return ChatResponse(tuple([_choice(choice) for choice in choices]), id_, model, created, object_, usage)


def _choice(value: Any) -> Choice:
    if not isinstance(value, dict):
        raise ResponseFormatError("choice must be an object")
    index = value["index"] if "index" in value else 0
    if type(index) is not int:
        index = _STRICT_INT(index, int)
    finish_reason = _optional_str(value.get("finish_reason"), None)
    return Choice(_message(value["message"]), index, finish_reason)


def _message(value: Any) -> Message:
    if not isinstance(value, dict):
        raise ResponseFormatError("message must be an object")
    get = value.get
    content = get("content")
    if content is not None and not isinstance(content, (str, list)):
        content = _content(content, None)  # raises
    tool_calls = get("tool_calls")
    calls = None if tool_calls is None else _tool_calls(tool_calls, None)
    tool_call_id, name = _optional_str(get("tool_call_id"), None), _optional_str(get("name"), None)
    role = value["role"]
    if type(role) is not str:
        raise ResponseFormatError(f"string expected, got {type(role).__name__}")
    return Message(role, content, calls, tool_call_id, name)


_STRICT_INT: _Hook[int] = _strict(int, "integer")
