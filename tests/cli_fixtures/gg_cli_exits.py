"""A script, not a tools module: it exits when loaded."""
import sys

from genesys_gateway import ToolRegistry

registry = ToolRegistry()
sys.exit(3)
