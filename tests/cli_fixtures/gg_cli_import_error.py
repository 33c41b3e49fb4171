"""A tools module that fails while importing."""

from genesys_gateway import ToolRegistry

registry = ToolRegistry()
raise RuntimeError("inventory database unreachable")
