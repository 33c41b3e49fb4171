"""results.py: serialization, truncation and output validation."""

import dataclasses
import datetime
import decimal
import enum
import json
import uuid

import attrs
import pytest

from genesys_gateway.tools.serialization import (ResultSerializationError, format_result, serialize_result,
                                     truncate, validate_output)
from genesys_gateway.tools import ToolRegistry


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 2


@attrs.define
class Stock:
    sku: str
    units: int
    checked: datetime.date


@dataclasses.dataclass
class Temp:
    value: float
    unit: Color


def test_str_is_verbatim():
    assert format_result("  hello\n{not json}", 100) == ("  hello\n{not json}", False)

    class S(str):
        pass

    content, _ = format_result(S("x"), 10)
    assert content == "x" and type(content) is str


@pytest.mark.parametrize("value, expected", [
    ({"a": 1, "b": [1, 2]}, '{"a":1,"b":[1,2]}'),
    ([1, "x"], '[1,"x"]'),
    ((1, 2), "[1,2]"),
    (None, "null"),
    (3, "3"),
    (True, "true"),
    ({"city": "Zürich", "emoji": "☀"}, '{"city":"Zürich","emoji":"☀"}'),
    (datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.timezone.utc),
     '"2024-05-01T12:30:00+00:00"'),
    (datetime.date(2024, 5, 1), '"2024-05-01"'),
    (datetime.time(8, 15), '"08:15:00"'),
    (decimal.Decimal("12.3400000000000000001"), '"12.3400000000000000001"'),
    (uuid.UUID(int=1), '"00000000-0000-0000-0000-000000000001"'),
    (Color.RED, '"red"'),
    (Level.HIGH, "2"),
    ({3, 1, 2}, "[1,2,3]"),
    (frozenset({"b", "a"}), '["a","b"]'),
])
def test_json_values(value, expected):
    assert format_result(value, 1000) == (expected, False)


def test_attrs_and_dataclasses_nested():
    value = {"stock": Stock("SKU-8842", 42, datetime.date(2024, 1, 2)),
             "temp": Temp(12.5, Color.RED)}
    content, truncated = format_result(value, 1000)
    assert json.loads(content) == {
        "stock": {"sku": "SKU-8842", "units": 42, "checked": "2024-01-02"},
        "temp": {"value": 12.5, "unit": "red"},
    }
    assert not truncated


def test_mixed_type_set_does_not_crash():
    assert sorted(json.loads(format_result({1, "a"}, 100)[0]), key=str) == [1, "a"]


def test_model_dump_objects():
    class Model:
        def model_dump(self, mode="python"):
            assert mode == "json"
            return {"x": 1}

    assert format_result(Model(), 100) == ('{"x":1}', False)


@pytest.mark.parametrize("value", [object(), b"bytes", {"k": object()}, float("nan"),
                                   {(1, 2): "tuple key"}])
def test_unserialisable_values_raise(value):
    with pytest.raises(ResultSerializationError):
        format_result(value, 100)


def test_circular_reference_raises():
    loop = []
    loop.append(loop)
    with pytest.raises(ResultSerializationError):
        serialize_result(loop)


def test_no_truncation_at_exact_fit():
    assert truncate("x" * 50, 50) == ("x" * 50, False)


def test_truncation_marker_and_bound():
    text = "y" * 20000
    content, truncated = truncate(text, 4096)
    assert truncated and len(content) == 4096
    marker = content[content.index("…"):]
    removed = int(marker.split()[1])
    assert marker == f"…[truncated {removed} chars]"
    assert removed == 20000 - content.index("…")
    assert content.startswith("y" * 4000)


@pytest.mark.parametrize("length", [25, 31, 99, 100, 101, 1009, 10_001, 99_999, 100_000])
@pytest.mark.parametrize("max_chars", [23, 24, 30, 64, 100, 1000])
def test_truncation_is_consistent_for_many_sizes(length, max_chars):
    text = "".join(chr(97 + i % 26) for i in range(length))
    content, truncated = truncate(text, max_chars)
    assert len(content) <= max_chars
    assert truncated == (length > max_chars)
    if truncated and "…" not in content:  # not even the marker fits: a plain cut
        assert content == text[:max_chars]
        assert len(f"…[truncated {length} chars]") > max_chars
    elif truncated:
        kept = content.index("…")
        assert content == text[:kept] + f"…[truncated {length - kept} chars]"
        assert len(content) == max_chars
    else:
        assert content == text


def test_tiny_limits_just_cut():
    assert truncate("abcdefghij" * 5, 5) == ("abcde", True)


def test_format_result_truncates_json():
    content, truncated = format_result({"data": "z" * 500}, 100)
    assert truncated and len(content) <= 100 and content.startswith('{"data":"zzz')


# ------------------------------------------------------------------ validate_output


OUTPUT = {"type": "object", "properties": {"temperature": {"type": "number"}},
          "required": ["temperature"]}


def make_tool(output_schema):
    return ToolRegistry().register("w", "", {"type": "object"}, lambda: None,
                                   output_schema=output_schema)


def test_validate_output_ok_and_invalid():
    tool = make_tool(OUTPUT)
    assert validate_output(tool, {"temperature": 12.5}) is None
    problem = validate_output(tool, {"temperature": "warm"})
    assert problem == "invalid output of tool 'w': temperature: must be number (got 'warm')"
    assert "missing required property 'temperature'" in validate_output(tool, {})


def test_validate_output_uses_json_form():
    tool = make_tool({"type": "object", "properties": {
        "when": {"type": "string"}, "n": {"type": "array"}}})
    assert validate_output(tool, {"when": datetime.date(2024, 1, 1), "n": (1, 2)}) is None
    stock_tool = make_tool({"type": "object", "required": ["sku"]})
    assert validate_output(stock_tool, Stock("a", 1, datetime.date(2024, 1, 1))) is None


def test_validate_output_of_strings_and_without_schema():
    assert validate_output(make_tool({"type": "string"}), "plain text") is None
    assert "must be object" in validate_output(make_tool(OUTPUT), "plain text")
    assert validate_output(make_tool(None), object()) is None
