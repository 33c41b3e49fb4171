"""The emulator's rule-based responder: which tools it calls for a message, with which
arguments, and what it answers; then through a real emulator and client."""

from __future__ import annotations

import json
from typing import Literal

import pytest

import genesys_gateway as gg
from genesys_gateway import demo
from genesys_gateway.testing.emulator import GatewayEmulator, build_arguments, rule_based_responder


def tool(name, description, properties=None, required=(), **extra):
    parameters = {"type": "object", "properties": properties or {}, "required": list(required), **extra}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


WEATHER = tool("get_weather", "Current weather for a city.",
               {"location": {"type": "string", "description": "City name."},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"}},
               ["location"])
SKU = tool("lookup_sku", "Look up a product by SKU.", {"sku": {"type": "string"}}, ["sku"])
ADD = tool("add", "Add two integers.", {"a": {"type": "integer"}, "b": {"type": "integer"}}, ["a", "b"])
TOOLS = [WEATHER, SKU, ADD]


def user(*texts):
    return [{"role": "user", "content": t} for t in texts]


def calls(request):
    spec = rule_based_responder(request)
    return [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in spec["tool_calls"]]


@pytest.mark.parametrize("text, expected", [
    ("What's the weather in Oslo?", [("get_weather", {"location": "Oslo", "unit": "celsius"})]),
    ("weather in New York in fahrenheit please", [("get_weather", {"location": "New York", "unit": "fahrenheit"})]),
    ("look up sku ABC-123", [("lookup_sku", {"sku": "ABC-123"})]),
    ('how many of product "red mug" do we have?', [("lookup_sku", {"sku": "red mug"})]),
    ("add 2 and 40", [("add", {"a": 2, "b": 40})]),
    ("add them", [("add", {"a": 0, "b": 0})]),
], ids=["place-after-in", "enum-mentioned", "identifier", "quoted", "numbers-in-order", "no-numbers"])
def test_calls_the_tool_the_words_name_with_arguments_from_the_text(text, expected):
    assert calls({"messages": user(text), "tools": TOOLS}) == expected


def test_the_demo_question_calls_both_tools_at_once():
    request = {"messages": user(demo.PROMPT), "tools": demo.build_registry().definitions()}
    assert calls(request) == [
        ("get_weather", {"location": "London", "unit": "celsius"}),
        ("check_inventory", {"product_id": "SKU-8842", "warehouse": "EU-Central"}),
    ]


def test_deterministic():
    request = {"messages": user("weather in Lima and add 1 and 2"), "tools": TOOLS}
    assert calls(request) == calls(request) == [
        ("get_weather", {"location": "Lima", "unit": "celsius"}), ("add", {"a": 1, "b": 2})]


def test_a_follow_up_without_a_tool_word_reuses_the_previous_question():
    messages = [*user("weather in Oslo"), {"role": "assistant", "content": "cold"}, *user("and in Paris?")]
    assert calls({"messages": messages, "tools": TOOLS}) == [
        ("get_weather", {"location": "Paris", "unit": "celsius"})]


def test_no_match_answers_plainly_naming_the_tools_without_echoing():
    spec = rule_based_responder({"messages": user("zxqv blorp"), "tools": TOOLS})
    assert spec["tool_calls"] == []
    assert "not a model" in spec["content"]
    assert "get_weather (Current weather for a city)" in spec["content"] and "add (Add two integers)" in spec["content"]
    assert "zxqv" not in spec["content"] and "blorp" not in spec["content"]


@pytest.mark.parametrize("request_", [
    {"messages": user("weather in Oslo")},
    {"messages": user("weather in Oslo"), "tools": TOOLS, "tool_choice": "none"},
    {"messages": user("weather in Oslo"), "tools": [{"type": "function"}, "junk"]},
], ids=["no-tools", "tool-choice-none", "malformed-tools"])
def test_without_usable_tools_it_says_so(request_):
    spec = rule_based_responder(request_)
    assert spec["tool_calls"] == [] and "offers no tools" in spec["content"]


def test_a_named_tool_choice_is_obeyed():
    request = {"messages": user("hello"), "tools": TOOLS,
               "tool_choice": {"type": "function", "function": {"name": "add"}}}
    assert calls(request) == [("add", {"a": 0, "b": 0})]


def test_answers_from_the_tool_results():
    messages = [*user("weather in Oslo and add 1 and 2"),
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
                    {"id": "c2", "type": "function", "function": {"name": "add", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": '{"temperature":22}'},
                {"role": "tool", "tool_call_id": "c2", "content": "3"}]
    spec = rule_based_responder({"messages": messages, "tools": TOOLS})
    assert spec["tool_calls"] == []
    assert spec["content"] == 'get_weather returned {"temperature":22}. add returned 3.'


@pytest.mark.parametrize("schema", [
    {"anyOf": [{"type": "object"}, {"type": "null"}]},
    {"$ref": "#/$defs/Missing"},
    {"type": "object", "properties": 5},
    {"type": "object", "properties": {"a": {"$ref": "#"}}, "required": ["a"]},
    {"type": "object", "properties": {"a": {"$ref": "http://example.com/s"}}, "required": "a"},
    {"type": "object", "properties": {"a": {"anyOf": "x"}, "b": {"type": 7}, 3: {}}, "required": ["a", "b"]},
    [],
    None,
    "object",
], ids=["top-anyof", "missing-ref", "properties-not-a-dict", "recursive-ref", "remote-ref",
        "garbage-properties", "list", "none", "string"])
def test_odd_schemas_never_raise(schema):
    arguments = build_arguments(schema, 'make it 5 for "Bob" in Rome')
    assert isinstance(arguments, dict)
    json.dumps(arguments)  # always sendable


def test_schema_features():
    schema = {
        "type": "object",
        "$defs": {"Address": {"type": "object", "properties": {"city": {"type": "string"}},
                              "required": ["city"]}},
        "properties": {
            "address": {"$ref": "#/$defs/Address"},
            "note": {"anyOf": [{"type": "null"}, {"type": "string"}]},
            "count": {"type": ["integer", "null"], "maximum": 10},
            "ratio": {"type": "number"},
            "urgent": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "mode": {"enum": ["fast", "slow"]},
            "optional": {"type": "string"},
        },
        "required": ["address", "note", "count", "ratio", "urgent", "tags", "mode"],
    }
    assert build_arguments(schema, "ship 30 boxes at 0.5 to Madrid slow") == {
        "address": {"city": "Madrid"}, "note": "", "count": 10, "ratio": 0.5, "urgent": False,
        "tags": [], "mode": "slow"}


def test_the_number_next_to_the_property_name_wins():
    schema = {"type": "object", "properties": {"year": {"type": "integer"}, "quantity": {"type": "integer"}},
              "required": ["year", "quantity"]}
    assert build_arguments(schema, "in 2024 ship quantity 7") == {"year": 2024, "quantity": 7}
    assert build_arguments(schema, "ship quantity 7 in year 2024") == {"year": 2024, "quantity": 7}



# What a newcomer hit chatting with a tools module of their own (issue 13's review).
FLIGHT = tool("book_flight", "Book a flight between two cities.",
              {"origin": {"type": "string", "description": "Departure city."},
               "destination": {"type": "string", "description": "Arrival city."},
               "passengers": {"type": "integer", "default": 1, "description": "Number of passengers."},
               "max_price": {"type": ["number", "null"], "default": None,
                             "description": "Highest acceptable fare in euros."}},
              ["origin", "destination"])
SHIP = tool("ship_order", "Ship an order's items to an address.",
            {"items": {"type": "array", "items": {
                "type": "object", "properties": {"sku": {"type": "string"}, "quantity": {"type": "integer"}},
                "required": ["sku", "quantity"]}},
             "address": {"type": "object", "properties": {
                 "street": {"type": "string"}, "city": {"type": "string"}}, "required": ["street", "city"]}},
            ["items", "address"])
CANCEL = tool("cancel_subscription", "Cancel a customer's subscription.",
              {"customer_id": {"type": "string"}}, ["customer_id"])
TICKET = tool("open_ticket", "Open a support ticket.",
              {"title": {"type": "string", "description": "Short summary of the problem."}}, ["title"])


def test_a_possessive_s_matches_no_tool():
    # "what's" and "order's" both held a word "s": every tool with a possessive matched
    spec = rule_based_responder({"messages": user("what's the weather?"), "tools": [SHIP, CANCEL]})
    assert spec["tool_calls"] == [] and "none matched" in spec["content"]


def test_from_and_to_say_which_is_the_origin():
    assert calls({"messages": user("a flight to Tokyo from London"), "tools": [FLIGHT]}) == [
        ("book_flight", {"origin": "London", "destination": "Tokyo", "passengers": 1, "max_price": None})]


def test_a_number_stated_for_an_optional_property_beats_its_default():
    assert calls({"messages": user("book a flight from Paris to Berlin for 2 passengers, max 900 euros"),
                  "tools": [FLIGHT]}) == [
        ("book_flight", {"origin": "Paris", "destination": "Berlin", "passengers": 2, "max_price": 900.0})]


def test_a_title_is_the_text_after_the_colon_not_a_word_after_on():
    assert calls({"messages": user("open an urgent ticket: printer is on fire"), "tools": [TICKET]}) == [
        ("open_ticket", {"title": "printer is on fire"})]


def test_a_list_of_objects_gets_one_item_and_a_city_is_no_identifier():
    assert calls({"messages": user("ship 3 of SKU-1 to 10 Main Street, Springfield"), "tools": [SHIP]}) == [
        ("ship_order", {"items": [{"sku": "SKU-1", "quantity": 3}],
                        "address": {"street": "Main Street", "city": "Springfield"}})]



LOOKUP = tool("lookup_user", "Look up a user account by email.",
              {"email": {"type": "string", "description": "The user's email address."}}, ["email"])
DELETE = tool("delete_user", "Delete a user account.",
              {"user_id": {"type": "integer"}}, ["user_id"])


@pytest.mark.parametrize("text, expected", [
    ("look up the user ana@example.com", [("lookup_user", {"email": "ana@example.com"})]),
    ("delete user 42", [("delete_user", {"user_id": 42})]),
    ("look up user bob@example.com and delete user 7",
     [("lookup_user", {"email": "bob@example.com"}), ("delete_user", {"user_id": 7})]),
], ids=["lookup", "delete", "both"])
def test_a_word_two_tools_share_calls_only_the_one_the_message_names(text, expected):
    # "look up the user ..." also called delete_user (both share "user"), with an empty
    # e-mail address: the address was three words, none of them a value
    assert calls({"messages": user(text), "tools": [LOOKUP, DELETE]}) == expected
    assert calls({"messages": user(text), "tools": [DELETE, LOOKUP]}) == expected[::-1]  # in the order offered


# -- through the wire --------------------------------------------------------------------


def test_a_client_runs_its_own_tools_on_the_emulator_without_credentials():
    registry = gg.ToolRegistry()
    ran = []

    @registry.tool
    def book_table(restaurant: str, guests: int, time: Literal["lunch", "dinner"] = "lunch") -> str:
        """Book a table at a restaurant.

        Args:
            restaurant: The restaurant's name.
            guests: How many people.
            time: Which meal.
        """
        ran.append((restaurant, guests, time))
        return f"booked {restaurant} for {guests} at {time}"

    with GatewayEmulator(responder=rule_based_responder) as em:
        auth = gg.ClientCredentials("id", "secret", token_url=em.token_url)
        with gg.GatewayClient(base_url=em.url, auth=auth, tools=registry) as client:
            result = client.run("Please book a table at Nopa for 4 people, dinner")
    assert ran == [("Nopa", 4, "dinner")]
    assert result.completed and result.iterations == 2
    assert result.content == "book_table returned booked Nopa for 4 at dinner."
