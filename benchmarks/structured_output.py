"""Structured output cost: ``python benchmarks/structured_output.py`` (``--quick`` for a
smoke run).

A 20-field answer (strings, numbers, booleans, an enum, a list, a nested attrs class,
optional fields sent as null as a strict schema makes a model do) read by the SDK's
``OutputSpec.parse`` — JSON parsing, compiled validation, nulls mapped back, cattrs
structuring — against the bare floor a hand-written client would use::

    data = json.loads(text)
    validate(data)                    # fastjsonschema.compile(schema), compiled once
    cattrs.structure(data, Ticket)

(the bare schema is the type's own, so its validator accepts the model's nulls only
where the type does: the bare answer is the same one with those keys left out).
Timings are the best of interleaved repeats. Target: <= 2x.
"""

from __future__ import annotations

import argparse
import enum
import json
import os
import sys
from typing import Optional

import attrs
import cattrs
import fastjsonschema

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from genesys_gateway.output import output_spec  # noqa: E402
from genesys_gateway.tools.schema import annotation_schema  # noqa: E402

from benchmarks.timing import best  # noqa: E402


class Priority(enum.Enum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


@attrs.frozen
class Address:
    street: str
    city: str
    postcode: Optional[str] = None
    country: str = "GB"


@attrs.frozen
class Ticket:
    id: str
    title: str
    description: str
    priority: Priority
    estimate_hours: int
    cost: float
    billable: bool
    reporter: str
    assignee: Optional[str]
    team: str
    tags: list[str]
    address: Address
    customer_id: int
    order_id: Optional[int]
    product: str
    quantity: int
    unit_price: float
    resolved: bool = False
    notes: str = ""
    channel: str = "email"


ANSWER = {
    "id": "T-1042", "title": "Printer on fire", "description": "The printer on floor 3 is on fire.",
    "priority": "high", "estimate_hours": 3, "cost": 120.5, "billable": True,
    "reporter": "ana@example.com", "assignee": None, "team": "facilities",
    "tags": ["hardware", "urgent", "floor-3"],
    "address": {"street": "1 Park Row", "city": "Leeds", "postcode": "LS1 5AB", "country": None},
    "customer_id": 88123, "order_id": 553, "product": "LaserJet 4000", "quantity": 1,
    "unit_price": 899.0, "resolved": None, "notes": None, "channel": "phone",
}
BARE_ANSWER = {**{k: v for k, v in ANSWER.items() if v is not None},
               "address": {k: v for k, v in ANSWER["address"].items() if v is not None},
               "assignee": None}


def bench_structured(repeats: int = 25, number: int = 2000) -> list[tuple[str, str, str]]:
    spec = output_spec(Ticket)
    assert spec is not None and spec.strict
    text, bare_text = json.dumps(ANSWER), json.dumps(BARE_ANSWER)
    validate = fastjsonschema.compile(annotation_schema(Ticket, "Ticket"))
    converter = cattrs.Converter()
    loads, structure = json.loads, converter.structure

    def bare() -> Ticket:
        data = loads(bare_text)
        validate(data)
        return structure(data, Ticket)

    def bare_no_json() -> Ticket:
        data = dict(BARE_ANSWER)
        validate(data)
        return structure(data, Ticket)

    def sdk_no_json() -> Ticket:
        data = dict(ANSWER, address=dict(ANSWER["address"]))
        value = spec.validator.validate(data, label="answer")
        assert spec.fix_nulls is not None and spec.structure is not None
        spec.fix_nulls(value)
        return spec.structure(value)  # type: ignore[no-any-return]

    assert spec.parse(text) == bare() == bare_no_json() == sdk_no_json()
    t = best({"bare": bare, "sdk": lambda: spec.parse(text), "bare no json": bare_no_json,
              "sdk no json": sdk_no_json}, repeats, number)
    us = lambda s: f"{s * 1e6:.1f} us"  # noqa: E731
    x = lambda a, b: f"{t[a] / t[b]:.2f}x"  # noqa: E731
    return [
        ("bare: json.loads + compiled fastjsonschema + cattrs.structure (20 fields)",
         us(t["bare"]), "1.00x"),
        ("OutputSpec.parse: json + validation + nulls mapped back + structuring",
         us(t["sdk"]), x("sdk", "bare")),
        ("bare without json.loads", us(t["bare no json"]), "1.00x"),
        ("OutputSpec validation + nulls + structuring, without json.loads", us(t["sdk no json"]),
         x("sdk no json", "bare no json")),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run (few repeats)")
    args = ap.parse_args()
    rows = bench_structured(repeats=3 if args.quick else 25, number=50 if args.quick else 2000)
    width = max(len(r[0]) for r in rows)
    for label, value, ratio in rows:
        print(f"{label:<{width}}  {value:>10}  {ratio:>6}")


if __name__ == "__main__":
    main()
