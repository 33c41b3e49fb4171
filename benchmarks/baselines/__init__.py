"""Baselines: the raw ``http.client`` floor and the tutorial's own loop."""
