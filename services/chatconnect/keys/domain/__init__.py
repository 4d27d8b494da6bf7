"""Prekey directory logic: key validation and bundle selection."""
