"""The tutorial's tool schemas (the benchmarks' tools) and larger ones for the validation
tests, with a valid argument object each. Standard library only: peers import it too."""

WEATHER = {
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "City or region name"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit"},
    },
    "required": ["location"],
}

INVENTORY = {
    "type": "object",
    "properties": {
        "product_id": {"type": "string", "description": "Unique product identifier"},
        "warehouse": {"type": "string", "description": "Warehouse location code"},
    },
    "required": ["product_id", "warehouse"],
}

ADDRESS = {
    "type": "object",
    "properties": {
        "street": {"type": "string"},
        "city": {"type": "string"},
        "postcode": {"type": "string", "pattern": "^[A-Z0-9 -]{3,10}$"},
        "country": {"type": "string", "minLength": 2, "maxLength": 2},
    },
    "required": ["street", "city", "country"],
}

ORDER = {  # 15 properties, nested objects and arrays
    "type": "object",
    "properties": {
        "order_id": {"type": "string", "pattern": "^ORD-[0-9]{6}$"},
        "customer_id": {"type": "string"},
        "email": {"type": "string", "maxLength": 254},
        "priority": {"type": "string", "enum": ["low", "normal", "high", "urgent"]},
        "quantity": {"type": "integer", "minimum": 1, "maximum": 1000},
        "unit_price": {"type": "number", "minimum": 0},
        "currency": {"type": "string", "enum": ["EUR", "USD", "GBP"]},
        "gift": {"type": "boolean"},
        "notes": {"type": "string", "maxLength": 500},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
        "shipping_address": ADDRESS,
        "billing_address": ADDRESS,
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
                "required": ["sku", "qty"],
            },
        },
        "requested_date": {"type": "string"},
        "channel": {"type": "string", "default": "web"},
    },
    "required": ["order_id", "customer_id", "quantity", "shipping_address", "lines"],
}

_ADDRESS_VALUE = {"street": "1 Main St", "city": "London", "postcode": "SW1A 1AA", "country": "GB"}

SCHEMAS = [
    ("weather", WEATHER, {"location": "London", "unit": "celsius"}),
    ("inventory", INVENTORY, {"product_id": "SKU-8842", "warehouse": "EU-Central"}),
    ("order_15_nested", ORDER, {
        "order_id": "ORD-123456", "customer_id": "C-1", "email": "a@example.com", "priority": "high",
        "quantity": 3, "unit_price": 9.99, "currency": "GBP", "gift": False, "notes": "leave at door",
        "tags": ["vip", "repeat"], "shipping_address": _ADDRESS_VALUE, "billing_address": _ADDRESS_VALUE,
        "lines": [{"sku": "SKU-1", "qty": 1}, {"sku": "SKU-2", "qty": 2}], "requested_date": "2026-12-01",
    }),
]
