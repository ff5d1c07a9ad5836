"""Shared infrastructure: SQL persistence, notifications, redaction."""
