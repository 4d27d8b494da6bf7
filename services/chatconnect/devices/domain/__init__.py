"""Linked-device logic: linking, listing, unlinking."""
