"""Peers: the libraries users would pick instead, each driven by its documented sync idiom
in its own process (see ``benchmarks.contestants`` for what each needs installed)."""
