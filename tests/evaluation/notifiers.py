"""A notifier that keeps what it is sent, for the tests that count and read notifications."""

from __future__ import annotations

from typing import Any


class Capture:
    name = "capture"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def send(self, subject: str, body: str, *, level: Any = "info") -> None:
        self.sent.append((subject, body, level))
