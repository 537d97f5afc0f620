"""A wall clock a test moves forward by hand (sessions, lockouts and expiry are about time passing)."""

from __future__ import annotations


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
