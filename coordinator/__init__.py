"""Coordinator: public API, request lifecycle, policy, relay, combining, audit."""
