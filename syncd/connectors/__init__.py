"""Connectors: each reports what changed in a calendar since a cursor; CalDAV also writes back."""
