"""Migrations of the genesys_gateway Django app."""
