"""The keys service."""
