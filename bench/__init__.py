"""Benchmarks that print figures (``make bench-*``); speed targets live here, not in tests."""
