"""A tools module whose parameters schema is not an object schema."""

from genesys_gateway import ToolRegistry

registry = ToolRegistry()
registry.register("lookup_sku", "Look up a product.", {"type": "string"}, lambda sku: sku)
