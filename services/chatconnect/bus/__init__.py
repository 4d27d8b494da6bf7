"""Ephemeral fan-out between processes: online push, revocations, rate limits."""
