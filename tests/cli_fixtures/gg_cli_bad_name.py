"""A tools module whose tool name is invalid (spaces and '!')."""

from genesys_gateway import ToolRegistry

registry = ToolRegistry()
registry.register("bad name!", "Broken.", {"type": "object", "properties": {}}, lambda: "x")
